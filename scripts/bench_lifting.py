"""How metric the lifted hands are, on the shared real data (#19).

    python scripts/bench_lifting.py

In one run:

- ZED frames (``frames/pour_water_egocentric_zed`` and its real depth maps): the median |dz|
  between the lifted keypoints and the measured depth over every keypoint with depth, raw and
  after the best single scale factor for the clip, and the worst wrist depth error after that
  scale; monocular and with ``depth=`` (the depth-map fit), and the fit's residual; for the
  monocular lift also the same figure with every frame at its own best scale (what the
  landmarker's shape alone costs) and each wrist's distance error after the clip's scale;
- re-encode stability: ``kettle_pour_third_person.mp4`` and its CRF-18 re-encode (libx264,
  same timestamps), the distance between their lifted wrists, and the frame-to-frame depth
  jitter of the wrist;
- the calibration of ``wrist_position_std``: the share of ZED wrists within 2 sigma of their
  measured depth, and of re-encode pairs' wrist depths within 2 sigma of each other (total, and
  the per-frame part without the hand-size prior), with the median sigma;
- "before" is the landmarker's own PnP depth (``ExtractConfig(monocular_depth="landmarker")``,
  the lift of earlier releases), "after" the default; "no track prior" the default but every
  frame left where its rulers put it (``ExtractConfig(distance_spread=None)``, releases before
  the prior);
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

import pipeline  # noqa: E402
from pipeline import depth as depth_fit  # noqa: E402
from pipeline import depth_maps, lifting  # noqa: E402
from pipeline.decoding import open_media  # noqa: E402
from pipeline.extract import ExtractConfig  # noqa: E402
from pipeline.lifting import lifted_in_camera  # noqa: E402
from tests.media import reencode  # noqa: E402

ZED = SHARED / "frames" / "pour_water_egocentric_zed"
ZED_DEPTH = SHARED / "frames" / "pour_water_egocentric_zed_depth"
KETTLE = SHARED / "videos" / "kettle_pour_third_person.mp4"


def best_clip_scale(pairs: np.ndarray) -> tuple[float, float]:
    """The single scale (0.3-3.0, steps of 0.001) of the lifted depths ``pairs[:, 0]`` that
    brings them nearest the measured ``pairs[:, 1]`` [m], and that median |dz| [m]."""
    scales = np.linspace(0.3, 3.0, 2701)
    costs = [np.median(np.abs(s * pairs[:, 0] - pairs[:, 1])) for s in scales]
    best = int(np.argmin(costs))
    return float(scales[best]), float(costs[best])


def zed_figures(tracks: pipeline.HandTracks, maps: depth_maps.DepthMaps, name: str) -> None:
    pairs, wrists = depth_fit.measured_depth_pairs(tracks, maps)
    scale, cost = best_clip_scale(pairs)  # over every keypoint with depth
    worst = float(np.max(np.abs(scale * wrists[:, 0] / wrists[:, 1] - 1.0)))
    print(
        f"| ZED, {name} | {np.median(np.abs(pairs[:, 0] - pairs[:, 1])) * 100:.1f} cm | "
        f"{scale:.2f} | {cost * 100:.1f} cm | {worst:.0%} | {len(pairs)} |"
    )


def zed_floor(tracks: pipeline.HandTracks, maps: depth_maps.DepthMaps) -> None:
    """What each frame's distance costs: the figure with every frame at its own best scale.

    The median |dz| over keypoints when each frame's lifted hand is scaled about the camera by
    the median ratio of its keypoints' measured to lifted depth (the landmarker's shape alone),
    against one scale for the clip; and each wrist's distance error after the clip's scale.
    """
    size = (tracks.intrinsics.width, tracks.intrinsics.height)
    frames = []
    for hand in tracks.hands.values():
        points = lifted_in_camera(hand)[0]
        for row in np.flatnonzero(np.isfinite(points[:, 0, 0])):
            seen = depth_maps.sample_depth(maps.load(int(row)), hand.image_keypoints[row], size)
            ok = np.isfinite(seen)
            if ok.sum() >= 3 and ok[0]:
                frames.append((points[row, ok, 2], seen[ok]))
    own = [np.abs(np.median(seen / lifted) * lifted - seen) for lifted, seen in frames]
    scale, _ = best_clip_scale(np.concatenate([np.stack(frame, axis=1) for frame in frames]))
    wrist = np.array([scale * lifted[0] / seen[0] - 1.0 for lifted, seen in frames])
    floor = np.median(np.concatenate(own)) * 100
    print(
        f"ZED, monocular: each frame at its own best scale {floor:.1f} cm (one clip scale: the "
        f"table); wrist distance after the clip scale "
        f"{', '.join(f'{w:+.0%}' for w in wrist)} ({len(frames)} frames)"
    )


def zed_calibration(tracks: pipeline.HandTracks, maps: depth_maps.DepthMaps, name: str) -> None:
    """Wrists against their measured depth: share within 2 sigma, median sigma."""
    size = (tracks.intrinsics.width, tracks.intrinsics.height)
    errors, sigmas = [], []
    for hand in tracks.hands.values():
        assert hand.wrist_position_std is not None
        for row in np.flatnonzero(hand.present):
            seen = depth_maps.sample_depth(maps.load(int(row)), hand.image_keypoints[row, :1], size)
            if np.isfinite(seen[0]):
                errors.append(hand.transform_wrist_to_camera[row, 2, 3] - seen[0])
                sigmas.append(hand.wrist_position_std[row])
    error, sigma = np.abs(np.array(errors)), np.array(sigmas)
    print(
        f"| ZED wrists vs depth, {name} | {np.mean(error <= 2 * sigma):.0%} | "
        f"{np.median(sigma) * 1000:.0f} mm | {np.median(error) * 1000:.0f} mm | {len(error)} |"
    )


def stability(first: pipeline.HandTracks, second: pipeline.HandTracks, name: str) -> None:
    for side in ("left", "right"):
        a = first.hands[side].transform_wrist_to_camera[:, :3, 3]
        b = second.hands[side].transform_wrist_to_camera[:, :3, 3]
        gap = np.linalg.norm(a - b, axis=1)
        gap = gap[np.isfinite(gap)]
        jitter = np.abs(np.diff(a[:, 2]))
        jitter = jitter[np.isfinite(jitter)]
        print(
            f"| {name}, {side} wrist | {np.median(gap) * 1000:.1f} mm | "
            f"{np.percentile(gap, 90) * 1000:.1f} mm | {np.median(jitter) * 1000:.1f} mm |"
        )


def pair_calibration(first: pipeline.HandTracks, second: pipeline.HandTracks) -> None:
    """Re-encode pairs: share of wrist depth differences within 2 sigma (total and frame part)."""
    for side in ("left", "right"):
        hands = [first.hands[side], second.hands[side]]
        both = hands[0].present & hands[1].present
        distance = [np.linalg.norm(h.transform_wrist_to_camera[both, :3, 3], axis=1) for h in hands]
        total = [np.asarray(hand.wrist_position_std)[both] for hand in hands]
        part = [lifting.frame_std(hand, lifting.HAND_LENGTH_REL_STD)[both] for hand in hands]
        gap = np.abs(distance[0] - distance[1])
        print(
            f"| kettle vs CRF 18, {side} | {np.mean(gap <= 2 * np.hypot(*total)):.0%} | "
            f"{np.median(total[0]) * 1000:.0f} mm | {np.mean(gap <= 2 * np.hypot(*part)):.0%} | "
            f"{np.median(part[0]) * 1000:.0f} mm | {np.median(gap) * 1000:.1f} mm |"
        )


def fit_cost(tracks: pipeline.HandTracks, maps: depth_maps.DepthMaps) -> float:
    """ms per frame and hand of sampling, fit and re-posing (maps decoded beforehand)."""
    loaded = [maps.load(row) for row in range(tracks.num_frames)]
    size = (tracks.intrinsics.width, tracks.intrinsics.height)
    lifted = [(hand, *lifted_in_camera(hand)) for hand in tracks.hands.values()]
    done, start = 0, time.perf_counter()
    for _ in range(20):
        for hand, points, world_to_camera in lifted:
            for row in np.flatnonzero(np.isfinite(points[:, 0, 0])):
                seen = depth_maps.sample_depth(loaded[row], hand.image_keypoints[row], size)
                depth_fit.fit_frame(points[row], world_to_camera[row], seen, hand.side)
                done += 1
    return (time.perf_counter() - start) / done * 1000


def main() -> None:
    print(f"bench_lifting, {date.today()}, {platform.processor() or platform.machine()}")
    before = ExtractConfig(monocular_depth="landmarker")
    monocular = pipeline.extract_hands(ZED)
    with_depth = pipeline.extract_hands(ZED, depth=ZED_DEPTH)
    request = depth_maps.DepthRequest.of(ZED_DEPTH)
    assert request is not None
    maps = depth_maps.match_depth(request, open_media(ZED), range(monocular.num_frames))
    print("\n| lift | median abs dz | best clip scale | after it | worst wrist after it | n |")
    print("| --- | --- | --- | --- | --- | --- |")
    zed_figures(pipeline.extract_hands(ZED, config=before), maps, "before: landmarker PnP")
    no_prior = ExtractConfig(distance_spread=None)
    zed_figures(pipeline.extract_hands(ZED, config=no_prior), maps, "monocular, no track prior")
    zed_figures(monocular, maps, "monocular (rulers)")
    zed_figures(with_depth, maps, "with depth maps")
    print()
    zed_floor(monocular, maps)
    print("\n| wrist uncertainty | within 2 sigma | median sigma | median error | n |")
    print("| --- | --- | --- | --- | --- |")
    zed_calibration(monocular, maps, "monocular")
    zed_calibration(with_depth, maps, "with depth maps")
    residuals = np.concatenate(
        [h.depth_residual[np.isfinite(h.depth_residual)] for h in with_depth.hands.values()]
    )
    print(f"\ndepth fit residual: median {np.median(residuals) * 1000:.1f} mm")
    print(f"depth fit cost: {fit_cost(monocular, maps):.2f} ms per frame and hand")
    print(f"hand length fitted to the depth: {with_depth.source['hand_length_m']} m")
    with tempfile.TemporaryDirectory() as scratch:
        copy = reencode(KETTLE, Path(scratch) / "kettle_crf18.mp4", 18)
        pairs = {
            name: (pipeline.extract_hands(KETTLE, config=c), pipeline.extract_hands(copy, config=c))
            for name, c in (
                ("before", before),
                ("no track prior", no_prior),
                ("after", ExtractConfig()),
            )
        }
    print("\n| pair | wrist gap median | p90 | depth jitter median |")
    print("| --- | --- | --- | --- |")
    for name, (first, second) in pairs.items():
        stability(first, second, f"kettle vs CRF 18, {name}")
    print(
        "\n| re-encode pair | within 2 sigma | median sigma | within 2 sigma (frame part) | "
        "median frame part | median distance gap |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    pair_calibration(*pairs["after"])
    flagged = {
        name: sum(
            int((h.present & ~(h.wrist_position_std <= 0.10)).sum()) for h in t.hands.values()
        )
        for name, t in (("kettle", pairs["after"][0]),)
        if all(h.wrist_position_std is not None for h in t.hands.values())
    }
    print(f"\nframes with wrist sigma > 0.10 m (LIFT_UNCERTAIN): {flagged}")


if __name__ == "__main__":
    main()
