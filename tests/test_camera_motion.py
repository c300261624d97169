"""Camera motion taken out of the hand motion (#21): estimated, given as a file, or static.

The turning clips are a real third-person clip seen by a camera that turns (each frame warped by
the homography of a known rotation, ``tests.media.turning_clip``, re-encoded at CRF 18): the
rotations are the truth, and the same frames unturned (warped by the identity, same encoding)
are the static reference for the hands.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import pipeline
import retarget
from pipeline.camera_geometry import fit_rotation, rotation_angle_deg
from pipeline.exceptions import InputMediaError
from pipeline.tracks import HandTracks, Intrinsics, hands_in_world, read_tracks, write_tracks
from pipeline.trajectory import read_trajectory
from tests.conftest import run_cli
from tests.media import moving_rgbd_clip, turning_clip, turning_rotations

FRAMES = 90  # 3 s at 30 fps: the rotation swings through most of its 4 s period


@pytest.fixture(scope="module")
def clips(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """(turning clip, unturned clip, timestamps [s], true rotation_camera_to_world (T, 3, 3))."""
    source = shared_data / "videos" / "kettle_pour_third_person.mp4"
    folder = tmp_path_factory.mktemp("turning")
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        width, height = stream.width, stream.height
    matrix = Intrinsics.from_fov(width, height, 60.0).matrix  # what the pipeline assumes
    stamps, truth = turning_clip(source, folder / "turn.mp4", matrix, max_frames=FRAMES)
    turning_clip(source, folder / "still.mp4", matrix, amplitude_deg=(0, 0, 0), max_frames=FRAMES)
    return folder / "turn.mp4", folder / "still.mp4", stamps, truth


@pytest.fixture(scope="module")
def still(clips: tuple[Path, Path, np.ndarray, np.ndarray]) -> HandTracks:
    return pipeline.extract_hands(clips[1], camera_motion="estimate")


def _world_wrist_distance(tracks: HandTracks, reference: HandTracks, side: str) -> np.ndarray:
    """Per-frame distance of the world-frame wrists of two extractions [m]."""
    a = hands_in_world(tracks, [tracks.hands[side]])[0]
    b = hands_in_world(reference, [reference.hands[side]])[0]
    both = a.present & b.present
    assert both.sum() >= 40, side
    positions = a.transform_wrist_to_camera[both, :3, 3], b.transform_wrist_to_camera[both, :3, 3]
    return np.asarray(np.linalg.norm(positions[0] - positions[1], axis=1))


def test_estimated_rotation_and_world_wrists_on_a_turning_clip(
    clips: tuple[Path, Path, np.ndarray, np.ndarray], still: HandTracks
) -> None:
    turn, _, _, truth = clips
    tracks = pipeline.extract_hands(turn, camera_motion="estimate")
    assert tracks.source["camera_motion"] == "estimate"
    estimated = tracks.transform_camera_to_world
    assert np.isfinite(estimated).all()
    assert np.allclose(estimated[:, :3, 3], 0.0)  # rotation only
    error = rotation_angle_deg(truth, estimated[:, :3, :3])
    swing = rotation_angle_deg(truth[:1], truth)
    assert swing.max() > 7.0  # the camera does turn (8, 4, 2.4 deg amplitudes)
    assert np.median(error) <= 0.5  # measured 0.02 deg
    assert error.max() <= 1.0
    assert (tracks.camera_rotation_std < 0.5).all()
    # The hands in the world frame are where the unturned clip has them; in the camera frame
    # they move with the camera (7-8 cm median).
    for side in ("left", "right"):
        assert np.median(_world_wrist_distance(tracks, still, side)) <= 0.015  # measured 0.8-1.0
        static = HandTracks(tracks.timestamps, tracks.hands, tracks.intrinsics)
        assert np.median(_world_wrist_distance(static, still, side)) > 0.04


def test_a_static_camera_is_estimated_static(still: HandTracks) -> None:
    angles = rotation_angle_deg(np.eye(3), still.transform_camera_to_world[:, :3, :3])
    assert np.median(angles) < 0.3  # measured 0.01 deg
    assert angles.max() < 0.5


def test_a_tum_trajectory_gives_the_true_poses(
    clips: tuple[Path, Path, np.ndarray, np.ndarray], still: HandTracks, tmp_path: Path
) -> None:
    turn, _, stamps, truth = clips
    # Poses at twice the frame interval, off the frames' times: matched by slerp.
    times = np.arange(stamps[0] - 0.01, stamps[-1] + 0.07, 1 / 15)
    rotations = turning_rotations(times - stamps[0], (8, 4, 2.4), 4.0)
    quaternions = Rotation.from_matrix(rotations).as_quat()  # x y z w
    lines = ["# timestamp tx ty tz qx qy qz qw"]
    lines += [
        f"{t:.6f} 0 0 0 " + " ".join(f"{q:.9f}" for q in quat)
        for t, quat in zip(times, quaternions, strict=True)
    ]
    path = tmp_path / "head.txt"
    path.write_text("\n".join(lines) + "\n")
    tracks = pipeline.extract_hands(turn, camera_motion=path)
    assert tracks.source["camera_motion"] == str(path)
    error = rotation_angle_deg(truth, tracks.transform_camera_to_world[:, :3, :3])
    assert error.max() < 0.05  # slerp between poses 1/15 s apart of a smooth swing
    assert (tracks.camera_rotation_std == 0).all()
    for side in ("left", "right"):
        assert np.median(_world_wrist_distance(tracks, still, side)) <= 0.015
    # The track file keeps the poses (and a file of an earlier release reads as static).
    written = read_tracks(write_tracks(tracks, tmp_path / "t.parquet"))
    np.testing.assert_allclose(written.transform_camera_to_world, tracks.transform_camera_to_world)
    # A .npy of the same poses, one per frame, gives them exactly.
    np.save(tmp_path / "poses.npy", tracks.transform_camera_to_world)
    poses = read_trajectory(tmp_path / "poses.npy", tracks.timestamps)
    np.testing.assert_allclose(poses, tracks.transform_camera_to_world, atol=1e-12)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("0 0 0 0 0 0 0 1\n0.5 0 0 0 0 0 1\n", "head.txt:2: expected 8 numbers"),
        ("0 0 0 0 0 0 0 1\n0.5 0 0 0 zero 0 0 1\n", "head.txt:2: expected 8 numbers"),
        ("0 0 0 0 0 0 0 1\n# ok\n9 0 0 0 0 0 0.5 0.5\n", "head.txt:3: the quaternion"),
        ("0 0 0 0 0 0 0 1\n", "at least 2 poses"),
        ("0 0 0 0 0 0 0 1\n0.2 0 0 0 0 0 0 1\n", "covers 0.000-0.200 s"),
        ("0 0 0 0 0 0 0 1\n0 0 0 0 0 0 0 1\n", "head.txt:2: timestamp 0.0 does not come after"),
    ],
)
def test_bad_trajectory_files_name_file_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "head.txt"
    path.write_text(content)
    with pytest.raises(InputMediaError, match=message.replace(".", r"\.")):
        read_trajectory(path, np.arange(30) / 30.0)


def test_the_cli_writes_nothing_for_a_bad_trajectory(
    clips: tuple[Path, Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    path = tmp_path / "head.txt"
    path.write_text("0 0 0 0 0 0 0 1\n0.5 0 0 0 0.7 0 0 1\n")
    out = tmp_path / "turn.parquet"
    done = run_cli("extract", clips[0], "--camera-motion", path, "--out", out, cache=tmp_path)
    assert done.returncode != 0
    assert f"{path}:2: the quaternion (qx qy qz qw) has norm 1.2207, not 1" in done.stderr
    assert not out.exists()
    done = run_cli("extract", clips[0], "--camera-motion", "moving", "--out", out, cache=tmp_path)
    assert done.returncode != 0 and "neither static nor estimate" in done.stderr
    assert not out.exists()


def test_fit_rotation_recovers_a_rotation_from_noisy_rays() -> None:
    rng = np.random.default_rng(3)
    rays = rng.normal(size=(200, 3)) + [0, 0, 3]
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    rotation = Rotation.from_rotvec([0.1, -0.2, 0.05]).as_matrix()
    turned = rays @ rotation.T + rng.normal(scale=1e-4, size=rays.shape)
    turned /= np.linalg.norm(turned, axis=1, keepdims=True)
    assert rotation_angle_deg(rotation, fit_rotation(rays, turned)) < 0.01


def test_the_dataset_records_the_camera_poses_and_their_source(
    clips: tuple[Path, Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    import json

    import pyarrow.parquet as pq

    from pipeline.batch import BatchConfig
    from pipeline.exceptions import PipelineError
    from pipeline.placement import PlacementConfig
    from pipeline.viz import episode_cameras, load_episode, trail_in_camera, wrists_in_world

    robot = retarget.load_robot("panda")
    root, cache = tmp_path / "ds", tmp_path / "cache"
    placement = PlacementConfig(egocentric=True)
    report = pipeline.convert(
        clips[0],
        robot,
        root,
        side="right",
        placement=placement,
        cache=cache,
        camera_motion="estimate",
    )
    assert not report.already_there
    table = pq.read_table(sorted(root.glob("data/*/*.parquet")))
    poses = np.asarray(table.column("observation.camera.transform_camera_to_world").to_pylist())
    truth = Rotation.from_matrix(clips[3][table.column("frame_index").to_numpy()])
    written = Rotation.from_quat(poses[:, 3:])
    assert np.median(np.degrees((written * truth.inv()).magnitude())) < 0.5
    std = table.column("observation.camera.rotation_std").to_numpy()
    assert np.all(std < 0.5)
    # The overlay and the rerun recording draw the robot from each frame's own camera.
    episode = load_episode(root, 0)
    cameras = episode_cameras(episode)
    relative = np.linalg.inv(episode.transform_camera_to_base) @ cameras
    turns = rotation_angle_deg(truth.as_matrix(), relative[:, :3, :3])
    assert np.median(turns) < 0.5
    # The overlay's wrist path is the world's, seen from each frame's camera: the newest point
    # is the frame's own wrist, an older one where the true head turn carries it.
    world = wrists_in_world(episode)
    times = episode.rows["timestamp"].astype(np.float64)
    wrists = episode.rows["observation.human.wrist_pose"].astype(np.float64)[:, :3]
    rows = np.flatnonzero(np.isfinite(world[:, 0, 0]))
    first, row = int(rows[0]), int(rows[-1])
    trail = trail_in_camera(world, cameras, times, row, times[row] - times[first] + 1e-6)
    assert trail.shape == (row - first + 1, 1, 3)
    np.testing.assert_allclose(trail[-1, 0], wrists[row], atol=1e-9)
    seen = truth.as_matrix()[row].T @ truth.as_matrix()[first] @ wrists[first]
    assert np.linalg.norm(trail[0, 0] - seen) < 0.005 * np.linalg.norm(seen)
    provenance = json.loads((root / "meta" / "hand2robot.json").read_text())
    assert [record["source"]["camera_motion"] for record in provenance["inputs"]] == ["estimate"]
    # The same clip with a static camera is another input, not the one already there.
    again = pipeline.convert(clips[0], robot, root, side="right", placement=placement, cache=cache)
    assert not again.already_there
    with pytest.raises(PipelineError, match="static or estimate"):
        BatchConfig(robots=("panda",), camera_motion=str(tmp_path / "head.txt"))


def test_depth_maps_give_the_head_cameras_translation_too(
    shared_data: Path, tmp_path: Path
) -> None:
    """A real RGB-D frame seen by a camera that moves 7 cm and turns 4 deg along a known path.

    Without depth the estimate is rotation only (and the parallax of a near scene pulls that
    rotation off); with the depth maps the whole pose is fitted to 3D points.
    """
    import json

    frames = shared_data / "frames/pour_water_egocentric_zed"
    stem = sorted(p.stem for p in frames.glob("*.png"))[7]  # the right hand on the bottle
    calibration = json.loads((frames / "calibration.json").read_text())
    matrix = np.array(calibration["intrinsic_left"]["intrinsic_matrix"])
    truth = moving_rgbd_clip(
        frames / f"{stem}.png",
        shared_data / f"frames/pour_water_egocentric_zed_depth/{stem}.png",
        matrix,
        tmp_path,
    )
    config = pipeline.ExtractConfig(folder_fps=30.0)
    rgb, depth = tmp_path / "rgb", tmp_path / "depth"
    with_depth = pipeline.extract_hands(rgb, depth=depth, camera_motion="estimate", config=config)
    assert with_depth.source["camera_motion"] == "estimate with depth"
    poses = with_depth.transform_camera_to_world
    assert np.isfinite(poses).all()
    rotation = rotation_angle_deg(truth[:, :3, :3], poses[:, :3, :3])
    position = np.linalg.norm(poses[:, :3, 3] - truth[:, :3, 3], axis=1)
    assert np.linalg.norm(truth[:, :3, 3], axis=1).max() > 0.06  # the head did move
    # Measured 0.03 deg and 0.5 mm median, 1.1 mm at most.
    assert np.median(rotation) < 0.2 and np.median(position) < 0.003 and position.max() < 0.01
    assert np.nanmax(with_depth.camera_rotation_std) < 1.0  # no frame flagged
    # The scene (the hand on the bottle too) stands still: its world-frame wrist as still as
    # with the true poses (the rest is the lift's own noise).
    hand = with_depth.hands["right"]
    assert hand.present.sum() >= 30
    camera_frame = hand.transform_wrist_to_camera[hand.present, :3, 3]
    world = hands_in_world(with_depth, [hand])[0].transform_wrist_to_camera[hand.present, :3, 3]
    exact = np.einsum("tij,tj->ti", truth[hand.present, :3, :3], camera_frame)
    exact += truth[hand.present, :3, 3]
    assert np.median(np.linalg.norm(world - exact, axis=1)) < 0.005
    # Without depth: rotation only, no translation at all.
    rotation_only = pipeline.extract_hands(rgb, camera_motion="estimate", config=config)
    assert rotation_only.source["camera_motion"] == "estimate"
    np.testing.assert_array_equal(rotation_only.transform_camera_to_world[:, :3, 3], 0.0)
