"""Where the camera stands relative to the robot: the transform from camera to robot base.

Two fixed conventions (drawn in the README), camera axes in OpenCV order (x right, y down,
z forward):

- third-person (the default): the camera faces the person, so the robot stands where the person
  stands and faces the camera. Camera x (right) -> base +y, camera y (down) -> base -z,
  camera z (forward) -> base -x.
- egocentric: the camera is the robot's head camera and looks the way the robot looks.
  Camera x (right) -> base -y, camera y (down) -> base -z, camera z (forward) -> base +x.

In both, the camera is translated so that the clip's median end-effector target lands on the robot's
nominal reachable point (``RobotDescription.nominal_ee_position``).

An explicit camera pose (:func:`camera_pose_to_base`, CLI ``--camera-pose``) replaces both.
A default placement may also be turned about the vertical through the nominal point
(:func:`turn_about_vertical`), which ``pipeline.retarget_tracks(fit_yaw=True)`` uses to suit
arms that cannot take every orientation (the SO-101's five joints).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from retarget.exceptions import InvalidInputError

#: Third-person rotation of the camera frame in the base frame (columns: camera axes in base
#: coordinates). Measured on the shared third-person clips: with the egocentric rotation the
#: Panda reaches 0% of the left hand's frames of ``kettle_pour_third_person.mp4``, with this one
#: 100%.
ROTATION_CAMERA_TO_BASE = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
#: Egocentric rotation (head camera looking forward, the way the robot looks).
ROTATION_EGOCENTRIC_CAMERA_TO_BASE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


#: The optical frame (x right, y down, z forward) in the camera body frame (x forward, y left,
#: z up; ROS ``camera_link``). With zero roll, pitch and yaw the camera looks along base +x:
#: the egocentric convention; yaw = pi gives the third-person one.
ROTATION_OPTICAL_TO_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def camera_pose_to_base(pose: tuple[float, ...] | list[float]) -> NDArray[np.float64]:
    """``transform_camera_to_base`` (4, 4) from a camera pose in the robot base frame.

    Args:
        pose: ``x, y, z`` [m] of the camera and ``roll, pitch, yaw`` [rad] of its body frame
            (x forward, y left, z up), fixed axes X then Y then Z (Pinocchio's ``rpyToMatrix``).

    Raises:
        InvalidInputError: Not six finite numbers.
    """
    import pinocchio as pin

    values = np.asarray(pose, dtype=np.float64)
    if values.shape != (6,) or not np.isfinite(values).all():
        raise InvalidInputError(
            f"a camera pose is six numbers x,y,z [m],roll,pitch,yaw [rad]; got {list(pose)}"
        )
    transform = np.eye(4)
    transform[:3, :3] = pin.rpy.rpyToMatrix(*values[3:]) @ ROTATION_OPTICAL_TO_BODY
    transform[:3, 3] = values[:3]
    return transform


def scale_workspace(
    transform_wrist_to_base: NDArray[np.float64], present: NDArray[np.bool_], scale: float
) -> NDArray[np.float64]:
    """Scale the wrist positions about their median (orientations unchanged).

    Args:
        transform_wrist_to_base: Shape (T, 4, 4) [m].
        present: Shape (T,), frames with a hand.
        scale: Factor (1 keeps the human's motion; 0.5 halves its extent).

    Raises:
        InvalidInputError: A scale that is not positive.
    """
    if not scale > 0:
        raise InvalidInputError(f"workspace scale must be > 0, got {scale}")
    out = np.array(transform_wrist_to_base, dtype=np.float64)
    if scale == 1.0 or not np.any(present):
        return out
    median = np.median(out[present, :3, 3], axis=0)
    out[present, :3, 3] = median + scale * (out[present, :3, 3] - median)
    return out


def default_camera_to_base(
    transform_wrist_to_camera: NDArray[np.float64],
    present: NDArray[np.bool_],
    transform_hand_to_ee: NDArray[np.float64],
    nominal_ee_position: tuple[float, float, float],
    *,
    egocentric: bool = False,
) -> NDArray[np.float64]:
    """The default placement for a clip.

    Args:
        transform_wrist_to_camera: Shape (T, 4, 4), hand frame H in the camera frame [m].
        present: Shape (T,), frames with a hand.
        transform_hand_to_ee: (4, 4), the robot's mounting (H in the end-effector frame).
        nominal_ee_position: Reachable end-effector point in the base frame [m].
        egocentric: Use the egocentric axes instead of the third-person ones.

    Returns:
        ``transform_camera_to_base`` (4, 4).

    Raises:
        InvalidInputError: If no frame has a hand.
    """
    if not np.any(present):
        raise InvalidInputError("cannot place the camera: no frame has a hand")
    ee_in_camera = transform_wrist_to_camera[present] @ np.linalg.inv(transform_hand_to_ee)
    rotation = ROTATION_EGOCENTRIC_CAMERA_TO_BASE if egocentric else ROTATION_CAMERA_TO_BASE
    median = np.median(ee_in_camera[:, :3, 3] @ rotation.T, axis=0)
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = np.asarray(nominal_ee_position) - median
    return transform


def turn_about_vertical(
    transform_camera_to_base: NDArray[np.float64], point: NDArray[np.float64], yaw: float
) -> NDArray[np.float64]:
    """The placement turned by ``yaw`` [rad] about the base's vertical (z) axis through ``point``.

    Everything the camera saw turns with it, rigidly; what sat at ``point`` [m] stays there.
    Returns the new ``transform_camera_to_base`` (4, 4).
    """
    cos, sin = np.cos(yaw), np.sin(yaw)
    turn = np.eye(4)
    turn[:2, :2] = [[cos, -sin], [sin, cos]]
    point = np.asarray(point, dtype=np.float64)
    turn[:3, 3] = point - turn[:3, :3] @ point
    return turn @ np.asarray(transform_camera_to_base, dtype=np.float64)
