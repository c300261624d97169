"""What the arms reach on the shared videos, with and without the gripper's symmetry (#20).

    python scripts/bench_reach.py [--robots panda so101 ur5_allegro] [--max-fps 24]
    python scripts/bench_reach.py --placements [--robots panda so101]
    python scripts/bench_reach.py --still-open-close
    python scripts/bench_reach.py --chirality [--robots panda so101 ur5_allegro allegro_left ...]

The five shared videos (``../shared/data/videos``: kettle, cups, stove, juggle, armwrestling)
are extracted once (hand-track cache, ``--max-fps 24``), then retargeted with the default
settings onto each robot (the hand ``auto`` picks), once with ``use_symmetry=False`` (one
end-effector orientation, earlier releases) and once with the default (a 2-fold gripper may be
turned 180 deg about its approach axis), and for a redundant arm (the Panda) once more with the
default but no null-space posture (``IKConfig(posture_gain=0)``), in the same run. Reported per
robot and run: the feasible fraction among frames with a hand, the count of each flag, how often
the turned twin was chosen and the turn switched, and the limit margin (median over frames of
the arm joint nearest its limit, as a fraction of that joint's range; 0.5 is mid-range).

The runs above use the default placement, which is fitted (turn, then nominal point).
``--placements`` compares placements instead, with the default settings: the drawn convention
unfitted (``PlacementConfig(fit_yaw=False, fit_offset=False)``, ``--no-fit-placement``), the
yaw alone fitted (``fit_yaw=True, fit_offset=False``), and the yaw and the nominal point's
offset fitted (the default), with the fitted placement of each clip. ``--still-open-close``
looks for the frames where a still wrist opens or closes the hand and reports the Panda's
feasible frames there (:func:`still_open_close`). ``--chirality`` extracts the clips twice, with
the landmarker's mirrored hands kept (``ExtractConfig(reflect_mirrored=False)``, earlier
releases) and reflected to their side (the default), and reports per clip and hand the frames
reflected and the hand's turn between neighbouring frames, then per robot the per-frame and
the default (optimised) retargeting of both (:func:`chirality`).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
from datetime import date
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

import pipeline
import retarget
from retarget import Flag

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
#: The per-frame solve: what the arm reaches frame by frame (the trajectory optimiser, on by
#: default, is measured by bench_trajectory.py).
PER_FRAME = retarget.RetargetConfig(optimize=False)
CLIPS = (
    "kettle_pour_third_person.mp4",
    "cups_shuffle_third_person.mp4",
    "stove_stir_egocentric.mp4",
    "juggle_small_hands.mp4",
    "armwrestling_lowres.mp4",
)


def measure(
    tracks: list[pipeline.HandTracks],
    robot: retarget.Robot,
    config: retarget.RetargetConfig,
    placement: pipeline.PlacementConfig | None = None,
) -> dict[str, float]:
    """Feasible fraction, flag counts and turn statistics over every clip's chosen hand."""
    flags, turns, margins, placements = [], [], [], []
    arm = robot.joint_indices(robot.arm_joints)
    span = robot.upper[arm] - robot.lower[arm]
    for one in tracks:
        for done in pipeline.retarget_sides(one, robot, config=config, placement=placement):
            placements.append(done.placement.split(", ", 1)[1] if ", " in done.placement else "")
            result = done.result
            assert isinstance(result, retarget.RetargetResult)
            present = ~(np.asarray(result.flags) & Flag.NO_HAND).astype(bool)
            flags.append(np.asarray(result.flags)[present])
            q = np.asarray(result.q)[present][:, arm]
            # Each frame's arm joint nearest its limit, as a fraction of that joint's range.
            margin = np.minimum(q - robot.lower[arm], robot.upper[arm] - q) / span
            margins.append(margin.min(axis=1) if len(arm) else np.full(len(q), np.nan))
            if result.target_turn is not None:
                turns.append(np.asarray(result.target_turn)[present])
    every = np.concatenate(flags)
    row: dict[str, float] = {"frames": len(every), "feasible": float(np.mean(every == 0))}
    row["margin"] = float(np.median(np.concatenate(margins)))
    for flag in Flag:
        if flag is not Flag.NO_HAND:
            row[flag.name] = int(np.count_nonzero(every & flag))
    if turns:
        turn = np.concatenate(turns)
        row["turned"] = float(np.mean(turn > 1.0))
        row["switches"] = sum(int(np.count_nonzero(np.diff(t) != 0)) for t in turns)
    row["placements"] = placements  # type: ignore[assignment]
    return row


def still_open_close(tracks: list[pipeline.HandTracks], robot: retarget.Robot) -> None:
    """The frames where a still wrist opens or closes the hand, and what the robot does there.

    A frame is chosen when the hand's closure (``bench_hand_shared.open_close``: 0.5 s windows
    whose mean palm-normalised wrist-to-fingertip distance spans 0.25 or more) changes around
    it while its lifted wrist stays within 3 cm on every axis over the 15 frames centred on it
    (10 of them with the hand at least). Printed per clip and hand: frames chosen, feasible
    among them, and the flags.
    """
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_hand_shared import human_distances, open_close

    print(f"\nstill wrist, opening or closing ({robot.name}, default settings):")
    for clip, one in zip(CLIPS, tracks, strict=True):
        for done in pipeline.retarget_sides(one, robot, config=PER_FRAME):
            hand = one.hands[done.side]
            present = np.asarray(hand.present)
            keypoints = np.where(present[:, None, None], hand.world_keypoints, np.nan)
            moving = open_close(np.nan_to_num(human_distances(keypoints))) & present
            wrist = np.asarray(hand.transform_wrist_to_camera)[:, :3, 3]
            still = np.zeros(len(present), dtype=bool)
            for t in range(len(present)):
                window = slice(max(0, t - 7), t + 8)
                seen = wrist[window][present[window]]
                still[t] = len(seen) >= 10 and float(np.ptp(seen, axis=0).max()) < 0.03
            chosen = moving & still
            flags = np.asarray(done.result.flags)[chosen]
            named = {f.name: int(np.count_nonzero(flags & f)) for f in Flag if (flags & f).any()}
            print(
                f"  {clip} {done.side}: {int(chosen.sum())} frames, "
                f"{int(np.count_nonzero(flags == 0))} feasible, flags {named}"
            )


def turn_between_frames(hand: pipeline.HandTrack) -> NDArray[np.float64]:
    """The hand frame's rotation between neighbouring frames with a hand [deg], shape (n,)."""
    present = np.flatnonzero(hand.present)
    pairs = present[:-1][np.diff(present) == 1]
    rotation = np.asarray(hand.transform_wrist_to_camera)[:, :3, :3]
    relative = np.einsum("nji,njk->nik", rotation[pairs], rotation[pairs + 1])
    cosine = (np.trace(relative, axis1=1, axis2=2) - 1) / 2
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def chirality(robots: list[str], max_fps: float) -> None:
    """The landmarker's mirrored hands kept against reflected to their side (one run)."""
    runs = {
        "kept": pipeline.ExtractConfig(max_fps=max_fps, reflect_mirrored=False),
        "reflected (default)": pipeline.ExtractConfig(max_fps=max_fps),
    }
    tracks = {
        label: [pipeline.extract_cached(VIDEOS / clip, config=config).tracks for clip in CLIPS]
        for label, config in runs.items()
    }
    print(
        "\n| clip | hand | frames | reflected | turn between frames p50 / p90 / p99 [deg]: "
        f"{' ; '.join(runs)} |"
    )
    print("| --- | --- | --- | --- | --- |")
    for index, clip in enumerate(CLIPS):
        for side in ("left", "right"):
            cells = []
            for label in runs:
                hand = tracks[label][index].hands[side]
                turn = turn_between_frames(hand)
                if len(turn):
                    cells.append(" / ".join(f"{v:.1f}" for v in np.percentile(turn, [50, 90, 99])))
            hand = tracks["reflected (default)"][index].hands[side]
            if hand.present.sum() < 10 or hand.mirrored is None:
                continue
            print(
                f"| {Path(clip).stem} | {side} | {int(hand.present.sum())} | "
                f"{int(hand.mirrored.sum())} | {' ; '.join(cells)} |"
            )
    names = [f.name for f in Flag if f is not Flag.NO_HAND]
    print(f"\n| robot | lift | solve | frames | feasible | {' | '.join(names)} |")
    print("| --- " * (5 + len(names)) + "|")
    for name in robots:
        robot = retarget.load_robot(name)
        for solve, config in (("per frame", PER_FRAME), ("default", retarget.RetargetConfig())):
            for label in runs:
                row = measure(tracks[label], robot, config)
                counts = " | ".join(str(row[n]) for n in names)
                print(
                    f"| {name} | {label} | {solve} | {row['frames']:.0f} | "
                    f"{row['feasible']:.1%} | {counts} |"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--robots", nargs="+", default=["panda", "so101", "ur5_allegro"])
    parser.add_argument("--max-fps", type=float, default=24.0)
    parser.add_argument("--placements", action="store_true", help="compare fitted placements")
    parser.add_argument(
        "--still-open-close", action="store_true",
        help="only the frames where a still wrist opens or closes the hand, on the Panda",
    )  # fmt: skip
    parser.add_argument(
        "--chirality", action="store_true",
        help="the landmarker's mirrored hands kept against reflected to their side",
    )  # fmt: skip
    args = parser.parse_args()
    print(f"bench_reach, {date.today()}, {platform.processor() or platform.machine()}")
    if args.chirality:
        chirality(args.robots, args.max_fps)
        return
    config = pipeline.ExtractConfig(max_fps=args.max_fps)
    tracks = [pipeline.extract_cached(VIDEOS / clip, config=config).tracks for clip in CLIPS]
    if args.still_open_close:
        still_open_close(tracks, retarget.load_robot("panda"))
        return
    names = [f.name for f in Flag if f is not Flag.NO_HAND]
    print(
        f"\n| robot | run | frames | feasible | turned | switches | limit margin | "
        f"{' | '.join(names)} |"
    )
    print("| --- " * (7 + len(names)) + "|")
    for name in args.robots:
        robot = retarget.load_robot(name)
        default = PER_FRAME
        runs = {
            "off": dataclasses.replace(default, use_symmetry=False),
            robot.description.symmetry.value: default,
        }
        if len(robot.arm_joints) > 6:  # a redundant arm: also without the null-space posture
            still = dataclasses.replace(default.ik, posture_gain=0.0)
            runs["no posture"] = dataclasses.replace(default, ik=still)
        placements: dict[str, pipeline.PlacementConfig | None] = {label: None for label in runs}
        if args.placements:
            runs = dict.fromkeys(("drawn", "fit yaw", "fit yaw+offset (default)"), default)
            placements = {
                "drawn": pipeline.PlacementConfig(fit_yaw=False, fit_offset=False),
                "fit yaw": pipeline.PlacementConfig(fit_yaw=True, fit_offset=False),
                "fit yaw+offset (default)": None,
            }
        for label, settings in runs.items():
            row = measure(tracks, robot, settings, placements[label])
            counts = " | ".join(str(row[n]) for n in names)
            turned = f"{row['turned']:.0%}" if "turned" in row else "-"
            print(
                f"| {name} | {label} | {row['frames']:.0f} | {row['feasible']:.1%} | {turned} | "
                f"{row.get('switches', '-')} | {row['margin']:.3f} | {counts} |"
            )
            if args.placements:
                print(f"|   placements: {'; '.join(row['placements'])} |")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
