"""Batch jobs whose retargeting is the slow stage: one retargeting actor against a growing pool.

    python scripts/bench_batch_retarget.py [--rounds 2] [--max-fps 24]

1. ``hand2robot batch`` over the shared videos onto ``panda,so101,allegro_right,ur5_allegro``
   with a fresh hand-track cache (``--workers 2``). From its run report: each input's extraction
   time and each robot's retargeting time, so ``extract_s / retarget_s`` per robot is how many
   extraction workers one retargeting actor keeps up with.
2. The same videos onto ``so101,allegro_right`` again, with the hand tracks now cached (as when
   a robot is added to a collection), so that the extraction actors only re-encode the stored
   video and retargeting is most of the work: ``--workers 2
   --retarget-workers 1`` (one retargeting actor, as before the pool could grow) against the
   default (up to ``--workers`` retargeting actors), alternating, ``--rounds`` times each, every
   run into a new dataset. Ray start-up and actor start-up are included, as a user sees them.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_batch import CLI, SHARED, VIDEOS  # same videos and CLI as the other batch bench

from pipeline.model import ensure_model


def batch(out: Path, cache: Path, robots: str, max_fps: str, *extra: str) -> dict:
    """Run ``hand2robot batch`` on the shared videos; the run report, with the wall time."""
    command = [
        *CLI, "batch", *(str(SHARED / v) for v in VIDEOS), "--robot", robots, "--out", str(out),
        "--max-fps", max_fps, "--workers", "2", *extra,
    ]  # fmt: skip
    environment = os.environ | {"HAND2ROBOT_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"batch failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(out.with_name(out.name + ".report.json").read_text())
    report["wall_s"] = round(wall, 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-fps", default="24")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-retarget-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        bundle = ensure_model().path  # the model bundle is shared; the hand tracks are not
        (cache / "models").mkdir(parents=True)
        shutil.copy(bundle, cache / "models" / bundle.name)
        first = batch(work / "all", cache, "panda,so101,allegro_right,ur5_allegro", args.max_fps)
        extract_s = {w["input"]: w["extract_s"] for w in first["written"]}
        per_robot: dict[str, dict[str, float]] = {}
        for robot in ("panda", "so101", "allegro_right", "ur5_allegro"):
            retarget_s = sum(w["retarget_s"] for w in first["written"] if w["robot"] == robot)
            per_robot[robot] = {
                "retarget_s": round(retarget_s, 2),
                "extraction_workers_one_actor_serves": round(
                    sum(extract_s.values()) / retarget_s, 2
                ),
            }
        runs: dict[str, list[dict[str, float]]] = {"one_actor": [], "growing_pool": []}
        for round_ in range(args.rounds):
            for name, extra in (("one_actor", ["--retarget-workers", "1"]), ("growing_pool", [])):
                out = work / f"{name}-{round_}"
                report = batch(out, cache, "so101,allegro_right", args.max_fps, *extra)
                runs[name].append(
                    {
                        "wall_s": report["wall_s"],
                        "retarget_actors": len({w["retarget_actor"] for w in report["written"]}),
                        "sum_retarget_s": round(sum(w["retarget_s"] for w in report["written"]), 2),
                        "sum_extract_s": round(
                            sum({w["input"]: w["extract_s"] for w in report["written"]}.values()), 2
                        ),
                    }
                )
    one = statistics.median(r["wall_s"] for r in runs["one_actor"])
    grown = statistics.median(r["wall_s"] for r in runs["growing_pool"])
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "date": time.strftime("%Y-%m-%d"),
                "max_fps": args.max_fps,
                "fresh_extraction": {
                    "wall_s": first["wall_s"],
                    "sum_extract_s": round(sum(extract_s.values()), 2),
                    "per_robot": per_robot,
                },
                "cached_tracks_so101_allegro_right": runs,
                "speedup_growing_pool_vs_one_actor": round(one / grown, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
