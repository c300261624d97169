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
