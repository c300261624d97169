"""hand2robot's hand solver against dex-retargeting's vector retargeting, same targets, one run.

    python -m venv /tmp/dexenv
    /tmp/dexenv/bin/pip install dex_retargeting==0.5.0 torch==2.13.0 six
    python scripts/bench_dex_retargeting.py --dex-python /tmp/dexenv/bin/python [--repeats 3]
                                            [--shared]

``--shared``: the same comparison on every shared video, the default solver with all its flags
(``scripts/bench_hand_shared.py``).

dex-retargeting is not a dependency of hand2robot: it runs in its own environment, in a
subprocess, on targets this script computes and passes as a file. Both solvers get the same
per-frame targets on the same robot file: the four wrist-to-fingertip vectors of the Allegro right
hand (example-robot-data's URDF), from the real hand tracks of the bundled sample
(``data/kettle_pour.tracks.parquet``, right hand, 75 frames), scaled and expressed in the palm
frame exactly as :class:`retarget.Retargeter` does. dex-retargeting is configured as its own
``teleop/allegro_hand_right.yml`` (vector type, NLopt SLSQP, Huber loss, its default
regularisation) with scaling 1 (the targets are already scaled), its low-pass filter off and its
vectors measured from ``palm_link`` (the wrist point's offset is added to the targets).

Reported: ms/frame of each solver, warm-started frame to frame (one BLAS thread), and the mean
wrist-to-fingertip vector error of each answer, measured by hand2robot's forward kinematics.
hand2robot runs twice: with its default objective (the thumb-to-finger vectors too, which keep
pinches closed and which the error figure does not score) and with the four tip vectors only,
the problem dex-retargeting solves (with a squared instead of a Huber loss). Both without the
self-collision avoidance (``avoid_self_collision=False``): dex-retargeting has none, and
``scripts/bench_avoidance.py`` measures what it costs.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import pipeline  # noqa: E402
import retarget  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

DEX_RUN = r"""
import json, os, sys, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
from dex_retargeting.retargeting_config import RetargetingConfig
job = json.load(open(sys.argv[1]))
targets = np.load(job["targets"])
config = RetargetingConfig.from_dict({
    "type": "vector",
    "urdf_path": job["urdf"],
    "target_origin_link_names": ["palm_link"] * 4,
    "target_task_link_names": job["tips"],
    "target_link_human_indices": [[0, 0, 0, 0], [1, 2, 3, 4]],
    "scaling_factor": 1.0,
    "low_pass_alpha": -1,
})
times, answers = [], None
for _ in range(job["repeats"]):
    solver = config.build()
    out = []
    start = time.perf_counter()
    for frame in targets:
        out.append(solver.retarget(frame))
    times.append((time.perf_counter() - start) / len(targets))
    answers = out
np.save(job["answers"], np.array(answers))
json.dump({"ms_per_frame": [t * 1e3 for t in times], "joint_names": solver.joint_names},
          open(job["result"], "w"))
"""


def run_dex(
    dex_python: str, robot: retarget.Robot, tips: np.ndarray, repeats: int
) -> tuple[np.ndarray, float]:
    """dex-retargeting in its own Python on wrist-to-fingertip targets (T, 4, 3) in the palm
    frame: its hand joints in hand2robot's order (T, n_hand) and its median ms/frame."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        np.save(work / "targets.npy", tips + robot.transform_hand_to_ee[:3, 3])  # from palm_link
        job = {
            "targets": str(work / "targets.npy"),
            "answers": str(work / "answers.npy"),
            "result": str(work / "result.json"),
            "urdf": str(robot.description.urdf.resolve()),
            "tips": [f.frame for f in robot.description.fingertips],
            "repeats": repeats,
        }
        (work / "job.json").write_text(json.dumps(job))
        (work / "run.py").write_text(DEX_RUN)
        subprocess.run(
            [dex_python, str(work / "run.py"), str(work / "job.json")],
            check=True,
            env=os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
        )
        result = json.loads((work / "result.json").read_text())
        answers = np.load(work / "answers.npy")
    order = [result["joint_names"].index(n) for n in robot.joint_names]
    columns = robot.joint_indices(robot.hand_joints)
    return answers[:, order][:, columns], float(np.median(result["ms_per_frame"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dex-python", required=True, help="Python with dex_retargeting")
    parser.add_argument("--tracks", type=Path, default=ROOT / "data/kettle_pour.tracks.parquet")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--shared",
        action="store_true",
        help="every shared video instead, all flags, with the fingertip geometry "
        "(scripts/bench_hand_shared.py)",
    )
    args = parser.parse_args()
    if args.shared:
        from bench_hand_shared import main as shared_main  # this folder's script

        shared_main(args.dex_python)
        return

    robot = retarget.load_robot("allegro_right")
    # dex-retargeting's kind of targets (every vector the human's, scaled), for both solvers.
    raw = retarget.RetargetConfig(avoid_self_collision=False, finger_roots=False)
    rt = retarget.Retargeter(robot, raw)
    solver = rt.solvers.hand.vector  # the bare hand solver, as the retargeter calls it
    assert solver is not None
    hand = pipeline.read_tracks(args.tracks).hands["right"]
    keypoints = hand.world_keypoints[hand.present]
    targets = rt.target_vectors(keypoints, "right")  # (T, K, 3): 4 tip vectors, then thumb ones
    tips = targets[:, :4]
    columns = robot.joint_indices(robot.hand_joints)

    # hand2robot's default (tip and thumb-to-finger vectors) and tip vectors only, as dex's.
    no_thumb = dataclasses.replace(raw, thumb_vectors=False)
    tips_only = retarget.Retargeter(robot, no_thumb).solvers.hand
    assert tips_only is not None
    tips_only = tips_only.vector
    runs = {}
    for label, bare, goals in (("default", solver, targets), ("tips_only", tips_only, tips)):
        times, answers = [], np.empty((len(goals), len(columns)))
        bare.solve(goals[0], robot.rest[columns])  # loads the compiled solver (not timed)
        for _ in range(args.repeats):
            q = robot.rest[columns].copy()
            start = time.perf_counter()
            for t, target in enumerate(goals):
                q = bare.solve(target, q).q
                answers[t] = q
            times.append((time.perf_counter() - start) / len(goals) * 1e3)
        runs[label] = (float(np.median(times)), answers)

    dex, dex_ms = run_dex(args.dex_python, robot, tips, args.repeats)

    def tip_error(q_hand: np.ndarray) -> float:
        errors = [
            np.linalg.norm(solver.vectors(q)[:4] - target, axis=-1).mean()
            for q, target in zip(q_hand, tips, strict=True)
        ]
        return float(np.mean(errors)) * 1e3

    row: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "frames": int(len(targets)),
        "dex_retargeting_ms_per_frame": round(dex_ms, 4),
        "dex_retargeting_tip_vector_error_mm": round(tip_error(dex), 2),
    }
    for label, (ms, answers) in runs.items():
        row[f"hand2robot_{label}_ms_per_frame"] = round(ms, 4)
        row[f"hand2robot_{label}_speedup_over_dex"] = round(dex_ms / ms, 2)
        row[f"hand2robot_{label}_tip_vector_error_mm"] = round(tip_error(answers), 2)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
