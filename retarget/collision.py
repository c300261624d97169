"""Self-collision of a robot on its URDF collision geometry (Pinocchio + coal).

Pairs that are never checked:

- geometries on the same link or on links joined by one joint (adjacent links always touch at
  their joint in URDF meshes);
- pairs the robot's SRDF disables (``<disable_collisions>``), when an SRDF sits beside the URDF
  in the usual ``<robot>_description/srdf/<name>.srdf`` place (example-robot-data's Panda and UR5
  have one);
- pairs already in contact at the robot's rest configuration, which is collision-free by
  definition: such contacts come from coarse collision meshes, not from the motion.
"""

from __future__ import annotations

from pathlib import Path

import coal
import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

from retarget.robot import Robot, frame_id, transform_matrix


def find_srdf(urdf: Path) -> Path | None:
    """The SRDF of ``urdf`` in the ``../srdf/<stem>.srdf`` convention, if there is one."""
    candidate = urdf.parent.parent / "srdf" / f"{urdf.stem}.srdf"
    return candidate if candidate.is_file() else None


def _geometry_model(
    urdf: Path, package_dirs: list[str], kind: pin.GeometryType
) -> tuple[pin.Model, pin.GeometryModel]:
    """The kinematic model of a URDF and its collision or visual geometry."""
    model = pin.buildModelFromUrdf(str(urdf))
    geometry = pin.buildGeomFromUrdf(model, str(urdf), kind, package_dirs=package_dirs)
    return model, geometry


def robot_geometry(
    robot: Robot, kind: pin.GeometryType = pin.GeometryType.COLLISION
) -> tuple[pin.Model, pin.GeometryModel, int]:
    """The robot's kinematic model with its collision or visual geometry.

    For an arm carrying a hand (``attach``), the hand's model and geometry are appended at the
    arm's attach frame, as in :class:`retarget.Robot`.

    Returns:
        The model (the same joints as ``robot.model``), its geometry, and how many of the
        geometry objects come first from the main URDF (the rest are the attached hand's).

    Raises:
        AssertionError: The geometry's model does not match the robot's joints.
    """
    description = robot.description
    model, geometry = _geometry_model(
        description.urdf.resolve(), description.urdf.package_dirs(), kind
    )
    own = len(geometry.geometryObjects)
    if description.attach is not None:
        attach = description.attach
        child, child_geometry = _geometry_model(
            attach.urdf.resolve(), attach.urdf.package_dirs(), kind
        )
        parent = frame_id(model, attach.parent_frame, "attach parent_frame", robot.name)
        placement = pin.SE3(transform_matrix(attach.transform_child_to_parent))
        model, geometry = pin.appendModel(model, child, geometry, child_geometry, parent, placement)
    if list(model.names) != list(robot.model.names):
        raise AssertionError("geometry model joints differ from the robot model's")
    return model, geometry, own


def _bounding_spheres(
    geometry: pin.GeometryModel, in_joint_frame: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Spheres around each part of ``geometry`` (its local AABB's).

    Returns:
        Centres, shape (N, 3) [m], in the part's own frame or in its joint's frame; radii,
        shape (N,) [m].
    """
    centers, radii = [], []
    for item in geometry.geometryObjects:
        item.geometry.computeLocalAABB()
        center = np.asarray(item.geometry.aabb_center, dtype=np.float64)
        centers.append(item.placement.act(center) if in_joint_frame else center)
        radii.append(float(item.geometry.aabb_radius))
    return np.array(centers).reshape(-1, 3), np.array(radii)


class SelfCollision:
    """Checks a robot configuration for self-collision.

    Args:
        robot: A loaded robot.

    Attributes:
        geometry: The collision geometry model (``pin.GeometryModel``).
        pairs: Names of the checked geometry pairs.
        excluded: Counts of pairs left out, by reason (``adjacent``, ``srdf``, ``rest``).
    """

    def __init__(self, robot: Robot) -> None:
        description = robot.description
        model, geometry, _ = robot_geometry(robot)
        srdfs = [find_srdf(description.urdf.resolve())]
        if description.attach is not None:
            srdfs.append(find_srdf(description.attach.urdf.resolve()))
        self.model = model
        self.geometry = geometry
        self.excluded = {"adjacent": 0, "srdf": 0, "rest": 0}
        geometry.addAllCollisionPairs()
        total = len(geometry.collisionPairs)
        self._remove(lambda a, b: self._adjacent(a, b))
        self.excluded["adjacent"] = total - len(geometry.collisionPairs)
        for srdf in srdfs:
            if srdf is not None:
                before = len(geometry.collisionPairs)
                pin.removeCollisionPairs(model, geometry, str(srdf))
                self.excluded["srdf"] += before - len(geometry.collisionPairs)
        self.data = model.createData()
        self.geometry_data = pin.GeometryData(geometry)
        at_rest = set(self._colliding_indices(robot.model_configuration(robot.rest)))
        if at_rest:
            names = [self._pair_names(k) for k in sorted(at_rest)]
            keep = [p for k, p in enumerate(geometry.collisionPairs) if k not in at_rest]
            geometry.removeAllCollisionPairs()
            for pair in keep:
                geometry.addCollisionPair(pair)
            self.excluded["rest"] = len(names)
            self.geometry_data = pin.GeometryData(geometry)
        self.pairs = tuple(self._pair_names(k) for k in range(len(geometry.collisionPairs)))

    def _adjacent(self, a: int, b: int) -> bool:
        objects = self.geometry.geometryObjects
        joint_a, joint_b = objects[a].parentJoint, objects[b].parentJoint
        parents = self.model.parents
        return joint_a == joint_b or parents[joint_a] == joint_b or parents[joint_b] == joint_a

    def _remove(self, drop: object) -> None:
        keep = [
            p
            for p in self.geometry.collisionPairs
            if not drop(p.first, p.second)  # type: ignore[operator]
        ]
        self.geometry.removeAllCollisionPairs()
        for pair in keep:
            self.geometry.addCollisionPair(pair)

    def _pair_names(self, index: int) -> tuple[str, str]:
        pair = self.geometry.collisionPairs[index]
        objects = self.geometry.geometryObjects
        return objects[pair.first].name, objects[pair.second].name

    def _colliding_indices(self, q_model: NDArray[np.float64]) -> list[int]:
        if not pin.computeCollisions(
            self.model, self.data, self.geometry, self.geometry_data, q_model, False
        ):
            return []
        return [
            k
            for k, result in enumerate(self.geometry_data.collisionResults)
            if result.isCollision()
        ]

    def colliding(self, q_model: NDArray[np.float64]) -> list[tuple[str, str]]:
        """Geometry pairs in collision at the full model configuration ``q_model`` (model.nq)."""
        return [self.pairs[k] for k in self._colliding_indices(q_model)]

    def __repr__(self) -> str:
        return f"SelfCollision(pairs={len(self.pairs)}, excluded={self.excluded})"


class CrossCollision:
    """Checks two robots' collision geometry against each other (e.g. a bimanual robot's arms).

    Every geometry object of the first robot is tested against every object of the second,
    after a bounding-sphere test; each robot stands at its own base pose in a shared frame.

    Args:
        first: The first robot's collision checker.
        second: The second robot's.
        transform_first_to_base: Pose of the first robot's base in the shared frame, (4, 4).
        transform_second_to_base: Pose of the second robot's base, (4, 4).
    """

    def __init__(
        self,
        first: SelfCollision,
        second: SelfCollision,
        transform_first_to_base: NDArray[np.float64],
        transform_second_to_base: NDArray[np.float64],
    ) -> None:
        self._parts = []
        for checker, transform in (
            (first, transform_first_to_base),
            (second, transform_second_to_base),
        ):
            centers, radii = _bounding_spheres(checker.geometry, in_joint_frame=False)
            self._parts.append((checker, pin.SE3(np.asarray(transform)), centers, radii))
        self._request = coal.CollisionRequest()

    def colliding(
        self, q_first_model: NDArray[np.float64], q_second_model: NDArray[np.float64]
    ) -> list[tuple[str, str]]:
        """Pairs (first object, second object) in contact at the two model configurations."""
        placed = []
        for (checker, base, centers, radii), q in zip(
            self._parts, (q_first_model, q_second_model), strict=True
        ):
            pin.updateGeometryPlacements(
                checker.model, checker.data, checker.geometry, checker.geometry_data, q
            )
            poses = [base * pose for pose in checker.geometry_data.oMg]
            middles = np.array([pose.act(c) for pose, c in zip(poses, centers, strict=True)])
            placed.append((checker.geometry.geometryObjects, poses, middles, radii))
        (objects_a, poses_a, middles_a, radii_a), (objects_b, poses_b, middles_b, radii_b) = placed
        gaps = np.linalg.norm(middles_a[:, None] - middles_b[None], axis=-1)
        near = np.argwhere(gaps <= radii_a[:, None] + radii_b[None])
        contacts = []
        for i, j in near.tolist():
            result = coal.CollisionResult()
            pose_a, pose_b = poses_a[i], poses_b[j]
            if coal.collide(
                objects_a[i].geometry,
                coal.Transform3s(pose_a.rotation, pose_a.translation),
                objects_b[j].geometry,
                coal.Transform3s(pose_b.rotation, pose_b.translation),
                self._request,
                result,
            ):
                contacts.append((objects_a[i].name, objects_b[j].name))
        return contacts


def _cross(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise cross product of (N, 3) arrays (``np.cross`` costs several times more)."""
    out = np.empty_like(a)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


def hand_geometry(
    checker: SelfCollision,
    free: tuple[str, ...],
    anchor_frame: str,
    reference: NDArray[np.float64],
) -> tuple[pin.Model, pin.GeometryModel]:
    """A hand's own collision problem: the model with only ``free`` moving, and its pairs.

    Every joint but ``free`` is locked at ``reference`` (full model configuration, shape
    (nq_model,)). Only pairs of :class:`SelfCollision` whose distance depends on the hand joints
    alone are kept (finger against finger, finger against the parts fixed to the joint of
    ``anchor_frame``, the palm): a part moved by a locked joint (an arm link) would be placed
    at the reference configuration, not where the arm is.

    Returns:
        The reduced model (``nv == len(free)``) and its geometry holding the kept pairs, its
        parts in the order of ``checker.geometry``.
    """
    full = checker.model
    lock = [j for j in range(1, full.njoints) if full.names[j] not in free]
    anchor = full.frames[full.getFrameId(anchor_frame)].parentJoint
    hand = {full.getJointId(name) for name in free}
    objects = checker.geometry.geometryObjects
    kept = []
    for pair in checker.geometry.collisionPairs:
        joints = {objects[pair.first].parentJoint, objects[pair.second].parentJoint}
        if joints <= hand | {anchor} and joints & hand:
            kept.append((pair.first, pair.second))
    model, geometry = pin.buildReducedModel(full, checker.geometry, lock, reference)
    geometry.removeAllCollisionPairs()
    for first, second in kept:
        geometry.addCollisionPair(pin.CollisionPair(first, second))
    return model, geometry


class CollisionAvoidance:
    """Exact signed distances between a hand's own parts (coal) and their Jacobians.

    The reference the hand solver's compiled shapes (:class:`retarget.shapes.HandShapes`, the
    same pairs on the same model) are checked against, and what the benchmarks measure the
    closest distance with; the solver itself no longer calls coal.

    It works on the solver's model: the robot with every joint but the hand's locked at a
    reference configuration. Only pairs of :class:`SelfCollision` whose distance depends on the
    hand joints alone are kept (finger against finger, finger against palm): a pair with a part
    moved by a locked joint (an arm link) would be placed at the reference configuration, not
    where the arm is, so the flag check on the whole robot keeps those to itself.

    The gradient of a pair's signed distance ``d`` is ``n^T (J_2(p_2) - J_1(p_1))``, with
    ``p_1``, ``p_2`` the witness points coal returns (deepest points when the parts overlap),
    ``n`` the unit normal from the first part to the second and ``J_i(p)`` the world-aligned
    Jacobian of the point ``p`` carried by part ``i``'s joint. Distances are computed by
    Pinocchio in one call over the pairs switched on (:meth:`watch`): from Python, the per-pair
    calls into coal cost ten times more than the distances themselves.

    Args:
        checker: The robot's collision checker (its pairs, model and geometry).
        free: Names of the joints the solver moves, in the solver model's order.
        anchor_frame: The frame the hand is carried by (the palm); parts fixed to its joint
            count as part of the hand.
        reference: Full model configuration the other joints are locked at, shape (nq_model,).

    Attributes:
        model: The reduced model (free joints only), ``model.nv == len(free)``.
        pairs: Names of the kept geometry pairs.
    """

    def __init__(
        self,
        checker: SelfCollision,
        free: tuple[str, ...],
        anchor_frame: str,
        reference: NDArray[np.float64],
    ) -> None:
        model, geometry = hand_geometry(checker, free, anchor_frame, reference)
        objects = checker.geometry.geometryObjects
        kept = [(pair.first, pair.second) for pair in geometry.collisionPairs]
        self.model = model
        self.data = model.createData()
        self.geometry = geometry
        self.geometry_data = pin.GeometryData(geometry)
        for request in self.geometry_data.distanceRequests:
            # Pinocchio starts GJK from the last call's answer by default: results would then
            # depend on what was computed before (1e-6 m apart), and so would the solver's.
            request.gjk_initial_guess = coal.GJKInitialGuess.DefaultGuess
            request.gjk_tolerance = 1e-9
        # Wrappers of the results, made once: they refer to the results in place, so they read
        # each call's answers; indexing the results afresh costs about 1 us a pair.
        self._results = list(self.geometry_data.distanceResults)
        self.pairs = tuple((objects[a].name, objects[b].name) for a, b in kept)
        reduced = geometry.geometryObjects
        if [o.name for o in reduced] != [o.name for o in objects]:
            raise AssertionError("the reduced geometry model reordered its parts")
        self._joints = np.array(
            [(reduced[a].parentJoint, reduced[b].parentJoint) for a, b in kept], dtype=np.intp
        ).reshape(-1, 2)
        self._first = np.array([a for a, _ in kept], dtype=np.intp)
        self._second = np.array([b for _, b in kept], dtype=np.intp)
        self._centers, self._radii = _bounding_spheres(geometry, in_joint_frame=True)
        self._parts_joint = np.array([item.parentJoint for item in reduced], dtype=np.intp)
        self._active = np.zeros(0, dtype=np.intp)
        # Row j: 1 on the velocity columns of joint j and its ancestors (what moves its body).
        self._support = np.zeros((model.njoints, model.nv))
        for joint in range(1, model.njoints):
            ancestor = joint
            while ancestor > 0:
                start = model.joints[ancestor].idx_v
                self._support[joint, start : start + model.joints[ancestor].nv] = 1.0
                ancestor = model.parents[ancestor]

    def _place(self, q: NDArray[np.float64], jacobians: bool) -> None:
        if jacobians:
            pin.computeJointJacobians(self.model, self.data, q)
        else:
            pin.forwardKinematics(self.model, self.data, q)
        pin.updateGeometryPlacements(self.model, self.data, self.geometry, self.geometry_data)

    def watch(self, pairs: NDArray[np.intp]) -> None:
        """Switch on exactly ``pairs`` (indices into :attr:`pairs`) for distance computations."""
        pairs = np.asarray(pairs, dtype=np.intp)
        if np.array_equal(pairs, self._active):
            return
        self.geometry_data.deactivateAllCollisionPairs()
        for k in pairs.tolist():
            self.geometry_data.activateCollisionPair(k)
        self._active = pairs

    def near(
        self, q: NDArray[np.float64], within: float
    ) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """The pairs whose signed distance is below ``within`` [m] at ``q``, and those distances.

        Bounding spheres first; coal's distance only for the pairs they cannot rule out.

        Returns:
            Indices into :attr:`pairs`, shape (P,), and their signed distances, shape (P,) [m].
        """
        if not len(self.pairs):
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        self._place(np.asarray(q, dtype=np.float64), jacobians=False)
        poses = np.array([pose.homogeneous for pose in self.data.oMi])[self._parts_joint]
        middles = (poses[:, :3, :3] @ self._centers[:, :, None])[:, :, 0] + poses[:, :3, 3]
        gaps = (
            np.linalg.norm(middles[self._first] - middles[self._second], axis=-1)
            - self._radii[self._first]
            - self._radii[self._second]
        )
        maybe = np.flatnonzero(gaps < within)
        if not len(maybe):
            return maybe, np.zeros(0)
        self.watch(maybe)
        pin.computeDistances(self.geometry, self.geometry_data)
        results = self._results
        distances = np.array([results[k].min_distance for k in maybe.tolist()])
        below = distances < within
        return maybe[below], distances[below]

    def distances(
        self, q: NDArray[np.float64], pairs: NDArray[np.intp], below: float = np.inf
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Signed distances of ``pairs`` at ``q`` and their Jacobian.

        Args:
            q: Free joint positions, shape (nv,).
            pairs: Indices into :attr:`pairs`, shape (P,).
            below: Jacobian rows are computed only for pairs closer than this [m]; the others
                are left zero.

        Returns:
            Distances, shape (P,) [m] (negative: penetration depth), and their Jacobian with
            respect to the free joints, shape (P, nv) [m/rad].
        """
        pairs = np.asarray(pairs, dtype=np.intp)
        self._place(np.asarray(q, dtype=np.float64), jacobians=True)
        self.watch(pairs)
        pin.computeDistances(self.geometry, self.geometry_data)
        results = self._results
        picked = [results[k] for k in pairs.tolist()]
        distances = np.array([result.min_distance for result in picked], dtype=np.float64)
        jacobian = np.zeros((len(pairs), self.model.nv))
        rows = np.flatnonzero(distances < below)
        if len(rows):
            chosen = [picked[i] for i in rows.tolist()]
            normal = np.array([result.normal for result in chosen]).reshape(-1, 3)
            first = np.array([result.getNearestPoint1() for result in chosen]).reshape(-1, 3)
            second = np.array([result.getNearestPoint2() for result in chosen]).reshape(-1, 3)
            # data.J: joint motions in the world frame, so a world point p moves at
            # J_lin + p x ... and n . (w x p) = (p x n) . w.
            world = self.data.J
            along = normal @ world[:3]
            turn = _cross(np.concatenate([first, second]), np.concatenate([normal, normal]))
            turn = turn @ world[3:]
            joints = self._joints[pairs[rows]]
            jacobian[rows] = (along + turn[len(rows) :]) * self._support[joints[:, 1]] - (
                along + turn[: len(rows)]
            ) * self._support[joints[:, 0]]
        return distances, jacobian

    def closest(self, q: NDArray[np.float64]) -> float:
        """The smallest signed distance over every kept pair at ``q`` [m] (negative: overlap)."""
        every = np.arange(len(self.pairs))
        return float(self.distances(q, every, below=-np.inf)[0].min())

    def __repr__(self) -> str:
        return f"CollisionAvoidance(pairs={len(self.pairs)}, nv={self.model.nv})"
