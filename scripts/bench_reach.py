"""What the arms reach on the shared videos, with and without the gripper's symmetry (#20).

    python scripts/bench_reach.py [--robots panda so101 ur5_allegro] [--max-fps 24]

The five shared videos (``../shared/data/videos``: kettle, cups, stove, juggle, armwrestling)
are extracted once (hand-track cache, ``--max-fps 24``), then retargeted with the default
settings onto each robot (the hand ``auto`` picks), once with ``use_symmetry=False`` (one
end-effector orientation, earlier releases) and once with the default (a 2-fold gripper may be
turned 180 deg about its approach axis), in the same run. Reported per robot: the feasible
fraction among frames with a hand, the count of each flag, and how often the turned twin was
chosen and the turn switched.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
from datetime import date
from pathlib import Path

import numpy as np

import pipeline
import retarget
from retarget import Flag

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
CLIPS = (
    "kettle_pour_third_person.mp4",
    "cups_shuffle_third_person.mp4",
    "stove_stir_egocentric.mp4",
    "juggle_small_hands.mp4",
    "armwrestling_lowres.mp4",
)


def measure(
    tracks: list[pipeline.HandTracks], robot: retarget.Robot, config: retarget.RetargetConfig
) -> dict[str, float]:
    """Feasible fraction, flag counts and turn statistics over every clip's chosen hand."""
    flags, turns = [], []
    for one in tracks:
        for done in pipeline.retarget_sides(one, robot, config=config):
            result = done.result
            assert isinstance(result, retarget.RetargetResult)
            present = ~(np.asarray(result.flags) & Flag.NO_HAND).astype(bool)
            flags.append(np.asarray(result.flags)[present])
            if result.target_turn is not None:
                turns.append(np.asarray(result.target_turn)[present])
    every = np.concatenate(flags)
    row: dict[str, float] = {"frames": len(every), "feasible": float(np.mean(every == 0))}
    for flag in Flag:
        if flag is not Flag.NO_HAND:
            row[flag.name] = int(np.count_nonzero(every & flag))
    if turns:
        turn = np.concatenate(turns)
        row["turned"] = float(np.mean(turn > 1.0))
        row["switches"] = sum(int(np.count_nonzero(np.diff(t) != 0)) for t in turns)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--robots", nargs="+", default=["panda", "so101", "ur5_allegro"])
    parser.add_argument("--max-fps", type=float, default=24.0)
    args = parser.parse_args()
    print(f"bench_reach, {date.today()}, {platform.processor() or platform.machine()}")
    config = pipeline.ExtractConfig(max_fps=args.max_fps)
    tracks = [pipeline.extract_cached(VIDEOS / clip, config=config).tracks for clip in CLIPS]
    names = [f.name for f in Flag if f is not Flag.NO_HAND]
    print(f"\n| robot | symmetry | frames | feasible | turned | switches | {' | '.join(names)} |")
    print("| --- " * (6 + len(names)) + "|")
    for name in args.robots:
        robot = retarget.load_robot(name)
        for use in (False, True):
            settings = dataclasses.replace(retarget.RetargetConfig(), use_symmetry=use)
            row = measure(tracks, robot, settings)
            counts = " | ".join(str(row[n]) for n in names)
            label = robot.description.symmetry.value if use else "off"
            turned = f"{row['turned']:.0%}" if "turned" in row else "-"
            print(
                f"| {name} | {label} | {row['frames']:.0f} | {row['feasible']:.1%} | {turned} | "
                f"{row.get('switches', '-')} | {counts} |"
            )


if __name__ == "__main__":
    main()
