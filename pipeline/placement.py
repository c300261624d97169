"""Where the camera stands relative to the robot: the transform from camera to robot base.

Default for third-person video (drawn in the README): the robot looks the way the camera
looks. Camera axes (OpenCV: x right, y down, z forward) map to base axes as

    camera x (right)   -> base -y
    camera y (down)    -> base -z
    camera z (forward) -> base +x

and the camera is translated so that the clip's median end-effector target lands on the robot's
nominal reachable point (``RobotDescription.nominal_ee_position``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from retarget.exceptions import InvalidInputError

#: Rotation of the camera frame in the base frame (columns: camera axes in base coordinates).
ROTATION_CAMERA_TO_BASE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def default_camera_to_base(
    transform_wrist_to_camera: NDArray[np.float64],
    present: NDArray[np.bool_],
    transform_hand_to_ee: NDArray[np.float64],
    nominal_ee_position: tuple[float, float, float],
) -> NDArray[np.float64]:
    """The default placement for a clip.

    Args:
        transform_wrist_to_camera: Shape (T, 4, 4), hand frame H in the camera frame [m].
        present: Shape (T,), frames with a hand.
        transform_hand_to_ee: (4, 4), the robot's mounting (H in the end-effector frame).
        nominal_ee_position: Reachable end-effector point in the base frame [m].

    Returns:
        ``transform_camera_to_base`` (4, 4).

    Raises:
        InvalidInputError: If no frame has a hand.
    """
    if not np.any(present):
        raise InvalidInputError("cannot place the camera: no frame has a hand")
    ee_in_camera = transform_wrist_to_camera[present] @ np.linalg.inv(transform_hand_to_ee)
    median = np.median(ee_in_camera[:, :3, 3] @ ROTATION_CAMERA_TO_BASE.T, axis=0)
    transform = np.eye(4)
    transform[:3, :3] = ROTATION_CAMERA_TO_BASE
    transform[:3, 3] = np.asarray(nominal_ee_position) - median
    return transform
