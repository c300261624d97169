"""Retargeting speed and fidelity per robot, on real hand trajectories.

    python scripts/bench_retarget.py [--tracks data/kettle_pour.tracks.parquet] [--repeats 5]
                                     [--no-avoid]

``--no-avoid`` turns the hands' self-collision avoidance off (the raw vector mapping, as
dex-retargeting solves it); ``scripts/bench_avoidance.py`` compares the two on every shared clip.

The trajectories are the bundled sample, extracted by hand2robot from the shared real video
``kettle_pour_third_person.mp4`` (287 frames, 29.97 fps). Single-threaded: BLAS thread pools are
limited to one thread before numpy loads. Reported per robot:

- ms/frame of the whole chain step (``pipeline.retarget_tracks``: placement, hand frames,
  solves, flags) over the frames with a hand, median of the repeats;
- ms/frame of the bare solver on the frames it reached (a hand, and neither UNREACHABLE nor
  JOINT_LIMIT) and on every frame with a hand, warm-started from the previous frame's solution,
  as inside the sequence;
- fidelity on reached frames: end-effector position / orientation error (arms) and mean
  wrist-to-fingertip vector error (hands, robot scale); the feasible fraction (no flag at all)
  and the count of each flag.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import pipeline  # noqa: E402
import retarget  # noqa: E402
import robots  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def bench_robot(
    tracks: pipeline.HandTracks, name: str, repeats: int, config: retarget.RetargetConfig
) -> dict[str, object]:
    robot = retarget.load_robot(name)
    side = robot.description.side.value if robot.description.side.value != "any" else "left"
    times = []
    done = None
    for _ in range(repeats):
        start = time.perf_counter()
        done = pipeline.retarget_tracks(tracks, robot, side=side, config=config)
        times.append(time.perf_counter() - start)
    assert done is not None
    res = done.result
    present = (res.flags & retarget.Flag.NO_HAND) == 0
    ok = _reached(res)
    if not ok.any():
        ok = present  # nothing feasible: report the errors over every frame with a hand
    summary: dict[str, object] = {
        "robot": name,
        "side": done.side,
        "frames": int(len(res.q)),
        "frames_with_hand": int(present.sum()),
        "feasible_fraction": round(float(res.feasible[present].mean()), 3),
        "ms_per_frame_all": round(float(np.median(times)) / int(present.sum()) * 1e3, 4),
        "mean_iterations": round(float(res.iterations[present].mean()), 2),
        "reached_fraction": round(float(_reached(res)[present].mean()), 3),
        "flag_counts": {
            str(f.name): int(((res.flags & f) != 0).sum())
            for f in retarget.Flag
            if (res.flags & f).any()
        },
    }
    if robot.arm_joints:
        summary["position_error_mm_reached"] = round(
            float(np.mean(res.residual.position[ok])) * 1e3, 2
        )
        summary["orientation_error_deg_reached"] = round(
            float(np.degrees(np.mean(res.residual.orientation[ok]))), 2
        )
        summary["position_error_mm_all_median"] = round(
            float(np.median(res.residual.position[present])) * 1e3, 2
        )
    if robot.hand_joints:
        summary["fingertip_error_mm_reached"] = round(
            float(np.mean(res.residual.fingertip[ok])) * 1e3, 2
        )
        summary["fingertip_error_mm_all_median"] = round(
            float(np.median(res.residual.fingertip[present])) * 1e3, 2
        )
    return summary


def _reached(res: retarget.RetargetResult) -> np.ndarray:
    """Frames with a hand whose target the solver reached (whatever the other flags)."""
    missed = retarget.Flag.NO_HAND | retarget.Flag.UNREACHABLE | retarget.Flag.JOINT_LIMIT
    return (res.flags & missed) == 0


def bench_warm_solver(
    tracks: pipeline.HandTracks, name: str, repeats: int, config: retarget.RetargetConfig
) -> dict[str, float]:
    """Solver time per frame on reached frames only, warm-started from the previous frame."""
    robot = retarget.load_robot(name)
    side = robot.description.side.value if robot.description.side.value != "any" else "left"
    done = pipeline.retarget_tracks(tracks, robot, side=side, config=config)
    res = done.result
    rt = retarget.Retargeter(robot, config)
    hand = tracks.hands[done.side]
    reached = np.flatnonzero(_reached(res)[1:]) + 1  # frames reached, with a previous frame
    if not len(reached):
        return {"reached_frames": 0}
    if robot.arm_joints:
        wrist = done.transform_camera_to_base @ hand.transform_wrist_to_camera
        targets = wrist @ np.linalg.inv(robot.transform_hand_to_ee)
        ik = rt.solvers.arm.ik  # the bare solver, as the retargeter calls it
        assert ik is not None
        solve, columns, kind = ik.solve, robot.joint_indices(robot.arm_joints), "arm_ik"
    else:
        solver = rt.solvers.hand.vector
        assert solver is not None
        valid = hand.present
        targets = np.full((len(res.q), len(rt.solvers.hand.pairs), 3), np.nan)
        targets[valid] = rt.target_vectors(hand.world_keypoints[valid], done.side)  # type: ignore[arg-type]
        solve, columns, kind = solver.solve, robot.joint_indices(robot.hand_joints), "hand_vectors"
    present = (res.flags & retarget.Flag.NO_HAND) == 0
    with_hand = np.flatnonzero(present[1:]) + 1  # frames with a hand, with a previous frame
    out: dict[str, float] = {"reached_frames": int(len(reached))}
    for label, frames in (("reached", reached), ("with_hand", with_hand)):
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            for t in frames:
                solve(targets[t], res.q[t - 1, columns])
            samples.append((time.perf_counter() - start) / len(frames))
        out[f"{kind}_ms_per_{label}_frame"] = round(float(np.median(samples)) * 1e3, 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracks", type=Path, default=ROOT / "data/kettle_pour.tracks.parquet")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-avoid", action="store_true", help="no self-collision avoidance")
    args = parser.parse_args()
    config = retarget.RetargetConfig(avoid_self_collision=not args.no_avoid, optimize=False)
    tracks = pipeline.read_tracks(args.tracks)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    source = tracks.source.get("path")
    print(f"# tracks: {args.tracks.name}, {tracks.num_frames} frames, source {source}")
    print(f"# self-collision avoidance: {'off' if args.no_avoid else 'on'}")
    for name in robots.names():
        row = bench_robot(tracks, name, args.repeats, config)
        if name in ("panda", "so101", "allegro_left", "allegro_right"):
            row.update(bench_warm_solver(tracks, name, args.repeats, config))
        print(json.dumps(row))


if __name__ == "__main__":
    main()
