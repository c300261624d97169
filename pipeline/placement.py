"""Where the camera stands relative to the robot: the transform from camera to robot base.

Two fixed conventions (drawn in the README), camera axes in OpenCV order (x right, y down,
z forward):

- third-person (the default): the camera faces the person, so the robot stands where the person
  stands and faces the camera. Camera x (right) -> base +y, camera y (down) -> base -z,
  camera z (forward) -> base -x.
- egocentric: the camera is the robot's head camera and looks the way the robot looks.
  Camera x (right) -> base -y, camera y (down) -> base -z, camera z (forward) -> base +x.

In both, the camera is translated so that the clip's median end-effector target lands on the robot's
nominal reachable point (``RobotDescription.nominal_ee_position``).

An explicit camera pose (:func:`camera_pose_to_base`, CLI ``--camera-pose``) replaces both.
A default placement may also be turned about the vertical through the nominal point
(:func:`turn_about_vertical`) and moved, which :func:`fit_placement` and
:func:`fit_bimanual_placement` do by default for every arm (``PlacementConfig.fit_yaw`` and
``fit_offset``), to suit arms that cannot take every orientation (the SO-101's five joints) or
whose reach the motion leaves at its edge.

:class:`PlacementConfig` holds these choices for the API, ``BatchConfig`` and both commands;
:func:`place_hands` applies them to a clip's hands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from pipeline.tracks import HandTrack
from retarget import BimanualRetargeter, Flag, HandSide, Retargeter
from retarget.exceptions import InvalidInputError

#: Third-person rotation of the camera frame in the base frame (columns: camera axes in base
#: coordinates). Measured on the shared third-person clips: with the egocentric rotation the
#: Panda reaches 0% of the left hand's frames of ``kettle_pour_third_person.mp4``, with this one
#: 100%.
ROTATION_CAMERA_TO_BASE = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
#: Egocentric rotation (head camera looking forward, the way the robot looks).
ROTATION_EGOCENTRIC_CAMERA_TO_BASE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


#: The optical frame (x right, y down, z forward) in the camera body frame (x forward, y left,
#: z up; ROS ``camera_link``). With zero roll, pitch and yaw the camera looks along base +x:
#: the egocentric convention; yaw = pi gives the third-person one.
ROTATION_OPTICAL_TO_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def camera_pose_to_base(pose: tuple[float, ...] | list[float]) -> NDArray[np.float64]:
    """``transform_camera_to_base`` (4, 4) from a camera pose in the robot base frame.

    Args:
        pose: ``x, y, z`` [m] of the camera and ``roll, pitch, yaw`` [rad] of its body frame
            (x forward, y left, z up), fixed axes X then Y then Z (Pinocchio's ``rpyToMatrix``).

    Raises:
        InvalidInputError: Not six finite numbers.
    """
    import pinocchio as pin

    values = np.asarray(pose, dtype=np.float64)
    if values.shape != (6,) or not np.isfinite(values).all():
        raise InvalidInputError(
            f"a camera pose is six numbers x,y,z [m],roll,pitch,yaw [rad]; got {list(pose)}"
        )
    transform = np.eye(4)
    transform[:3, :3] = pin.rpy.rpyToMatrix(*values[3:]) @ ROTATION_OPTICAL_TO_BODY
    transform[:3, 3] = values[:3]
    return transform


def scale_workspace(
    transform_wrist_to_base: NDArray[np.float64], present: NDArray[np.bool_], scale: float
) -> NDArray[np.float64]:
    """Scale the wrist positions about their median (orientations unchanged).

    Args:
        transform_wrist_to_base: Shape (T, 4, 4) [m].
        present: Shape (T,), frames with a hand.
        scale: Factor (1 keeps the human's motion; 0.5 halves its extent).

    Raises:
        InvalidInputError: A scale that is not positive.
    """
    if not scale > 0:
        raise InvalidInputError(f"workspace scale must be > 0, got {scale}")
    out = np.array(transform_wrist_to_base, dtype=np.float64)
    if scale == 1.0 or not np.any(present):
        return out
    median = np.median(out[present, :3, 3], axis=0)
    out[present, :3, 3] = median + scale * (out[present, :3, 3] - median)
    return out


def default_camera_to_base(
    transform_wrist_to_camera: NDArray[np.float64],
    present: NDArray[np.bool_],
    transform_hand_to_ee: NDArray[np.float64],
    nominal_ee_position: tuple[float, float, float],
    *,
    egocentric: bool = False,
) -> NDArray[np.float64]:
    """The default placement for a clip.

    Args:
        transform_wrist_to_camera: Shape (T, 4, 4), hand frame H in the camera frame [m].
        present: Shape (T,), frames with a hand.
        transform_hand_to_ee: (4, 4), the robot's mounting (H in the end-effector frame).
        nominal_ee_position: Reachable end-effector point in the base frame [m].
        egocentric: Use the egocentric axes instead of the third-person ones.

    Returns:
        ``transform_camera_to_base`` (4, 4).

    Raises:
        InvalidInputError: If no frame has a hand.
    """
    if not np.any(present):
        raise InvalidInputError("cannot place the camera: no frame has a hand")
    ee_in_camera = transform_wrist_to_camera[present] @ np.linalg.inv(transform_hand_to_ee)
    rotation = ROTATION_EGOCENTRIC_CAMERA_TO_BASE if egocentric else ROTATION_CAMERA_TO_BASE
    median = np.median(ee_in_camera[:, :3, 3] @ rotation.T, axis=0)
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = np.asarray(nominal_ee_position) - median
    return transform


def turn_about_vertical(
    transform_camera_to_base: NDArray[np.float64], point: NDArray[np.float64], yaw: float
) -> NDArray[np.float64]:
    """The placement turned by ``yaw`` [rad] about the base's vertical (z) axis through ``point``.

    Everything the camera saw turns with it, rigidly; what sat at ``point`` [m] stays there.
    Returns the new ``transform_camera_to_base`` (4, 4).
    """
    cos, sin = np.cos(yaw), np.sin(yaw)
    turn = np.eye(4)
    turn[:2, :2] = [[cos, -sin], [sin, cos]]
    point = np.asarray(point, dtype=np.float64)
    turn[:3, 3] = point - turn[:3, :3] @ point
    return turn @ np.asarray(transform_camera_to_base, dtype=np.float64)


@dataclass(frozen=True)
class PlacementConfig:
    """Where the camera stands relative to the robot, and how the wrist motion is scaled.

    Defaults: the third-person placement, fitted to where the arm reaches the most frames, the
    human's motion at its own size.
    """

    egocentric: bool = False
    """The default placement is a head camera's (it looks the way the robot looks)."""
    camera_pose: tuple[float, ...] | None = None
    """Camera pose in the robot base frame, ``x, y, z`` [m], ``roll, pitch, yaw`` [rad] of
    the camera body (:func:`camera_pose_to_base`); replaces the default placement."""
    workspace_scale: float = 1.0
    """Scale of the wrist motion about its median (1 keeps it; 0.5 halves its extent)."""
    fit_yaw: bool | None = None
    """Turn the default placement about the vertical through the nominal point, in steps of
    30 deg, to where the arm reaches the most frames (:func:`fit_yaw`). None (the default):
    wherever the default placement places an arm (not with ``camera_pose`` or a given
    transform, not for a free-floating hand); True: asked for, an error where it cannot be;
    False: never. It matters most for arms that cannot take every orientation, such as the
    5-joint SO-101."""
    fit_offset: bool | None = None
    """Then move the default placement's nominal point within a box of +-10 cm, one base axis
    at a time in 5 cm steps (:data:`FIT_OFFSETS_M`), to where the arm reaches the most frames
    (:func:`fit_placement`): for arms whose reach the human's motion leaves at its edge. None,
    True, False: as for ``fit_yaw``."""

    @property
    def fits(self) -> bool:
        """Whether any part of the placement is fitted (None counts once :meth:`resolved`)."""
        return bool(self.fit_yaw) or bool(self.fit_offset)

    def resolved(self, applicable: bool) -> PlacementConfig:
        """This placement with each fit left to the default (None) decided.

        Args:
            applicable: Whether the default placement places an arm here (a robot with arm
                joints, no ``camera_pose``, no given transform): the fits left to the default
                are made there and nowhere else.
        """
        return replace(
            self,
            fit_yaw=applicable if self.fit_yaw is None else self.fit_yaw,
            fit_offset=applicable if self.fit_offset is None else self.fit_offset,
        )

    def __post_init__(self) -> None:
        if self.camera_pose is not None:
            camera_pose_to_base(self.camera_pose)  # six finite numbers, or a clear error
            object.__setattr__(self, "camera_pose", tuple(float(v) for v in self.camera_pose))
        if not self.workspace_scale > 0:
            raise InvalidInputError(f"workspace scale must be > 0, got {self.workspace_scale}")
        if self.fits and self.camera_pose is not None:
            raise InvalidInputError(
                "fitting the placement needs the default placement, not a given camera pose"
            )


class PlacedHands(NamedTuple):
    """A clip's hands placed in the robot base frame."""

    transform_camera_to_base: NDArray[np.float64]
    """Shape (4, 4): the placement used."""
    label: str
    """How it was chosen (``default third-person``, ``default egocentric``, ``camera pose
    x,y,z,roll,pitch,yaw``, ``given``), with any fitted turn and workspace scale."""
    transform_wrist_to_base: list[NDArray[np.float64]]
    """Per hand, shape (T, 4, 4): the wrist (hand frame H) poses in the base frame [m]."""
    seen: list[NDArray[np.bool_]]
    """Per hand, shape (T,): frames where the hand is present with a finite pose."""


def place_hands(
    hands: list[HandTrack],
    transform_hand_to_ee: NDArray[np.float64],
    nominal_ee_position: tuple[float, float, float],
    placement: PlacementConfig,
    *,
    transform_camera_to_base: NDArray[np.float64] | None = None,
    fitted_yaw_deg: float | None = None,
    fitted_offset_m: tuple[float, float, float] | None = None,
) -> PlacedHands:
    """Place a clip's hands: the camera placement, and each hand's wrist poses in the base frame.

    The hands are pooled: the default placement maps their joint median end-effector point to
    ``nominal_ee_position``, and the workspace scale acts about their joint median (so the
    spacing of two hands scales too). A given ``transform_camera_to_base`` replaces both the
    default and ``placement.camera_pose``; ``fitted_yaw_deg`` turns the default placement about
    the vertical through the nominal point and ``fitted_offset_m`` then moves it in the base
    frame [m] (:func:`fit_placement`'s answer).
    """
    if transform_camera_to_base is not None:
        label = "given"
    elif placement.camera_pose is not None:
        transform_camera_to_base = camera_pose_to_base(placement.camera_pose)
        label = "camera pose " + ",".join(f"{v:g}" for v in placement.camera_pose)
    else:
        label = "default egocentric" if placement.egocentric else "default third-person"
        transform_camera_to_base = default_camera_to_base(
            np.concatenate([hand.transform_wrist_to_camera for hand in hands]),
            np.concatenate([hand.present for hand in hands]),
            transform_hand_to_ee,
            nominal_ee_position,
            egocentric=placement.egocentric,
        )
        if fitted_yaw_deg is not None:
            transform_camera_to_base = turn_about_vertical(
                transform_camera_to_base,
                np.asarray(nominal_ee_position),
                np.radians(fitted_yaw_deg),
            )
            label += f", turned {fitted_yaw_deg:g} deg about the vertical (fitted)"
        if fitted_offset_m is not None and any(fitted_offset_m):
            transform_camera_to_base = transform_camera_to_base.copy()
            transform_camera_to_base[:3, 3] += np.asarray(fitted_offset_m)
            moved = ",".join(f"{value:+.2f}" for value in fitted_offset_m)
            label += f", moved {moved} m (fitted)"
    wrists = [transform_camera_to_base @ hand.transform_wrist_to_camera for hand in hands]
    seen = [
        hand.present & np.isfinite(wrist).all(axis=(1, 2))
        for hand, wrist in zip(hands, wrists, strict=True)
    ]
    scale = placement.workspace_scale
    if scale != 1.0:
        scaled = scale_workspace(np.concatenate(wrists), np.concatenate(seen), scale)
        wrists = list(np.split(scaled, len(hands)))
        label += f", workspace scale {scale:g}"
    return PlacedHands(transform_camera_to_base, label, wrists, seen)


#: Yaws tried by :func:`fit_yaw` [deg], nearest to the drawn convention first (ties keep it).
FIT_YAWS_DEG = (0, 30, -30, 60, -60, 90, -90, 120, -120, 150, -150, 180)
#: Offsets of the nominal point tried by :func:`fit_placement` along each base axis [m], nearest
#: first: a box of +-10 cm about it.
FIT_OFFSETS_M = (0.05, -0.05, 0.1, -0.1)
#: Frames of the hand (evenly spread) retargeted for each placement tried.
FIT_FRAMES = 48


class FittedPlacement(NamedTuple):
    """What :func:`fit_placement` chose."""

    yaw_deg: float | None = None
    """Turn about the vertical through the nominal point [deg]; None: the yaw was not fitted."""
    offset_m: tuple[float, float, float] | None = None
    """Move of the placement in the base frame [m]; None: the offset was not fitted."""
    missed: int = 0
    """Of the ``FIT_FRAMES`` frames tried, those the arm missed there."""

    def place(self) -> dict[str, Any]:
        """What :func:`place_hands` takes of it (``fitted_yaw_deg``, ``fitted_offset_m``)."""
        return {"fitted_yaw_deg": self.yaw_deg, "fitted_offset_m": self.offset_m}


def fit_placement(
    retargeter: Retargeter,
    hand: HandTrack,
    timestamps: NDArray[np.float64],
    side: HandSide,
    placement: PlacementConfig,
) -> FittedPlacement:
    """The default placement's turn and move at which the arm reaches the most frames.

    What ``placement`` asks to fit, in order: the yaw, over ``FIT_YAWS_DEG`` (``fit_yaw``);
    then the nominal point's offset, one base axis after another (x, y, z) over
    ``FIT_OFFSETS_M`` (``fit_offset``), each axis from the best point so far. Each candidate
    places the hand as the final placement will (:func:`place_hands`, then the workspace
    scale) and retargets ``FIT_FRAMES`` of the hand's frames, spread evenly over the clip; a
    frame is missed when flagged UNREACHABLE, JOINT_LIMIT or SELF_COLLISION (a placement that
    folds the arm into itself reaches nothing). A candidate replaces the best only with
    strictly fewer misses, so ties keep the drawn convention and the unmoved point.
    """
    robot = retargeter.robot

    def missed(yaw: float | None, offset: tuple[float, float, float] | None) -> int:
        placed = place_hands(
            [hand],
            robot.transform_hand_to_ee,
            robot.description.nominal_ee_position,
            placement,
            fitted_yaw_deg=yaw,
            fitted_offset_m=offset,
        )
        frames = _spread(np.flatnonzero(placed.seen[0]))
        wrists = placed.transform_wrist_to_base[0]
        flags = _flags(retargeter, hand, wrists, frames, side, timestamps)
        return int(np.count_nonzero(flags & _MISSED))

    return _search(missed, placement)


def fit_bimanual_placement(
    retargeter: BimanualRetargeter,
    hands: list[HandTrack],
    timestamps: NDArray[np.float64],
    nominal_ee_position: tuple[float, float, float],
    placement: PlacementConfig,
) -> FittedPlacement:
    """:func:`fit_placement` for a bimanual robot: one shared placement of both hands.

    ``hands`` are the left and the right hand, ``nominal_ee_position`` the point their joint
    median goes to (the middle of the arms' nominal points). A frame is missed when either arm
    misses its hand there (each arm's own flags; contacts between the arms are not counted);
    the frames tried are spread over those with both hands (else with either).
    """
    robot = retargeter.robot

    def missed(yaw: float | None, offset: tuple[float, float, float] | None) -> int:
        placed = place_hands(
            hands,
            robot.left.transform_hand_to_ee,
            nominal_ee_position,
            placement,
            fitted_yaw_deg=yaw,
            fitted_offset_m=offset,
        )
        both = placed.seen[0] & placed.seen[1]
        frames = _spread(np.flatnonzero(both if both.any() else placed.seen[0] | placed.seen[1]))
        flags = np.zeros(len(frames), dtype=np.int64)
        sides: tuple[HandSide, HandSide] = ("left", "right")
        for k, side in enumerate(sides):
            to_arm = np.linalg.inv(robot.transform_arm_base_to_base(side))
            wrists = to_arm @ placed.transform_wrist_to_base[k]
            mine = placed.seen[k][frames]
            flags[mine] |= _flags(
                retargeter.arms[side], hands[k], wrists, frames[mine], side, timestamps
            )
        return int(np.count_nonzero(flags & _MISSED))

    return _search(missed, placement)


#: What makes a frame missed for the fits: the arm cannot be there (a placement that folds the
#: arm into itself reaches nothing).
_MISSED = int(Flag.UNREACHABLE | Flag.JOINT_LIMIT | Flag.SELF_COLLISION)


def _spread(frames: NDArray[np.int64]) -> NDArray[np.int64]:
    """``FIT_FRAMES`` of ``frames``, evenly spread."""
    return frames[np.linspace(0, len(frames) - 1, min(FIT_FRAMES, len(frames))).astype(int)]


def _flags(
    retargeter: Retargeter,
    hand: HandTrack,
    transform_wrist_to_base: NDArray[np.float64],
    frames: NDArray[np.int64],
    side: HandSide,
    timestamps: NDArray[np.float64],
) -> NDArray[np.int64]:
    """Each of ``frames``' flags, from the per-frame solve.

    48 frames spread over the clip are no trajectory to optimise: the optimiser, if on, refines
    the chosen placement's whole clip.
    """
    if not len(frames):
        return np.zeros(0, dtype=np.int64)
    targets = retargeter.targets(
        hand.world_keypoints[frames],
        transform_wrist_to_base[frames],
        side=side,
        timestamps=timestamps[frames],
    )
    verdict = retargeter.evaluate(retargeter.solve(targets)[0], targets)
    return np.asarray(verdict.flags, dtype=np.int64)


_Offset = tuple[float, float, float]


def _search(
    missed: Callable[[float | None, _Offset | None], int], placement: PlacementConfig
) -> FittedPlacement:
    """The yaw (``fit_yaw``), then the offset axis by axis (``fit_offset``), fewest missed.

    A candidate wins only with strictly fewer misses than the best so far. What is not
    fitted stays None (no turn, no move, as :func:`place_hands` takes it).
    """
    yaw: float | None = 0.0 if placement.fit_yaw else None
    offset: _Offset | None = (0.0, 0.0, 0.0) if placement.fit_offset else None
    fewest = missed(yaw, offset)
    for candidate in FIT_YAWS_DEG[1:] if placement.fit_yaw else ():
        misses = missed(float(candidate), offset)
        if misses < fewest:
            yaw, fewest = float(candidate), misses
    if offset is None:
        return FittedPlacement(yaw, offset, fewest)
    for axis in range(3):
        start = offset
        for step in FIT_OFFSETS_M:
            x, y, z = (step if k == axis else value for k, value in enumerate(start))
            misses = missed(yaw, (x, y, z))
            if misses < fewest:
                offset, fewest = (x, y, z), misses
    return FittedPlacement(yaw, offset, fewest)


def fit_yaw(
    retargeter: Retargeter,
    hand: HandTrack,
    timestamps: NDArray[np.float64],
    side: HandSide,
    placement: PlacementConfig,
) -> float:
    """The yaw [deg] of ``FIT_YAWS_DEG`` at which the arm reaches the most frames.

    :func:`fit_placement` with the yaw alone.
    """
    alone = replace(placement, fit_yaw=True, fit_offset=False)
    return float(fit_placement(retargeter, hand, timestamps, side, alone).yaw_deg or 0.0)
