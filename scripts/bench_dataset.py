"""Dataset writing cost (video encoding included) against extraction time, per frame.

    python scripts/bench_dataset.py [--video PATH] [--hands 1] [--rounds 3]

In one run, interleaved, best of ``--rounds`` each:

- extraction alone: ``pipeline.extract_hands`` end to end (the baseline);
- extraction with the stored-video encoder as its frame sink (as ``hand2robot retarget --out``
  does on a cache miss), for each video setting below; its extra wall time over the baseline is
  the encoding cost (the encoder runs in the decoding thread, beside the model);
- ``pipeline.dataset.append_episodes`` (Parquet, stats, meta, provenance, the video moved in,
  the atomic swap) into a fresh dataset;
- the same encoder alone on frames decoded beforehand (its whole cost if nothing overlapped);
- for information, the cache-hit path: decoding the kept frames again and encoding them.

Writing cost = encoding cost + append, both as measured in the pipeline (wall) and as the
standalone encoder's cost (an upper bound); the goal (issue #4) is <= 10% of extraction per
frame.
Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "videos"

SETTINGS = {
    "480 px H.264 veryfast crf 23 (default)": {"max_size": 480},
    "480 px H.264 ultrafast": {"max_size": 480, "preset": "ultrafast"},
    "source size H.264 veryfast": {"max_size": None},
    "480 px AV1 (SVT preset 10)": {"max_size": 480, "codec": "libsvtav1", "preset": "10"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SHARED / "kettle_pour_third_person.mp4")
    parser.add_argument("--hands", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import retarget
    from pipeline.dataset import append_episodes
    from pipeline.decoding import open_media
    from pipeline.encoding import VideoConfig, VideoEncoder, nominal_fps
    from pipeline.extract import ExtractConfig, extract_hands
    from pipeline.inputs import record_video
    from pipeline.retargeting import retarget_tracks

    config = ExtractConfig(num_hands=args.hands)
    robot = retarget.load_robot("panda")
    fps = nominal_fps(open_media(args.video))
    work = Path(tempfile.mkdtemp(prefix="bench-dataset-"))
    extract_hands(args.video, config=config)  # warm-up: model load, file cache
    best: dict[str, float] = {}
    encode_cpu: dict[str, float] = {}
    sizes: dict[str, int] = {}

    def keep(name: str, value: float) -> None:
        best[name] = min(best.get(name, float("inf")), value)

    import av

    with av.open(str(args.video)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in islice(container.decode(video=0), 120)]
    alone: dict[str, float] = {}
    frames = 0
    try:
        for _ in range(args.rounds):
            start = time.perf_counter()
            tracks = extract_hands(args.video, config=config)
            frames = tracks.num_frames
            keep("extraction", (time.perf_counter() - start) / frames)
            done = retarget_tracks(tracks, robot)
            for label, options in SETTINGS.items():
                video_config = VideoConfig(**options)  # type: ignore[arg-type]
                encoder = VideoEncoder(work / "video.mp4", fps, video_config)
                spent = [0.0]

                def sink(rgb, encoder=encoder, spent=spent):  # noqa: ANN001, ANN202
                    begin = time.perf_counter()
                    encoder.add(rgb)
                    spent[0] += time.perf_counter() - begin

                start = time.perf_counter()
                extract_hands(args.video, config=config, sink=sink)
                encoder.close()
                keep(label, (time.perf_counter() - start) / frames)
                encode_cpu[label] = min(encode_cpu.get(label, 1e9), spent[0] / frames)
                sizes[label] = encoder.path.stat().st_size
                video = encoder.result()
                if label.endswith("(default)"):
                    root = work / "dataset"
                    shutil.rmtree(root, ignore_errors=True)
                    start = time.perf_counter()
                    append_episodes(root, tracks, done, robot, video=video, fps=fps)
                    keep("append", (time.perf_counter() - start) / frames)
                    start = time.perf_counter()
                    again = record_video(args.video, work, fps, config, VideoConfig(), frames)
                    keep("decode again + encode", (time.perf_counter() - start) / frames)
                    again.path.unlink()
                encoder.path.unlink()
                encoder = VideoEncoder(work / "alone.mp4", fps, video_config)
                start = time.perf_counter()
                for rgb in decoded:
                    encoder.add(rgb)
                encoder.close()
                alone[label] = min(
                    alone.get(label, 1e9), (time.perf_counter() - start) / len(decoded)
                )
                encoder.path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = best["extraction"]
    rows = []
    for label in SETTINGS:
        encoding = best[label] - base
        writing = encoding + best["append"]
        rows.append(
            {
                "video": label,
                "extraction_with_encoder_ms": round(best[label] * 1e3, 2),
                "encoding_wall_ms": round(encoding * 1e3, 2),
                "encoder_add_in_thread_ms": round(encode_cpu[label] * 1e3, 2),
                "writing_ms": round(writing * 1e3, 2),
                "ratio_to_extraction": round(writing / base, 3),
                "encoder_alone_ms": round(alone[label] * 1e3, 2),
                "ratio_alone": round((alone[label] + best["append"]) / base, 3),
                "file_kb_per_frame": round(sizes[label] / frames / 1024, 1),
            }
        )
    print(f"input: {args.video.name}, {frames} frames, hands={args.hands}, fps {fps}")
    print(
        f"extraction alone: {base * 1e3:.2f} ms/frame; append: {best['append'] * 1e3:.3f} ms/frame;"
        f" decode again + encode (cache hit): {best['decode again + encode'] * 1e3:.2f} ms/frame"
    )
    print(
        "| stored video | extraction + encoder ms/frame | writing ms (in pipeline) "
        "| writing / extraction | encoder alone ms | (alone + append) / extraction | KiB/frame |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['video']} | {row['extraction_with_encoder_ms']} | {row['writing_ms']} "
            f"| {row['ratio_to_extraction']:.1%} | {row['encoder_alone_ms']} "
            f"| {row['ratio_alone']:.1%} | {row['file_kb_per_frame']} |"
        )
    print(
        json.dumps(
            {
                "machine": platform.platform(),
                "python": platform.python_version(),
                "extraction_ms": round(base * 1e3, 2),
                "append_ms": round(best["append"] * 1e3, 3),
                "decode_again_encode_ms": round(best["decode again + encode"] * 1e3, 2),
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
