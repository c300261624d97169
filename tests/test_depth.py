"""Depth maps in (#19 item 1): the ZED frames of the shared data with their real depth maps."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import pipeline
from pipeline.decoding import open_media
from pipeline.depth import fit_depth_scale, measured_depth_pairs
from pipeline.depth_maps import DepthMaps, DepthRequest, match_depth, sample_depth
from pipeline.tracks import HandTracks, Intrinsics, read_tracks
from tests.conftest import SHARED_DATA, run_cli

ZED = "frames/pour_water_egocentric_zed"
ZED_DEPTH = "frames/pour_water_egocentric_zed_depth"
ZED_FOLDER = SHARED_DATA / ZED


def _depth_errors(tracks: HandTracks, depth_folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """|lifted z - measured depth| over visible keypoints, and (lifted, true) wrist depths [m]."""
    request = DepthRequest(depth_folder, 1000.0, "")
    maps = match_depth(request, open_media(ZED_FOLDER), range(tracks.num_frames))
    pairs, wrists = measured_depth_pairs(tracks, maps)
    return np.abs(pairs[:, 0] - pairs[:, 1]), wrists


@pytest.fixture(scope="module")
def zed_tracks(shared_data: Path) -> tuple[HandTracks, HandTracks]:
    """The ZED frames lifted without and with their depth maps."""
    frames = shared_data / ZED
    return (
        pipeline.extract_hands(frames),
        pipeline.extract_hands(frames, depth=shared_data / ZED_DEPTH),
    )


def test_depth_maps_put_the_hand_at_the_measured_depth(
    zed_tracks: tuple[HandTracks, HandTracks], shared_data: Path
) -> None:
    monocular, with_depth = zed_tracks
    before, _ = _depth_errors(monocular, shared_data / ZED_DEPTH)
    after, wrists = _depth_errors(with_depth, shared_data / ZED_DEPTH)
    assert len(after) >= 100  # visible keypoints over the clip
    assert np.median(before) > 0.03  # the monocular lift: off by centimetres (6 cm here)
    assert np.median(after) <= 0.010
    # The right hand tips the bottle in frames 7-10 (true wrist 0.54-0.56 m); every wrist with
    # depth within 15% of it (a wrist the fit set aside keeps the fitted scale: 8% here).
    assert np.all(np.abs(wrists[:, 0] / wrists[:, 1] - 1.0) < 0.15), wrists
    right = with_depth.hands["right"]
    assert right.depth_residual is not None
    fitted = np.isfinite(right.depth_residual)
    assert fitted.sum() >= 0.8 * right.present.sum()
    assert np.nanmedian(right.depth_residual) < 0.03  # a rigid hand fits the depth to ~1-2 cm
    assert monocular.hands["right"].depth_residual is None
    assert with_depth.source["depth"] == str(shared_data / ZED_DEPTH)
    assert with_depth.key != monocular.key


def test_tracks_with_depth_round_trip(
    zed_tracks: tuple[HandTracks, HandTracks], tmp_path: Path
) -> None:
    _, with_depth = zed_tracks
    path = pipeline.write_tracks(with_depth, tmp_path / "zed.parquet")
    again = read_tracks(path)
    residual = again.hands["right"].depth_residual
    assert residual is not None
    np.testing.assert_allclose(residual, with_depth.hands["right"].depth_residual, atol=1e-6)
    assert again.source["depth_scale"] == "1000"


def test_fit_ignores_keypoints_on_the_held_object() -> None:
    rng = np.random.default_rng(0)
    lifted = 0.30 + 0.02 * rng.standard_normal(21)
    observed = 1.8 * lifted + 0.002 * rng.standard_normal(21)
    observed[[4, 8, 12]] = 0.40  # fingertips behind a bottle that is nearer than the hand
    observed[[16, 20]] = np.nan  # no depth there
    factor, residual, kept = fit_depth_scale(lifted, observed)
    assert factor == pytest.approx(1.8, rel=0.01)
    assert residual < 0.004
    assert not kept[[4, 8, 12, 16, 20]].any() and kept.sum() == 16
    nothing, _, none = fit_depth_scale(lifted, np.full(21, np.nan))
    assert np.isnan(nothing) and not none.any()


def test_depth_of_another_resolution_is_sampled_at_scaled_pixels() -> None:
    depth = np.full((360, 640), np.nan)
    depth[100:110, 200:210] = 0.5  # a patch at (400-420, 200-220) px in a 1280x720 frame
    seen = sample_depth(depth, np.array([[410.0, 210.0], [10.0, 10.0]]), (1280, 720))
    assert seen[0] == pytest.approx(0.5)
    assert np.isnan(seen[1])


def test_unreadable_map_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "frame_0.png"
    bad.write_text("not an image")
    maps = DepthMaps(tmp_path, (bad,), 1000.0, "")
    with pytest.raises(pipeline.InputMediaError, match="frame_0.png: cannot read"):
        maps.load(0)


def test_bad_depth_folders_are_refused_naming_the_file(shared_data: Path, tmp_path: Path) -> None:
    frames = shared_data / ZED
    partial = tmp_path / "partial"
    shutil.copytree(shared_data / ZED_DEPTH, partial)
    missing = sorted(partial.glob("*.png"))[5]
    missing.unlink()
    with pytest.raises(pipeline.InputMediaError, match=f"no depth map named {missing.stem}"):
        pipeline.extract_hands(frames, depth=partial)
    with pytest.raises(pipeline.InputMediaError, match="depth folder not found"):
        pipeline.extract_hands(frames, depth=tmp_path / "absent")
    # Millimetre maps read as metres put the hand hundreds of metres away.
    with pytest.raises(pipeline.InputMediaError, match=r"--depth-scale 1 .*valid: 0.05 to 10 m"):
        pipeline.extract_hands(frames, depth=shared_data / ZED_DEPTH, depth_scale=1.0)


def test_cli_extract_takes_depth(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "zed.parquet"
    result = run_cli(
        "extract",
        str(shared_data / ZED),
        "--depth",
        str(shared_data / ZED_DEPTH),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert read_tracks(out).hands["right"].depth_residual is not None


def test_field_of_view_spans_the_long_side_whatever_the_display_rotation() -> None:
    landscape = Intrinsics.from_fov(1280, 720, 60.0)
    portrait = Intrinsics.from_fov(720, 1280, 60.0)  # the same camera, shown rotated by 90 deg
    assert portrait.matrix[0, 0] == pytest.approx(landscape.matrix[0, 0], rel=1e-12)
    assert portrait.matrix[0, 0] == pytest.approx(640.0 / np.tan(np.radians(30.0)))
    assert portrait.matrix[:2, 2].tolist() == [360.0, 640.0]
