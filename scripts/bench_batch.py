"""Batch throughput (Ray, 2 workers vs 1), batch vs per-video CLI, CLI vs the bare model.

    python scripts/bench_batch.py [--max-fps 10] [--robot panda]

All in one run, each with a fresh hand-track cache (so every run extracts):

1. ``hand2robot batch`` over the shared videos with ``--workers 1`` and ``--workers 2``
   (separate processes; Ray start-up included); goal: 2 workers >= 1.8x faster on 2 cores;
2. the sum of ``hand2robot retarget VIDEO --out`` times over the same videos (one process each,
   as a user would run them) against the batch job's time;
3. ``hand2robot retarget VIDEO --out`` end to end on one video (process start, imports, model,
   extraction, video, retargeting, writing) per frame against the bare landmark model per frame
   on the same video (``scripts/bench_extract.py``'s measure); goal <= 1.15x. Also on the same
   clip repeated ``--repeat-clip`` times (default 4 and 10), to show the fixed start-up cost
   amortised.

Prints a Markdown summary and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "videos"
VIDEOS = (
    "kettle_pour_third_person.mp4",
    "cups_shuffle_third_person.mp4",
    "stove_stir_egocentric.mp4",
    "juggle_small_hands.mp4",
    "armwrestling_lowres.mp4",
)
CLI = [sys.executable, "-c", "from pipeline.cli import main; main()"]


def timed(command: list[str], cache: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    environment = os.environ | {"HAND2ROBOT_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    return time.perf_counter() - start, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-fps", default="10")
    parser.add_argument("--robot", default="panda")
    parser.add_argument("--repeat-clip", type=int, nargs="+", default=[4, 10])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_extract import bare_model_ms, repeated_clip

    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    # The model comes from the user cache into every fresh cache (no download inside timings).
    from pipeline.model import cache_dir

    models = cache_dir() / "models"
    inputs = work / "videos"
    inputs.mkdir()
    for name in VIDEOS:
        shutil.copy(SHARED / name, inputs / name)
    options = ["--max-fps", args.max_fps, "--hands", "1", "--robot", args.robot]

    def fresh_cache(name: str) -> Path:
        cache = work / name
        shutil.copytree(models, cache / "models")
        return cache

    results: dict[str, object] = {"videos": list(VIDEOS), "options": options}
    try:
        times = {}
        for workers in (1, 2):
            seconds, done = timed(
                [*CLI, "batch", str(inputs), "--out", str(work / f"batch{workers}"), *options,
                 "--workers", str(workers)],
                fresh_cache(f"cache-batch{workers}"),
            )  # fmt: skip
            report = json.loads((work / f"batch{workers}.report.json").read_text())
            times[workers] = seconds
            results[f"batch_workers{workers}_s"] = round(seconds, 2)
            results[f"batch_workers{workers}_written"] = len(report["written"])
            results[f"batch_workers{workers}_errors"] = [e["error"][:80] for e in report["errors"]]
        results["speedup_2_vs_1"] = round(times[1] / times[2], 3)

        total = 0.0
        for name in VIDEOS:
            seconds, done = timed(
                [*CLI, "retarget", str(inputs / name), "--out", str(work / f"cli-{name}"),
                 *options],
                fresh_cache(f"cache-cli-{name}"),
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"{name}: {done.stderr[-2000:]}")
            total += seconds
        results["cli_sum_s"] = round(total, 2)
        results["batch2_vs_cli_sum"] = round(total / times[2], 3)

        clip = SHARED / "kettle_pour_third_person.mp4"
        clips = [("kettle", clip, 287)]
        for times in args.repeat_clip:
            long_clip = work / f"kettle_x{times}.mp4"
            clips.append((f"kettle_x{times}", long_clip, repeated_clip(clip, times, long_clip)))
        for label, video, frames in clips:
            bare, _ = bare_model_ms(video, 1)
            seconds, done = timed(
                [*CLI, "retarget", str(video), "--out", str(work / f"one-{label}"),
                 "--hands", "1", "--robot", args.robot],
                fresh_cache(f"cache-one-{label}"),
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(done.stderr[-2000:])
            cli_ms = seconds / frames * 1e3
            results[f"{label}_frames"] = frames
            results[f"{label}_bare_model_ms"] = round(bare, 2)
            results[f"{label}_cli_ms"] = round(cli_ms, 2)
            results[f"{label}_cli_vs_bare"] = round(cli_ms / bare, 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
