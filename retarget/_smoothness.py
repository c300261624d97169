"""The smoothness terms of a batch of joint trajectories: finite differences and their adjoints.

Trajectories are tensors of shape (B, T, n) (clips, frames, joints) with true frame periods
``dt`` of shape (B, T - 1) [s]. Velocity, acceleration and jerk are the first, second and third
divided differences; :func:`adjoint` is the transpose of :func:`derivatives` (the dot-product
test in ``tests/test_trajectory.py`` checks it), which a Gauss-Newton step needs for the
gradient and the Hessian's products.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Derivatives(NamedTuple):
    """Divided differences of a (B, T, n) trajectory."""

    velocity: torch.Tensor
    """Shape (B, T - 1, n) [unit/s]."""
    acceleration: torch.Tensor
    """Shape (B, T - 2, n) [unit/s^2]."""
    jerk: torch.Tensor
    """Shape (B, T - 3, n) [unit/s^3]."""


class Periods(NamedTuple):
    """The time steps each difference divides by, (B, T - 1), (B, T - 2), (B, T - 3) [s]."""

    velocity: torch.Tensor
    acceleration: torch.Tensor
    jerk: torch.Tensor


def periods(dt: torch.Tensor) -> Periods:
    """The divisors of :func:`derivatives` for frame periods ``dt`` (B, T - 1) [s]."""
    middle = (dt[:, 1:] + dt[:, :-1]) / 2
    return Periods(dt, middle, (middle[:, 1:] + middle[:, :-1]) / 2)


def _difference(x: torch.Tensor) -> torch.Tensor:
    return x[:, 1:] - x[:, :-1]


def _difference_adjoint(y: torch.Tensor) -> torch.Tensor:
    """The transpose of :func:`_difference`: (B, M, n) -> (B, M + 1, n)."""
    zero = torch.zeros_like(y[:, :1])
    return torch.cat([zero, y], dim=1) - torch.cat([y, zero], dim=1)


def derivatives(x: torch.Tensor, steps: Periods) -> Derivatives:
    """Velocity, acceleration and jerk of ``x`` (B, T, n)."""
    velocity = _difference(x) / steps.velocity[..., None]
    acceleration = _difference(velocity) / steps.acceleration[..., None]
    jerk = _difference(acceleration) / steps.jerk[..., None]
    return Derivatives(velocity, acceleration, jerk)


def adjoint(grad: Derivatives, steps: Periods) -> torch.Tensor:
    """The transpose of :func:`derivatives` applied to ``grad``: shape (B, T, n)."""
    acceleration = grad.acceleration + _difference_adjoint(grad.jerk / steps.jerk[..., None])
    velocity = grad.velocity + _difference_adjoint(acceleration / steps.acceleration[..., None])
    return _difference_adjoint(velocity / steps.velocity[..., None])


def bands(weights: Derivatives, steps: Periods) -> torch.Tensor:
    """The bands of ``adjoint(weights * derivatives(.))``, shape (4, B, T, n).

    The smoothness Hessian is diagonal in the joints and banded in time: entry ``[d, b, t, j]``
    is its coupling of frame ``t`` with frame ``t + d`` for joint ``j`` (zero past the end).
    """
    velocity = torch.stack([-1 / steps.velocity, 1 / steps.velocity], dim=-1)
    inverse = 1 / steps.velocity
    acceleration = (
        torch.stack([inverse[:, :-1], -(inverse[:, 1:] + inverse[:, :-1]), inverse[:, 1:]], dim=-1)
        / steps.acceleration[..., None]
    )
    zero = torch.zeros_like(acceleration[:, 1:, :1])
    jerk = (
        torch.cat([zero, acceleration[:, 1:]], dim=-1)
        - torch.cat([acceleration[:, :-1], zero], dim=-1)
    ) / steps.jerk[..., None]
    frames = steps.velocity.shape[1] + 1
    shape = (4, weights.velocity.shape[0], frames, weights.velocity.shape[2])
    out = torch.zeros(shape, dtype=steps.velocity.dtype, device=steps.velocity.device)
    for weight, stencil in zip(weights, (velocity, acceleration, jerk), strict=True):
        count, width = stencil.shape[1], stencil.shape[2]
        for i in range(width):
            for d in range(width - i):
                product = (stencil[..., i] * stencil[..., i + d])[..., None]
                out[d, :, i : i + count] += weight * product
    return out
