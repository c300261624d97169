"""Batch throughput (Ray, 2 workers vs 1), batch vs per-video CLI, CLI vs the bare model.

    python scripts/bench_batch.py [--max-fps 10] [--robot panda]
    python scripts/bench_batch.py --steady [WORKERS ...] [--robot panda]

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

``--steady`` runs only the steady-state comparison (issue #24): ``run_batch`` (the Python door,
fresh Ray, fresh cache, ``--hands 1``, default settings otherwise: dataset rate 24 fps, the
slowest input's) over the five shared videos re-encoded at three CRFs (15 distinct inputs, 126 s
of video, so the cache never hits), once per worker count. Per run: the whole job's frames per
second (Ray start-up included) and the steady rate (from the first result's commit to the last
one's, the frames of every result but the first), with the CPU each process group used over
that window (extraction actors, retargeting actors, the driver, Ray's other processes, idle
cores). Against: the bare landmark model's single-stream rate on the same content (each clip's
``bench_extract.bare_model_ms``, weighted by the frames the job keeps of it), and the CPU floor
(one extraction's CPU per frame in a process of its own: the most 2 cores could do with no
retargeting, writing or Ray), with the CPU per frame of each piece of work beside the model
(``stream_costs``: decode, RGB, the model's input image, the stored-video encoder). Goal: steady
rate >= 1.4x the bare model.

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


def one_extraction(videos: list[Path], max_fps: str) -> dict[str, float]:
    """CPU and wall seconds of the extractions of ``videos``, one after another, in a fresh
    process (``cpu``, ``wall``)."""
    done = subprocess.run(
        [sys.executable, "-c", _CORES_PROBE, max_fps, *map(str, videos)],
        capture_output=True, text=True, check=True, env=os.environ | {"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def one_extraction_cores(videos: list[Path], max_fps: str) -> float:
    """CPU time over wall time of the extractions of ``videos``, one after another."""
    figures = one_extraction(videos, max_fps)
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


# --- Steady state (--steady): a long job of distinct inputs, against the bare model ---------

CRFS = (18, 23, 28)
"""The CRFs each shared video is re-encoded at: 5 videos x 3 = 15 distinct inputs, 126 s."""


def reencoded(folder: Path, crfs: tuple[int, ...] = CRFS) -> list[Path]:
    """Every shared video re-encoded (H.264, its own size, rate and frame times) at each CRF:
    distinct content, so the hand-track cache never hits."""
    import av

    made = []
    for crf in crfs:
        for name in VIDEOS:
            target = folder / f"{Path(name).stem}_crf{crf}.mp4"
            with av.open(str(SHARED / name)) as source, av.open(str(target), "w") as output:
                stream_in = source.streams.video[0]
                stream = output.add_stream(
                    "libx264", rate=stream_in.average_rate, options={"crf": str(crf)}
                )
                stream.width, stream.height = stream_in.width, stream_in.height
                stream.pix_fmt = "yuv420p"
                for frame in source.decode(video=0):
                    frame.pict_type = av.video.frame.PictureType.NONE
                    output.mux(stream.encode(frame))
                output.mux(stream.encode())
            made.append(target)
    return made


def _cpu_seconds() -> tuple[dict[int, tuple[str, float]], float]:
    """CPU seconds each process has used so far, with its group (``extract`` and ``retarget``
    actors, ``driver``: this process, ``ray_other``), and the idle seconds of all cores.
    Linux /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid = int(entry.name)
        group = (
            "driver" if pid == os.getpid()
            else "extract" if "ExtractStage" in command
            else "retarget" if "RetargetStage" in command
            else "ray_other" if "ray" in command
            else ""
        )  # fmt: skip
        if group:
            used[pid] = (group, (int(fields[11]) + int(fields[12])) / tick)  # utime + stime
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()
    return used, (int(cpu[4]) + int(cpu[5])) / tick  # idle + iowait


class CpuSampler:
    """Samples :func:`_cpu_seconds` every ``period`` seconds in a thread, so that the CPU of a
    process that ends inside a window (Ray Data ends an operator's actors when it is done) is
    still counted, up to its last sample."""

    def __init__(self, period: float = 0.2) -> None:
        import threading

        self.samples: list[tuple[float, dict[int, tuple[str, float]], float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)
        self._thread.start()

    def _run(self, period: float) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), *_cpu_seconds()))
            self._stop.wait(period)

    def cores(self, start: float, stop: float) -> dict[str, float]:
        """Cores busy on average from ``start`` to ``stop``, per group; ``idle``: idle cores."""
        self._stop.set()
        self._thread.join()
        base = max((s for s in self.samples if s[0] <= start), key=lambda s: s[0])
        inside = [s for s in self.samples if start < s[0] <= stop]
        last: dict[int, tuple[str, float]] = {}
        for _, used, _ in inside:
            last.update(used)
        window = inside[-1][0] - base[0]
        totals = dict.fromkeys(("extract", "retarget", "driver", "ray_other"), 0.0)
        for pid, (group, seconds) in last.items():
            totals[group] += seconds - base[1].get(pid, (group, 0.0))[1]
        totals["idle"] = inside[-1][2] - base[2]
        return {group: round(seconds / window, 3) for group, seconds in totals.items()}


def steady_run(inputs: list[Path], out: Path, workers: int, robot: str) -> dict[str, object]:
    """One ``run_batch`` (fresh Ray) over ``inputs``: the whole job's and the steady rate.

    The steady window runs from the first result's commit to the last one's, and counts the
    frames of every result but the first; CPU by process group over the same window.
    """
    from pipeline.batch import BatchConfig, run_batch
    from pipeline.extract import ExtractConfig

    marks: list[float] = []
    sampler = CpuSampler()
    began = time.perf_counter()
    report = run_batch(
        [str(p) for p in inputs],
        out,
        BatchConfig(robots=(robot,), workers=workers, extract=ExtractConfig(num_hands=1)),
        progress=lambda done, total, item: marks.append(time.perf_counter()),
    )
    job_s = time.perf_counter() - began
    if report.errors or len(report.written) != len(inputs):
        raise SystemExit(f"steady run failed: {[e.error[:200] for e in report.errors]}")
    order = {str(p): k for k, p in enumerate(inputs)}
    written = sorted(report.written, key=lambda w: order[w.input])
    frames = {w.input: w.input_frames for w in written}
    t0, t1 = marks[0], marks[-1]
    window_frames = sum(frames.values()) - frames[report.written[0].input]  # commit order
    window = t1 - t0
    cores = sampler.cores(t0, t1)
    return {
        "workers": workers,
        "frames": sum(frames.values()),
        "frames_by_input": [frames[str(p)] for p in inputs],
        "job_s": round(job_s, 2),
        "job_fps": round(sum(frames.values()) / job_s, 2),
        "first_result_s": round(t0 - began, 2),
        "steady_s": round(window, 2),
        "steady_fps": round(window_frames / window, 2),
        "steady_cores": cores,  # idle: idle cores on average; the rest: cores busy
        "extract_s": [w.extract_s for w in written],
        "retarget_s": [w.retarget_s for w in written],
        "write_s": [w.write_s for w in written],
    }


def stream_costs(video: Path) -> dict[str, float]:
    """CPU per source frame [ms] of the extraction's work beside the model, on one thread, as
    the decoding thread does it: decode, RGB conversion, the model's input image, the
    stored-video encoder (downscale, statistics, YUV, x264)."""
    import av
    from mediapipe import Image, ImageFormat

    from pipeline.decoding import _to_rgb
    from pipeline.encoding import VideoConfig, VideoEncoder

    costs = dict.fromkeys(("decode", "rgb", "model_image", "encode"), 0.0)
    count = 0
    with tempfile.TemporaryDirectory() as temp, av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        encoder = VideoEncoder(Path(temp) / "v.mp4", 30, VideoConfig())
        frames = container.decode(stream)
        while True:
            began = time.thread_time()
            frame = next(frames, None)
            if frame is None:
                break
            decoded = time.thread_time()
            rgb = _to_rgb(frame)
            converted = time.thread_time()
            Image(image_format=ImageFormat.SRGB, data=rgb)
            imaged = time.thread_time()
            encoder.add(rgb)
            for name, seconds in zip(
                costs, (decoded - began, converted - decoded, imaged - converted,
                        time.thread_time() - imaged), strict=True,
            ):  # fmt: skip
                costs[name] += seconds
            count += 1
        began = time.thread_time()
        encoder.close()
        costs["encode"] += time.thread_time() - began
    return {name: round(seconds / count * 1e3, 2) for name, seconds in costs.items()}


def steady_state(work: Path, robot: str, workers: tuple[int, ...]) -> dict[str, object]:
    """The steady-state comparison: each worker count's run, the bare model, the CPU floor."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_extract import bare_model_ms

    inputs = work / "steady-inputs"
    inputs.mkdir()
    began = time.perf_counter()
    files = reencoded(inputs)
    results: dict[str, object] = {"reencode_s": round(time.perf_counter() - began, 1)}
    runs = []
    for count in workers:
        cache = work / f"cache-steady{count}"
        shutil.copytree(_models(), cache / "models")
        done = subprocess.run(
            [sys.executable, __file__, "--steady-run", str(count), str(work / f"steady{count}"),
             robot, *map(str, files)],
            capture_output=True, text=True,
            env=os.environ | {"HAND2ROBOT_CACHE": str(cache), "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    frames_by_input = runs[0]["frames_by_input"]
    # The bare model on each source clip (every frame, pre-decoded), weighted by the frames the
    # job keeps of it: one stream's rate on the job's content.
    bare = {name: bare_model_ms(SHARED / name, 1)[0] for name in VIDEOS}
    weights = {name: 0 for name in VIDEOS}
    for path, frames in zip(files, frames_by_input, strict=True):
        weights[next(n for n in VIDEOS if path.stem.startswith(Path(n).stem))] += frames
    bare_fps = sum(weights.values()) / sum(weights[n] * bare[n] / 1e3 for n in VIDEOS)
    results["bare_model_ms"] = {n: round(v, 2) for n, v in bare.items()}
    results["bare_model_fps"] = round(bare_fps, 2)
    for run in runs:
        run["steady_vs_bare"] = round(run["steady_fps"] / bare_fps, 3)
        run["job_vs_bare"] = round(run["job_fps"] / bare_fps, 3)
    results["runs"] = runs
    # The CPU floor: one extraction (decode, model, stored-video encode) in a process of its
    # own, the five CRF-23 inputs one after another; 2 cores cannot beat 2 / its CPU per frame.
    probe = [f for f in files if "_crf23" in f.name]
    figures = one_extraction(probe, "24")
    kept = sum(f for f, p in zip(frames_by_input, files, strict=True) if p in probe)
    cpu_ms = figures["cpu"] / kept * 1e3
    results["one_extraction_cpu_ms_per_frame"] = round(cpu_ms, 2)
    results["one_extraction_cores"] = round(figures["cpu"] / figures["wall"], 3)
    results["cpu_floor_fps"] = round((os.cpu_count() or 1) / cpu_ms * 1e3, 2)
    results["cpu_floor_vs_bare"] = round((os.cpu_count() or 1) / cpu_ms * 1e3 / bare_fps, 3)
    results["stream_costs_ms"] = {f.name: stream_costs(f) for f in probe}
    return results


def _models() -> Path:
    """The user cache's model folder, copied into every fresh cache (no download in timings)."""
    from pipeline.model import cache_dir, ensure_model

    ensure_model()
    return cache_dir() / "models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-fps", default="10")
    parser.add_argument("--robot", default="panda")
    parser.add_argument("--repeat-clip", type=int, nargs="+", default=[4, 10])
    parser.add_argument(
        "--steady", type=int, nargs="*", metavar="WORKERS",
        help="only the steady-state run, with these worker counts (default 1 and 2)",
    )  # fmt: skip
    parser.add_argument("--steady-run", nargs="+", help=argparse.SUPPRESS)  # one run, inside
    args = parser.parse_args()
    if args.steady_run:  # WORKERS OUT ROBOT INPUT...: one steady run in this fresh process
        workers, out, robot, *files = args.steady_run
        print(json.dumps(steady_run([Path(f) for f in files], Path(out), int(workers), robot)))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    if args.steady is not None:
        try:
            steady = steady_state(work, args.robot, tuple(args.steady or (1, 2)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps(steady | {"robot": args.robot, "machine": machine}))
        return
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_extract import bare_model_ms, repeated_clip

    models = _models()
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
    results["machine"] = machine
    print(json.dumps(results))


if __name__ == "__main__":
    main()
