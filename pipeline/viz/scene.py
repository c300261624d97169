"""The robot of an episode as scenes to render: over the video, in the side panel, in the inset.

Viewpoints (all fixed, so that frames compare):

- Overlay: the input's camera (:func:`~pipeline.viz.episode.robot_cameras`).
- Side panel of a robot with an arm: from its left and a little behind (:data:`PANEL_AZIMUTH`
  from its base's +x towards +y) and :data:`PANEL_ELEVATION` above, z up, framed so that the
  robot over the whole episode fills :data:`PANEL_FILL` of the panel. (Arms reach forward and
  sideways: seen from the side they stay tall in the panel. On the ZED clip the smallest frame
  of Panda, SO-101 and UR5 + Allegro spans 0.63-0.72 of the panel's height at 120 deg,
  0.39-0.68 from the front, 0.49-0.70 at 30 deg.) A
  bimanual robot is seen from the front instead (:data:`BIMANUAL_PANEL_AZIMUTH`), so that one
  arm does not hide the other.
- Side panel of a free-floating hand, and the inset of an arm's hand: the palm seen from
  between its normal and the thumb's side (:data:`HAND_VIEW_ANGLE` from the normal), fingers up,
  the camera fixed to the palm so that only the fingers move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from pipeline.tracks import Intrinsics
from pipeline.viz.episode import hand_frame
from pipeline.viz.meshes import RobotMeshes, robot_meshes
from pipeline.viz.render import Posed, framing, look_rotation
from retarget import BimanualRobot, Flag, Robot
from retarget.collision import SelfCollision
from robots import RobotKind

#: The side panel's view of an arm: azimuth from the base's +x towards +y [rad].
PANEL_AZIMUTH = np.radians(120.0)
#: ... of a bimanual robot (its arms side by side along y).
BIMANUAL_PANEL_AZIMUTH = np.radians(30.0)
#: ... and elevation above the base's xy plane [rad].
PANEL_ELEVATION = np.radians(20.0)
#: Fraction of the panel's height (or width, if that binds first) that the robot spans over
#: the episode.
PANEL_FILL = 0.9
#: Angle of the hand view from the palm's normal towards the thumb's side [rad].
HAND_VIEW_ANGLE = np.radians(45.0)
#: Frames sampled to frame a view (the robot's reach over the episode).
_FRAMING_SAMPLES = 24


@dataclass(frozen=True)
class Arm:
    """One kinematic tree of the drawn robot (a bimanual robot has two).

    Attributes:
        name: ``left`` or ``right`` for an arm of a bimanual robot, else the robot's name.
        robot: It.
        meshes: Its meshes.
        columns: Its columns of the episode's ``observation.state``.
        transform_arm_to_base: Its base in the drawn robot's base frame (4, 4).
    """

    name: str
    robot: Robot
    meshes: RobotMeshes
    columns: slice
    transform_arm_to_base: NDArray[np.float64]


class Inset(NamedTuple):
    """The inset's view of the hand an arm carries.

    Attributes:
        transform_camera_to_hand: The camera's pose in the hand frame H (4, 4).
        intrinsics: Its camera.
        parts: The hand's parts (the ones drawn).
    """

    transform_camera_to_hand: NDArray[np.float64]
    intrinsics: Intrinsics
    parts: frozenset[int]


def arms_of(robot: Robot | BimanualRobot) -> list[Arm]:
    """The kinematic trees of ``robot`` with their meshes."""
    if not isinstance(robot, BimanualRobot):
        return [Arm(robot.name, robot, robot_meshes(robot), slice(0, robot.nq), np.eye(4))]
    return [
        Arm(
            side,
            robot.arm(side),
            robot_meshes(robot.arm(side)),
            robot.columns(side),
            robot.transform_arm_base_to_base(side),
        )
        for side in ("left", "right")
    ]


def scene_at(
    arms: list[Arm],
    q: NDArray[np.float64],
    transform_camera_to_base: NDArray[np.float64],
    contacts: list[frozenset[int]] | None = None,
) -> list[Posed]:
    """The robot at one frame's joint positions ``q`` (all columns), seen from a camera."""
    return [
        Posed(
            arm.meshes,
            q[arm.columns],
            np.linalg.inv(arm.transform_arm_to_base) @ transform_camera_to_base,
            contacts[i] if contacts else frozenset(),
        )
        for i, arm in enumerate(arms)
    ]


def _samples(frames: int) -> NDArray[np.intp]:
    return np.unique(np.linspace(0, frames - 1, min(frames, _FRAMING_SAMPLES)).round().astype(int))


def panel_view(
    arms: list[Arm], state: NDArray[np.float64], size: tuple[int, int]
) -> tuple[NDArray[np.float64], Intrinsics]:
    """The side panel's camera in the drawn robot's base frame (4, 4), and its intrinsics."""
    first = arms[0].robot
    points = np.concatenate(
        [
            arm.meshes.vertices_in(state[t, arm.columns], np.linalg.inv(arm.transform_arm_to_base))
            for t in _samples(len(state))
            for arm in arms
        ]
    )
    if len(arms) == 1 and first.description.kind is RobotKind.HAND:
        transform_hand_to_base = hand_frame(first, state[0])
        rotation = transform_hand_to_base[:3, :3] @ hand_view_rotation(first)
    else:
        azimuth = PANEL_AZIMUTH if len(arms) == 1 else BIMANUAL_PANEL_AZIMUTH
        direction = np.array(
            [
                np.cos(PANEL_ELEVATION) * np.cos(azimuth),
                np.cos(PANEL_ELEVATION) * np.sin(azimuth),
                np.sin(PANEL_ELEVATION),
            ]
        )
        rotation = look_rotation(-direction, np.array([0.0, 0.0, 1.0]))
    return framing(points, rotation, size, PANEL_FILL)


def hand_view_rotation(robot: Robot) -> NDArray[np.float64]:
    """The hand view's camera orientation in the hand frame H (:data:`HAND_VIEW_ANGLE`)."""
    thumb_side = -1.0 if robot.description.side.value == "right" else 1.0  # H's y on each side
    toward_camera = np.array([0.0, thumb_side * np.sin(HAND_VIEW_ANGLE), np.cos(HAND_VIEW_ANGLE)])
    return look_rotation(-toward_camera, np.array([1.0, 0.0, 0.0]))


def inset_view(arm: Arm, state: NDArray[np.float64], size: tuple[int, int]) -> Inset | None:
    """The inset's view of the hand an arm carries, framed over the episode.

    None for a robot that carries no hand.
    """
    if arm.robot.description.kind is not RobotKind.ARM_HAND:
        return None
    hand = frozenset(k for k, part in enumerate(arm.meshes.parts) if part.on_hand)
    chosen = np.isin(arm.meshes.vertex_part, list(hand))
    points = []
    for t in _samples(len(state)):
        q = state[t, arm.columns]
        points.append(arm.meshes.vertices_in(q, hand_frame(arm.robot, q))[chosen])
    camera, intrinsics = framing(np.concatenate(points), hand_view_rotation(arm.robot), size, 0.9)
    return Inset(camera, intrinsics, hand)


class Contacts:
    """Which mesh parts touch on a ``SELF_COLLISION`` frame, from coal's exact check."""

    def __init__(self, arms: list[Arm]) -> None:
        self._arms = arms
        self._checkers: dict[int, SelfCollision] = {}

    def at(self, q: NDArray[np.float64], flags: int) -> list[frozenset[int]]:
        """Per arm, its parts on the links of a colliding pair (none unless flagged)."""
        if not flags & Flag.SELF_COLLISION:
            return [frozenset()] * len(self._arms)
        found = []
        for i, arm in enumerate(self._arms):
            if i not in self._checkers:  # built on the first flagged frame (about 0.5 s)
                self._checkers[i] = SelfCollision(arm.robot)
            checker = self._checkers[i]
            objects = checker.geometry
            joints = {
                objects.geometryObjects[objects.getGeometryId(name)].parentJoint
                for pair in checker.colliding(arm.robot.model_configuration(q[arm.columns]))
                for name in pair
            }
            found.append(frozenset(k for k, p in enumerate(arm.meshes.parts) if p.joint in joints))
        return found
