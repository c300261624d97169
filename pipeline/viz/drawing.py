"""Lines and text over a frame: the hand and robot skeletons, the flags, legend and counter."""

from __future__ import annotations

import cv2
import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

from pipeline.viz.render import project
from retarget import BimanualRobot, Robot, flag_names

__all__ = ["HAND_EDGES", "draw_overlay", "project", "robot_points_in_camera", "robot_skeleton"]

#: MediaPipe's hand skeleton (keypoint index pairs).
HAND_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (17, 18), (18, 19), (19, 20),
    (0, 17),
)  # fmt: skip


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


def robot_skeleton(
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


#: Colours of the drawing, RGB.
HUMAN_COLOR = (0, 220, 0)
TRAIL_COLOR = (160, 255, 160)
ROBOT_COLOR = (255, 140, 0)
JOINT_COLOR = (255, 200, 0)
FLAG_COLOR = (255, 0, 0)


def line_scale(image: NDArray[np.uint8]) -> int:
    """Thickness unit of lines and text on ``image``: 1 up to 640 px, growing with the size."""
    return max(1, round(max(image.shape[:2]) / 640))


def clipped_segment(
    a: NDArray[np.float64], b: NDArray[np.float64], width: int, height: int
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The part of segment ``a``-``b`` [px] inside the image (grown by a margin), as integers.

    None when it is outside or not finite. Clipping before the cast keeps far-off points (a
    point just in front of the camera projects to 1e10 px) from overflowing OpenCV's integers.
    """
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return None
    margin = 16.0
    low, high = np.array([-margin, -margin]), np.array([width + margin, height + margin])
    start, end = 0.0, 1.0
    delta = b - a
    for axis in range(2):  # Liang-Barsky against the four sides
        for bound, sign in ((low[axis], -1.0), (high[axis], 1.0)):
            p, q = sign * delta[axis], sign * (bound - a[axis])
            if p == 0:
                if q < 0:
                    return None
                continue
            t = q / p
            if p < 0:
                start = max(start, t)
            else:
                end = min(end, t)
    if start > end:
        return None
    first, last = a + start * delta, a + end * delta
    return (int(round(first[0])), int(round(first[1]))), (int(round(last[0])), int(round(last[1])))


def draw_segments(
    image: NDArray[np.uint8],
    pixels: NDArray[np.float64],
    edges: list[tuple[int, int]] | tuple[tuple[int, int], ...],
    color: tuple[int, int, int],
    thickness: int,
) -> None:
    """Lines between pairs of ``pixels`` (N, 2) [px], clipped to the image; NaN ends skipped."""
    height, width = image.shape[:2]
    for a, b in edges:
        segment = clipped_segment(pixels[a], pixels[b], width, height)
        if segment is not None:
            cv2.line(image, segment[0], segment[1], color, thickness, cv2.LINE_AA)


def draw_trail(image: NDArray[np.uint8], pixels: NDArray[np.float64]) -> None:
    """Each hand's recent wrist path, (K, H, 2) [px] oldest first: a line that fades with age.

    NaN points (an absent hand, behind the camera) break the line.
    """
    scale = line_scale(image)
    count = len(pixels)
    for k in range(1, count):
        weight = k / max(count - 1, 1)  # 0 for the oldest segment, 1 for the newest
        color = tuple(int(round(c * (0.35 + 0.65 * weight))) for c in TRAIL_COLOR)
        for hand in range(pixels.shape[1]):
            segment = np.stack([pixels[k - 1, hand], pixels[k, hand]])
            draw_segments(image, segment, [(0, 1)], color, max(1, 2 * scale))  # type: ignore[arg-type]


def draw_overlay(
    image: NDArray[np.uint8],
    hand_pixels: NDArray[np.float64] | None,
    robot_pixels: NDArray[np.float64] | None,
    robot_edges: list[tuple[int, int]],
    flags: int,
) -> NDArray[np.uint8]:
    """Draw one frame: hand skeleton (green), robot (orange), and the flags if any (red).

    Args:
        image: RGB (h, w, 3), drawn on in place and returned.
        hand_pixels: (21, 2) [px], or (H, 21, 2) for several hands (a hand of NaN is not
            drawn), or None when the frame has no hand.
        robot_pixels: The robot's joint chain (J, 2) [px] (NaN behind the camera), or None when
            the robot is drawn otherwise (meshes).
        robot_edges: Pairs of indices into ``robot_pixels``.
        flags: The frame's :class:`retarget.Flag` bits.
    """
    scale = line_scale(image)
    height, width = image.shape[:2]
    if robot_pixels is not None:
        draw_segments(image, robot_pixels, robot_edges, ROBOT_COLOR, 3 * scale)
        for p in robot_pixels:
            if np.isfinite(p).all() and (-1 <= p[0] <= width) and (-1 <= p[1] <= height):
                centre = (int(round(p[0])), int(round(p[1])))
                cv2.circle(image, centre, 4 * scale, JOINT_COLOR, -1, cv2.LINE_AA)
    if hand_pixels is not None:
        for hand in np.reshape(hand_pixels, (-1, 21, 2)):
            draw_segments(image, hand, HAND_EDGES, HUMAN_COLOR, 2 * scale)
    if flags:
        cv2.rectangle(image, (0, 0), (width - 1, height - 1), FLAG_COLOR, 6 * scale)
        cv2.putText(
            image, " ".join(flag_names(flags)), (10 * scale, 30 * scale), cv2.FONT_HERSHEY_SIMPLEX,
            0.7 * scale, FLAG_COLOR, 2 * scale, cv2.LINE_AA,
        )  # fmt: skip
    return image


def caption_scale(height: int) -> int:
    """Size unit of the caption on a frame ``height`` px high: 1 up to 540 px, 2 at 720."""
    return max(1, round(height / 400))


def caption_height(height: int) -> int:
    """Rows [px] the caption takes along the bottom of a frame ``height`` px high."""
    return int(22 * caption_scale(height))


def draw_caption(
    image: NDArray[np.uint8], frame: int, frames: int, time: float, robot_label: str
) -> NDArray[np.uint8]:
    """The legend (human, robot, flags) and the frame and time counter, along the bottom."""
    height = image.shape[0]
    scale = caption_scale(height)
    font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, max(1, scale)
    bar = caption_height(height)
    image[height - bar :] = (image[height - bar :] * 0.35).astype(np.uint8)
    baseline = height - int(7 * scale)
    x = int(8 * scale)
    for label, color in (
        ("human hand", HUMAN_COLOR), ("wrist path (world)", TRAIL_COLOR),
        (robot_label, ROBOT_COLOR), ("flags", FLAG_COLOR),
    ):  # fmt: skip
        cv2.rectangle(image, (x, baseline - int(10 * scale)), (x + int(10 * scale), baseline),
                      color, -1)  # fmt: skip
        x += int(14 * scale)
        cv2.putText(image, label, (x, baseline), font, size, (255, 255, 255), thick, cv2.LINE_AA)
        x += cv2.getTextSize(label, font, size, thick)[0][0] + int(14 * scale)
    counter = f"frame {frame + 1}/{frames}  t {time:6.2f} s"
    text_width = cv2.getTextSize(counter, font, size, thick)[0][0]
    at = (max(x, image.shape[1] - text_width - int(8 * scale)), baseline)
    cv2.putText(image, counter, at, font, size, (255, 255, 255), thick, cv2.LINE_AA)
    return image
