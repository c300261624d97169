"""The hand solver's Levenberg-Marquardt loop, compiled (numba, cached on disk).

One call solves one frame (:meth:`retarget.VectorRetargeter.solve` documents the objective, the
active set and the collision term); the kinematics are :mod:`retarget._chain`'s, the
distances :mod:`retarget._distances`'.
``model`` is the tuple :meth:`retarget.vector_retargeting.VectorRetargeter._arrays` builds, and
``settings`` the float array of :func:`settings_array`: numba takes them as they are, so one
compiled function serves every hand.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from retarget._chain import add_point_jacobian, compiled, dot, forward
from retarget._distances import FAR, pair_distances, place_shapes

(
    MAX_ITERATIONS,
    STEP_TOLERANCE,
    TEMPORAL_WEIGHT,
    DAMPING,
    DAMPING_GAIN,
    RELATIVE_TOLERANCE,
    MARGIN,
    WEIGHT,
    SLACK,
    ROUNDS,
    WATCH,
) = range(11)


def settings_array(
    max_iterations: int,
    step_tolerance: float,
    temporal_weight: float,
    damping: float,
    damping_gain: float,
    relative_tolerance: float,
    margin: float,
    weight: float,
    slack: float,
    rounds: int,
    watch: float,
) -> NDArray[np.float64]:
    """The solver's settings in the order the compiled loop reads them."""
    return np.array(
        [
            max_iterations,
            step_tolerance,
            temporal_weight,
            damping,
            damping_gain,
            relative_tolerance,
            margin,
            weight,
            slack,
            rounds,
            watch,
        ],
        dtype=np.float64,
    )


@compiled
def _cholesky_solve(matrix: NDArray[np.float64], rhs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Solve a small symmetric positive definite system (damping keeps it definite)."""
    n = len(rhs)
    low = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            total = matrix[i, j]
            for k in range(j):
                total -= low[i, k] * low[j, k]
            if i == j:
                low[i, i] = math.sqrt(max(total, 1e-300))
            else:
                low[i, j] = total / low[j, j]
    y = np.empty(n)
    for i in range(n):
        total = rhs[i]
        for k in range(i):
            total -= low[i, k] * y[k]
        y[i] = total / low[i, i]
    x = np.empty(n)
    for i in range(n - 1, -1, -1):
        total = y[i]
        for k in range(i + 1, n):
            total -= low[k, i] * x[k]
        x[i] = total / low[i, i]
    return x


@compiled
def vectors_and_jacobian(
    q: NDArray[np.float64], model: tuple, jacobian: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64], tuple]:
    """Robot vectors in the palm frame (K, 3) [m], their Jacobian (3K, nv), the joint poses."""
    parent, rot_parent, pos_parent, axis, kind, index_q = model[:6]
    tip_joint, tip_position, rotation_palm, wrist, incidence = model[6:11]
    poses = forward(q, parent, rot_parent, pos_parent, axis, kind, index_q)
    rotation, origin, world_axis = poses
    count = len(tip_joint) + 1
    nv = len(q)
    points = np.empty((count, 3))
    points[0] = wrist
    point_jac = np.zeros((count, 3, nv))
    for i in range(1, count):
        joint = tip_joint[i - 1]
        for m in range(3):
            points[i, m] = origin[joint, m] + (
                rotation[joint, m, 0] * tip_position[i - 1, 0]
                + rotation[joint, m, 1] * tip_position[i - 1, 1]
                + rotation[joint, m, 2] * tip_position[i - 1, 2]
            )
        if not jacobian:
            continue
        j = joint
        while j > 0:  # world-aligned point Jacobian: a_j x (p - o_j), or a_j
            a, column = world_axis[j], index_q[j]
            if kind[j] == 0:
                r0 = points[i, 0] - origin[j, 0]
                r1 = points[i, 1] - origin[j, 1]
                r2 = points[i, 2] - origin[j, 2]
                point_jac[i, 0, column] = a[1] * r2 - a[2] * r1
                point_jac[i, 1, column] = a[2] * r0 - a[0] * r2
                point_jac[i, 2, column] = a[0] * r1 - a[1] * r0
            else:
                point_jac[i, 0, column] = a[0]
                point_jac[i, 1, column] = a[1]
                point_jac[i, 2, column] = a[2]
            j = parent[j]
    vector_count = len(incidence)
    vectors = np.zeros((vector_count, 3))
    jac = np.zeros((3 * vector_count, nv))
    between = np.empty(3)
    between_jac = np.empty((3, nv))
    for k in range(vector_count):
        between[:] = 0.0
        between_jac[:] = 0.0
        for p in range(count):
            weight = incidence[k, p]
            if weight == 0.0:
                continue
            for m in range(3):
                between[m] += weight * points[p, m]
                if jacobian:
                    for i in range(nv):
                        between_jac[m, i] += weight * point_jac[p, m, i]
        for c in range(3):  # rows of R_palm^T
            vectors[k, c] = (
                rotation_palm[0, c] * between[0]
                + rotation_palm[1, c] * between[1]
                + rotation_palm[2, c] * between[2]
            )
            if jacobian:
                for i in range(nv):
                    jac[3 * k + c, i] = (
                        rotation_palm[0, c] * between_jac[0, i]
                        + rotation_palm[1, c] * between_jac[1, i]
                        + rotation_palm[2, c] * between_jac[2, i]
                    )
    return vectors, jac, poses


@compiled
def vectors_many(q: NDArray[np.float64], model: tuple) -> NDArray[np.float64]:
    """:func:`vectors_and_jacobian`'s vectors for each row of ``q`` (T, nv): (T, K, 3) [m]."""
    out = np.empty((len(q), len(model[10]), 3))
    for t in range(len(q)):
        out[t] = vectors_and_jacobian(q[t], model, False)[0]
    return out


@compiled
def touching(q: NDArray[np.float64], chain: tuple, shapes: tuple) -> NDArray[np.bool_]:
    """Whether two shapes overlap, for each row of ``q`` (T, nv): (T,)."""
    every = np.arange(len(shapes[6]))
    out = np.zeros(len(q), dtype=np.bool_)
    for t in range(len(q)):
        poses = forward(q[t], chain[0], chain[1], chain[2], chain[3], chain[4], chain[5])
        distance = shape_distances(poses, shapes, every, 0.0)[0]
        out[t] = len(distance) > 0 and distance.min() < 0.0
    return out


@compiled
def shape_distances(
    poses: tuple, shapes: tuple, which: NDArray[np.int64], reach: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Distances (P,), normals, witness points of the pairs ``which`` at ``poses``.

    ``shapes``: :meth:`retarget.shapes.HandShapes.arrays`.
    :func:`retarget._distances.pair_distances`: pairs beyond ``reach`` are left :data:`FAR`.
    """
    owner, center_in_joint, rotation_in_joint, shape_kind, size, bound, pairs = shapes
    centers, rotations = place_shapes(poses[0], poses[1], owner, center_in_joint, rotation_in_joint)
    return pair_distances(centers, rotations, shape_kind, size, bound, pairs, which, reach)


@compiled
def within(q: NDArray[np.float64], model: tuple, reach: float) -> tuple[NDArray[np.int64], float]:
    """The pairs closer than ``reach`` [m] at ``q``, and the closest distance of all [m]."""
    parent, rot_parent, pos_parent, axis, kind, index_q = model[:6]
    poses = forward(q, parent, rot_parent, pos_parent, axis, kind, index_q)
    every = np.arange(len(model[21]))
    distance = shape_distances(poses, model[15:22], every, reach)[0]
    closest = distance.min() if len(distance) else FAR
    return np.flatnonzero(distance < reach), closest


@compiled
def distance_jacobian(
    poses: tuple,
    chain: tuple,
    shapes: tuple,
    rows: NDArray[np.int64],
    normal: NDArray[np.float64],
    on_a: NDArray[np.float64],
    on_b: NDArray[np.float64],
    nv: int,
) -> NDArray[np.float64]:
    """d(distance)/dq of the pairs ``rows``: ``n . (J_b(x_b) - J_a(x_a))``, shape (R, nv).

    ``chain``: :meth:`retarget.shapes.Chain.arrays`; ``shapes``: ``HandShapes.arrays``.
    """
    parent, kind, index_q = chain[0], chain[4], chain[5]
    owner, pairs = shapes[0], shapes[6]
    origin, world_axis = poses[1], poses[2]
    out = np.zeros((len(rows), nv))
    for r in range(len(rows)):
        k = rows[r]
        a, b = pairs[k, 0], pairs[k, 1]
        add_point_jacobian(
            out[r], 1.0, on_b[k], owner[b], normal[k], parent, kind, index_q, origin, world_axis
        )
        add_point_jacobian(
            out[r], -1.0, on_a[k], owner[a], normal[k], parent, kind, index_q, origin, world_axis
        )
    return out


@compiled
def _objective(
    q: NDArray[np.float64],
    target: NDArray[np.float64],
    q_prev: NDArray[np.float64],
    weight: float,
    watch: NDArray[np.int64],
    model: tuple,
    settings: NDArray[np.float64],
) -> tuple[float, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
           NDArray[np.float64], float]:  # fmt: skip
    """Cost, vector Jacobian, vector error, gaps within reach, their Jacobian, closest [m].

    Only the pairs ``watch`` are measured (``closest`` is theirs).
    """
    weights = model[11]
    vectors, jac, poses = vectors_and_jacobian(q, model, True)
    error = target - vectors.ravel()
    drift = q - q_prev
    cost = dot(error * weights, error) + settings[TEMPORAL_WEIGHT] * dot(drift, drift)
    nv = len(q)
    if len(watch) == 0:
        return cost, jac, error, np.zeros(0), np.zeros((0, nv)), FAR
    margin = settings[MARGIN]
    reach = margin + settings[SLACK]
    distance, normal, on_a, on_b = shape_distances(poses, model[15:22], watch, reach)
    rows = np.flatnonzero(distance < reach)
    gap = margin - distance[rows]
    for g in gap:
        if g > 0:
            cost += weight * g * g
    gap_jac = distance_jacobian(poses, model[:6], model[15:22], rows, normal, on_a, on_b, nv)
    return cost, jac, error, gap, gap_jac, distance.min()


@compiled
def tip_error(error: NDArray[np.float64], tip_rows: NDArray[np.int64]) -> float:
    """Mean norm of the wrist-to-fingertip vectors' rows of a stacked error (3K,) [m]."""
    total = 0.0
    for k in tip_rows:
        e = error[3 * k : 3 * k + 3]
        total += math.sqrt(dot(e, e))
    return total / len(tip_rows)


@compiled
def _met(
    goal: float, closest: float, error: NDArray[np.float64], tip_rows: NDArray[np.int64]
) -> bool:
    """Whether ``goal`` (>= 0; negative: none) is met: tip error within it, no shapes touching."""
    return goal >= 0 and closest >= 0 and tip_error(error, tip_rows) <= goal


@compiled
def _step(
    q: NDArray[np.float64],
    jac: NDArray[np.float64],
    error: NDArray[np.float64],
    gap: NDArray[np.float64],
    gap_jac: NDArray[np.float64],
    q_prev: NDArray[np.float64],
    weight: float,
    damping: float,
    model: tuple,
    settings: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The damped Gauss-Newton candidate, joint limits held by an active set."""
    weights, lower, upper = model[11], model[12], model[13]
    n = len(q)
    temporal = settings[TEMPORAL_WEIGHT]
    base_hessian = np.zeros((n, n))
    base_descent = -temporal * (q - q_prev)
    for row in range(len(error)):
        w = weights[row]
        for i in range(n):
            scaled = w * jac[row, i]
            if scaled == 0.0:
                continue
            base_descent[i] += scaled * error[row]
            for j in range(i + 1):
                base_hessian[i, j] += scaled * jac[row, j]
    for i in range(n):
        base_hessian[i, i] += temporal + damping
    active = gap > 0
    while True:
        hessian, descent = base_hessian.copy(), base_descent.copy()
        for r in range(len(gap)):
            if active[r]:
                row_jac = gap_jac[r]
                for i in range(n):
                    scaled = weight * row_jac[i]
                    if scaled == 0.0:
                        continue
                    descent[i] += scaled * gap[r]
                    for j in range(i + 1):
                        hessian[i, j] += scaled * row_jac[j]
        for i in range(n):  # the lower triangle holds the sums: mirror it
            for j in range(i):
                hessian[j, i] = hessian[i, j]
        for i in range(n):
            if (q[i] <= lower[i] and descent[i] < 0) or (q[i] >= upper[i] and descent[i] > 0):
                hessian[i, :] = 0.0
                hessian[:, i] = 0.0
                hessian[i, i] = 1.0
                descent[i] = 0.0
        candidate = np.minimum(np.maximum(q + _cholesky_solve(hessian, descent), lower), upper)
        entering = False
        moved = candidate - q
        for r in range(len(gap)):
            # Pairs still clear that this step would bring inside the margin join the model.
            if not active[r] and gap[r] - dot(gap_jac[r], moved) > 0:
                active[r] = True
                entering = True
        if not entering:
            return candidate


@compiled
def _minimize(
    target: NDArray[np.float64],
    q_start: NDArray[np.float64],
    q_prev: NDArray[np.float64],
    weight: float,
    goal: float,
    watch: NDArray[np.int64],
    model: tuple,
    settings: NDArray[np.float64],
) -> tuple[NDArray[np.float64], int, bool, float]:
    """The loop from ``q_start`` on the pairs ``watch``: joints, steps, goal met, closest [m]."""
    tip_rows = model[14]
    step_tol2 = settings[STEP_TOLERANCE] ** 2
    q = q_start.copy()
    cost, jac, error, gap, gap_jac, closest = _objective(
        q, target, q_prev, weight, watch, model, settings
    )
    if _met(goal, closest, error, tip_rows):
        return q, 0, True, closest
    damping = settings[DAMPING_GAIN] * cost + settings[DAMPING]
    iterations = 0
    while iterations < settings[MAX_ITERATIONS]:
        candidate = _step(q, jac, error, gap, gap_jac, q_prev, weight, damping, model, settings)
        moved = candidate - q
        if dot(moved, moved) < step_tol2:
            break
        iterations += 1
        new = _objective(candidate, target, q_prev, weight, watch, model, settings)
        if new[0] < cost:
            improvement = cost - new[0]
            q = candidate
            cost, jac, error, gap, gap_jac, closest = new
            damping = max(damping * 0.3, settings[DAMPING])
            if _met(goal, closest, error, tip_rows):
                return q, iterations, True, closest
            if improvement < settings[RELATIVE_TOLERANCE] * cost:
                break
        else:
            damping *= 10.0
    return q, iterations, False, closest


@compiled
def solve_frame(
    target: NDArray[np.float64],
    q_prev: NDArray[np.float64],
    goal: float,
    model: tuple,
    settings: NDArray[np.float64],
) -> tuple[NDArray[np.float64], int, bool, NDArray[np.float64]]:
    """One frame from ``q_prev``.

    Returns the joints, the iterations, whether ``goal`` (>= 0; -1: none) was met, and the robot
    vectors reached (K, 3) [m].

    A solve that ends with two parts in contact (targets pulling hard against the penalty) is
    run again from where it ended with ten times the collision weight, ``ROUNDS`` times at most.
    """
    lower, upper = model[12], model[13]
    q_prev = np.minimum(np.maximum(q_prev, lower), upper)
    weight = settings[WEIGHT]
    reach = settings[MARGIN] + settings[SLACK]
    # Pairs near at the start are watched from the first step; pairs a solve brings within
    # reach that were not join, and the solve goes on from where it was.
    watch = within(q_prev, model, reach + settings[WATCH])[0]
    q, iterations, met, closest = q_prev, 0, False, FAR
    escalations = 0
    for _ in range(int(settings[ROUNDS]) + 4):
        q, more, met, closest = _minimize(target, q, q_prev, weight, goal, watch, model, settings)
        iterations += more
        near, closest = within(q, model, reach)
        new = np.array([k for k in near if not (watch == k).any()], dtype=np.int64)
        if met and closest >= 0:
            break
        met = False
        if len(new):
            watch = np.concatenate((watch, new))
        elif closest < 0 and escalations < settings[ROUNDS]:
            # Still in contact: targets pulling hard (fingertip errors of several cm) can
            # balance the penalty inside the margin. Ten times the weight, from here.
            weight *= 10.0
            escalations += 1
        else:
            break
    return q, iterations, met, vectors_and_jacobian(q, model, False)[0]
