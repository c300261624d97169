"""MediaPipe hand keypoints and the hand frame ``H`` estimated from them.

Keypoint order (MediaPipe): 0 wrist; thumb 1 CMC, 2 MCP, 3 IP, 4 tip; index 5 MCP, 6 PIP,
7 DIP, 8 tip; middle 9-12; ring 13-16; little 17-20.

The hand frame ``H`` (drawn in the README):

- origin at the wrist (0);
- ``x`` distal: wrist -> middle MCP (9);
- ``z`` palmar: normal of the palm plane through wrist, index MCP (5) and little MCP (17),
  pointing out of the palm;
- ``y = z × x``: towards the little finger on a right hand, the thumb on a left hand.

Because ``H`` is built from the keypoints alone, retargeting in ``H`` does not depend on how the
input coordinates are rotated or translated.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from retarget.exceptions import InvalidInputError

NUM_KEYPOINTS = 21
WRIST = 0
THUMB_TIP = 4
INDEX_MCP = 5
INDEX_TIP = 8
MIDDLE_MCP = 9
LITTLE_MCP = 17
FINGER_MCP = {INDEX_TIP: INDEX_MCP, 12: MIDDLE_MCP, 16: 13, 20: LITTLE_MCP}
"""The MCP keypoint of each finger's tip keypoint (index, middle, ring, little; thumb aside)."""

HandSide = Literal["right", "left"]


def check_keypoints(
    keypoints: NDArray[np.floating], name: str = "keypoints"
) -> NDArray[np.float64]:
    """Return ``keypoints`` as float64 of shape (T, 21, 3), or raise a clear error.

    Args:
        keypoints: Shape (T, 21, 3) (or (21, 3) for one frame) [m].
        name: Name used in error messages.

    Raises:
        InvalidInputError: On a wrong shape.
    """
    array = np.asarray(keypoints, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (NUM_KEYPOINTS, 3):
        raise InvalidInputError(
            f"{name} must have shape (T, 21, 3) (MediaPipe order, metres), "
            f"got {np.shape(keypoints)}"
        )
    return array


def hand_frame_from_keypoints(
    keypoints: NDArray[np.floating], side: HandSide
) -> NDArray[np.float64]:
    """Estimate the hand frame ``H`` from keypoints.

    Args:
        keypoints: Shape (T, 21, 3), any right-handed metric frame ``F`` [m]. Must be finite.
        side: ``"right"`` or ``"left"``: which hand the keypoints are (sets the palm normal's sign).

    Returns:
        ``transform_hand_to_input``: shape (T, 4, 4), the pose of ``H`` in ``F``.

    Raises:
        InvalidInputError: On a wrong shape, a non-finite value, an unknown side, or a
            degenerate hand (wrist and MCPs collinear or coincident).
    """
    points = check_keypoints(keypoints)
    if side not in ("right", "left"):
        raise InvalidInputError(f"unknown hand side {side!r}; valid choices: 'right', 'left'")
    if not np.isfinite(points).all():
        bad = np.flatnonzero(~np.isfinite(points).all(axis=(1, 2)))
        raise InvalidInputError(f"keypoints have NaN/inf in frames {bad[:10].tolist()}")
    wrist = points[:, WRIST]
    x_axis = points[:, MIDDLE_MCP] - wrist
    to_index = points[:, INDEX_MCP] - wrist
    to_little = points[:, LITTLE_MCP] - wrist
    # Right hand: index x little points out of the palm; the left hand is its mirror image.
    normal = np.cross(to_index, to_little) * (1.0 if side == "right" else -1.0)
    x_norm = np.linalg.norm(x_axis, axis=-1)
    x_axis = x_axis / np.where(x_norm > 0, x_norm, 1.0)[:, None]
    z_axis = normal - np.sum(normal * x_axis, axis=-1, keepdims=True) * x_axis
    z_norm = np.linalg.norm(z_axis, axis=-1)
    degenerate = (x_norm < 1e-6) | (z_norm < 1e-9)
    if degenerate.any():
        raise InvalidInputError(
            "degenerate hand keypoints (wrist, index MCP and little MCP collinear or coincident) "
            f"in frames {np.flatnonzero(degenerate)[:10].tolist()}"
        )
    z_axis = z_axis / z_norm[:, None]
    y_axis = np.cross(z_axis, x_axis)
    transform = np.zeros((len(points), 4, 4))
    transform[:, :3, 0] = x_axis
    transform[:, :3, 1] = y_axis
    transform[:, :3, 2] = z_axis
    transform[:, :3, 3] = wrist
    transform[:, 3, 3] = 1.0
    return transform


def keypoints_in_hand_frame(keypoints: NDArray[np.floating], side: HandSide) -> NDArray[np.float64]:
    """Express keypoints in their own hand frame ``H``.

    Args:
        keypoints: Shape (T, 21, 3), any metric frame [m].
        side: ``"right"`` or ``"left"``.

    Returns:
        Shape (T, 21, 3), the keypoints in ``H`` [m] (wrist at the origin).
    """
    points = check_keypoints(keypoints)
    transform = hand_frame_from_keypoints(points, side)
    rotation = transform[:, :3, :3]
    return np.einsum("tji,tkj->tki", rotation, points - transform[:, None, :3, 3])
