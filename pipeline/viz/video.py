"""The overlay video of an episode.

The source frames with the hand and the robot drawn over them, and beside them a panel of the
robot alone (with an inset of the hand an arm carries).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.encoding import VideoConfig, VideoEncoder
from pipeline.placement import camera_pose_to_base
from pipeline.tracks import Intrinsics
from pipeline.viz.drawing import (
    ROBOT_COLOR,
    caption_height,
    draw_caption,
    draw_overlay,
    draw_trail,
    project,
    robot_skeleton,
)
from pipeline.viz.episode import (
    Episode,
    episode_cameras,
    hand_frame,
    hand_points_in_camera,
    hands_present,
    load_episode,
    robot_cameras,
    source_frames,
    trail_in_camera,
    wrists_in_world,
)
from pipeline.viz.render import Posed, composite, render
from pipeline.viz.scene import Arm, Contacts, Inset, arms_of, inset_view, panel_view, scene_at
from retarget import BimanualRobot, Robot, load_any_robot
from robots import FINGERTIP_KEYPOINTS, RobotKind

#: Background of the side panel, RGB.
PANEL_BACKGROUND = (40, 40, 40)
#: Side of the inset over the panel's side.
INSET_SIZE = 0.42
#: Width of the side panel over its height (the frame's): arms reach wider than tall.
PANEL_ASPECT = 4 / 3
#: How far back the wrist's world path is drawn [s].
TRAIL_S = 1.0
#: Longest side of the panel's render [px] (scaled up to the panel).
PANEL_RENDER_SIZE = 480
_ORANGE = (ROBOT_COLOR[0] / 255, ROBOT_COLOR[1] / 255, ROBOT_COLOR[2] / 255)


class _Frames:
    """What drawing each frame of an episode needs, computed once."""

    def __init__(self, data: Episode, robot: Robot | BimanualRobot, skeleton: bool) -> None:
        self.data = data
        self.skeleton = skeleton
        self.state = data.rows["observation.state"].astype(np.float64)
        self.cameras = robot_cameras(data, robot)
        frames = len(self.state)
        self.hand_pixels = project(hand_points_in_camera(data), data.intrinsics).reshape(
            frames, -1, 21, 2
        )
        self.present = hands_present(data)
        self.hand_pixels[~self.present] = np.nan  # a hand missing from a frame is not drawn
        self.flags = data.rows["flags"].astype(np.int64)
        self.times = data.rows["timestamp"].astype(np.float64)
        # The wrist's path in the world, drawn into each frame's camera (a moving camera's
        # turning is out of it: the path stays on the scene).
        self.wrists_world = wrists_in_world(data)
        self.hand_cameras = episode_cameras(data)
        height = data.intrinsics.height
        self.panel_shape = (height, 2 * round(height * PANEL_ASPECT / 2))  # even, for H.264
        self.background = np.empty((*self.panel_shape, 3), dtype=np.uint8)
        self.background[:] = PANEL_BACKGROUND
        if skeleton:
            points, self.edges = robot_skeleton(robot, self.state, self.cameras)
            self.robot_pixels = project(points, data.intrinsics)
            panel = Intrinsics.from_fov(self.panel_shape[1], self.panel_shape[0], 60.0)
            points, _ = robot_skeleton(robot, self.state, camera_pose_to_base(PANEL_CAMERA_POSE))
            self.panel_pixels = project(points, panel)
            return
        self.arms = arms_of(robot)
        self.contacts = Contacts(self.arms)
        # The robot is framed above the caption that runs along the bottom.
        self.view_height = height - caption_height(height)
        self.panel_camera, self.panel_intrinsics = panel_view(
            self.arms, self.state, (self.view_height, self.panel_shape[1])
        )
        inset = (int(height * INSET_SIZE),) * 2
        self.inset = inset_view(self.arms[0], self.state, inset) if len(self.arms) == 1 else None

    def contacts_at(self, row: int) -> list[frozenset[int]]:
        """Per arm, its parts in contact on the frame (none unless it is ``SELF_COLLISION``)."""
        if self.skeleton:
            return []
        return self.contacts.at(self.state[row], int(self.flags[row]))

    def overlay(self, image: NDArray[np.uint8], row: int, contacts: list[frozenset[int]]) -> None:
        flags = int(self.flags[row])
        hands = self.hand_pixels[row] if self.present[row].any() else None
        trail = trail_in_camera(self.wrists_world, self.hand_cameras, self.times, row, TRAIL_S)
        draw_trail(image, project(trail, self.data.intrinsics))
        if self.skeleton:
            draw_overlay(image, hands, self.robot_pixels[row], self.edges, flags)
            return
        scene = scene_at(self.arms, self.state[row], self.cameras[row], contacts)
        composite(image, render(scene, self.data.intrinsics, color=_ORANGE))
        draw_overlay(image, hands, None, [], flags)

    def panel(self, row: int, contacts: list[frozenset[int]]) -> NDArray[np.uint8]:
        side = self.background.copy()
        if self.skeleton:
            return draw_overlay(side, None, self.panel_pixels[row], self.edges, 0)
        scene = scene_at(self.arms, self.state[row], self.panel_camera, contacts)
        rendered = render(scene, self.panel_intrinsics, max_size=PANEL_RENDER_SIZE, lighten=0.4)
        composite(side[: self.view_height], rendered, alpha=1.0)
        if len(self.arms) == 1 and self.arms[0].robot.description.kind is RobotKind.HAND:
            _label_fingertips(
                side, self.arms[0].robot, self.state[row], self.panel_camera, self.panel_intrinsics
            )
        if self.inset is not None:
            self._draw_inset(side, self.inset, self.arms[0], row, contacts[0])
        return side

    def _draw_inset(
        self, side: NDArray[np.uint8], inset: Inset, arm: Arm, row: int, contacts: frozenset[int]
    ) -> None:
        intrinsics = inset.intrinsics
        q = self.state[row, arm.columns]
        camera = hand_frame(arm.robot, q) @ inset.transform_camera_to_hand
        box = np.empty((intrinsics.height, intrinsics.width, 3), dtype=np.uint8)
        box[:] = (60, 60, 60)
        composite(
            box,
            render([Posed(arm.meshes, q, camera, contacts, inset.parts)], intrinsics, lighten=0.4),
            1.0,
        )
        _label_fingertips(box, arm.robot, q, camera, intrinsics)
        cv2.rectangle(box, (0, 0), (box.shape[1] - 1, box.shape[0] - 1), (200, 200, 200), 1)
        cv2.putText(box, "hand", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1)
        side[: box.shape[0], -box.shape[1] :] = box  # top right: the caption runs along the bottom


def _label_fingertips(
    image: NDArray[np.uint8],
    robot: Robot,
    q: NDArray[np.float64],
    transform_camera_to_base: NDArray[np.float64],
    intrinsics: Intrinsics,
) -> None:
    """Each fingertip of a dexterous hand named (index, middle, ring, thumb) where it is seen."""
    mappings = robot.description.fingertips
    tips = robot.frame_placements(q, tuple(m.frame for m in mappings))[:, :, 3]
    in_camera = (tips @ np.linalg.inv(transform_camera_to_base).T)[:, :3]
    scale = max(1, round(image.shape[0] / 480))
    for mapping, pixel in zip(mappings, project(in_camera, intrinsics), strict=True):
        if (
            np.isfinite(pixel).all()
            and 0 <= pixel[0] < image.shape[1]
            and 0 <= pixel[1] < image.shape[0]
        ):
            at = (int(pixel[0]) + 4 * scale, int(pixel[1]) - 4 * scale)
            cv2.putText(
                image, FINGERTIP_KEYPOINTS[mapping.keypoint], at, cv2.FONT_HERSHEY_SIMPLEX,
                0.35 * scale, (255, 230, 120), scale, cv2.LINE_AA,
            )  # fmt: skip


#: Camera of the ``--skeleton`` side panel: 1.4 m in front of the robot base, 0.6 m up, looking
#: back at it (x, y, z [m], roll, pitch, yaw [rad]).
PANEL_CAMERA_POSE = (1.4, 0.0, 0.6, 0.0, 0.15, np.pi)


def render_episode(
    root: str | Path,
    episode: int,
    output: str | Path,
    robot: Robot | BimanualRobot | None = None,
    skeleton: bool = False,
) -> int:
    """Write the overlay video of one episode; return the frames written.

    Each frame is the source frame with the robot's URDF meshes drawn over it from the input's
    camera (semi-transparent, orange; the links of a self-collision in red), the lifted hand
    (green), the flags (red border and names), a legend and a frame and time counter; beside
    it a 4:3 panel of the robot alone (:mod:`pipeline.viz.scene` gives the viewpoints).
    ``skeleton`` draws the joint chain instead of the meshes, as earlier releases did. The
    source input must still be where the provenance says.

    Raises:
        DatasetError: No such episode, or the source input is gone.
    """
    data = load_episode(root, episode)
    loaded = robot or load_any_robot(data.robot)
    source = source_frames(data)
    frames = _Frames(data, loaded, skeleton)
    label = "robot (joint chain)" if skeleton else "robot"
    total = len(frames.state)
    written = 0
    with VideoEncoder(output, data.fps, VideoConfig(max_size=None)) as encoder:
        for row, rgb in source:
            image = np.ascontiguousarray(rgb)
            contacts = frames.contacts_at(row)  # once per frame: the overlay's and the panel's
            frames.overlay(image, row, contacts)
            combined = np.hstack([image, frames.panel(row, contacts)])
            draw_caption(combined, row, total, float(frames.times[row]), label)
            encoder.add(combined)
            written += 1
    return written
