"""Compiled kinematics of a joint tree (numba, cached on disk): joint poses and point Jacobians.

The arrays are :class:`retarget.shapes.Chain`'s (read from a Pinocchio model); every pose is in
the model's world frame (the hand solver model's root; the palm is fixed in it). Units: [m],
[rad]. numba's cache is checked against each file's own source only: after editing this file,
delete ``retarget/__pycache__/*.nbi`` and ``*.nbc`` so that the kernels that call these are
compiled again (an installed release replaces all files at once).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

REVOLUTE, PRISMATIC = 0, 1
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
"""The fastmath flags of the kernels: all but the no-NaN and no-inf ones (limits may be inf)."""
compiled = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
"""How every kernel of the hand solver is compiled (cached on disk, the GIL released)."""


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def dot(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """``a . b`` of two 1-D arrays (numba's ``@`` calls BLAS: slow at this size)."""
    total = 0.0
    for i in range(len(a)):
        total += a[i] * b[i]
    return total


@compiled
def _axis_rotation(axis: NDArray[np.float64], angle: float, out: NDArray[np.float64]) -> None:
    """Rotation by ``angle`` [rad] about the unit ``axis`` (Rodrigues), into ``out`` (3, 3)."""
    c, s = math.cos(angle), math.sin(angle)
    x, y, z = axis[0], axis[1], axis[2]
    t = 1.0 - c
    out[0, 0], out[0, 1], out[0, 2] = c + x * x * t, x * y * t - z * s, x * z * t + y * s
    out[1, 0], out[1, 1], out[1, 2] = y * x * t + z * s, c + y * y * t, y * z * t - x * s
    out[2, 0], out[2, 1], out[2, 2] = z * x * t - y * s, z * y * t + x * s, c + z * z * t


@compiled
def forward(
    q: NDArray[np.float64],
    parent: NDArray[np.int64],
    rotation_in_parent: NDArray[np.float64],
    position_in_parent: NDArray[np.float64],
    axis: NDArray[np.float64],
    kind: NDArray[np.int64],
    index_q: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Joint poses in the world: rotations (J, 3, 3), origins (J, 3), world axes (J, 3).

    Joint 0 is the root (identity); joint ``j`` sits at ``parent[j] * placement[j]`` and moves
    ``q[index_q[j]]`` about (revolute) or along (prismatic) its local ``axis[j]``.
    """
    joints = len(parent)
    rotation = np.zeros((joints, 3, 3))
    origin = np.zeros((joints, 3))
    world_axis = np.zeros((joints, 3))
    rotation[0] = np.eye(3)
    placed = np.empty((3, 3))
    turn = np.empty((3, 3))
    for j in range(1, joints):
        up = parent[j]
        for i in range(3):
            total = origin[up, i]
            for k in range(3):
                total += rotation[up, i, k] * position_in_parent[j, k]
                placed[i, k] = (
                    rotation[up, i, 0] * rotation_in_parent[j, 0, k]
                    + rotation[up, i, 1] * rotation_in_parent[j, 1, k]
                    + rotation[up, i, 2] * rotation_in_parent[j, 2, k]
                )
            origin[j, i] = total
        for i in range(3):
            world_axis[j, i] = (
                placed[i, 0] * axis[j, 0] + placed[i, 1] * axis[j, 1] + placed[i, 2] * axis[j, 2]
            )
        value = q[index_q[j]]
        if kind[j] == REVOLUTE:
            _axis_rotation(axis[j], value, turn)
            for i in range(3):
                for k in range(3):
                    rotation[j, i, k] = (
                        placed[i, 0] * turn[0, k]
                        + placed[i, 1] * turn[1, k]
                        + placed[i, 2] * turn[2, k]
                    )
        else:
            rotation[j] = placed
            for i in range(3):
                origin[j, i] += world_axis[j, i] * value
    return rotation, origin, world_axis


@compiled
def add_point_jacobian(
    out: NDArray[np.float64],
    sign: float,
    point: NDArray[np.float64],
    joint: int,
    direction: NDArray[np.float64],
    parent: NDArray[np.int64],
    kind: NDArray[np.int64],
    index_q: NDArray[np.int64],
    origin: NDArray[np.float64],
    world_axis: NDArray[np.float64],
) -> None:
    """``out += sign * direction . J(point)``: the rate of a world point carried by ``joint``.

    ``out`` has shape (nv,); ``direction`` (3,). A revolute ancestor ``j`` moves the point at
    ``a_j x (point - o_j)``, a prismatic one at ``a_j``.
    """
    j = joint
    while j > 0:
        a = world_axis[j]
        if kind[j] == REVOLUTE:
            r = point - origin[j]
            rate = (
                direction[0] * (a[1] * r[2] - a[2] * r[1])
                + direction[1] * (a[2] * r[0] - a[0] * r[2])
                + direction[2] * (a[0] * r[1] - a[1] * r[0])
            )
        else:
            rate = direction[0] * a[0] + direction[1] * a[1] + direction[2] * a[2]
        out[index_q[j]] += sign * rate
        j = parent[j]
