"""Typed, frozen descriptions of robots and of how a human hand maps onto them.

The human hand frame ``H`` (used by every mapping here) is computed from MediaPipe's 21
keypoints by :func:`retarget.hand_frame_from_keypoints`:

- origin: the wrist keypoint (0);
- ``x``: distal, from the wrist towards the middle-finger MCP (keypoint 9);
- ``z``: palmar, the normal of the palm plane (wrist, index MCP 5, pinky MCP 17), pointing out
  of the palm, i.e. the direction in which the hand grasps;
- ``y = z × x``: towards the little finger on a right hand, towards the thumb on a left hand
  (a right-handed frame cannot be anatomical on both hands; this is the one axis that mirrors).

``transform_hand_to_ee`` (the *mounting*) is the pose of ``H`` in the robot's end-effector (or
palm) frame: it maps coordinates in ``H`` to coordinates in the end-effector frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from robots.exceptions import RobotConfigError
from robots.sources import UrdfSource


class RobotKind(StrEnum):
    """What a robot carries at the end of its chain."""

    ARM_GRIPPER = "arm+gripper"
    HAND = "hand"
    ARM_HAND = "arm+hand"


class Side(StrEnum):
    """Which human hand a robot stands in for. Arms with a gripper accept either."""

    RIGHT = "right"
    LEFT = "left"
    ANY = "any"


class Symmetry(StrEnum):
    """Turns about the end effector's approach axis (its frame's z) that grasp the same way.

    A parallel gripper turned 180 deg about its approach axis is the same gripper (its jaws
    swap): ``"2-fold"``. A tool that is round about that axis (a suction cup) has
    ``"continuous"`` symmetry. ``"none"`` asks for the one orientation given.
    """

    NONE = "none"
    TWO_FOLD = "2-fold"
    CONTINUOUS = "continuous"


def _choices(enum: type[Enum]) -> str:
    return ", ".join(repr(m.value) for m in enum)


def parse_kind(value: str) -> RobotKind:
    """Parse a robot kind, with an error that lists the valid choices."""
    try:
        return RobotKind(value)
    except ValueError:
        raise RobotConfigError(
            f"unknown robot kind {value!r}; valid choices: {_choices(RobotKind)}"
        ) from None


def parse_symmetry(value: str) -> Symmetry:
    """Parse an end-effector symmetry, with an error that lists the valid choices."""
    try:
        return Symmetry(value)
    except ValueError:
        raise RobotConfigError(
            f"unknown symmetry {value!r}; valid choices: {_choices(Symmetry)}"
        ) from None


def parse_side(value: str) -> Side:
    """Parse a hand side, with an error that lists the valid choices."""
    try:
        return Side(value)
    except ValueError:
        raise RobotConfigError(f"unknown side {value!r}; valid choices: {_choices(Side)}") from None


@dataclass(frozen=True)
class Transform:
    """A rigid transform: ``p_to = rotation @ p_from + translation``.

    Attributes:
        rotation: Rotation matrix, row-major, shape (3, 3).
        translation: Translation [m], shape (3,).
    """

    rotation: tuple[tuple[float, float, float], ...] = (
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
    )
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        rows = self.rotation
        if len(rows) != 3 or any(len(r) != 3 for r in rows) or len(self.translation) != 3:
            raise RobotConfigError(
                "a transform needs a 3x3 'rotation' and a 3-vector 'translation', got "
                f"rotation={rows!r}, translation={self.translation!r}"
            )
        for i in range(3):
            for j in range(3):
                dot = sum(rows[k][i] * rows[k][j] for k in range(3))
                if abs(dot - (1.0 if i == j else 0.0)) > 1e-6:
                    raise RobotConfigError(f"rotation {rows!r} is not orthonormal")
        det = (
            rows[0][0] * (rows[1][1] * rows[2][2] - rows[1][2] * rows[2][1])
            - rows[0][1] * (rows[1][0] * rows[2][2] - rows[1][2] * rows[2][0])
            + rows[0][2] * (rows[1][0] * rows[2][1] - rows[1][1] * rows[2][0])
        )
        if det < 0:
            raise RobotConfigError(
                f"rotation {rows!r} has determinant {det:.3f}: it is a reflection, not a rotation "
                "(a left hand maps onto a left robot hand, not through a mirrored transform)"
            )

    @staticmethod
    def from_rpy(
        roll: float, pitch: float, yaw: float, translation: tuple[float, float, float] = (0, 0, 0)
    ) -> Transform:
        """Build from roll, pitch, yaw [rad]: ``R = Rz(yaw) Ry(pitch) Rx(roll)`` (URDF)."""
        cr, sr = math.cos(roll), math.sin(roll)
        cp, sp = math.cos(pitch), math.sin(pitch)
        cy, sy = math.cos(yaw), math.sin(yaw)
        rotation = (
            (cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr),
            (sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr),
            (-sp, cp * sr, cp * cr),
        )
        return Transform(
            rotation, (float(translation[0]), float(translation[1]), float(translation[2]))
        )


@dataclass(frozen=True)
class FingerMapping:
    """One human fingertip and the robot frame that stands in for it.

    Attributes:
        keypoint: MediaPipe keypoint index of the fingertip (4 thumb, 8 index, 12 middle,
            16 ring, 20 little).
        frame: Name of the robot frame (a link or fixed frame) at the matching fingertip.
    """

    keypoint: int
    frame: str

    def __post_init__(self) -> None:
        if self.keypoint not in FINGERTIP_KEYPOINTS:
            raise RobotConfigError(
                f"keypoint {self.keypoint} is not a fingertip; valid choices: "
                + ", ".join(f"{k} ({n})" for k, n in FINGERTIP_KEYPOINTS.items())
            )


#: MediaPipe fingertip keypoint indices and their names.
FINGERTIP_KEYPOINTS: dict[int, str] = {
    4: "thumb",
    8: "index",
    12: "middle",
    16: "ring",
    20: "little",
}


@dataclass(frozen=True)
class GripperMapping:
    """How the thumb-index aperture drives a gripper joint.

    The aperture (distance between thumb tip 4 and index tip 8, [m]) is mapped linearly from
    ``[closed_aperture, open_aperture]`` onto ``[closed_position, open_position]`` and clipped.

    Attributes:
        joint: Name of the driving gripper joint (not a mimic follower).
        closed_position: Joint position of the closed gripper [rad] or [m].
        open_position: Joint position of the open gripper [rad] or [m].
        closed_aperture: Human aperture that means "closed" [m].
        open_aperture: Human aperture that means "fully open" [m].
    """

    joint: str
    closed_position: float
    open_position: float
    closed_aperture: float = 0.02
    open_aperture: float = 0.10

    def __post_init__(self) -> None:
        if not 0.0 <= self.closed_aperture < self.open_aperture:
            raise RobotConfigError(
                "gripper apertures need 0 <= closed_aperture < open_aperture, got "
                f"{self.closed_aperture} and {self.open_aperture}"
            )
        if self.closed_position == self.open_position:
            raise RobotConfigError("gripper closed_position and open_position must differ")


@dataclass(frozen=True)
class Attachment:
    """A second URDF (a hand) mounted on a frame of the first (an arm) at load time.

    Attributes:
        urdf: The URDF of the attached part.
        parent_frame: Frame of the arm the part is mounted on.
        transform_child_to_parent: Pose of the attached part's root in ``parent_frame``.
    """

    urdf: UrdfSource
    parent_frame: str
    transform_child_to_parent: Transform = field(default_factory=Transform)


@dataclass(frozen=True)
class RobotDescription:
    """Everything hand2robot needs to know about one robot.

    Attributes:
        name: Registry name, lower case (``"panda"``).
        kind: Arm with gripper, free-floating hand, or arm carrying a hand.
        side: The human hand this robot stands in for.
        urdf: The robot's URDF (for ``arm+hand``, the arm's).
        ee_frame: Arms: the frame the wrist pose drives (tool centre point or palm). Hands: the
            palm frame the fingertip vectors are expressed in.
        transform_hand_to_ee: Pose of the human hand frame ``H`` in ``ee_frame`` (see module doc).
        fingertips: Human fingertips and the robot frames standing in for them (hands).
        gripper: Thumb-index aperture to gripper joint mapping (grippers).
        scale: Robot hand size over human hand size, applied to fingertip vectors.
        attach: A hand mounted on the arm at load time (``arm+hand``).
        nominal_ee_position: A comfortably reachable end-effector position in the base frame [m],
            where the median wrist position of a clip is placed by default.
        rest_pose: Joint positions [rad] or [m] to start solving from, by joint name; joints
            not named start at the middle of their range (hands) or at 0 clipped to limits.
        summary: One line for listings.
        symmetry: Turns of the end effector about its approach axis (``ee_frame``'s z) that
            grasp the same way (:class:`Symmetry`); arms only (a dexterous hand has none).
    """

    name: str
    kind: RobotKind
    side: Side
    urdf: UrdfSource
    ee_frame: str
    transform_hand_to_ee: Transform = field(default_factory=Transform)
    fingertips: tuple[FingerMapping, ...] = ()
    gripper: GripperMapping | None = None
    scale: float = 1.0
    attach: Attachment | None = None
    nominal_ee_position: tuple[float, float, float] = (0.4, 0.0, 0.3)
    rest_pose: tuple[tuple[str, float], ...] = ()
    summary: str = ""
    symmetry: Symmetry = Symmetry.NONE

    def __post_init__(self) -> None:
        object.__setattr__(self, "symmetry", parse_symmetry(str(self.symmetry)))
        if self.symmetry is not Symmetry.NONE and self.kind is not RobotKind.ARM_GRIPPER:
            raise RobotConfigError(
                f"robot {self.name!r}: symmetry {self.symmetry.value!r} is for a gripper; a "
                f"{self.kind.value} has none (valid choice: 'none')"
            )
        if not self.name or self.name != self.name.lower() or " " in self.name:
            raise RobotConfigError(
                f"robot name {self.name!r} must be non-empty, lower case, no spaces"
            )
        if not self.scale > 0:
            raise RobotConfigError(f"robot {self.name!r}: scale must be > 0, got {self.scale}")
        if self.kind is RobotKind.ARM_GRIPPER and self.gripper is None:
            raise RobotConfigError(
                f"robot {self.name!r} is an arm+gripper but has no [gripper] mapping"
            )
        if self.kind in (RobotKind.HAND, RobotKind.ARM_HAND):
            if len(self.fingertips) < 2:
                raise RobotConfigError(
                    f"robot {self.name!r} is a {self.kind.value} and needs at least two fingertip "
                    "mappings (thumb first is best)"
                )
            if self.side is Side.ANY:
                raise RobotConfigError(
                    f"robot {self.name!r}: a dexterous hand is a left or a right hand; valid "
                    "choices for side: 'left', 'right'"
                )
            keypoints = [f.keypoint for f in self.fingertips]
            if len(set(keypoints)) != len(keypoints):
                raise RobotConfigError(f"robot {self.name!r}: a fingertip keypoint is mapped twice")
        if self.kind is RobotKind.ARM_HAND and self.attach is None:
            raise RobotConfigError(
                f"robot {self.name!r} is an arm+hand and needs an [attach] table"
            )


@dataclass(frozen=True)
class BimanualDescription:
    """Two single-arm robots side by side, one per human hand, sharing one base frame.

    The shared base frame has the single robots' axes (x forward, y to the robot's left, z up);
    the person's left hand drives the arm on the left (+y).

    Attributes:
        name: Registry name.
        left: Registry name of the arm that takes the left hand.
        right: Registry name of the arm that takes the right hand.
        transform_left_base_to_base: Pose of the left arm's base in the shared base frame.
        transform_right_base_to_base: Pose of the right arm's base in the shared base frame.
        summary: One line for ``hand2robot robots``.
    """

    name: str
    left: str
    right: str
    transform_left_base_to_base: Transform
    transform_right_base_to_base: Transform
    summary: str = ""
