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

from retarget.robot import Robot, _frame_id, transform_matrix


def find_srdf(urdf: Path) -> Path | None:
    """The SRDF of ``urdf`` in the ``../srdf/<stem>.srdf`` convention, if there is one."""
    candidate = urdf.parent.parent / "srdf" / f"{urdf.stem}.srdf"
    return candidate if candidate.is_file() else None


def _collision_model(urdf: Path, package_dirs: list[str]) -> tuple[pin.Model, pin.GeometryModel]:
    """The kinematic model of a URDF and its collision geometry."""
    model = pin.buildModelFromUrdf(str(urdf))
    geometry = pin.buildGeomFromUrdf(
        model, str(urdf), pin.GeometryType.COLLISION, package_dirs=package_dirs
    )
    return model, geometry


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
        urdf = description.urdf.resolve()
        model, geometry = _collision_model(urdf, description.urdf.package_dirs())
        srdfs = [find_srdf(urdf)]
        if description.attach is not None:
            attach = description.attach
            child_urdf = attach.urdf.resolve()
            child, child_geometry = _collision_model(child_urdf, attach.urdf.package_dirs())
            parent = _frame_id(model, attach.parent_frame, "attach parent_frame", robot.name)
            placement = pin.SE3(transform_matrix(attach.transform_child_to_parent))
            model, geometry = pin.appendModel(
                model, child, geometry, child_geometry, parent, placement
            )
            srdfs.append(find_srdf(child_urdf))
        if list(model.names) != list(robot.model.names):
            raise AssertionError("collision model joints differ from the robot model's")
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
            objects = checker.geometry.geometryObjects
            centers, radii = [], []
            for item in objects:
                item.geometry.computeLocalAABB()
                centers.append(np.asarray(item.geometry.aabb_center, dtype=np.float64))
                radii.append(float(item.geometry.aabb_radius))
            self._parts.append(
                (checker, pin.SE3(np.asarray(transform)), np.array(centers), np.array(radii))
            )
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
