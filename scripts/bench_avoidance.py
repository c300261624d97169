"""Self-collision avoidance in the hand solver, on and off, on every shared real video.

    python scripts/bench_avoidance.py [--robots allegro_left,allegro_right,ur5_allegro]

Each shared video is extracted once (through the hand-track cache, both hands), then every hand
present in at least 10 frames is retargeted onto each listed dexterous robot of its side, with
``RetargetConfig(avoid_self_collision=False)`` (the raw vector mapping) and with the default
(avoidance on), at the default placement (``--egocentric`` for the egocentric clip).
Single-threaded. Reported per clip, hand and robot, for both settings: frames with a hand,
frames flagged SELF_COLLISION, frames whose fingertip targets were missed (UNREACHABLE or
JOINT_LIMIT), feasible frames (no flag), the median fingertip-vector error, the 5th percentile
of the closest distance between two parts of the hand [mm] (negative: overlap), and the
retargeting time per frame with a hand (``pipeline.retarget_tracks``, all flags included).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import pipeline  # noqa: E402
import retarget  # noqa: E402
from retarget.collision import CollisionAvoidance, SelfCollision  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def closest_mm(robot: retarget.Robot, q: np.ndarray) -> np.ndarray:
    """Closest distance between two parts of the hand per row of ``q`` [mm]."""
    avoidance = CollisionAvoidance(
        SelfCollision(robot),
        robot.hand_joints,
        robot.description.ee_frame,
        robot.model_configuration(robot.rest),
    )
    columns = robot.joint_indices(robot.hand_joints)
    return np.array([avoidance.closest(row[columns]) * 1e3 for row in q])


def row(robot: retarget.Robot, done: pipeline.RetargetedHand, seconds: float) -> dict[str, object]:
    res = done.result
    present = (res.flags & retarget.Flag.NO_HAND) == 0
    missed = (res.flags & (retarget.Flag.UNREACHABLE | retarget.Flag.JOINT_LIMIT)) != 0
    return {
        "frames_with_hand": int(present.sum()),
        "self_collision": int(((res.flags & retarget.Flag.SELF_COLLISION) != 0).sum()),
        "missed": int(missed.sum()),
        "feasible": int(res.feasible.sum()),
        "fingertip_error_mm_median": round(float(np.nanmedian(res.residual.fingertip)) * 1e3, 1),
        "closest_mm_p5": round(float(np.percentile(closest_mm(robot, res.q[present]), 5)), 1),
        "ms_per_frame": round(seconds / int(present.sum()) * 1e3, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--robots", default="allegro_left,allegro_right,ur5_allegro")
    args = parser.parse_args()
    robots = [retarget.load_robot(name) for name in args.robots.split(",")]
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    with open(SHARED / "MANIFEST.tsv", newline="") as handle:
        clips = [r for r in csv.DictReader(handle, delimiter="\t") if r["kind"] == "video"]
    totals: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as temp:
        for clip in clips:
            path = SHARED / clip["path"]
            egocentric = "egocentric" in clip["view"]
            done = pipeline.extract_input(
                path,
                extract=pipeline.ExtractConfig(num_hands=2),
                video=None,
                temp_dir=Path(temp),
            )
            for side, hand in done.tracks.hands.items():
                if hand.present.sum() < 10:
                    continue
                for robot in robots:
                    if robot.description.side.value != side:
                        continue
                    result: dict[str, object] = {"clip": path.name, "hand": side}
                    result["robot"] = robot.name
                    for label, avoid in (("off", False), ("on", True)):
                        config = retarget.RetargetConfig(avoid_self_collision=avoid, optimize=False)
                        start = time.perf_counter()
                        out = pipeline.retarget_tracks(
                            done.tracks,
                            robot,
                            side=side,
                            config=config,
                            placement=pipeline.PlacementConfig(egocentric=egocentric),
                        )
                        seconds = time.perf_counter() - start
                        measured = row(robot, out, seconds)
                        result[label] = measured
                        total = totals.setdefault(label, {})
                        for key in ("frames_with_hand", "self_collision", "missed", "feasible"):
                            total[key] = total.get(key, 0) + measured[key]  # type: ignore[operator]
                        total["seconds"] = total.get("seconds", 0.0) + seconds
                    print(json.dumps(result))
    for label, total in totals.items():
        frames = total["frames_with_hand"]
        total["ms_per_frame"] = round(total.pop("seconds") / frames * 1e3, 2)
        total["feasible_fraction"] = round(total["feasible"] / frames, 3)
        print(json.dumps({"total": label} | total))


if __name__ == "__main__":
    main()
