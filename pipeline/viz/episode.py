"""One episode of a hand2robot dataset read back for drawing: rows, cameras, the lifted hand.

The robot is drawn from the input's camera: its base is placed with the inverse of the placement
used (``transform_camera_to_base`` in the provenance, times each frame's camera pose for a moving
camera), except for a free-floating hand, whose base has no placement: it is where the palm pose
that the lifted wrist implies puts it (:func:`robot_cameras`). The hand is the lifted 3D hand
(``observation.human.keypoints`` placed by ``observation.human.wrist_pose``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from pipeline.dataset import PROVENANCE_PATH, frame_columns
from pipeline.dataset.frames import pose_matrices
from pipeline.decoding import iter_frames, open_media
from pipeline.exceptions import DatasetError
from pipeline.tracks import Intrinsics
from retarget import BimanualRobot, Robot
from retarget.hand_frame import keypoints_in_hand_frame
from robots import RobotKind


@dataclass(frozen=True)
class Episode:
    """One episode of a hand2robot dataset, with what drawing it needs.

    Attributes:
        index: Episode index.
        rows: Column name -> array, one row per frame.
        source: The input's path (or URL) and how its frames were sampled.
        intrinsics: The input's camera.
        transform_camera_to_base: The placement used, (4, 4).
        side: The human hand retargeted.
        robot: The robot's registry name.
        joint_names: Columns of ``observation.state``.
        fps: Dataset frame rate [Hz].
    """

    index: int
    rows: dict[str, NDArray[Any]]
    source: dict[str, Any]
    intrinsics: Intrinsics
    transform_camera_to_base: NDArray[np.float64]
    side: str
    robot: str
    joint_names: tuple[str, ...]
    fps: int


def load_episode(root: str | Path, episode: int) -> Episode:
    """Read one episode's rows and its input's provenance.

    Raises:
        DatasetError: Not a hand2robot dataset, or no such episode (the message gives the range).
    """
    root = Path(root)
    try:
        info = json.loads((root / "meta/info.json").read_text())
        provenance = json.loads((root / PROVENANCE_PATH).read_text())
    except (OSError, ValueError) as err:
        raise DatasetError(f"{root}: not a hand2robot dataset ({err})") from None
    total = int(info["total_episodes"])
    if not 0 <= episode < total:
        raise DatasetError(f"{root}: no episode {episode}; valid: 0 to {total - 1}")
    record = provenance["episodes"][episode]
    source = provenance["inputs"][record["input_index"]]
    table = pq.read_table(sorted(root.glob("data/*/*.parquet")))
    table = table.filter(pc.equal(table["episode_index"], episode))
    return Episode(
        index=episode,
        rows=frame_columns(table),
        source=source["source"] | {"extraction_settings": source["extraction_settings"]},
        intrinsics=Intrinsics.from_json(source["intrinsics"]),
        transform_camera_to_base=np.asarray(source["transform_camera_to_base"]),
        side=source["hand"],
        robot=provenance["robot"]["name"],
        joint_names=tuple(provenance["robot"]["joint_names"]),
        fps=int(info["fps"]),
    )


def episode_cameras(episode: Episode) -> NDArray[np.float64]:
    """Each frame's camera in the robot base frame, (T, 4, 4) [m].

    The placement (``transform_camera_to_base``: the world frame in the base frame) times each
    frame's ``observation.camera.transform_camera_to_world``; datasets of earlier releases,
    without that column, have a fixed camera.
    """
    frames = len(episode.rows["timestamp"])
    poses = episode.rows.get("observation.camera.transform_camera_to_world")
    if poses is None:
        return np.broadcast_to(episode.transform_camera_to_base, (frames, 4, 4)).copy()
    return np.asarray(episode.transform_camera_to_base @ pose_matrices(poses))


def robot_cameras(episode: Episode, robot: Robot | BimanualRobot) -> NDArray[np.float64]:
    """Each frame's camera in the frame the robot is drawn in, (T, 4, 4) [m].

    :func:`episode_cameras` for a robot with an arm. A free-floating hand has no base placement:
    its palm (end-effector frame) is put at the pose the lifted wrist implies, the wrist pose
    times ``transform_hand_to_ee`` inverted (as the retargeter does), and its base where
    forward kinematics of the frame's state puts it behind the palm.
    """
    if isinstance(robot, BimanualRobot) or robot.description.kind is not RobotKind.HAND:
        return episode_cameras(episode)
    transform_wrist_to_camera = pose_matrices(
        episode.rows["observation.human.wrist_pose"].astype(np.float64)
    )
    state = episode.rows["observation.state"].astype(np.float64)
    transform_hand_to_base = np.stack([hand_frame(robot, q) for q in state])
    # The robot's hand frame H on the human wrist: the base is H's pose in it, inverted.
    transform_base_to_camera = transform_wrist_to_camera @ np.linalg.inv(transform_hand_to_base)
    return np.asarray(np.linalg.inv(transform_base_to_camera))


def hand_frame(robot: Robot, q: NDArray[np.float64]) -> NDArray[np.float64]:
    """The robot hand's frame H (the human wrist's frame on it) in its base frame (4, 4).

    Its end-effector pose at ``q`` times ``transform_hand_to_ee``, the inverse of the
    retargeter's wrist -> end-effector target.
    """
    transform_ee_to_base = robot.frame_placements(q, (robot.description.ee_frame,))[0]
    return np.asarray(transform_ee_to_base @ robot.transform_hand_to_ee)


def source_frames(episode: Episode, max_size: int | None = None) -> Iterator[tuple[int, Any]]:
    """The episode's frames decoded again from its source, as (row, RGB image).

    Sampled as the extraction sampled them (its stride and rate), at most ``max_size`` px on
    the long side (None: the source's size).

    Raises:
        DatasetError: The source input is not where the provenance says.
    """
    path = Path(str(episode.source.get("path", "")))
    if not path.exists():  # checked now, not at the first frame
        raise DatasetError(f"episode {episode.index}: its source {path} is not there to draw on")
    settings = episode.source["extraction_settings"]
    wanted = {int(i): row for row, i in enumerate(episode.rows["source_frame_index"])}
    frames = iter_frames(
        open_media(path),
        stride=settings["stride"],
        max_fps=settings["max_fps"],
        max_size=max_size,
        folder_fps=settings["folder_fps"],
    )
    return ((wanted[f.index], f.rgb) for f in frames if f.index in wanted)


def hand_points_in_camera(episode: Episode) -> NDArray[np.float64]:
    """The lifted hand's 21 keypoints in the camera frame, shape (T, 21, 3) [m].

    For a bimanual episode, shape (T, 2, 21, 3): the left hand, then the right.
    """
    keypoints = episode.rows["observation.human.keypoints"].astype(np.float64)
    pose = episode.rows["observation.human.wrist_pose"].astype(np.float64)
    if episode.side != "both":
        return _hand_in_camera(keypoints, pose, episode.side)
    return np.stack(
        [
            _hand_in_camera(keypoints[:, 63 * i : 63 * (i + 1)], pose[:, 7 * i : 7 * (i + 1)], side)
            for i, side in enumerate(("left", "right"))
        ],
        axis=1,
    )


def _hand_in_camera(
    keypoints: NDArray[np.float64], pose: NDArray[np.float64], side: str
) -> NDArray[np.float64]:
    in_hand = keypoints_in_hand_frame(keypoints.reshape(-1, 21, 3), side)  # type: ignore[arg-type]
    rotation = pose_matrices(pose)[:, :3, :3]
    return np.einsum("tij,tkj->tki", rotation, in_hand) + pose[:, None, :3]


def wrists_in_world(episode: Episode) -> NDArray[np.float64]:
    """Each hand's wrist in the world frame, shape (T, H, 3) [m] (H = 1, or 2 for bimanual).

    The world is fixed to the scene: the robot's base frame, where every frame's camera sits at
    :func:`episode_cameras` (the placement times the frame's camera pose), so a head camera's
    turning is out of it. NaN where the hand is absent.
    """
    pose = episode.rows["observation.human.wrist_pose"].astype(np.float64)
    wrists = pose.reshape(len(pose), -1, 7)[:, :, :3]
    cameras = episode_cameras(episode)
    world = np.einsum("tij,thj->thi", cameras[:, :3, :3], wrists) + cameras[:, None, :3, 3]
    world[~hands_present(episode)] = np.nan
    return np.asarray(world)


def trail_in_camera(
    world: NDArray[np.float64],
    cameras: NDArray[np.float64],
    times: NDArray[np.float64],
    row: int,
    seconds: float,
) -> NDArray[np.float64]:
    """The wrists' world path over the last ``seconds`` seen from frame ``row``'s camera.

    Args:
        world: Shape (T, H, 3) [m], :func:`wrists_in_world`.
        cameras: Shape (T, 4, 4), :func:`episode_cameras`.
        times: Shape (T,) [s], the frames' timestamps.
        row: The frame whose camera sees the path.
        seconds: How far back the path goes [s].

    Returns:
        Shape (K, H, 3) [m]: frames ``row - K + 1`` to ``row`` in frame ``row``'s camera frame
        (NaN where a hand was absent). The path stays on the scene while the camera moves.
    """
    first = int(np.searchsorted(times, times[row] - seconds, side="left"))
    base_to_camera = np.linalg.inv(cameras[row])
    path = world[first : row + 1]
    return np.asarray(
        np.einsum("ij,khj->khi", base_to_camera[:3, :3], path) + base_to_camera[:3, 3]
    )


def hands_present(episode: Episode) -> NDArray[np.bool_]:
    """Shape (T, H): each hand's presence (H = 1, or 2 for a bimanual episode)."""
    present = episode.rows["observation.human.present"].astype(bool)
    return present.reshape(len(present), -1)
