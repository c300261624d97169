"""Extraction speed against the bare landmark model, and peak memory against input length.

    python scripts/bench_extract.py [--video PATH] [--hands 1 2] [--repeat 10]

Timings are the best of 3 interleaved runs of each.

Speed: on one video, in one run, (a) the bare MediaPipe hand landmarker in VIDEO mode on frames
decoded beforehand (model time only), then (b) ``pipeline.extract_hands`` end to end (decode,
model, identity, smoothing, PnP). Overhead = (b) / (a) - 1; the goal is <= 10%.

Memory: peak resident memory of a fresh process running ``extract_hands`` on the shared
egocentric clip and on the same clip repeated ``--repeat`` times (written once to a temporary
file), to show that memory does not grow with the input's length.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "videos"


def bare_model_ms(video: Path, hands: int) -> tuple[float, int]:
    """Model-only ms/frame on pre-decoded frames."""
    from mediapipe import Image, ImageFormat
    from mediapipe.tasks.python import BaseOptions, vision

    from pipeline.model import ensure_model

    with av.open(str(video)) as container:
        decoded = [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    options = vision.HandLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(ensure_model().path)),
        running_mode=vision.RunningMode.VIDEO,
        num_hands=hands,
    )
    with vision.HandLandmarker.create_from_options(options) as landmarker:
        start = time.perf_counter()
        for stamp, rgb in decoded:
            landmarker.detect_for_video(
                Image(image_format=ImageFormat.SRGB, data=rgb), int(round(stamp * 1000))
            )
        elapsed = time.perf_counter() - start
    return elapsed / len(decoded) * 1000.0, len(decoded)


def extraction_ms(video: Path, hands: int) -> float:
    """End-to-end ``extract_hands`` ms/frame."""
    from pipeline.extract import ExtractConfig, extract_hands

    start = time.perf_counter()
    tracks = extract_hands(video, config=ExtractConfig(num_hands=hands))
    return (time.perf_counter() - start) / tracks.num_frames * 1000.0


def repeated_clip(source: Path, times: int, target: Path) -> int:
    """Write ``source`` repeated ``times`` times (re-encoded, H.264) and return its frames."""
    with av.open(str(source)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        rate = container.streams.video[0].average_rate
    with av.open(str(target), "w") as output:
        stream = output.add_stream("libx264", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for _ in range(times):
            for rgb in frames:
                output.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        output.mux(stream.encode())
    return len(frames) * times


_MEMORY_PROBE = """
import json, resource, sys
from pipeline.extract import extract_hands
tracks = extract_hands(sys.argv[1])
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"frames": tracks.num_frames, "peak_mib": peak_kib / 1024}))
"""


def peak_memory(video: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(video)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", type=Path, default=SHARED / "kettle_pour_third_person.mp4")
    parser.add_argument("--hands", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}")
    print(f"video: {args.video.name}")
    print("| hands | bare model ms/frame | extraction ms/frame | overhead |")
    print("| --- | --- | --- | --- |")
    for hands in args.hands:
        extraction_ms(args.video, hands)  # warm-up: model cache, imports, page cache
        # Interleaved, best of 3 each: both see the same machine state.
        model, full = float("inf"), float("inf")
        for _ in range(3):
            model = min(model, bare_model_ms(args.video, hands)[0])
            full = min(full, extraction_ms(args.video, hands))
        print(f"| {hands} | {model:.2f} | {full:.2f} | {full / model - 1:+.1%} |")
    short = SHARED / "stove_stir_egocentric.mp4"
    with tempfile.TemporaryDirectory() as folder:
        long = Path(folder) / "long.mp4"
        repeated_clip(short, args.repeat, long)
        rows = [("short", peak_memory(short)), (f"{args.repeat}x longer", peak_memory(long))]
    print("\n| input | frames | peak RSS [MiB] |")
    print("| --- | --- | --- |")
    for name, row in rows:
        print(f"| {name} | {int(row['frames'])} | {row['peak_mib']:.0f} |")
    ratio = rows[1][1]["peak_mib"] / rows[0][1]["peak_mib"]
    print(f"\npeak memory ratio long/short: {ratio:.2f} (frames ratio {args.repeat})")


if __name__ == "__main__":
    main()
