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
finds the stretches where a hand opens or closes, makes still-wrist clips of them and reports
the Panda's feasible frames on those (:func:`still_open_close`). ``--chirality`` extracts the
clips twice, with the landmarker's mirrored hands kept (``ExtractConfig(reflect_mirrored=False)``,
earlier releases) and reflected to their side (the default), and reports per clip and hand the
frames reflected and the hand's turn between neighbouring frames, then per robot the per-frame
and the default (optimised) retargeting of both (:func:`chirality`).
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
from pipeline.camera_geometry import rotation_angle_deg
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
    """Still-wrist open-and-close clips made from the shared clips, and the robot on them.

    Every open-and-close stretch of every hand (``tests.media.open_close_stretches``: 15-frame
    windows over which the hand's closure spans 0.25 or more, 15 frames at least) is made into
    a clip whose wrist stands still (``tests.media.still_wrist_clip``: each frame turned,
    scaled and shifted so that the wrist stays at the centre of a 480 px square, the palm
    keeping its median direction and 0.22 of the frame; PNG frames named by their time). The
    clip is extracted and retargeted like a user's (default settings, ``--hand auto``), per
    frame and optimised (the default). The wrist's 3D orientation cannot be taken out of a 2D
    clip: a stretch counts as a still wrist when its source hand keeps 90% of its frames within
    30 deg of its median orientation (the medoid's; the others turn the cups they hold).
    Printed per stretch (its time in the source) and summed: frames with a hand, the made
    clip's wrist range (largest axis), feasible frames, flags.
    """
    import tempfile

    sys.path.insert(0, str(ROOT))
    from tests.media import open_close_stretches, still_wrist_clip, turn_from_medoid_deg

    print(f"\nstill-wrist open-and-close clips ({robot.name}, default settings):")
    print(
        "| clip | hand | source [s] | within 30 deg | frames | wrist range [cm] | "
        "per frame feasible | optimised feasible | optimised flags |"
    )
    print("| --- " * 9 + "|")
    totals: dict[str, list[int]] = {"still": [0, 0, 0], "all": [0, 0, 0]}
    with tempfile.TemporaryDirectory() as temp:
        for clip, one in zip(CLIPS, tracks, strict=True):
            for side, hand in one.hands.items():
                for frames in open_close_stretches(hand.world_keypoints, hand.present):
                    rotations = np.asarray(hand.transform_wrist_to_camera)[frames, :3, :3]
                    share = float(np.mean(turn_from_medoid_deg(rotations) <= 30.0))
                    span = f"{one.timestamps[frames[0]]:.2f}-{one.timestamps[frames[-1]]:.2f}"
                    made = still_wrist_clip(
                        VIDEOS / clip,
                        Path(temp) / f"{Path(clip).stem}_{side}_{frames[0]}",
                        one.timestamps[frames],
                        np.asarray(hand.image_keypoints)[frames],
                    )
                    seen = pipeline.extract_hands(made)
                    if not any(h.present.any() for h in seen.hands.values()):
                        print(f"| {Path(clip).stem} | {side} | {span} | "
                              f"{share:.0%} | 0 | no hand found in the made clip |")  # fmt: skip
                        continue
                    row = [0, 0, 0]
                    for config in (PER_FRAME, retarget.RetargetConfig()):
                        done = pipeline.retarget_tracks(seen, robot, config=config)
                        present = np.asarray(seen.hands[done.side].present)
                        flags = np.asarray(done.result.flags)[present]
                        row[0] = len(flags)
                        row[1 if config is PER_FRAME else 2] = int(np.count_nonzero(flags == 0))
                    wrist = np.asarray(seen.hands[done.side].transform_wrist_to_camera)
                    spread = np.ptp(wrist[present, :3, 3], axis=0).max() * 100
                    named = {f.name: int(np.count_nonzero(flags & f)) for f in Flag}
                    shown = {name: count for name, count in named.items() if count}
                    still = share >= 0.9
                    for key in ("still", "all") if still else ("all",):
                        totals[key] = [a + b for a, b in zip(totals[key], row, strict=True)]
                    print(
                        f"| {Path(clip).stem} | {side} | {span} | "
                        f"{share:.0%}{' (still)' if still else ''} | {row[0]} | {spread:.1f} | "
                        f"{row[1]} | {row[2]} | {shown} |"
                    )
    for key, (frames_seen, per_frame, optimised) in totals.items():
        print(
            f"{key}: {frames_seen} frames, per frame {per_frame} feasible "
            f"({per_frame / max(frames_seen, 1):.1%}), optimised {optimised} "
            f"({optimised / max(frames_seen, 1):.1%})"
        )


def turn_between_frames(hand: pipeline.HandTrack) -> NDArray[np.float64]:
    """The hand frame's rotation between neighbouring frames with a hand [deg], shape (n,)."""
    present = np.flatnonzero(hand.present)
    pairs = present[:-1][np.diff(present) == 1]
    rotation = np.asarray(hand.transform_wrist_to_camera)[:, :3, :3]
    return rotation_angle_deg(rotation[pairs], rotation[pairs + 1])


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
