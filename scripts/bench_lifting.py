"""How metric the lifted hands are, on the shared real data (#19).

    python scripts/bench_lifting.py

In one run:

- ZED frames (``frames/pour_water_egocentric_zed`` and its real depth maps): the median |dz|
  between the lifted keypoints and the measured depth over every keypoint with depth, raw and
  after the best single scale factor for the clip, and the worst wrist depth error after that
  scale; monocular and with ``depth=`` (the depth-map fit), and the fit's residual;
- re-encode stability: ``kettle_pour_third_person.mp4`` and its CRF-18 re-encode (libx264,
  same timestamps), the distance between their lifted wrists, and the frame-to-frame depth
  jitter of the wrist;
- the depth fit's cost per frame and hand (sampling, fit and re-posing; the map's decoding
  apart).
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

import pipeline  # noqa: E402
from pipeline import depth as depth_fit  # noqa: E402
from pipeline.decoding import open_media  # noqa: E402
from pipeline.lifting import lifted_in_camera  # noqa: E402

ZED = SHARED / "frames" / "pour_water_egocentric_zed"
ZED_DEPTH = SHARED / "frames" / "pour_water_egocentric_zed_depth"
KETTLE = SHARED / "videos" / "kettle_pour_third_person.mp4"


def reencode(source: Path, target: Path, crf: int) -> Path:
    """``source`` re-encoded by libx264 at ``crf``, every frame's timestamp kept."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = inp.streams.video[0]
        encoded = out.add_stream("libx264", rate=stream.average_rate)
        encoded.width, encoded.height, encoded.pix_fmt = stream.width, stream.height, "yuv420p"
        encoded.time_base = stream.time_base
        encoded.options = {"crf": str(crf)}
        for frame in inp.decode(stream):
            image = frame.reformat(format="yuv420p")
            image.pts, image.time_base = frame.pts, stream.time_base
            for packet in encoded.encode(image):
                out.mux(packet)
        for packet in encoded.encode():
            out.mux(packet)
    return target


def zed_figures(tracks: pipeline.HandTracks, maps: depth_fit.DepthMaps, name: str) -> None:
    pairs, wrists = depth_fit.measured_depth_pairs(tracks, maps)
    scales = np.linspace(0.3, 3.0, 2701)
    # The best single scale for the clip, over every keypoint with depth.
    costs = [np.median(np.abs(s * pairs[:, 0] - pairs[:, 1])) for s in scales]
    scale = float(scales[int(np.argmin(costs))])
    worst = float(np.max(np.abs(scale * wrists[:, 0] / wrists[:, 1] - 1.0)))
    print(
        f"| ZED, {name} | {np.median(np.abs(pairs[:, 0] - pairs[:, 1])) * 100:.1f} cm | "
        f"{scale:.2f} | {min(costs) * 100:.1f} cm | {worst:.0%} | {len(pairs)} |"
    )


def stability(first: pipeline.HandTracks, second: pipeline.HandTracks) -> None:
    for side in ("left", "right"):
        a = first.hands[side].transform_wrist_to_camera[:, :3, 3]
        b = second.hands[side].transform_wrist_to_camera[:, :3, 3]
        gap = np.linalg.norm(a - b, axis=1)
        gap = gap[np.isfinite(gap)]
        jitter = np.abs(np.diff(a[:, 2]))
        jitter = jitter[np.isfinite(jitter)]
        print(
            f"| kettle vs CRF 18, {side} wrist | {np.median(gap) * 1000:.1f} mm | "
            f"{np.percentile(gap, 90) * 1000:.1f} mm | {np.median(jitter) * 1000:.1f} mm |"
        )


def fit_cost(tracks: pipeline.HandTracks, maps: depth_fit.DepthMaps) -> float:
    """ms per frame and hand of sampling, fit and re-posing (maps decoded beforehand)."""
    loaded = [maps.load(row) for row in range(tracks.num_frames)]
    size = (tracks.intrinsics.width, tracks.intrinsics.height)
    lifted = [(hand, *lifted_in_camera(hand)) for hand in tracks.hands.values()]
    done, start = 0, time.perf_counter()
    for _ in range(20):
        for hand, points, world_to_camera in lifted:
            for row in np.flatnonzero(np.isfinite(points[:, 0, 0])):
                seen = depth_fit.sample_depth(loaded[row], hand.image_keypoints[row], size)
                depth_fit.fit_frame(points[row], world_to_camera[row], seen, hand.side)
                done += 1
    return (time.perf_counter() - start) / done * 1000


def main() -> None:
    print(f"bench_lifting, {date.today()}, {platform.processor() or platform.machine()}")
    monocular = pipeline.extract_hands(ZED)
    with_depth = pipeline.extract_hands(ZED, depth=ZED_DEPTH)
    request = depth_fit.DepthRequest.of(ZED_DEPTH)
    assert request is not None
    maps = depth_fit.match_depth(request, open_media(ZED), range(monocular.num_frames))
    print("\n| lift | median abs dz | best clip scale | after it | worst wrist after it | n |")
    print("| --- | --- | --- | --- | --- | --- |")
    zed_figures(monocular, maps, "monocular")
    zed_figures(with_depth, maps, "with depth maps")
    residuals = np.concatenate(
        [h.depth_residual[np.isfinite(h.depth_residual)] for h in with_depth.hands.values()]
    )
    print(f"\ndepth fit residual: median {np.median(residuals) * 1000:.1f} mm")
    print(f"depth fit cost: {fit_cost(monocular, maps):.2f} ms per frame and hand")
    with tempfile.TemporaryDirectory() as scratch:
        copy = reencode(KETTLE, Path(scratch) / "kettle_crf18.mp4", 18)
        first, second = pipeline.extract_hands(KETTLE), pipeline.extract_hands(copy)
    print("\n| pair | wrist gap median | p90 | depth jitter median |")
    print("| --- | --- | --- | --- |")
    stability(first, second)


if __name__ == "__main__":
    main()
