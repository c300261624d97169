"""A 3D recording of an episode for the rerun viewer.

The robot's meshes, the lifted hand, the camera with its frames, the flags and residuals over
time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.exceptions import DatasetError
from pipeline.viz.drawing import HAND_EDGES, robot_skeleton
from pipeline.viz.episode import (
    hand_points_in_camera,
    hands_present,
    load_episode,
    robot_cameras,
    source_frames,
)
from pipeline.viz.meshes import RobotMeshes
from pipeline.viz.scene import arms_of
from retarget import flag_names, load_any_robot


def _log_meshes(stream: Any, rr: Any, prefix: str, meshes: RobotMeshes) -> list[str]:
    """Each part's mesh, static, in its own frame at ``<prefix>/<link>/<part>``; the paths."""
    paths = []
    for k, part in enumerate(meshes.parts):
        chosen = meshes.triangle_part == k
        first = int(np.flatnonzero(meshes.vertex_part == k)[0]) if chosen.any() else 0
        faces = meshes.triangles[chosen] - first
        vertices = meshes.vertices[meshes.vertex_part == k]
        path = f"{prefix}/{part.link}/{part.name}"
        stream.log(
            path,
            rr.Mesh3D(
                vertex_positions=vertices.astype(np.float32),
                triangle_indices=faces.astype(np.uint32),
                vertex_normals=_vertex_normals(vertices, faces).astype(np.float32),
                albedo_factor=[*part.color, 1.0],
            ),
            static=True,
        )
        paths.append(path)
    return paths


def _vertex_normals(vertices: NDArray[np.float64], faces: NDArray[np.intp]) -> NDArray[np.float64]:
    """Area-weighted vertex normals, shape (V, 3) (zero for a vertex of no face)."""
    p = vertices[faces]
    face = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    normals = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def record_rerun(
    root: str | Path,
    episode: int,
    output: str | Path,
    images: bool = True,
    skeleton: bool = False,
) -> int:
    """Write a rerun recording (``.rrd``) of one episode; return the frames logged.

    In the robot base frame (z up): the robot's URDF meshes (one entity per geometry part,
    under ``world/robot/<arm>/<link>/``, posed every frame; its joint chain instead when
    ``skeleton``), the lifted hand, the camera (its placement and pinhole, with the source
    frame when ``images`` and the input is still there), and the flags and residuals over
    time. Needs the optional extra ``pip install "hand2robot[rerun]"``.

    Raises:
        DatasetError: No such episode; rerun-sdk is not installed.
    """
    try:
        import rerun as rr
    except ImportError:
        raise DatasetError('--rerun needs rerun-sdk: pip install "hand2robot[rerun]"') from None

    data = load_episode(root, episode)
    robot = load_any_robot(data.robot)
    cameras = robot_cameras(data, robot)  # the camera moves with the head: its path is logged
    state = data.rows["observation.state"].astype(np.float64)
    if skeleton:
        robot_points, edges = robot_skeleton(robot, state, cameras)
    hands = hand_points_in_camera(data).reshape(len(state), -1, 21, 3)

    def to_base(points: NDArray[np.float64], row: int) -> NDArray[np.float64]:
        return np.asarray(points @ cameras[row, :3, :3].T + cameras[row, :3, 3])

    frames = {}
    path = Path(str(data.source.get("path", "")))
    if images and path.exists():  # without its source, a recording has no images
        frames = dict(source_frames(data, max_size=480))
    stream = rr.RecordingStream("hand2robot")
    stream.save(str(output))
    arms = [] if skeleton else arms_of(robot)
    parts = [_log_meshes(stream, rr, f"world/robot/{arm.name}", arm.meshes) for arm in arms]
    intrinsics = data.intrinsics
    present = hands_present(data)
    flags = data.rows["flags"].astype(np.int64)
    for row, time in enumerate(data.rows["timestamp"].astype(np.float64)):
        stream.set_time("time", duration=float(time))
        camera = cameras[row]
        stream.log("world/camera", rr.Transform3D(translation=camera[:3, 3], mat3x3=camera[:3, :3]))
        if skeleton:
            points = to_base(robot_points[row], row)
            stream.log("world/robot/joints", rr.Points3D(points, radii=0.012))
            stream.log("world/robot/links", rr.LineStrips3D([points[[a, b]] for a, b in edges]))
        for arm, paths in zip(arms, parts, strict=True):
            poses = arm.transform_arm_to_base @ arm.meshes.part_poses(state[row, arm.columns])
            for entity, pose in zip(paths, poses, strict=True):
                stream.log(entity, rr.Transform3D(translation=pose[:3, 3], mat3x3=pose[:3, :3]))
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
        image = frames.get(row)
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
