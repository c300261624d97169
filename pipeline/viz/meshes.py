"""A robot's URDF visual meshes, simplified for drawing, placed by forward kinematics.

The meshes are the URDF's ``<visual>`` geometry as Pinocchio loads it (``package://`` paths
through the robot's package folders, ``scale`` applied; boxes, cylinders, spheres and capsules
as meshes), each part simplified by quadric decimation (``fast-simplification``) to a share of
:data:`TRIANGLE_BUDGET` in proportion to the square root of its surface area: what a video
frame needs, a few thousand triangles instead of the up to 400k of the original meshes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import coal
import fast_simplification
import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

from retarget import Robot
from retarget.collision import robot_geometry
from robots import RobotDescription, RobotKind

log = logging.getLogger(__name__)

#: Triangles of a whole robot after simplification.
TRIANGLE_BUDGET = 6000
#: The fewest triangles a part keeps (a small part stays recognisable).
MIN_PART_TRIANGLES = 100


@dataclass(frozen=True)
class MeshPart:
    """One visual geometry object of a robot.

    Attributes:
        name: The geometry object's name (``<link>_<k>``).
        link: The link (frame) that carries it.
        joint: Index of its parent joint in the robot's model.
        on_hand: Whether it belongs to the hand an arm carries (an ``attach``ed URDF); always
            ``True`` for a free-floating hand.
        color: The URDF material's colour, RGB in [0, 1].
        triangles: How many triangles it has after simplification.
    """

    name: str
    link: str
    joint: int
    on_hand: bool
    color: tuple[float, float, float]
    triangles: int


class RobotMeshes:
    """The simplified visual meshes of a robot, posed at any configuration.

    Args:
        robot: A loaded robot.
        triangle_budget: Triangles of the whole robot after simplification.

    Attributes:
        parts: One :class:`MeshPart` per visual geometry object.
        vertices: Every part's vertices in its own frame, concatenated, shape (V, 3) [m].
        triangles: Vertex indices into ``vertices``, shape (F, 3).
        vertex_part: The part of each vertex, shape (V,).
        triangle_part: The part of each triangle, shape (F,).
        colors: Each part's URDF colour, shape (P, 3), RGB in [0, 1] (read-only).
    """

    def __init__(self, robot: Robot, triangle_budget: int = TRIANGLE_BUDGET) -> None:
        self.robot = robot
        self.model, self.geometry, own = robot_geometry(robot, pin.GeometryType.VISUAL)
        self.data = self.model.createData()
        self.geometry_data = pin.GeometryData(self.geometry)
        meshes = [_part_mesh(item) for item in self.geometry.geometryObjects]
        floating = robot.description.kind is RobotKind.HAND
        on_hand = np.array([floating or k >= own for k in range(len(meshes))])
        # Shares by the square root of the area: a small part (a wrist flange, a fingertip)
        # keeps enough triangles to stay in one piece.
        areas = np.sqrt(np.array([_area(v, f) for v, f in meshes]).reshape(-1))
        shares = np.zeros(len(meshes))
        groups = [on_hand, ~on_hand] if on_hand.any() and not on_hand.all() else [on_hand | True]
        for group in groups:  # an arm carrying a hand: half the triangles for the hand
            shares[group] = (
                triangle_budget / len(groups) * areas[group] / max(areas[group].sum(), 1e-12)
            )
        parts, vertices, triangles, vertex_part, triangle_part = [], [], [], [], []
        offset = 0
        for k, (item, (v, f)) in enumerate(zip(self.geometry.geometryObjects, meshes, strict=True)):
            v, f = _simplified(v, f, max(MIN_PART_TRIANGLES, int(shares[k])))
            frame = self.model.frames[item.parentFrame].name
            red, green, blue = (float(c) for c in np.asarray(item.meshColor)[:3])
            joint = int(item.parentJoint)
            color = (red, green, blue)
            parts.append(MeshPart(item.name, frame, joint, bool(on_hand[k]), color, len(f)))
            vertices.append(v)
            triangles.append(f + offset)
            vertex_part.append(np.full(len(v), k))
            triangle_part.append(np.full(len(f), k))
            offset += len(v)
        self.parts = tuple(parts)
        self.vertices = np.concatenate(vertices) if vertices else np.zeros((0, 3))
        self.triangles = np.concatenate(triangles) if triangles else np.zeros((0, 3), np.intp)
        self.vertex_part = np.concatenate(vertex_part) if vertex_part else np.zeros(0, np.intp)
        self.triangle_part = (
            np.concatenate(triangle_part) if triangle_part else np.zeros(0, np.intp)
        )

        self.colors = np.array([p.color for p in self.parts]).reshape(-1, 3)
        self.colors.setflags(write=False)

    def part_poses(self, q: NDArray[np.floating]) -> NDArray[np.float64]:
        """Each part's pose in the base frame at joint positions ``q`` (robot.nq), (P, 4, 4)."""
        configuration = self.robot.model_configuration(np.asarray(q, dtype=np.float64))
        pin.updateGeometryPlacements(
            self.model, self.data, self.geometry, self.geometry_data, configuration
        )
        return np.array([pose.homogeneous for pose in self.geometry_data.oMg]).reshape(-1, 4, 4)

    def vertices_in(
        self, q: NDArray[np.floating], transform_frame_to_base: NDArray[np.floating]
    ) -> NDArray[np.float64]:
        """The posed vertices in a frame whose pose in the base frame is given, (V, 3) [m].

        Args:
            q: Joint positions (robot.nq) [rad] or [m].
            transform_frame_to_base: The frame's pose in the robot base frame (4, 4), e.g. a
                camera's (``transform_camera_to_base``).
        """
        poses = np.linalg.inv(np.asarray(transform_frame_to_base)) @ self.part_poses(q)
        each = poses[self.vertex_part]
        return np.einsum("vij,vj->vi", each[:, :3, :3], self.vertices) + each[:, :3, 3]

    def __repr__(self) -> str:
        return (
            f"RobotMeshes({self.robot.name!r}, parts={len(self.parts)}, "
            f"triangles={len(self.triangles)})"
        )


_LOADED: dict[RobotDescription, RobotMeshes] = {}


def robot_meshes(robot: Robot) -> RobotMeshes:
    """:class:`RobotMeshes` of ``robot``, loaded once per process and robot description.

    Loading and simplifying takes 1-3 s; robots loaded again from the same description (the
    same URDF and mapping, so the same model) share the meshes.
    """
    meshes = _LOADED.get(robot.description)
    if meshes is None:
        if len(_LOADED) >= 8:
            _LOADED.pop(next(iter(_LOADED)))
        meshes = _LOADED[robot.description] = RobotMeshes(robot)
    return meshes


def _part_mesh(item: pin.GeometryObject) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Vertices (V, 3) [m] in the object's own frame and triangles (F, 3) of one object."""
    shape = item.geometry
    if isinstance(shape, coal.BVHModelBase):
        vertices = np.asarray(shape.vertices(), dtype=np.float64).reshape(-1, 3)
        triangles = np.array(
            [[t[0], t[1], t[2]] for t in (shape.tri_indices(i) for i in range(shape.num_tris))],
            dtype=np.intp,
        ).reshape(-1, 3)
    elif isinstance(shape, coal.Box):
        vertices, triangles = _box(np.asarray(shape.halfSide) * 2)
    elif isinstance(shape, coal.Sphere):
        vertices, triangles = _revolved(shape.radius, 0.0, shape.radius)
    elif isinstance(shape, coal.Cylinder):
        vertices, triangles = _revolved(shape.radius, shape.halfLength, 0.0)
    elif isinstance(shape, coal.Capsule):
        vertices, triangles = _revolved(shape.radius, shape.halfLength, shape.radius)
    else:
        log.warning("%s: %s is not drawn (no mesh for it)", item.name, type(shape).__name__)
        return np.zeros((0, 3)), np.zeros((0, 3), np.intp)
    return vertices, triangles


def _area(vertices: NDArray[np.float64], triangles: NDArray[np.intp]) -> float:
    p = vertices[triangles]
    return float(np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1).sum() / 2)


def _simplified(
    vertices: NDArray[np.float64], triangles: NDArray[np.intp], count: int
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """The mesh with shared vertices merged, decimated to at most about ``count`` triangles.

    Quadric decimation does the work. It is slow on meshes of 10^5 triangles and keeps open
    borders, so that on CAD exports with many it stops early: vertex clustering on a grid
    brings such meshes to four times the count before it and to the count after it.
    """
    vertices, triangles = _clustered(vertices, triangles, 1e-6)  # STL corners welded
    if len(triangles) > 4 * count:
        vertices, triangles = _coarsened(vertices, triangles, 4 * count)
    if len(triangles) > count:
        points, faces = fast_simplification.simplify(
            vertices.astype(np.float32), triangles.astype(np.int32), target_count=count
        )
        vertices, triangles = np.asarray(points, np.float64), np.asarray(faces, np.intp)
    if len(triangles) > 1.5 * count:
        vertices, triangles = _coarsened(vertices, triangles, count)
    return vertices, triangles


def _coarsened(
    vertices: NDArray[np.float64], triangles: NDArray[np.intp], count: int
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Vertex clustering on the finest grid (in steps of 1.25x) that leaves <= 1.5 x count."""
    cell = np.sqrt(2 * _area(vertices, triangles) / count)
    coarse = _clustered(vertices, triangles, cell)
    for _ in range(16):
        if len(coarse[1]) <= 1.5 * count:
            break
        cell *= 1.25
        coarse = _clustered(vertices, triangles, cell)
    return coarse


def _clustered(
    vertices: NDArray[np.float64], triangles: NDArray[np.intp], cell: float
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Vertices in one grid cell [m] merged to their mean; faces that collapse dropped."""
    if not len(triangles):
        return vertices, triangles
    _, cluster, sizes = np.unique(
        np.floor(vertices / cell).astype(np.int64), axis=0, return_inverse=True,
        return_counts=True,
    )  # fmt: skip
    cluster = cluster.reshape(-1)
    merged = np.zeros((len(sizes), 3))
    np.add.at(merged, cluster, vertices)
    merged /= sizes[:, None]
    faces = cluster[triangles]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])
                  & (faces[:, 2] != faces[:, 0])]  # fmt: skip
    _, first = np.unique(np.sort(faces, axis=1), axis=0, return_index=True)
    return merged, faces[np.sort(first)]


def _box(size: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    corners = (np.indices((2, 2, 2)).reshape(3, -1).T - 0.5) * size
    faces = [
        (0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1),
        (2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3),
    ]  # fmt: skip
    return corners, np.array(faces, dtype=np.intp)


def _revolved(
    radius: float, half_length: float, cap: float, segments: int = 24
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """A cylinder (``cap`` 0), sphere (``half_length`` 0) or capsule about z, as a mesh."""
    angles = np.linspace(0, np.pi / 2, 5) if cap else np.zeros(1)
    profile = [(radius * np.cos(a), half_length + cap * np.sin(a)) for a in angles[::-1]]
    profile += [(r, -z) for r, z in profile[::-1]]
    profile = [(0.0, half_length + cap)] + profile + [(0.0, -half_length - cap)]
    around = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    rings = np.array(
        [[(r * np.cos(a), r * np.sin(a), z) for a in around] for r, z in profile]
    ).reshape(-1, 3)
    faces = []
    for i in range(len(profile) - 1):
        for j in range(segments):
            a, b = i * segments + j, i * segments + (j + 1) % segments
            faces += [(a, b, b + segments), (a, b + segments, a + segments)]
    return rings, np.array(faces, dtype=np.intp)
