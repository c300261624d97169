"""Parallel-gripper opening from the thumb-index aperture."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from retarget.hand_frame import INDEX_TIP, THUMB_TIP, check_keypoints
from robots import GripperMapping


def aperture_from_keypoints(keypoints: NDArray[np.floating]) -> NDArray[np.float64]:
    """Thumb-tip to index-tip distance per frame.

    Args:
        keypoints: Shape (T, 21, 3), any metric frame [m].

    Returns:
        Shape (T,) [m].
    """
    points = check_keypoints(keypoints)
    return np.asarray(np.linalg.norm(points[:, THUMB_TIP] - points[:, INDEX_TIP], axis=-1))


def gripper_position(
    aperture: NDArray[np.floating], mapping: GripperMapping
) -> NDArray[np.float64]:
    """Map apertures linearly onto the gripper joint range, clipped at both ends.

    Args:
        aperture: Thumb-index distances, shape (T,) [m].
        mapping: The robot's gripper mapping.

    Returns:
        Gripper joint positions, shape (T,) [rad] or [m].
    """
    span = mapping.open_aperture - mapping.closed_aperture
    opening = np.clip(
        (np.asarray(aperture, dtype=np.float64) - mapping.closed_aperture) / span, 0, 1
    )
    return mapping.closed_position + opening * (mapping.open_position - mapping.closed_position)


def aperture_from_gripper(
    position: NDArray[np.floating], mapping: GripperMapping
) -> NDArray[np.float64]:
    """Inverse of :func:`gripper_position` inside the mapped range (for checks and synthesis)."""
    opening = (np.asarray(position, dtype=np.float64) - mapping.closed_position) / (
        mapping.open_position - mapping.closed_position
    )
    return mapping.closed_aperture + opening * (mapping.open_aperture - mapping.closed_aperture)
