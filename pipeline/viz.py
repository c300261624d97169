"""Seeing a written episode: the source video with the lifted hand and the robot drawn over it.

The robot is drawn from the same camera: its joint origins, forward kinematics of the episode's
``observation.state``, are moved into the camera frame with the inverse of the placement used
(``transform_camera_to_base`` in the provenance) and projected with the input's intrinsics.
The hand is the lifted 3D hand (``observation.human.keypoints`` placed by
``observation.human.wrist_pose``) projected the same way, so the overlay shows the lifting too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pinocchio as pin
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from pipeline.dataset import PROVENANCE_PATH
from pipeline.dataset.frames import pose_matrices
from pipeline.decoding import iter_frames, open_media
from pipeline.encoding import VideoConfig, VideoEncoder
from pipeline.exceptions import DatasetError
from pipeline.placement import camera_pose_to_base
from pipeline.tracks import Intrinsics
from retarget import BimanualRobot, Flag, Robot, flag_names, load_any_robot
from retarget.hand_frame import keypoints_in_hand_frame

#: MediaPipe's hand skeleton (keypoint index pairs).
HAND_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (17, 18), (18, 19), (19, 20),
    (0, 17),
)  # fmt: skip


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
    rows = {}
    for name in table.column_names:
        column = table[name].combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            flat = column.flatten().to_numpy(zero_copy_only=False)
            rows[name] = flat.reshape(table.num_rows, -1)
        else:
            rows[name] = column.to_numpy(zero_copy_only=False)
    return Episode(
        index=episode,
        rows=rows,
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


def project(points_in_camera: NDArray[np.float64], intrinsics: Intrinsics) -> NDArray[np.float64]:
    """Pixels of points in the camera frame, shape (..., 3) [m] -> (..., 2) [px].

    Uses the intrinsics' distortion; points behind the camera come out NaN.
    """
    flat = np.asarray(points_in_camera, dtype=np.float64).reshape(-1, 3)
    pixels = np.full((len(flat), 2), np.nan)
    front = flat[:, 2] > 1e-6
    if front.any():
        projected, _ = cv2.projectPoints(
            flat[front], np.zeros(3), np.zeros(3), intrinsics.matrix, intrinsics.distortion
        )
        pixels[front] = projected.reshape(-1, 2)
    return pixels.reshape(*np.shape(points_in_camera)[:-1], 2)


def robot_points_in_camera(
    robot: Robot, q: NDArray[np.float64], transform_camera_to_base: NDArray[np.float64]
) -> tuple[NDArray[np.float64], list[tuple[int, int]]]:
    """Joint origins of the robot at ``q`` in the camera frame, and the skeleton's edges.

    Args:
        robot: The robot.
        q: Joint positions, shape (T, nq) [rad] or [m].
        transform_camera_to_base: Camera placement (4, 4), or one per frame (T, 4, 4) for a
            moving camera (:func:`episode_cameras`).

    Returns:
        Points (T, J, 3) [m] (joint origins, then the end-effector frame) and edges (parent,
        child) into the J points.
    """
    model = robot.model
    data = model.createData()
    transform_base_to_camera = np.linalg.inv(
        np.broadcast_to(transform_camera_to_base, (len(q), 4, 4))
    )
    joints = list(range(1, model.njoints))
    points = np.empty((len(q), len(joints) + 1, 3))
    for t, qt in enumerate(np.asarray(q)):
        configuration = robot.model_configuration(qt)
        pin.forwardKinematics(model, data, configuration)
        pin.updateFramePlacements(model, data)
        in_base = [data.oMi[j].translation for j in joints]
        in_base.append(data.oMf[robot.ee_frame_id].translation)
        homogeneous = np.c_[np.asarray(in_base), np.ones(len(in_base))]
        points[t] = (homogeneous @ transform_base_to_camera[t].T)[:, :3]
    position = {j: i for i, j in enumerate(joints)}
    edges = [
        (position[model.parents[j]], position[j]) for j in joints if model.parents[j] in position
    ]
    ee_parent = model.frames[robot.ee_frame_id].parentJoint
    if ee_parent in position:
        edges.append((position[ee_parent], len(joints)))
    return points, edges


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


def _hands_present(episode: Episode) -> NDArray[np.bool_]:
    """Shape (T, H): each hand's presence (H = 1, or 2 for a bimanual episode)."""
    present = episode.rows["observation.human.present"].astype(bool)
    return present.reshape(len(present), -1)


def _robot_skeleton(
    robot: Robot | BimanualRobot,
    q: NDArray[np.float64],
    transform_camera_to_base: NDArray[np.float64],
) -> tuple[NDArray[np.float64], list[tuple[int, int]]]:
    """:func:`robot_points_in_camera`, for a bimanual robot both arms' points joined."""
    if not isinstance(robot, BimanualRobot):
        return robot_points_in_camera(robot, q, transform_camera_to_base)
    parts, edges, offset = [], [], 0
    for side in ("left", "right"):
        to_arm = np.linalg.inv(robot.transform_arm_base_to_base(side)) @ transform_camera_to_base
        points, arm_edges = robot_points_in_camera(
            robot.arm(side), q[:, robot.columns(side)], to_arm
        )
        parts.append(points)
        edges += [(a + offset, b + offset) for a, b in arm_edges]
        offset += points.shape[1]
    return np.concatenate(parts, axis=1), edges


def draw_overlay(
    image: NDArray[np.uint8],
    hand_pixels: NDArray[np.float64] | None,
    robot_pixels: NDArray[np.float64],
    robot_edges: list[tuple[int, int]],
    flags: int,
) -> NDArray[np.uint8]:
    """Draw one frame: hand skeleton (green), robot (orange), and the flags if any (red).

    Args:
        image: RGB (h, w, 3), drawn on in place and returned.
        hand_pixels: (21, 2) [px], or (H, 21, 2) for several hands (a hand of NaN is not
            drawn), or None when the frame has no hand.
        robot_pixels: (J, 2) [px] (NaN behind the camera).
        robot_edges: Pairs of indices into ``robot_pixels``.
        flags: The frame's :class:`retarget.Flag` bits.
    """
    scale = max(1, round(max(image.shape[:2]) / 640))

    def point(p: NDArray[np.float64]) -> tuple[int, int] | None:
        return (int(round(p[0])), int(round(p[1]))) if np.isfinite(p).all() else None

    for a, b in robot_edges:
        pa, pb = point(robot_pixels[a]), point(robot_pixels[b])
        if pa and pb:
            cv2.line(image, pa, pb, (255, 140, 0), 3 * scale, cv2.LINE_AA)
    for p in robot_pixels:
        if (c := point(p)) is not None:
            cv2.circle(image, c, 4 * scale, (255, 200, 0), -1, cv2.LINE_AA)
    if hand_pixels is not None:
        for hand in np.reshape(hand_pixels, (-1, 21, 2)):
            for a, b in HAND_EDGES:
                pa, pb = point(hand[a]), point(hand[b])
                if pa and pb:
                    cv2.line(image, pa, pb, (0, 220, 0), 2 * scale, cv2.LINE_AA)
    if flags:
        cv2.rectangle(
            image, (0, 0), (image.shape[1] - 1, image.shape[0] - 1), (255, 0, 0), 6 * scale
        )
        cv2.putText(
            image, " ".join(flag_names(flags)), (10 * scale, 30 * scale), cv2.FONT_HERSHEY_SIMPLEX,
            0.7 * scale, (255, 0, 0), 2 * scale, cv2.LINE_AA,
        )  # fmt: skip
    return image


#: Camera of the side panel: 1.4 m in front of the robot base, 0.6 m up, looking back at it.
PANEL_CAMERA_POSE = (1.4, 0.0, 0.6, 0.0, 0.15, np.pi)


def render_episode(
    root: str | Path,
    episode: int,
    output: str | Path,
    robot: Robot | BimanualRobot | None = None,
) -> int:
    """Write the overlay video of one episode; return the frames written.

    Each frame is the source frame with the overlay (:func:`draw_overlay`), and beside it a
    square panel of the robot alone seen from :data:`PANEL_CAMERA_POSE` (x, y, z [m], roll,
    pitch, yaw [rad]). The source input must
    still be where the provenance says.

    Raises:
        DatasetError: No such episode, or the source input is gone.
    """
    data = load_episode(root, episode)
    loaded = robot or load_any_robot(data.robot)
    path = Path(str(data.source.get("path", "")))
    if not path.exists():
        raise DatasetError(f"episode {episode}: its source {path} is not there to draw on")
    settings = data.source["extraction_settings"]
    wanted = {int(i): row for row, i in enumerate(data.rows["source_frame_index"])}
    robot_points, edges = _robot_skeleton(
        loaded, data.rows["observation.state"].astype(np.float64), episode_cameras(data)
    )
    robot_pixels = project(robot_points, data.intrinsics)
    hand_pixels = project(hand_points_in_camera(data), data.intrinsics).reshape(
        len(robot_points), -1, 21, 2
    )
    present = _hands_present(data)
    hand_pixels[~present] = np.nan  # a hand missing from a frame is not drawn
    flags = data.rows["flags"].astype(np.int64)
    # The side panel: the robot alone, seen from a fixed camera 2 m in front of its base.
    height = data.intrinsics.height
    panel = Intrinsics.from_fov(height, height, 60.0)
    panel_camera = camera_pose_to_base(PANEL_CAMERA_POSE)
    panel_points, _ = _robot_skeleton(
        loaded, data.rows["observation.state"].astype(np.float64), panel_camera
    )
    panel_pixels = project(panel_points, panel)
    written = 0
    frames = iter_frames(
        open_media(path),
        stride=settings["stride"],
        max_fps=settings["max_fps"],
        folder_fps=settings["folder_fps"],
    )
    with VideoEncoder(output, data.fps, VideoConfig(max_size=None)) as encoder:
        for frame in frames:
            row = wanted.get(frame.index)
            if row is None:
                continue
            image = np.ascontiguousarray(frame.rgb)
            draw_overlay(
                image,
                hand_pixels[row] if present[row].any() else None,
                robot_pixels[row],
                edges,
                int(flags[row]),
            )
            side = np.full((height, height, 3), 40, dtype=np.uint8)
            draw_overlay(side, None, panel_pixels[row], edges, 0)
            encoder.add(np.hstack([image, side]))
            written += 1
    return written


def plot_episode(root: str | Path, episode: int, output: str | Path) -> None:
    """PNG of one episode: joints against their limits, the flags over time, the residuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = load_episode(root, episode)
    robot = load_any_robot(data.robot)
    time = data.rows["timestamp"].astype(np.float64)
    state = data.rows["observation.state"].astype(np.float64)
    count = state.shape[1]
    marker = "o" if len(time) < 2 else None  # one frame (an image) draws no line: a point
    figure, axes = plt.subplots(
        count + 2, 1, figsize=(10, 1.3 * (count + 2)), sharex=True, constrained_layout=True
    )
    for j in range(count):
        axis = axes[j]
        axis.plot(time, state[:, j], color="tab:blue", lw=1, marker=marker)
        axis.axhline(robot.lower[j], color="tab:red", lw=0.8, ls="--")
        axis.axhline(robot.upper[j], color="tab:red", lw=0.8, ls="--")
        axis.set_ylabel(data.joint_names[j], rotation=0, ha="right", fontsize=7)
    flags = data.rows["flags"].astype(np.int64)
    timeline = np.array([[(value >> bit) & 1 for value in flags] for bit in range(len(Flag))])
    axes[count].imshow(
        timeline, aspect="auto", cmap="Reds", interpolation="nearest",
        extent=(time[0], time[-1] + 1.0 / data.fps, len(Flag) - 0.5, -0.5),
    )  # fmt: skip
    axes[count].set_yticks(range(len(Flag)), [str(f.name) for f in Flag], fontsize=6)
    residual = axes[count + 1]
    for name, scale, label in (
        ("residual.position", 1000.0, "position [mm]"),
        ("residual.fingertip", 1000.0, "fingertip [mm]"),
        ("residual.orientation", np.degrees(1.0), "orientation [deg]"),
    ):
        values = data.rows[name].astype(np.float64) * scale
        if np.isfinite(values).any():
            residual.plot(time, values, lw=1, label=label, marker=marker)
    residual.legend(fontsize=6, loc="upper right")
    residual.set_xlabel("time [s]")
    figure.suptitle(f"episode {episode}: {data.robot}, {data.side} hand (dashed: URDF limits)")
    figure.savefig(output, dpi=90)
    plt.close(figure)


def record_rerun(root: str | Path, episode: int, output: str | Path, images: bool = True) -> int:
    """Write a rerun recording (``.rrd``) of one episode; return the frames logged.

    In the robot base frame (z up): the robot's joint chain, the lifted hand, the camera (its
    placement and pinhole, with the source frame when ``images`` and the input is still
    there), and the flags and residuals over time. Needs the optional extra
    ``pip install "hand2robot[rerun]"``.

    Raises:
        DatasetError: No such episode; rerun-sdk is not installed.
    """
    try:
        import rerun as rr
    except ImportError:
        raise DatasetError('--rerun needs rerun-sdk: pip install "hand2robot[rerun]"') from None

    data = load_episode(root, episode)
    robot = load_any_robot(data.robot)
    cameras = episode_cameras(data)  # the camera moves with the head: its path is logged
    robot_points, edges = _robot_skeleton(
        robot, data.rows["observation.state"].astype(np.float64), cameras
    )
    hands = hand_points_in_camera(data).reshape(len(robot_points), -1, 21, 3)

    def to_base(points: NDArray[np.float64], row: int) -> NDArray[np.float64]:
        return np.asarray(points @ cameras[row, :3, :3].T + cameras[row, :3, 3])

    frames: dict[int, NDArray[np.uint8]] = {}
    path = Path(str(data.source.get("path", "")))
    wanted = set(int(i) for i in data.rows["source_frame_index"])
    if images and path.exists():
        settings = data.source["extraction_settings"]
        for frame in iter_frames(
            open_media(path),
            stride=settings["stride"],
            max_fps=settings["max_fps"],
            max_size=480,
            folder_fps=settings["folder_fps"],
        ):
            if frame.index in wanted:
                frames[frame.index] = frame.rgb
    stream = rr.RecordingStream("hand2robot")
    stream.save(str(output))
    intrinsics = data.intrinsics
    present = _hands_present(data)
    flags = data.rows["flags"].astype(np.int64)
    for row, time in enumerate(data.rows["timestamp"].astype(np.float64)):
        stream.set_time("time", duration=float(time))
        camera = cameras[row]
        stream.log("world/camera", rr.Transform3D(translation=camera[:3, 3], mat3x3=camera[:3, :3]))
        points = to_base(robot_points[row], row)
        stream.log("world/robot/joints", rr.Points3D(points, radii=0.012))
        stream.log("world/robot/links", rr.LineStrips3D([points[[a, b]] for a, b in edges]))
        strips = [
            to_base(hand, row)[[a, b]]
            for hand, seen in zip(hands[row], present[row], strict=True)
            if seen
            for a, b in HAND_EDGES
        ]
        if strips:
            stream.log("world/hand", rr.LineStrips3D(strips, colors=[(0, 200, 0)]))
        else:
            stream.log("world/hand", rr.Clear(recursive=False))
        image = frames.get(int(data.rows["source_frame_index"][row]))
        if image is not None:
            scale = image.shape[1] / intrinsics.width
            stream.log(
                "world/camera/image",
                rr.Pinhole(
                    image_from_camera=intrinsics.matrix * np.array([[scale], [scale], [1.0]]),
                    resolution=[image.shape[1], image.shape[0]],
                ),
            )
            stream.log("world/camera/image", rr.Image(image))
        stream.log("flags", rr.TextLog(" ".join(flag_names(int(flags[row]))) or "feasible"))
        for name in ("position", "orientation", "fingertip"):
            value = float(data.rows[f"residual.{name}"][row])
            if np.isfinite(value):
                stream.log(f"residual/{name}", rr.Scalars(value))
    stream.flush()
    return len(data.rows["timestamp"])
