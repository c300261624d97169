"""A dexterous hand as arrays for the compiled solver: its joint tree and its collision shapes.

:class:`Chain` is a Pinocchio model's joint tree (revolute and prismatic joints, one degree of
freedom each), :class:`HandShapes` the hand's URDF collision parts as spheres and boxes with the
pairs to keep apart (:func:`retarget.collision.hand_geometry`'s). A sphere or a box part is
taken as it is; any other part (a mesh, a cylinder, a capsule) by the box of its local bounding
box, which holds it. With the distances of :mod:`retarget._distances` (exact for spheres, box
against sphere and overlapping boxes; a lower bound for boxes apart) the shapes are never closer
than coal's exact distances on the URDF geometry: ``tests/test_shapes.py`` checks it on random
configurations. coal stays the reference for the ``SELF_COLLISION`` flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

from retarget import _hand_solver as solver
from retarget._chain import PRISMATIC, REVOLUTE, forward
from retarget._distances import BOX, SPHERE
from retarget.collision import SelfCollision, hand_geometry
from retarget.exceptions import InvalidInputError

_AXES = {"X": (1.0, 0.0, 0.0), "Y": (0.0, 1.0, 0.0), "Z": (0.0, 0.0, 1.0)}


@dataclass(frozen=True)
class Chain:
    """A Pinocchio model's joint tree, one array per field (joint 0: the root).

    Attributes:
        parent: Shape (J,): each joint's parent joint.
        rotation_in_parent: Shape (J, 3, 3): the joint frame's rotation in its parent's at q=0.
        position_in_parent: Shape (J, 3) [m]: its origin there.
        axis: Shape (J, 3): unit axis in the joint frame.
        kind: Shape (J,): ``REVOLUTE`` (0) or ``PRISMATIC`` (1).
        index_q: Shape (J,): the joint's column in ``q``.
    """

    parent: NDArray[np.int64]
    rotation_in_parent: NDArray[np.float64]
    position_in_parent: NDArray[np.float64]
    axis: NDArray[np.float64]
    kind: NDArray[np.int64]
    index_q: NDArray[np.int64]

    @classmethod
    def from_model(cls, model: pin.Model) -> Chain:
        """The tree of ``model``.

        Raises:
            InvalidInputError: A joint that is not a one-axis revolute or prismatic joint.
        """
        joints = model.njoints
        rotation, position = np.zeros((joints, 3, 3)), np.zeros((joints, 3))
        axis, kind = np.zeros((joints, 3)), np.zeros(joints, dtype=np.int64)
        rotation[0] = np.eye(3)
        for j in range(1, joints):
            joint = model.joints[j]
            name = joint.shortname().removeprefix("JointModel")
            if joint.nq != 1 or joint.nv != 1 or "Mimic" in name:
                raise InvalidInputError(
                    f"hand joint {model.names[j]!r} is a {name} joint; the hand solver takes "
                    "revolute (RX, RY, RZ, RevoluteUnaligned) and prismatic (PX, PY, PZ, "
                    "PrismaticUnaligned) joints"
                )
            if name.startswith("Revolute") or name[:1] == "R":
                kind[j] = REVOLUTE
            elif name.startswith("Prismatic") or name[:1] == "P":
                kind[j] = PRISMATIC
            else:
                raise InvalidInputError(f"hand joint {model.names[j]!r}: unknown type {name}")
            if name in ("RX", "RY", "RZ", "PX", "PY", "PZ"):
                axis[j] = _AXES[name[1]]
            else:
                axis[j] = np.asarray(joint.extract().axis, dtype=np.float64)
            placement = model.jointPlacements[j]
            rotation[j], position[j] = placement.rotation, placement.translation
        return cls(
            np.array(model.parents, dtype=np.int64),
            rotation,
            position,
            axis,
            kind,
            np.array([0] + [model.joints[j].idx_q for j in range(1, joints)], dtype=np.int64),
        )

    def arrays(self) -> tuple[Any, ...]:
        """The fields in the order the kernels take them."""
        return (
            self.parent,
            self.rotation_in_parent,
            self.position_in_parent,
            self.axis,
            self.kind,
            self.index_q,
        )

    def poses(
        self, q: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """World rotations (J, 3, 3), origins (J, 3) and joint axes (J, 3) at ``q``."""
        return forward(np.asarray(q, dtype=np.float64), *self.arrays())


class HandShapes:
    """The hand's collision parts as spheres and boxes, and the pairs kept apart.

    Args:
        checker: The robot's collision check (its pairs, model and geometry).
        free: The hand's joints, in the solver model's order.
        anchor_frame: The frame the hand is carried by (the palm).
        reference: Full model configuration the other joints are locked at.

    Attributes:
        model: The reduced model (``nv == len(free)``), from
            :func:`~retarget.collision.hand_geometry`.
        chain: Its joint tree.
        pairs: Names of the pairs kept apart (the geometry's part names).
        kinds: ``"sphere"`` or ``"box"`` per part.
        held: Per part, whether it is held in a box rather than taken as it is (a mesh, a
            cylinder...: its distances are lower bounds).
    """

    def __init__(
        self,
        checker: SelfCollision,
        free: tuple[str, ...],
        anchor_frame: str,
        reference: NDArray[np.float64],
    ) -> None:
        model, geometry = hand_geometry(checker, free, anchor_frame, reference)
        self.model = model
        self.chain = Chain.from_model(model)
        objects = geometry.geometryObjects
        count = len(objects)
        self.owner = np.array([item.parentJoint for item in objects], dtype=np.int64)
        self.center_in_joint = np.zeros((count, 3))
        self.rotation_in_joint = np.zeros((count, 3, 3))
        self.shape_kind = np.zeros(count, dtype=np.int64)
        self.size = np.zeros((count, 3))
        held = []
        for s, item in enumerate(objects):
            shape, placement = item.geometry, item.placement
            self.rotation_in_joint[s] = placement.rotation
            kind = type(shape).__name__
            held.append(kind not in ("Sphere", "Box"))
            if kind == "Sphere":
                self.shape_kind[s], self.size[s, 0] = SPHERE, float(shape.radius)
                self.center_in_joint[s] = placement.translation
                continue
            self.shape_kind[s] = BOX
            if kind == "Box":
                center, half = np.zeros(3), np.asarray(shape.halfSide, dtype=np.float64)
            else:  # the box of its local bounding box holds it
                shape.computeLocalAABB()
                low = np.asarray(shape.aabb_local.min_, dtype=np.float64)
                high = np.asarray(shape.aabb_local.max_, dtype=np.float64)
                center, half = (low + high) / 2, (high - low) / 2
            self.center_in_joint[s] = placement.act(center)
            self.size[s] = half
        self.bound = np.where(
            self.shape_kind == SPHERE, self.size[:, 0], np.linalg.norm(self.size, axis=1)
        )
        self.pair_index = np.array(
            [(p.first, p.second) for p in geometry.collisionPairs], dtype=np.int64
        ).reshape(-1, 2)
        self.pairs = tuple((objects[int(a)].name, objects[int(b)].name) for a, b in self.pair_index)
        self.kinds = tuple("sphere" if k == SPHERE else "box" for k in self.shape_kind)
        self.held = tuple(held)

    def arrays(self) -> tuple[Any, ...]:
        """The shape arrays in the order the kernels take them."""
        return (
            self.owner,
            self.center_in_joint,
            self.rotation_in_joint,
            self.shape_kind,
            self.size,
            self.bound,
            self.pair_index,
        )

    def distances(self, q: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Signed distances of every pair at ``q`` (P,) [m] and their Jacobian (P, nv) [m/rad].

        Negative: overlap (the penetration depth of spheres, a sphere in a box, and boxes).
        """
        q = np.asarray(q, dtype=np.float64)
        poses = self.chain.poses(q)
        shapes, rows = self.arrays(), np.arange(len(self.pair_index), dtype=np.int64)
        distance, normal, on_a, on_b = solver.shape_distances(poses, shapes, rows, np.inf)
        jacobian = solver.distance_jacobian(
            poses, self.chain.arrays(), shapes, rows, normal, on_a, on_b, len(q)
        )
        return distance, jacobian

    def in_contact(self, q: NDArray[np.float64]) -> bool:
        """Whether two shapes overlap at ``q``.

        Only the pairs their bounding volumes cannot clear are measured.
        """
        return bool(self.in_contact_many(np.asarray(q, dtype=np.float64)[None])[0])

    def in_contact_many(self, q: NDArray[np.float64]) -> NDArray[np.bool_]:
        """:meth:`in_contact` for each row of ``q`` (T, nv): (T,)."""
        q = np.ascontiguousarray(q, dtype=np.float64).reshape(-1, self.model.nv)
        return solver.touching(q, self.chain.arrays(), self.arrays())

    def closest(self, q: NDArray[np.float64]) -> float:
        """The smallest signed distance over every pair at ``q`` [m] (inf without pairs)."""
        return float(self.distances(q)[0].min()) if len(self.pairs) else float("inf")

    def __repr__(self) -> str:
        return f"HandShapes(parts={len(self.owner)}, pairs={len(self.pairs)})"
