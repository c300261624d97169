"""A stable monocular lift and its uncertainty (#19 items 2-4), on the shared real data.

Ground truth: the ZED frames' real depth maps (millimetres); stability: the kettle clip against
its CRF-18 re-encode (visually identical, the 2D keypoints move by about a pixel).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import pipeline
from pipeline.dataset.meta import lifting_method
from pipeline.decoding import open_media
from pipeline.depth import measured_depth_pairs
from pipeline.depth_maps import DepthRequest, match_depth
from pipeline.extract import ExtractConfig
from pipeline.lifting import (
    HAND_LENGTH_M,
    HAND_LENGTH_REL_STD,
    RULERS,
    frame_std,
    ruler_range_bounds,
    towards_track_median,
)
from pipeline.tracks import HandTracks, read_tracks
from tests.conftest import run_cli
from tests.media import reencode

ZED = "frames/pour_water_egocentric_zed"
ZED_DEPTH = "frames/pour_water_egocentric_zed_depth"
KETTLE = "videos/kettle_pour_third_person.mp4"


def zed_wrists(tracks: HandTracks, shared: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keypoints with depth (lifted z, true z); per wrist with depth: (lifted, true, std)."""
    frames = shared / ZED
    maps = match_depth(
        DepthRequest(shared / ZED_DEPTH, 1000.0, ""), open_media(frames), range(tracks.num_frames)
    )
    pairs, _ = measured_depth_pairs(tracks, maps)
    rows = []
    for hand in tracks.hands.values():
        assert hand.wrist_position_std is not None
        for row in np.flatnonzero(hand.present):
            true = maps.load(int(row))
            u, v = hand.image_keypoints[row, 0] * true.shape[1] / tracks.intrinsics.width
            seen = true[int(v), int(u)]
            if np.isfinite(seen):
                z = hand.transform_wrist_to_camera[row, 2, 3]
                rows.append((z, seen, hand.wrist_position_std[row]))
    return pairs[:, 0], pairs[:, 1], np.array(rows)


@pytest.fixture(scope="module")
def zed(shared_data: Path) -> dict[str, HandTracks]:
    frames = shared_data / ZED
    return {
        "monocular": pipeline.extract_hands(frames),
        "sized": pipeline.extract_hands(frames, hand_size=2 * HAND_LENGTH_M),
        "depth": pipeline.extract_hands(frames, depth=shared_data / ZED_DEPTH),
        "no prior": pipeline.extract_hands(frames, config=ExtractConfig(distance_spread=None)),
    }


@pytest.fixture(scope="module")
def kettle_pair(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[HandTracks]:
    copy = reencode(shared_data / KETTLE, tmp_path_factory.mktemp("crf") / "crf18.mp4", 18)
    return [pipeline.extract_hands(shared_data / KETTLE), pipeline.extract_hands(copy)]


def _rays(points: np.ndarray) -> np.ndarray:
    return points / np.linalg.norm(points, axis=-1, keepdims=True)


def test_rulers_give_the_distance_of_a_segment_across_the_line_of_sight() -> None:
    rng = np.random.default_rng(3)
    # Index MCP to index PIP, across the line of sight with both ends equally far (here well
    # off the image centre): its bound is their distance exactly.
    a, b, ratio = RULERS[9]
    assert (a, b) == (5, 6)
    points = rng.uniform(-0.05, 0.05, (21, 3)) + (0.25, -0.15, 0.6)
    middle = points[a].copy()
    across = np.cross(middle, (0.0, 0.0, 1.0))
    across /= np.linalg.norm(across)
    half = 0.5 * ratio * HAND_LENGTH_M * across
    points[a], points[b] = middle - half, middle + half
    bounds = ruler_range_bounds(_rays(points)[None], HAND_LENGTH_M)[0]
    assert bounds[9] == pytest.approx(np.linalg.norm(points[a]), rel=1e-9)
    # The same segment in the normalised image plane would read 6% nearer out there.
    tilted = points.copy()
    tilted[b] += 0.02 * middle / np.linalg.norm(middle)  # turned along the ray: a looser bound
    loose = ruler_range_bounds(_rays(tilted)[None], HAND_LENGTH_M)[0, 9]
    assert loose > np.linalg.norm(points[a])


def test_rulers_do_not_move_when_the_camera_turns() -> None:
    """A turning camera (#21) sees the same hand at the same distance anywhere in the image."""
    rng = np.random.default_rng(5)
    points = rng.uniform(-0.08, 0.08, (21, 3)) + (0.0, 0.0, 0.7)
    bounds = ruler_range_bounds(_rays(points)[None], HAND_LENGTH_M)[0]
    for _ in range(20):
        # Up to 25 deg about a random axis: the hand moves towards the image's edge.
        axis = rng.normal(size=3)
        rotation = cv2.Rodrigues(axis / np.linalg.norm(axis) * np.radians(rng.uniform(5, 25)))[0]
        turned = ruler_range_bounds(_rays(points @ rotation.T)[None], HAND_LENGTH_M)[0]
        np.testing.assert_allclose(turned, bounds, rtol=1e-12)


def _after_one_scale(lifted: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """The best single scale for the clip and the median |dz| after it [m]."""
    scales = np.linspace(0.5, 2.0, 1501)
    costs = [np.median(np.abs(s * lifted - true)) for s in scales]
    best = int(np.argmin(costs))
    return float(scales[best]), float(costs[best])


def test_monocular_lift_against_the_zed_depth(zed: dict[str, HandTracks], shared_data: Path):
    lifted, true, wrists = zed_wrists(zed["monocular"], shared_data)
    assert len(lifted) >= 150 and len(wrists) >= 8
    # Before (the landmarker's PnP depth): 17.7 cm, 11.1 cm after the best clip scale, wrists up
    # to 61% off after it.
    assert np.median(np.abs(lifted - true)) <= 0.07  # measured 5.7 cm
    scale, after = _after_one_scale(lifted, true)
    assert after <= 0.042  # measured 3.8 cm (the goal, 3.0 cm, is not met)
    worst = np.max(np.abs(scale * wrists[:, 0] / wrists[:, 1] - 1.0))
    assert worst <= 0.25  # measured 15%
    # Without the track's prior (earlier releases) the frames' own rulers: 4.5 cm.
    _, alone = _after_one_scale(*zed_wrists(zed["no prior"], shared_data)[:2])
    assert after <= alone - 0.004
    # The calibration of the uncertainty against the real depth.
    within = np.abs(wrists[:, 0] - wrists[:, 1]) <= 2 * wrists[:, 2]
    assert within.mean() >= 0.9
    assert 0.03 <= np.median(wrists[:, 2]) <= 0.12  # measured 81 mm at 0.54-0.73 m


def test_noisy_frames_are_drawn_towards_the_track_median() -> None:
    rng = np.random.default_rng(11)
    # A hand at 0.6 m whose rulers agree (noise 0.04) except for 12 frames where it is half
    # hidden: their rulers disagree (noise 0.4) and put it 50-70% too far.
    true = np.full(60, np.log(0.6))
    noise = np.full(60, 0.04)
    noise[20:32] = 0.4
    seen = true + rng.normal(0.0, 0.01, 60)
    seen[20:32] += rng.uniform(0.4, 0.55, 12)
    drawn = towards_track_median(seen, noise, 0.15)
    assert np.abs(drawn[20:32] - true[20:32]).max() <= 0.08  # seen: 0.4-0.55
    assert np.abs(drawn - seen)[noise < 0.1].max() <= 0.002
    # A real reach towards the camera (1.0 -> 0.4 m) seen by frames whose rulers agree keeps
    # its extent: every frame within 6% of the truth, the ends included.
    reach = np.log(np.linspace(1.0, 0.4, 40))
    drawn = towards_track_median(reach, np.full(40, 0.04), 0.15)
    assert np.abs(np.exp(drawn - reach) - 1.0).max() <= 0.06
    assert np.exp(drawn[0] - drawn[-1]) >= 2.3  # the truth: 2.5


def test_depth_maps_shrink_the_uncertainty(zed: dict[str, HandTracks], shared_data: Path):
    _, _, wrists = zed_wrists(zed["depth"], shared_data)
    within = np.abs(wrists[:, 0] - wrists[:, 1]) <= 2 * wrists[:, 2]
    assert within.mean() >= 0.9
    assert np.median(wrists[:, 2]) <= 0.03
    # The fit measures the hand: a hand length in the adult range.
    lengths = dict(part.split() for part in zed["depth"].source["hand_length_m"].split(", "))
    assert 0.15 <= float(lengths["right"]) <= 0.25


def test_a_given_hand_size_scales_the_depth_and_drops_its_uncertainty(
    zed: dict[str, HandTracks],
) -> None:
    mono, sized = zed["monocular"].hands["right"], zed["sized"].hands["right"]
    rows = mono.present
    ratio = (
        sized.transform_wrist_to_camera[rows, :3, 3] / mono.transform_wrist_to_camera[rows, :3, 3]
    )
    np.testing.assert_allclose(ratio, 2.0, rtol=1e-9)
    np.testing.assert_allclose(
        sized.world_keypoints[rows], 2.0 * mono.world_keypoints[rows], rtol=1e-9, atol=1e-12
    )
    assert mono.wrist_position_std is not None and sized.wrist_position_std is not None
    distance = np.linalg.norm(mono.transform_wrist_to_camera[rows, :3, 3], axis=1)
    frame_part = np.sqrt(mono.wrist_position_std[rows] ** 2 - (HAND_LENGTH_REL_STD * distance) ** 2)
    np.testing.assert_allclose(sized.wrist_position_std[rows], 2.0 * frame_part, rtol=1e-6)
    assert zed["sized"].settings["hand_size"] == pytest.approx(0.37)
    assert zed["sized"].key != zed["monocular"].key


def test_bad_hand_size_is_refused_with_the_valid_range(shared_data: Path) -> None:
    with pytest.raises(pipeline.InputMediaError, match=r"hand_size .* within \[0.05, 0.4\] m"):
        pipeline.extract_hands(shared_data / ZED, hand_size=1.8)
    result = run_cli("extract", str(shared_data / ZED), "--hand-size", "0", "--out", "x.parquet")
    assert result.returncode != 0 and "hand_size" in result.stderr


def test_the_distance_prior_is_turned_off_from_the_command_line(
    zed: dict[str, HandTracks], shared_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "no_prior.parquet"
    done = run_cli("extract", shared_data / ZED, "--distance-spread", "0", "--out", out)
    assert done.returncode == 0, done.stderr
    tracks = read_tracks(out)
    assert tracks.settings["distance_spread"] is None
    np.testing.assert_allclose(
        tracks.hands["right"].transform_wrist_to_camera,
        zed["no prior"].hands["right"].transform_wrist_to_camera,
        rtol=1e-9,
        atol=1e-12,
    )
    assert zed["monocular"].settings["distance_spread"] == 0.15
    # The provenance says which lift it was.
    assert "median by its noise (spread 0.15)" in lifting_method(
        zed["monocular"].settings, zed["monocular"].source
    )
    assert "median" not in lifting_method(tracks.settings, tracks.source)
    bad = run_cli("extract", shared_data / ZED, "--distance-spread", "-1", "--out", out)
    assert bad.returncode != 0 and "distance_spread must be within (0, 2]" in bad.stderr


def test_reencode_moves_the_wrists_by_millimetres(kettle_pair: list[HandTracks]) -> None:
    first, second = kettle_pair
    gaps, jitter = [], []
    for side in ("left", "right"):
        a = first.hands[side].transform_wrist_to_camera[:, :3, 3]
        b = second.hands[side].transform_wrist_to_camera[:, :3, 3]
        gap = np.linalg.norm(a - b, axis=1)
        gaps.append(gap[np.isfinite(gap)])
        step = np.abs(np.diff(a[:, 2]))
        jitter.append(step[np.isfinite(step)])
    # Before: 13.6 mm (left) and 7.2 mm (right) median, depth jitter 4.8 mm per frame.
    assert np.median(np.concatenate(gaps)) <= 0.005  # measured 1.9 and 2.4 mm
    assert np.median(np.concatenate(jitter)) <= 0.002  # measured 0.3 and 1.7 mm
    # The uncertainty covers the re-encode's differences: even its per-frame part alone.
    for side in ("left", "right"):
        hands = [tracks.hands[side] for tracks in kettle_pair]
        both = hands[0].present & hands[1].present
        ra, rb = (
            np.linalg.norm(hand.transform_wrist_to_camera[both, :3, 3], axis=1) for hand in hands
        )
        parts = [frame_std(hand, HAND_LENGTH_REL_STD)[both] for hand in hands]
        assert np.mean(np.abs(ra - rb) <= 2 * np.hypot(*parts)) >= 0.9


def test_rotated_clip_lifts_to_the_same_depth(shared_data: Path, tmp_path: Path) -> None:
    clip = shared_data / "videos/stove_stir_egocentric.mp4"
    with av.open(str(clip)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][:60]
    paths = {}
    for name, rotation in (("rotated", 90), ("sideways", None)):
        paths[name] = tmp_path / f"{name}.mp4"
        with av.open(str(paths[name]), "w") as output:
            stream = output.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = 288, 384, "yuv420p"
            stream.options = {"crf": "12"}
            if rotation is not None:
                stream.set_display_rotation(rotation)  # stored sideways, displayed upright
            for rgb in frames:
                turned = np.ascontiguousarray(np.rot90(rgb, -1))
                output.mux(stream.encode(av.VideoFrame.from_ndarray(turned, "rgb24")))
            output.mux(stream.encode())
    config = ExtractConfig(num_hands=2)
    rotated = pipeline.extract_hands(paths["rotated"], config=config)
    sideways = pipeline.extract_hands(paths["sideways"], config=config)
    assert (rotated.intrinsics.width, sideways.intrinsics.width) == (384, 288)
    ratios = []
    for side in ("left", "right"):
        a, b = rotated.hands[side], sideways.hands[side]
        both = a.present & b.present
        ratios.extend(
            a.transform_wrist_to_camera[both, 2, 3] / b.transform_wrist_to_camera[both, 2, 3]
        )
    assert len(ratios) >= 40
    # Before: 0.57. Alone this gives 0.9991 (85 hand frames); inside the full suite the
    # landmarker's answers on the turned frames shifted it once to 1.013, so the test holds
    # 2% and the 1% is a benchmark figure (BENCHMARKS.md), not a test bound.
    assert abs(np.median(ratios) - 1.0) <= 0.02


def test_uncertain_lift_is_flagged_in_metres(shared_data: Path) -> None:
    tracks = pipeline.extract_hands(shared_data / ZED)
    hand = tracks.hands["right"]
    assert hand.wrist_position_std is not None
    loose = retarget_flags(tracks, max_wrist_std=1.0)
    strict = retarget_flags(tracks, max_wrist_std=0.07)
    # The flag leaves out the hand-size part (one scale for the whole track).
    over = hand.present & (frame_std(hand, HAND_LENGTH_REL_STD) > 0.07)
    assert over.any() and not over.all()
    from retarget import Flag

    assert not (loose & Flag.LIFT_UNCERTAIN).any()
    np.testing.assert_array_equal((strict & Flag.LIFT_UNCERTAIN) > 0, over)


def retarget_flags(tracks: HandTracks, max_wrist_std: float) -> np.ndarray:
    """The right hand's flags on the Panda with the given LIFT_UNCERTAIN threshold [m]."""
    import retarget
    from pipeline.retargeting import retarget_sides

    base = retarget.RetargetConfig()
    config = dataclasses.replace(
        base, feasibility=dataclasses.replace(base.feasibility, max_wrist_std=max_wrist_std)
    )
    robot = retarget.load_robot("panda")
    (done,) = retarget_sides(tracks, robot, side="right", config=config)
    return np.asarray(done.result.flags)
