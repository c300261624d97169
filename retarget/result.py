"""What a retargeting returns: the joint trajectory, its flags and the residuals behind them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Residual:
    """Per-frame errors of a retargeted trajectory; NaN where a figure does not apply.

    Attributes:
        position: End-effector position error [m], shape (T,).
        orientation: End-effector orientation error [rad], shape (T,).
        fingertip: Mean wrist-to-fingertip vector error, robot scale [m], shape (T,).
        joint_speed: Largest joint speed over its velocity limit since the previous frame with
            a hand, shape (T,) (1.0 = at the limit); NaN without timestamps.
        singular_value: The arm's dexterity (``FeasibilityConfig.min_singular_value``), shape
            (T,).
        collisions: Number of colliding geometry pairs, shape (T,) (NaN without a hand or with
            the check off).
    """

    position: NDArray[np.float64]
    orientation: NDArray[np.float64]
    fingertip: NDArray[np.float64]
    joint_speed: NDArray[np.float64]
    singular_value: NDArray[np.float64]
    collisions: NDArray[np.float64]


@dataclass(frozen=True)
class RetargetResult:
    """A retargeted trajectory. Arrays are read-only.

    Attributes:
        joint_names: Names of the columns of ``q``.
        q: Joint positions, shape (T, nq) [rad] or [m].
        feasible: No flag set, shape (T,).
        flags: Bitmask of :class:`Flag`, shape (T,).
        residual: Per-frame errors.
        transform_ee_to_base: Reached end-effector (palm) pose, shape (T, 4, 4); for a free
            hand the palm pose implied by the wrist pose, NaN without one.
        iterations: Solver iterations per frame (arm plus hand), shape (T,).
        target_turn: The turn about the approach axis of the end-effector target the solve
            reached, shape (T,) [rad] (0 or pi for a 2-fold gripper, see
            :mod:`retarget.symmetry`; 0 without symmetry); NaN without a hand or without an arm.
        optimized: Whether ``q`` was refined over the whole clip
            (:class:`retarget.TrajectoryOptimizer`) after the per-frame solve.
    """

    joint_names: tuple[str, ...]
    q: NDArray[np.float64]
    feasible: NDArray[np.bool_]
    flags: NDArray[np.int64]
    residual: Residual
    transform_ee_to_base: NDArray[np.float64]
    iterations: NDArray[np.int64]
    target_turn: NDArray[np.float64] | None = None
    optimized: bool = False


_Array = TypeVar("_Array", bound=np.ndarray)


def readonly(array: _Array) -> _Array:
    """``array``, made read-only in place (results hand out arrays that must not change)."""
    array.setflags(write=False)
    return array
