"""End-effector symmetry: turns about the approach axis that grasp the same way.

A parallel gripper turned 180 deg about its approach axis (the z axis of its end-effector frame)
is the same gripper with its jaws swapped, so a wrist pose asks for one of two equally good
end-effector orientations (:class:`robots.Symmetry`). A target ``T`` and its turned twin
``T @ Rz(angle)`` are *equivalent*; the orientation residual is measured to the nearest one.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from retarget.config import RetargetConfig
from retarget.robot import Robot
from robots import Symmetry


def turned(
    transform: NDArray[np.float64], angle: float | NDArray[np.float64]
) -> NDArray[np.float64]:
    """``transform @ Rz(angle)``: poses turned about their own z axis by ``angle`` [rad].

    ``transform`` (..., 4, 4) and ``angle`` (...) broadcast: one pose, or a whole trajectory
    with a turn per frame.
    """
    turn = np.asarray(angle, dtype=np.float64)[..., None]
    cos, sin = np.cos(turn), np.sin(turn)
    out = np.array(transform, dtype=np.float64, copy=True)
    x, y = out[..., :3, 0].copy(), out[..., :3, 1].copy()
    out[..., :3, 0] = cos * x + sin * y
    out[..., :3, 1] = -sin * x + cos * y
    return out


def nearest_turn(
    target: NDArray[np.float64], pose: NDArray[np.float64], symmetry: Symmetry
) -> float:
    """The turn of ``target`` about its z axis nearest in orientation to ``pose`` [rad].

    Among the equivalent targets (``none``: 0; ``2-fold``: 0 or pi; ``continuous``: any), the
    one whose rotation is closest (geodesic angle) to ``pose``'s. Both are (4, 4) in one frame.
    """
    if symmetry is Symmetry.NONE:
        return 0.0
    relative = target[:3, :3].T @ pose[:3, :3]
    # trace(Rz(a)^T M) = cos(a) (M00 + M11) + sin(a) (M10 - M01) + M22: largest at this a.
    along = relative[0, 0] + relative[1, 1]
    if symmetry is Symmetry.TWO_FOLD:
        return 0.0 if along >= 0.0 else math.pi
    return math.atan2(relative[1, 0] - relative[0, 1], along)


def symmetry_of(robot: Robot, config: RetargetConfig) -> Symmetry:
    """The symmetry a solve and its residuals use: the robot's, unless ``use_symmetry`` is off."""
    return robot.description.symmetry if config.use_symmetry else Symmetry.NONE


def other_turn(turn: float) -> float:
    """The twin of a 2-fold turn: 0 <-> pi."""
    return 0.0 if turn else math.pi
