"""Compiled signed distances of a hand's collision parts as spheres and boxes (numba, cached).

What the hand solver evaluates a dozen times a frame (:class:`retarget.shapes.HandShapes`),
with the witness points their Jacobians need. With ``n`` the unit normal from part A to part B
and ``x_a``, ``x_b`` witness points carried by A and B, every distance satisfies
``d(dist)/dq = n . (J_b(x_b) - J_a(x_a))``:

- sphere-sphere and sphere-box: exact signed distances (penetration depth when overlapping);
- box-box: the largest gap along the 15 separating axes. That is the exact penetration depth
  when the boxes overlap, and a lower bound of the distance when they are apart (a projection
  never lengthens a distance): the avoidance is conservative, never closer than coal's answer.

Pairs are screened by bounding spheres, then by the capsules that hold the boxes (Ericson,
"Real-Time Collision Detection", 5.1.9). Frames: the world frame of the poses given. [m].
The numba cache caveat of :mod:`retarget._chain` applies.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from retarget._chain import compiled

SPHERE, BOX = 0, 1
FAR = 1e9
"""The distance reported for pairs the bounding volumes put beyond reach [m]."""


@compiled
def _sphere_sphere(
    ca: NDArray[np.float64],
    ra: float,
    cb: NDArray[np.float64],
    rb: float,
    normal: NDArray[np.float64],
    on_a: NDArray[np.float64],
    on_b: NDArray[np.float64],
) -> float:
    """Exact signed distance of two spheres; normal and witness points written in place."""
    d0, d1, d2 = cb[0] - ca[0], cb[1] - ca[1], cb[2] - ca[2]
    length = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
    if length > 1e-12:
        normal[0], normal[1], normal[2] = d0 / length, d1 / length, d2 / length
    else:
        normal[0], normal[1], normal[2] = 1.0, 0.0, 0.0
    for i in range(3):
        on_a[i] = ca[i] + ra * normal[i]
        on_b[i] = cb[i] - rb * normal[i]
    return length - ra - rb


@compiled
def _box_sphere(
    cb: NDArray[np.float64],
    rot: NDArray[np.float64],
    half: NDArray[np.float64],
    cs: NDArray[np.float64],
    radius: float,
    normal: NDArray[np.float64],
    on_box: NDArray[np.float64],
    on_sphere: NDArray[np.float64],
) -> float:
    """Exact signed distance from a box to a sphere; normal (box to sphere) and witnesses."""
    local, clamped = on_sphere, on_box  # scratch until the end
    for i in range(3):
        local[i] = (
            rot[0, i] * (cs[0] - cb[0]) + rot[1, i] * (cs[1] - cb[1]) + rot[2, i] * (cs[2] - cb[2])
        )
        clamped[i] = min(max(local[i], -half[i]), half[i])
    o0, o1, o2 = local[0] - clamped[0], local[1] - clamped[1], local[2] - clamped[2]
    length = math.sqrt(o0 * o0 + o1 * o1 + o2 * o2)
    if length > 1e-12:
        gap = length - radius
        o0, o1, o2 = o0 / length, o1 / length, o2 / length
    else:  # the centre is inside the box: out through the nearest face
        face, depth = 0, FAR
        for i in range(3):
            if half[i] - abs(local[i]) < depth:
                face, depth = i, half[i] - abs(local[i])
        sign = 1.0 if local[face] >= 0 else -1.0
        o0, o1, o2 = (
            (sign if face == 0 else 0.0),
            (sign if face == 1 else 0.0),
            (sign if face == 2 else 0.0),
        )
        clamped[face] = sign * half[face]
        gap = -depth - radius
    k0, k1, k2 = clamped[0], clamped[1], clamped[2]
    for i in range(3):
        normal[i] = rot[i, 0] * o0 + rot[i, 1] * o1 + rot[i, 2] * o2
        on_box[i] = cb[i] + rot[i, 0] * k0 + rot[i, 1] * k1 + rot[i, 2] * k2
    for i in range(3):
        on_sphere[i] = cs[i] - radius * normal[i]
    return gap


@compiled
def _support(
    center: NDArray[np.float64],
    rot: NDArray[np.float64],
    half: NDArray[np.float64],
    sign: float,
    direction: NDArray[np.float64],
    skip: int,
    out: NDArray[np.float64],
) -> None:
    """The box's point furthest along ``sign * direction`` (ties: their middle), into ``out``.

    ``rot``: the box's rotation (its axes are the columns). Axis ``skip`` (0-2) is left at the
    centre (an edge's midpoint); -1 for none.
    """
    for k in range(3):
        out[k] = center[k]
    for i in range(3):
        if i == skip:
            continue
        along = sign * (
            direction[0] * rot[0, i] + direction[1] * rot[1, i] + direction[2] * rot[2, i]
        )
        step = half[i] if along > 1e-9 else (-half[i] if along < -1e-9 else 0.0)
        for k in range(3):
            out[k] += step * rot[k, i]


@compiled
def _box_box(
    ca: NDArray[np.float64],
    ra: NDArray[np.float64],
    ha: NDArray[np.float64],
    cb: NDArray[np.float64],
    rb: NDArray[np.float64],
    hb: NDArray[np.float64],
    c: NDArray[np.float64],
    normal: NDArray[np.float64],
    on_a: NDArray[np.float64],
    on_b: NDArray[np.float64],
    reach: float,
) -> float:
    """The largest gap over the 15 separating axes of two boxes, its normal and witnesses.

    ``ra``, ``rb``: the boxes' rotations (their axes are the columns); ``c``: (3, 3) scratch.
    The first axis with a gap of ``reach`` or more ends the search: that gap is returned (a
    lower bound of the largest, itself at least ``reach``), ``normal`` and the witnesses unset.
    """
    # In A's frame: B's axes (columns of c) and the centres' offset (t).
    e0, e1, e2 = cb[0] - ca[0], cb[1] - ca[1], cb[2] - ca[2]
    t0 = ra[0, 0] * e0 + ra[1, 0] * e1 + ra[2, 0] * e2
    t1 = ra[0, 1] * e0 + ra[1, 1] * e1 + ra[2, 1] * e2
    t2 = ra[0, 2] * e0 + ra[1, 2] * e1 + ra[2, 2] * e2
    for i in range(3):
        for j in range(3):
            c[i, j] = ra[0, i] * rb[0, j] + ra[1, i] * rb[1, j] + ra[2, i] * rb[2, j]
    best, best_kind = -FAR, 0
    b0 = b1 = b2 = 0.0
    for candidate in range(15):
        if candidate < 3:  # A's face normal i, in A's frame: e_i
            l0 = 1.0 if candidate == 0 else 0.0
            l1 = 1.0 if candidate == 1 else 0.0
            l2 = 1.0 if candidate == 2 else 0.0
        elif candidate < 6:  # B's face normal j, in A's frame: column j of c
            j = candidate - 3
            l0, l1, l2 = c[0, j], c[1, j], c[2, j]
        else:  # e_i x (B's axis j), in A's frame
            i, j = (candidate - 6) // 3, (candidate - 6) % 3
            if i == 0:
                l0, l1, l2 = 0.0, -c[2, j], c[1, j]
            elif i == 1:
                l0, l1, l2 = c[2, j], 0.0, -c[0, j]
            else:
                l0, l1, l2 = -c[1, j], c[0, j], 0.0
            norm = math.sqrt(l0 * l0 + l1 * l1 + l2 * l2)
            if norm < 1e-6:  # parallel edges: the face axes cover this direction
                continue
            l0, l1, l2 = l0 / norm, l1 / norm, l2 / norm
        extent = ha[0] * abs(l0) + ha[1] * abs(l1) + ha[2] * abs(l2)
        for k in range(3):
            extent += hb[k] * abs(l0 * c[0, k] + l1 * c[1, k] + l2 * c[2, k])
        along = l0 * t0 + l1 * t1 + l2 * t2
        gap = abs(along) - extent
        if gap >= reach:
            return gap
        if gap > best:
            sign = 1.0 if along >= 0 else -1.0
            best, best_kind = gap, candidate
            b0, b1, b2 = sign * l0, sign * l1, sign * l2
    for k in range(3):
        normal[k] = ra[k, 0] * b0 + ra[k, 1] * b1 + ra[k, 2] * b2
    if best_kind < 3:  # a face of A: B's support point, and its foot on that face's plane
        _support(cb, rb, hb, -1.0, normal, -1, on_b)
        for k in range(3):
            on_a[k] = on_b[k] - best * normal[k]
        return best
    if best_kind < 6:
        _support(ca, ra, ha, 1.0, normal, -1, on_a)
        for k in range(3):
            on_b[k] = on_a[k] + best * normal[k]
        return best
    # Edge against edge: the closest points of the two support edges' lines.
    i, j = (best_kind - 6) // 3, (best_kind - 6) % 3
    _support(ca, ra, ha, 1.0, normal, i, on_a)
    _support(cb, rb, hb, -1.0, normal, j, on_b)
    b = d = e = 0.0
    for k in range(3):
        w = on_a[k] - on_b[k]
        b += ra[k, i] * rb[k, j]
        d += ra[k, i] * w
        e += rb[k, j] * w
    denominator = 1.0 - b * b
    s = (b * e - d) / denominator
    u = (e - b * d) / denominator
    for k in range(3):
        on_a[k] += s * ra[k, i]
        on_b[k] += u * rb[k, j]
    return best


@compiled
def place_shapes(
    rotation: NDArray[np.float64],
    origin: NDArray[np.float64],
    owner: NDArray[np.int64],
    center_in_joint: NDArray[np.float64],
    rotation_in_joint: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """World centres (S, 3) and rotations (S, 3, 3) of the shapes carried by ``owner``."""
    shapes = len(owner)
    centers = np.empty((shapes, 3))
    rotations = np.empty((shapes, 3, 3))
    for s in range(shapes):
        joint = owner[s]
        for i in range(3):
            centers[s, i] = origin[joint, i]
            for k in range(3):
                centers[s, i] += rotation[joint, i, k] * center_in_joint[s, k]
                total = 0.0
                for m in range(3):
                    total += rotation[joint, i, m] * rotation_in_joint[s, m, k]
                rotations[s, i, k] = total
    return centers, rotations


@compiled
def pair_distance(
    a: int,
    b: int,
    centers: NDArray[np.float64],
    rotations: NDArray[np.float64],
    shape_kind: NDArray[np.int64],
    size: NDArray[np.float64],
    scratch: NDArray[np.float64],
    normal: NDArray[np.float64],
    on_a: NDArray[np.float64],
    on_b: NDArray[np.float64],
    reach: float,
) -> float:
    """Signed distance of shapes ``a`` and ``b`` [m].

    The normal (a to b) and witness points on a and b are written into ``normal``, ``on_a``,
    ``on_b`` (3,). ``scratch``: (3, 3). Two boxes
    ``reach`` or more apart may return an earlier lower bound (at least ``reach``) instead.

    ``size[s]``: a sphere's radius in column 0, a box's half extents in columns 0-2 [m].
    """
    if shape_kind[a] == SPHERE and shape_kind[b] == SPHERE:
        return _sphere_sphere(centers[a], size[a, 0], centers[b], size[b, 0], normal, on_a, on_b)
    if shape_kind[a] == BOX and shape_kind[b] == SPHERE:
        return _box_sphere(
            centers[a], rotations[a], size[a], centers[b], size[b, 0], normal, on_a, on_b
        )
    if shape_kind[a] == SPHERE:
        gap = _box_sphere(
            centers[b], rotations[b], size[b], centers[a], size[a, 0], normal, on_b, on_a
        )
        for k in range(3):
            normal[k] = -normal[k]
        return gap
    return _box_box(
        centers[a], rotations[a], size[a], centers[b], rotations[b], size[b],
        scratch, normal, on_a, on_b, reach,
    )  # fmt: skip


@compiled
def _capsule_gap(
    ca: NDArray[np.float64],
    ra: NDArray[np.float64],
    ha: NDArray[np.float64],
    a_long: int,
    a_radius: float,
    cb: NDArray[np.float64],
    rb: NDArray[np.float64],
    hb: NDArray[np.float64],
    b_long: int,
    b_radius: float,
) -> float:
    """A lower bound of two shapes' distance: the gap of the capsules that hold them [m].

    A shape's capsule runs along its rotation's column ``long`` for ``half[long]`` each way
    (a sphere: ``half`` zero) with radius ``radius``. Closest points of two segments, clamped
    (Ericson, "Real-Time Collision Detection", 5.1.9).
    """
    la, lb = ha[a_long], hb[b_long]
    x0, x1, x2 = 2.0 * la * ra[0, a_long], 2.0 * la * ra[1, a_long], 2.0 * la * ra[2, a_long]
    y0, y1, y2 = 2.0 * lb * rb[0, b_long], 2.0 * lb * rb[1, b_long], 2.0 * lb * rb[2, b_long]
    r0 = (ca[0] - 0.5 * x0) - (cb[0] - 0.5 * y0)
    r1 = (ca[1] - 0.5 * x1) - (cb[1] - 0.5 * y1)
    r2 = (ca[2] - 0.5 * x2) - (cb[2] - 0.5 * y2)
    a = x0 * x0 + x1 * x1 + x2 * x2
    e = y0 * y0 + y1 * y1 + y2 * y2
    f = y0 * r0 + y1 * r1 + y2 * r2
    if a <= 1e-18 and e <= 1e-18:
        s = t = 0.0
    elif a <= 1e-18:
        s, t = 0.0, min(max(f / e, 0.0), 1.0)
    else:
        c = x0 * r0 + x1 * r1 + x2 * r2
        if e <= 1e-18:
            s, t = min(max(-c / a, 0.0), 1.0), 0.0
        else:
            b = x0 * y0 + x1 * y1 + x2 * y2
            denominator = a * e - b * b
            s = min(max((b * f - c * e) / denominator, 0.0), 1.0) if denominator > 1e-18 else 0.0
            t = (b * s + f) / e
            if t < 0.0:
                s, t = min(max(-c / a, 0.0), 1.0), 0.0
            elif t > 1.0:
                s, t = min(max((b - c) / a, 0.0), 1.0), 1.0
    g0, g1, g2 = r0 + s * x0 - t * y0, r1 + s * x1 - t * y1, r2 + s * x2 - t * y2
    total = g0 * g0 + g1 * g1 + g2 * g2
    return math.sqrt(total) - a_radius - b_radius


@compiled
def pair_distances(
    centers: NDArray[np.float64],
    rotations: NDArray[np.float64],
    shape_kind: NDArray[np.int64],
    size: NDArray[np.float64],
    bound: NDArray[np.float64],
    pairs: NDArray[np.int64],
    which: NDArray[np.int64],
    reach: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Distances of the pairs ``which`` (P,) [m], normals (P, 3), witness points on A and B.

    Rows follow ``pairs``; pairs not in ``which`` (indices into ``pairs``), and those whose
    bounding spheres (radii ``bound``) or capsules are ``reach`` apart or more, are not
    computed: they hold :data:`FAR` and a zero normal. Distances below ``reach`` are exact
    (:func:`pair_distance`); others are only known to be at least ``reach``.
    """
    count = len(pairs)
    distance = np.full(count, FAR)
    normal = np.zeros((count, 3))
    on_a = np.zeros((count, 3))
    on_b = np.zeros((count, 3))
    scratch = np.empty((3, 3))
    zero = np.zeros(3)
    # Each box's capsule: along its longest half extent, radius the other two's diagonal.
    capsule_radius = np.empty(len(shape_kind))
    long_axis = np.zeros(len(shape_kind), dtype=np.int64)
    for s in range(len(shape_kind)):
        if shape_kind[s] == SPHERE:
            capsule_radius[s] = size[s, 0]
            continue
        h0, h1, h2 = size[s, 0], size[s, 1], size[s, 2]
        longest = 0 if h0 >= h1 and h0 >= h2 else (1 if h1 >= h2 else 2)
        long_axis[s] = longest
        capsule_radius[s] = math.sqrt(h0 * h0 + h1 * h1 + h2 * h2 - size[s, longest] ** 2)
    for k in which:
        a, b = pairs[k, 0], pairs[k, 1]
        d0 = centers[b, 0] - centers[a, 0]
        d1 = centers[b, 1] - centers[a, 1]
        d2 = centers[b, 2] - centers[a, 2]
        if math.sqrt(d0 * d0 + d1 * d1 + d2 * d2) - bound[a] - bound[b] >= reach:
            continue
        if shape_kind[a] == BOX or shape_kind[b] == BOX:
            long_a, long_b = long_axis[a], long_axis[b]
            capsule = _capsule_gap(
                centers[a], rotations[a], size[a] if shape_kind[a] == BOX else zero, long_a,
                capsule_radius[a], centers[b], rotations[b],
                size[b] if shape_kind[b] == BOX else zero, long_b, capsule_radius[b],
            )  # fmt: skip
            if capsule >= reach:
                continue
        distance[k] = pair_distance(
            a, b, centers, rotations, shape_kind, size, scratch, normal[k], on_a[k], on_b[k], reach
        )
    return distance, normal, on_a, on_b
