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

Two ceilings measured in the same run, to read the goals against:

- ``one_extraction_cores``: CPU time over wall time of one extraction as a batch worker runs it
  (model, decoding thread, stored-video encoder), over the same videos one at a time in a fresh
  process; on a machine of C cores, 2 workers cannot be more than ``C / cores`` (at most 2)
  times faster than 1 (``ceiling_2_vs_1``), before any start-up cost;
- ``import_mediapipe_s``: the wall time of ``import mediapipe`` alone in a fresh process (less
  an empty interpreter's); no CLI can beat ``(import + bare model) / bare model``
  (``kettle_cli_floor``), before decoding, the model's load and the writing.

Prints one JSON line.
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


_CORES_PROBE = """
import json, sys, tempfile, time
from mediapipe.tasks.python import vision  # imported once per worker, not per input
from pipeline.extract import ExtractConfig
from pipeline.inputs import extract_input
from pipeline.encoding import VideoConfig
wall = cpu = 0.0
for path in sys.argv[2:]:
    with tempfile.TemporaryDirectory() as temp:
        began, began_cpu = time.perf_counter(), time.process_time()
        done = extract_input(
            path, extract=ExtractConfig(num_hands=1, max_fps=float(sys.argv[1])),
            video=VideoConfig(), temp_dir=temp, cache=temp + "/tracks.parquet",
        )
        wall += time.perf_counter() - began
        cpu += time.process_time() - began_cpu
        done.discard()
print(json.dumps({"wall": wall, "cpu": cpu}))
"""


def one_extraction_cores(videos: list[Path], max_fps: str) -> float:
    """CPU time over wall time of the extractions of ``videos``, one after another."""
    done = subprocess.run(
        [sys.executable, "-c", _CORES_PROBE, max_fps, *map(str, videos)],
        capture_output=True, text=True, check=True, env=os.environ | {"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return float(figures["cpu"] / figures["wall"])


def import_seconds(module: str, repeat: int = 3) -> float:
    """Best wall time of ``import module`` in a fresh interpreter, less an empty one's [s]."""

    def best(code: str) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    return best(f"import {module}") - best("pass")


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
        cores = one_extraction_cores([inputs / name for name in VIDEOS], args.max_fps)
        results["one_extraction_cores"] = round(cores, 3)
        results["ceiling_2_vs_1"] = round(min(2.0, (os.cpu_count() or 1) / cores), 3)

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
        results["import_mediapipe_s"] = round(import_seconds("mediapipe"), 3)
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
        bare_kettle_s = float(results["kettle_bare_model_ms"]) * 287 / 1e3  # type: ignore[arg-type]
        results["kettle_cli_floor"] = round(
            (bare_kettle_s + float(results["import_mediapipe_s"])) / bare_kettle_s,  # type: ignore[arg-type]
            3,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
