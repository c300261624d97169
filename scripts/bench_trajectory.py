"""Whole-trajectory optimisation against the per-frame solve (#22), and its speed.

    python scripts/bench_trajectory.py [--robots panda so101 allegro_right allegro_left
        ur5_allegro] [--max-fps 24] [--clips N] [--skip-videos]

1. The five shared videos (``../shared/data/videos``), extracted once (hand-track cache,
   ``--max-fps 24``), retargeted onto each robot (the hand ``auto`` picks, the default
   placement, fitted; the SO-101 also at the drawn convention unfitted) per frame and
   optimised, in the same run.
   Per robot: frames with a hand, feasible frames, each flag's count, the tracking error on
   feasible frames (largest), the joint jerk (per frame the largest over the joints of the
   third divided difference, median and 95th percentile [rad/s^3]) and the seconds taken.
2. Speed on one CPU thread (``torch.set_num_threads(1)``): per clip (the kettle clip), the
   per-frame chain (``pipeline.retarget_tracks``) against the chain with the optimiser, for
   the Panda and the Allegro hand; the optimiser's share is the added time over the per-frame
   chain's, and over the extraction plus per-frame chain (the clip's whole conversion).
3. Batched throughput: ``--clips`` synthetic Panda clips of 300 frames (a smooth motion plus
   noise, solved per frame first) in one optimiser call, on CUDA when torch sees one (default
   10,000 clips there), else on the CPU (default 64 clips, all threads): frames per second of
   the optimiser alone. The same command runs on either.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from datetime import date

import numpy as np
import pinocchio as pin
import torch
from bench_reach import CLIPS, VIDEOS  # the five shared videos, as #20's benchmark reads them

import pipeline
import retarget
from retarget import Flag

PER_FRAME = retarget.RetargetConfig(optimize=False)
OPTIMIZED = retarget.RetargetConfig(optimize=True)


def jerk(q: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Per frame, the largest joint jerk [rad/s^3] (third divided difference)."""
    velocity = np.diff(q, axis=0) / np.diff(timestamps)[:, None]
    acceleration = np.diff(velocity, axis=0) / np.diff(timestamps)[1:, None]
    return np.abs(np.diff(acceleration, axis=0) / np.diff(timestamps)[2:, None]).max(axis=1)


def measure(tracks, robot, config, placement) -> dict[str, float]:
    """Flags, errors on feasible frames and jerk over every clip's chosen hand."""
    flags, errors, jerks = [], {"position": [], "orientation": [], "fingertip": []}, []
    began = time.perf_counter()
    for one in tracks:
        for done in pipeline.retarget_sides(one, robot, config=config, placement=placement):
            result = done.result
            present = ~(np.asarray(result.flags) & Flag.NO_HAND).astype(bool)
            flags.append(np.asarray(result.flags)[present])
            for name, values in errors.items():
                values.append(np.asarray(getattr(result.residual, name))[result.feasible])
            jerks.append(jerk(np.asarray(result.q), one.timestamps))
    seconds = time.perf_counter() - began
    every = np.concatenate(flags)
    row: dict[str, float] = {"frames": len(every), "feasible": int(np.sum(every == 0))}
    for flag in Flag:
        if flag is not Flag.NO_HAND:
            row[flag.name] = int(np.count_nonzero(every & flag))
    for name, values in errors.items():
        joined = np.concatenate(values)
        row[f"max_{name}"] = float(np.nanmax(joined)) if np.isfinite(joined).any() else np.nan
    joined = np.concatenate(jerks)
    row["jerk_median"], row["jerk_p95"] = np.median(joined), np.percentile(joined, 95)
    row["seconds"] = seconds
    return row


def videos(robots: list[str], max_fps: float) -> None:
    config = pipeline.ExtractConfig(max_fps=max_fps)
    tracks = [pipeline.extract_cached(VIDEOS / clip, config=config).tracks for clip in CLIPS]
    names = ["UNREACHABLE", "JOINT_LIMIT", "VELOCITY_LIMIT", "SELF_COLLISION", "SINGULAR"]
    print(
        "| robot | run | frames | feasible | " + " | ".join(names) + " | largest error on "
        "feasible frames: position [mm], orientation [rad], fingertip [mm] | jerk median / "
        "p95 [rad/s^3] | s |"
    )
    print("|" + " --- |" * (len(names) + 7))
    runs = [(name, None) for name in robots]
    if "so101" in robots:  # also at the drawn convention, unfitted (--no-fit-placement)
        runs.append(("so101", pipeline.PlacementConfig(fit_yaw=False, fit_offset=False)))
    for name, placement in runs:
        robot = retarget.load_robot(name)
        label = name + (" unfitted" if placement else "")
        for run, config in (("per frame", PER_FRAME), ("optimised", OPTIMIZED)):
            row = measure(tracks, robot, config, placement)
            errors = (
                f"{1e3 * row['max_position']:.1f}, {row['max_orientation']:.3f}, "
                f"{1e3 * row['max_fingertip']:.1f}"
            )
            print(
                f"| `{label}` | {run} | {row['frames']} | {row['feasible']} "
                f"({row['feasible'] / row['frames']:.1%}) | "
                + " | ".join(str(row[n]) for n in names)
                + f" | {errors} | {row['jerk_median']:.0f} / {row['jerk_p95']:.0f} | "
                f"{row['seconds']:.1f} |",
                flush=True,
            )


THREADS = torch.get_num_threads()


def speed(max_fps: float) -> None:
    torch.set_num_threads(1)
    clip = VIDEOS / CLIPS[0]
    config = pipeline.ExtractConfig(max_fps=max_fps)
    began = time.perf_counter()
    tracks = pipeline.extract_hands(clip, config=config)
    extraction = time.perf_counter() - began
    print(f"\nOne thread, {clip.name}: extraction {extraction:.2f} s ({tracks.num_frames} frames)")
    print(
        "| robot | per-frame chain s | optimised chain s | optimiser share of the chain | "
        "optimiser share of extraction + chain | optimised frames/s |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("panda", "allegro_left"):
        robot = retarget.load_robot(name)
        times = {}
        for run, config in (("frame", PER_FRAME), ("optimised", OPTIMIZED)):
            pipeline.retarget_tracks(tracks, robot, config=config)  # warm
            began = time.perf_counter()
            done = pipeline.retarget_tracks(tracks, robot, config=config)
            times[run] = time.perf_counter() - began
        frames = int((~(np.asarray(done.result.flags) & Flag.NO_HAND).astype(bool)).sum())
        added = times["optimised"] - times["frame"]
        print(
            f"| `{name}` | {times['frame']:.3f} | {times['optimised']:.3f} | "
            f"+{added / times['frame']:.0%} | +{added / (extraction + times['frame']):.0%} | "
            f"{frames / added:.0f} |",
            flush=True,
        )


def synthetic_clips(robot, count: int, frames: int, seed: int) -> list[retarget.Clip]:
    """Smooth Panda motions with 3 mm / 1 deg target noise, each solved per frame."""
    rng = np.random.default_rng(seed)
    retargeter = retarget.Retargeter(robot, PER_FRAME)
    time_s = np.arange(frames) / 30.0
    template = []
    for _ in range(min(count, 8)):  # eight distinct clips, repeated
        phase = rng.uniform(0, 2 * np.pi, robot.nq)
        q = np.clip(
            robot.rest + 0.25 * np.sin(2 * np.pi * 0.4 * time_s[:, None] + phase),
            robot.lower,
            robot.upper,
        )
        pose = np.stack([robot.frame_placements(x, (robot.description.ee_frame,))[0] for x in q])
        pose[:, :3, 3] += rng.normal(0, 0.003, (frames, 3))
        for t in range(frames):
            pose[t, :3, :3] = pose[t, :3, :3] @ pin.exp3(rng.normal(0, 0.02, 3))
        targets = retarget.Targets(
            np.ones(frames, bool), pose, None, np.full(frames, 0.02), timestamps=time_s
        )
        solved, _, turns = retargeter.solve_turns(targets)
        template.append(retarget.Clip(targets, solved, turns))
    return [template[k % len(template)] for k in range(count)]


def throughput(count: int | None) -> None:
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    count = count or (10_000 if cuda else 64)
    torch.set_num_threads(THREADS)
    robot = retarget.load_robot("panda")
    clips = synthetic_clips(robot, count, 300, seed=0)
    for dtype in ("float64", "float32"):
        settings = dataclasses.replace(retarget.TrajectoryConfig(), device=device, dtype=dtype)
        config = dataclasses.replace(OPTIMIZED, trajectory=settings)
        optimizer = retarget.TrajectoryOptimizer(robot, config)
        optimizer.optimize_many(clips[:2])  # warm
        if cuda:
            torch.cuda.synchronize()
        began = time.perf_counter()
        answers = optimizer.optimize_many(clips)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - began
        print(
            f"\nBatched, {device} ({torch.cuda.get_device_name() if cuda else platform.machine()}"
            f", {torch.get_num_threads()} threads), {dtype}: {count} Panda clips x 300 frames in "
            f"{seconds:.2f} s = {count * 300 / seconds:,.0f} frames/s "
            f"({answers[0].iterations} iterations)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--robots",
        nargs="+",
        default=["panda", "so101", "allegro_right", "allegro_left", "ur5_allegro"],
    )
    parser.add_argument("--max-fps", type=float, default=24.0)
    parser.add_argument("--clips", type=int, default=None)
    parser.add_argument("--skip-videos", action="store_true")
    args = parser.parse_args()
    print(
        f"bench_trajectory, {date.today()}, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}"
    )
    if not args.skip_videos:
        videos(args.robots, args.max_fps)
        speed(args.max_fps)
    throughput(args.clips)


if __name__ == "__main__":
    main()
