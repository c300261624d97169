"""Overlay drawing: projection of known robot points, pixels drawn, a real episode rendered."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

import pipeline
import retarget
from pipeline.exceptions import DatasetError
from pipeline.extract import ExtractConfig
from pipeline.placement import camera_pose_to_base
from pipeline.tracks import Intrinsics
from pipeline.viz import (
    draw_overlay,
    draw_trail,
    hand_points_in_camera,
    load_episode,
    plot_episode,
    project,
    render_episode,
    robot_points_in_camera,
)


def test_robot_end_effector_projects_where_the_camera_sees_it(robots_loaded) -> None:
    panda = robots_loaded["panda"]
    camera = camera_pose_to_base([1.5, 0.2, 0.6, 0.0, 0.3, np.pi])  # facing the robot
    intrinsics = Intrinsics.from_fov(1280, 720, 60.0)
    q = np.stack([panda.rest, panda.rest + 0.2 * (panda.upper - panda.rest)])
    points, edges = robot_points_in_camera(panda, q, camera)
    for t in range(2):
        ee_in_base = panda.frame_placements(q[t], (panda.description.ee_frame,))[0][:3, 3]
        ee_in_camera = np.linalg.inv(camera) @ np.append(ee_in_base, 1.0)
        np.testing.assert_allclose(points[t, -1], ee_in_camera[:3], atol=1e-9)
        expected = intrinsics.matrix @ (ee_in_camera[:3] / ee_in_camera[2])
        np.testing.assert_allclose(project(points[t, -1], intrinsics), expected[:2], atol=1e-6)
    assert len(edges) == panda.model.njoints - 1  # a chain: one edge per joint, plus the tool
    # Drawn: the pixel where the end effector projects is painted (a joint dot, orange-yellow).
    image = np.zeros((720, 1280, 3), dtype=np.uint8)
    pixels = project(points[0], intrinsics)
    draw_overlay(image, None, pixels, edges, flags=0)
    u, v = np.round(pixels[-1]).astype(int)
    assert 0 <= u < 1280 and 0 <= v < 720
    assert tuple(image[v, u]) == (255, 200, 0)
    behind = project(np.array([[0.0, 0.0, -1.0]]), intrinsics)
    assert np.isnan(behind).all()


def test_overlay_draws_on_the_projected_pixels() -> None:
    image = np.zeros((200, 300, 3), dtype=np.uint8)
    robot = np.array([[50.0, 100.0], [250.0, 100.0], [np.nan, np.nan]])
    draw_overlay(image, None, robot, [(0, 1), (1, 2)], flags=0)
    assert tuple(image[100, 150]) == (255, 140, 0)  # the link between the two joints
    assert image[20, 150].sum() == 0 and image[0, 0].sum() == 0  # nothing else, no border
    flagged = draw_overlay(np.zeros_like(image), None, robot, [], flags=int(retarget.Flag.NO_HAND))
    assert tuple(flagged[0, 0]) == (255, 0, 0)  # an infeasible frame gets a red border


def test_wrist_trail_fades_and_breaks_where_the_hand_was_absent() -> None:
    image = np.zeros((200, 300, 3), dtype=np.uint8)
    # One hand over five frames: a line along y = 100, the third frame without the hand.
    path = np.array([[[20.0, 100.0]], [[80.0, 100.0]], [[np.nan, np.nan]], [[200.0, 100.0]],
                     [[260.0, 100.0]]])  # fmt: skip
    draw_trail(image, path)
    old, new = image[100, 50], image[100, 230]
    assert old.sum() > 0 and new.sum() > old.sum()  # drawn, brighter where more recent
    assert image[100, 140].sum() == 0  # no line across the frame without a hand
    assert image[20, 150].sum() == 0


@pytest.fixture(scope="module")
def episode_dataset(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("viz")
    pipeline.convert(
        shared_data / "videos/stove_stir_egocentric.mp4",
        retarget.load_robot("panda"),
        base / "dataset",
        extract=ExtractConfig(num_hands=1),
        placement=pipeline.PlacementConfig(egocentric=True),
        cache=base / "cache",
    )
    return base


def test_lifted_hand_lands_on_the_detected_hand(episode_dataset: Path, shared_data: Path) -> None:
    episode = load_episode(episode_dataset / "dataset", 0)
    tracks, _, hit = pipeline.extract_cached(
        shared_data / "videos/stove_stir_egocentric.mp4",
        config=ExtractConfig(num_hands=1, max_fps=30.0),  # at the dataset's rate
        cache=episode_dataset / "cache",
    )
    assert hit
    hand = tracks.hands[episode.side]
    pixels = project(hand_points_in_camera(episode), episode.intrinsics)
    detected = hand.present & ~hand.interpolated
    error = np.linalg.norm(pixels[detected] - hand.image_keypoints[detected], axis=-1)
    size = pipeline.hand_identity.hand_sizes(hand.image_keypoints[detected])
    # The 3D hand reprojects onto the detected keypoints to within its PnP error.
    assert np.median(error.mean(axis=1) / size) < 0.15


def test_render_and_plot_a_real_episode(episode_dataset: Path, tmp_path: Path) -> None:
    video = tmp_path / "overlay.mp4"
    frames = render_episode(episode_dataset / "dataset", 0, video)
    assert frames == 60
    with av.open(str(video)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    # The source frame (384x288) and the robot panel (4:3, 384x288) side by side.
    assert len(decoded) == 60 and decoded[0].shape == (288, 384 + 384, 3)
    panel = np.stack(decoded)[:, :, 384:]
    assert (panel.max(axis=-1) > 120).any(axis=(1, 2)).all()  # the robot is drawn in every frame
    plot = tmp_path / "plot.png"
    plot_episode(episode_dataset / "dataset", 0, plot)
    assert plot.stat().st_size > 10_000
    with pytest.raises(DatasetError, match="no episode 3; valid: 0 to 0"):
        load_episode(episode_dataset / "dataset", 3)


def test_a_one_frame_episode_renders_and_plots(shared_data: Path, tmp_path: Path) -> None:
    import matplotlib.image

    root = tmp_path / "dataset"
    pipeline.convert(
        shared_data / "images/two_left_hands_back.jpg",
        retarget.load_robot("panda"),
        root,
        cache=tmp_path / "cache",
    )
    assert render_episode(root, 0, tmp_path / "one.mp4") == 1
    plot_episode(root, 0, tmp_path / "one.png")
    # The joints' one sample shows as a point: blue pixels (tab:blue) in the figure.
    image = matplotlib.image.imread(tmp_path / "one.png")[..., :3]
    blue = (abs(image - np.array([0.122, 0.467, 0.706])) < 0.05).all(axis=-1)
    assert blue.sum() > 8 * 20  # eight joint panels, a marker of several pixels in each


def test_rerun_recording_holds_every_frame(episode_dataset: Path, tmp_path: Path) -> None:
    from rerun.chunk import RrdReader

    from pipeline.viz import record_rerun

    output = tmp_path / "episode.rrd"
    assert record_rerun(episode_dataset / "dataset", 0, output) == 60
    rows: dict[str, int] = {}
    for chunk in RrdReader(output).stream():
        rows[str(chunk.entity_path)] = rows.get(str(chunk.entity_path), 0) + chunk.num_rows
    # The Panda's meshes: every visual part, posed on every frame (one static mesh row each).
    panda = [path for path in rows if path.startswith("/world/robot/panda/")]
    assert len(panda) == 11 and all(rows[path] == 60 + 1 for path in panda)
    skeleton = tmp_path / "skeleton.rrd"
    assert record_rerun(episode_dataset / "dataset", 0, skeleton, skeleton=True) == 60
    rows = {}
    for chunk in RrdReader(skeleton).stream():
        rows[str(chunk.entity_path)] = rows.get(str(chunk.entity_path), 0) + chunk.num_rows
    assert rows["/world/robot/joints"] == rows["/world/robot/links"] == 60
    assert rows["/flags"] == 60 and rows["/world/hand"] == 60
    assert rows["/world/camera/image"] == 120  # a pinhole and an image per frame
    assert rows["/world/camera"] == 60  # each frame's camera (it moves with a head camera)
