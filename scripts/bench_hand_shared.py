"""The default hand solver against dex-retargeting on every shared video, in one run.

    python -m venv /tmp/dexenv
    /tmp/dexenv/bin/pip install dex_retargeting==0.5.0 torch==2.13.0 six
    python scripts/bench_hand_shared.py --dex-python /tmp/dexenv/bin/python [--keep-mirrored]

(also ``python scripts/bench_dex_retargeting.py --dex-python ... --shared``). Each shared video
is extracted once (both hands); every hand present in at least 10 frames goes onto the Allegro
of its side at the default placement (``egocentric`` for the egocentric clip). Reported per
hand and in total:

- hand2robot's whole retargeting step (``pipeline.retarget_tracks``: placement, targets,
  solves, every flag) per frame with a hand, with the default solver (self-collision avoidance
  on) and the raw vector mapping; the first call of the process, which loads the compiled
  solver from numba's disk cache (or compiles it), is timed apart. Also without the set-up
  (the step less one ``retarget.Retargeter`` construction, timed alone: URDF, collision
  geometry, solvers; made once per clip and hand here), as dex-retargeting's timing leaves its
  ``config.build()`` out;
- dex-retargeting 0.5.0's vector retargeting on its own kind of targets (the human's
  wrist-to-fingertip vectors, scaled: ``RetargetConfig(finger_roots=False)``) and the same URDF
  (its own process, as ``scripts/bench_dex_retargeting.py`` configures it), solver only;
- the fingertip geometry: the seven palm-normalised fingertip distances (thumb tip to index,
  middle and ring tips; wrist to thumb, index, middle and ring tips; each over the wrist to
  middle-MCP length: the human's keypoints 0 to 9, the robot's wrist point to the root joint of
  its middle finger), human against robot, per frame: Pearson correlation and mean absolute
  error over all frames and distances, and the mean of the seven per-distance correlations;
- feasible frames (no flag at all) and frames without a hand-solver flag (neither
  ``UNREACHABLE``, ``JOINT_LIMIT`` nor ``SELF_COLLISION``), overall and on the open-and-close
  stretches: frames within 0.5 s (15 frames) windows over which the hand's closure (mean
  wrist-to-fingertip distance of the four mapped fingers, palm-normalised) spans 0.25 or more.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from bench_dex_retargeting import run_dex  # noqa: E402  (this folder's script)

import pipeline  # noqa: E402
import retarget  # noqa: E402
from retarget import Flag  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import media  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HAND_FLAGS = Flag.UNREACHABLE | Flag.JOINT_LIMIT | Flag.SELF_COLLISION
TIPS = (4, 8, 12, 16)  # thumb, index, middle, ring: the Allegro's four fingers


def human_distances(keypoints: np.ndarray) -> np.ndarray:
    """The seven palm-normalised fingertip distances of MediaPipe keypoints (T, 21, 3): (T, 7)."""
    tips = keypoints[:, list(TIPS)]
    return _seven(
        tips - keypoints[:, :1], np.linalg.norm(keypoints[:, 9] - keypoints[:, 0], axis=-1)
    )


def _seven(tips_from_wrist: np.ndarray, palm: np.ndarray) -> np.ndarray:
    """Thumb to index/middle/ring, wrist to thumb/index/middle/ring, over ``palm``: (T, 7)."""
    thumb = tips_from_wrist[:, 0]
    between = np.linalg.norm(tips_from_wrist[:, 1:] - thumb[:, None], axis=-1)
    from_wrist = np.linalg.norm(tips_from_wrist, axis=-1)
    return np.concatenate([between, from_wrist], axis=1) / palm[:, None]


def robot_distances(rt: retarget.Retargeter, q_hand: np.ndarray) -> np.ndarray:
    """The same seven distances of the robot hand at joints (T, n_hand): (T, 7)."""
    solver = rt.solvers.hand.vector
    order = [[f.keypoint for f in rt.robot.description.fingertips].index(k) + 1 for k in TIPS]
    rows = [
        int(np.flatnonzero((solver.pairs[:, 0] == 0) & (solver.pairs[:, 1] == p))[0]) for p in order
    ]
    tips = solver.vectors_many(q_hand)[:, rows]
    # The middle finger's root joint, in the palm frame, against the wrist point.
    model = solver.model
    frame = model.frames[model.getFrameId(rt.robot.description.fingertips[order[2] - 1].frame)]
    joint = frame.parentJoint
    while model.parents[joint] != 0:
        joint = model.parents[joint]
    origin = solver.chain.poses(q_hand[0])[1]  # a root joint's origin does not move
    palm = float(np.linalg.norm(origin[joint] - solver.wrist_position))
    return _seven(tips, np.full(len(tips), palm))


def geometry(human: np.ndarray, robot: np.ndarray) -> dict[str, float]:
    """Correlation and mean absolute error of (T, 7) distances, pooled and per distance."""
    per = [float(np.corrcoef(human[:, k], robot[:, k])[0, 1]) for k in range(human.shape[1])]
    return {
        "r_pooled": round(float(np.corrcoef(human.ravel(), robot.ravel())[0, 1]), 3),
        "r_mean_of_7": round(float(np.mean(per)), 3),
        "mae": round(float(np.abs(human - robot).mean()), 3),
    }


def open_close(human: np.ndarray) -> np.ndarray:
    """Frames of the open-and-close stretches (see the module docstring), (T,) bool, from the
    seven distances (T, 7): the last four are the wrist-to-fingertip ones."""
    return media.open_close(human[:, 3:].mean(axis=1))


def hands(
    temp: Path, reflect_mirrored: bool = True
) -> list[tuple[str, str, pipeline.HandTracks, bool]]:
    """(clip, side, tracks, egocentric) of every shared video's hands seen 10 frames or more."""
    with open(SHARED / "MANIFEST.tsv", newline="") as handle:
        clips = [r for r in csv.DictReader(handle, delimiter="\t") if r["kind"] == "video"]
    found = []
    for clip in clips:
        path = SHARED / clip["path"]
        done = pipeline.extract_input(
            path,
            extract=pipeline.ExtractConfig(num_hands=2, reflect_mirrored=reflect_mirrored),
            video=None,
            temp_dir=temp,
        )
        for side, hand in done.tracks.hands.items():
            if hand.present.sum() >= 10:
                found.append((path.stem, side, done.tracks, "egocentric" in clip["view"]))
    return found


def main(dex_python: str, reflect_mirrored: bool = True) -> None:
    """Run the comparison and print one JSON line per hand, then the totals."""
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    robots = {side: retarget.load_robot(f"allegro_{side}") for side in ("left", "right")}
    settings = {
        "default": retarget.RetargetConfig(optimize=False),
        "raw": retarget.RetargetConfig(avoid_self_collision=False, optimize=False),
    }
    totals: dict[str, dict[str, float]] = {}
    first_call = {}
    setup = {}  # seconds to build a retargeter, per robot side and setting
    for side, robot in robots.items():
        for label, config in settings.items():
            times = []
            for _ in range(3):
                start = time.perf_counter()
                retarget.Retargeter(robot, config)
                times.append(time.perf_counter() - start)
            setup[side, label] = float(np.median(times))
    human_all, robot_all = [], {label: [] for label in (*settings, "dex")}
    with tempfile.TemporaryDirectory() as temp:
        found = hands(Path(temp), reflect_mirrored)
    for clip, side, tracks, egocentric in found:
        robot = robots[side]
        placement = pipeline.PlacementConfig(egocentric=egocentric)
        present = tracks.hands[side].present
        row: dict[str, object] = {"clip": clip, "side": side, "frames": int(present.sum())}
        human = human_distances(tracks.hands[side].world_keypoints[present])
        human_all.append(human)
        stretch = open_close(human)
        row["open_close_frames"] = int(stretch.sum())
        for label, config in settings.items():
            if label not in first_call:  # the compiled solver loads from disk once a process
                start = time.perf_counter()
                pipeline.retarget_tracks(
                    tracks, robot, side=side, config=config, placement=placement
                )
                first_call[label] = round(time.perf_counter() - start, 3)
            start = time.perf_counter()
            out = pipeline.retarget_tracks(
                tracks, robot, side=side, config=config, placement=placement
            )
            seconds = time.perf_counter() - start
            flags = out.result.flags[present]
            rt = retarget.Retargeter(robot, config)
            q_hand = out.result.q[present][:, robot.joint_indices(robot.hand_joints)]
            distances = robot_distances(rt, q_hand)
            robot_all[label].append(distances)
            counts = {
                "ms_per_frame": round(seconds / len(flags) * 1e3, 3),
                "ms_per_frame_without_setup": round(
                    (seconds - setup[side, label]) / len(flags) * 1e3, 3
                ),
                "feasible": int((flags == 0).sum()),
                "hand_ok": int(((flags & HAND_FLAGS) == 0).sum()),
                "self_collision": int(((flags & Flag.SELF_COLLISION) != 0).sum()),
                "open_close_feasible": int(((flags == 0) & stretch).sum()),
                "open_close_hand_ok": int((((flags & HAND_FLAGS) == 0) & stretch).sum()),
            }
            row[label] = counts | geometry(human, distances)
            total = totals.setdefault(label, {})
            for key, value in counts.items():
                if key == "ms_per_frame":
                    value = seconds
                elif key == "ms_per_frame_without_setup":
                    value = seconds - setup[side, label]
                total[key] = total.get(key, 0.0) + value
        rt = retarget.Retargeter(robot, retarget.RetargetConfig(finger_roots=False))
        tips = rt.target_vectors(tracks.hands[side].world_keypoints[present], side)[:, :4]
        dex_q, dex_ms = run_dex(dex_python, robot, tips, repeats=1)
        dex_distances = robot_distances(rt, dex_q)
        robot_all["dex"].append(dex_distances)
        row["dex"] = {"ms_per_frame": round(dex_ms, 3)} | geometry(human, dex_distances)
        dex_total = totals.setdefault("dex", {})
        dex_total["ms_per_frame"] = dex_total.get("ms_per_frame", 0.0) + dex_ms * len(tips) / 1e3
        print(json.dumps(row))
    frames = sum(len(h) for h in human_all)
    stretches = sum(int(open_close(h).sum()) for h in human_all)
    human = np.concatenate(human_all)
    summary: dict[str, object] = {
        "frames": frames,
        "open_close_frames": stretches,
        "first_call_s": first_call,
    }
    for label, total in totals.items():
        for key in ("ms_per_frame", "ms_per_frame_without_setup"):
            if key in total:
                total[key] = round(total[key] / frames * 1e3, 3)
        for key in ("feasible", "hand_ok"):
            if key in total:
                total[f"{key}_fraction"] = round(total[key] / frames, 3)
                total[f"open_close_{key}_fraction"] = round(
                    total[f"open_close_{key}"] / stretches, 3
                )
        summary[label] = total | geometry(human, np.concatenate(robot_all[label]))
    dex_ms = totals["dex"]["ms_per_frame"]
    for label in settings:
        summary[f"{label}_speedup_over_dex"] = round(dex_ms / totals[label]["ms_per_frame"], 2)
        summary[f"{label}_speedup_over_dex_without_setup"] = round(
            dex_ms / totals[label]["ms_per_frame_without_setup"], 2
        )
    summary["setup_s"] = {f"{side}/{label}": round(s, 4) for (side, label), s in setup.items()}
    print(json.dumps({"total": summary}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dex-python", required=True, help="Python with dex_retargeting")
    parser.add_argument(
        "--keep-mirrored", action="store_true",
        help="keep the landmarker's mirrored hands (ExtractConfig(reflect_mirrored=False))",
    )  # fmt: skip
    args = parser.parse_args()
    main(args.dex_python, reflect_mirrored=not args.keep_mirrored)
