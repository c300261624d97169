"""Contacts the trajectory optimiser leaves, stepped back towards the per-frame answer.

The optimiser (:class:`retarget.TrajectoryOptimizer`) keeps a dexterous hand's own parts apart
with a penalty on a cover of spheres and holds no arm link at all, so a few frames can end in a
contact that the per-frame answer was clear of. On such a frame the joints take the smallest
step back along the line to the per-frame answer that clears the contact. A step back is a
motion: it can make the frame ``VELOCITY_LIMIT`` instead (measured in BENCHMARKS.md,
"Twenty-second session" and "Twenty-third session").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from retarget.collision import SelfCollision
from retarget.robot import Robot
from retarget.solvers import HandSolvers


def clear_hand_contacts(
    q: NDArray[np.float64], start: NDArray[np.float64], hand: HandSolvers | None
) -> NDArray[np.float64]:
    """The optimised hand kept out of the contacts the per-frame answer ``start`` was clear of.

    The sphere penalty can leave a frame a fraction of a millimetre inside the hand's shapes
    (measured on the shared clips: 3 frames of 237 on the cups clip's left hand, 0.1-1.2 mm
    deep). On such a frame the hand's joints take the smallest step back along the line to
    ``start`` that clears the hand's shapes (the shapes are never closer than the parts, so coal
    finds no contact there either). Both shapes (T, nq); ``q`` itself where nothing touches.
    """
    shapes = hand.vector.shapes if hand is not None else None
    if hand is None or shapes is None:
        return q
    columns = hand.columns
    touching = np.flatnonzero(
        shapes.in_contact_many(q[:, columns]) & ~shapes.in_contact_many(start[:, columns])
    )
    if touching.size == 0:
        return q
    cleared = q.copy()
    for t in touching.tolist():
        cleared[t, columns] = _step_back(q[t, columns], start[t, columns], shapes.in_contact)
    return cleared


def clear_robot_contacts(
    q: NDArray[np.float64],
    start: NDArray[np.float64],
    frames: NDArray[np.intp],
    checker: SelfCollision | None,
    robot: Robot,
) -> NDArray[np.float64]:
    """The optimised robot kept out of the self-collisions the per-frame answer was clear of.

    No sphere cover holds an arm's links, so they can end in contact with each other or with
    the hand where the per-frame answer ``start`` was clear (measured on the five shared
    videos: the SO-101 22 frames optimised against 7 per frame). On each frame of ``frames``
    (those the evaluation flagged ``SELF_COLLISION``) whose per-frame answer coal finds clear,
    all joints take the smallest step back along the line to it that coal finds clear. Shapes
    (T, nq); ``q`` itself where nothing changed, else a copy.
    """
    if checker is None or frames.size == 0:
        return q

    def touching(q_frame: NDArray[np.float64]) -> bool:
        return bool(checker.colliding(robot.model_configuration(q_frame)))

    cleared = q
    for t in frames.tolist():
        if touching(start[t]):
            continue  # the per-frame answer touches too: nothing to step back to
        if cleared is q:
            cleared = q.copy()
        cleared[t] = _step_back(q[t], start[t], touching)
    return cleared


def _step_back(
    q: NDArray[np.float64],
    start: NDArray[np.float64],
    touching: Callable[[NDArray[np.float64]], bool],
) -> NDArray[np.float64]:
    """The point nearest ``q`` on the segment to ``start`` that ``touching`` finds clear.

    ``q`` touches, ``start`` is clear; bisection to 1e-6 of the segment. Shapes (n,).
    """
    step = start - q
    inside, clear = 0.0, 1.0
    while clear - inside > 1e-6:
        middle = (inside + clear) / 2
        if touching(q + middle * step):
            inside = middle
        else:
            clear = middle
    return q + clear * step
