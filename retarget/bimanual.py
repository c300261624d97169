"""Two single-arm robots driven by the two human hands, as one robot with one base frame.

Each arm is retargeted by its own :class:`retarget.Retargeter` (the same solvers and flags as a
single arm) from the hand of its side; the results are joined column-wise, ``left.`` joints
first. A frame's flags are the union of both arms' flags, so a frame is feasible only when both
arms are; ``SELF_COLLISION`` also covers contacts *between* the two arms (the pair is one robot).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

import robots
from retarget.collision import CrossCollision
from retarget.config import RetargetConfig
from retarget.exceptions import InvalidInputError
from retarget.flags import Flag
from retarget.hand_frame import HandSide
from retarget.result import Residual, RetargetResult, readonly
from retarget.retargeter import Retargeter
from retarget.robot import Robot, load_robot, transform_matrix
from robots import BimanualDescription, Side

#: The two hands, in column order.
SIDES = ("left", "right")
#: The two arms by the hand each takes, typed as the retargeter takes a hand.
ARM_SIDES: tuple[HandSide, HandSide] = ("left", "right")


class BimanualRobot:
    """Two loaded single-arm robots and where their bases stand in the shared base frame.

    Args:
        description: A bimanual registry entry (:data:`robots.BIMANUAL_REGISTRY`).

    Attributes:
        name: Registry name.
        description: The registry entry.
        left: The arm that takes the left hand. ``right``: the other.
        joint_names: ``left.<joint>`` then ``right.<joint>``; the columns of every ``q``.
        lower, upper, velocity_limit, rest: The arms' arrays, joined, shape (nq,), read-only.
        urdf_paths: Both arms' URDF files. ``urdf_sha256``: hash of both arms' and the layout.
    """

    kind = "bimanual"

    def __init__(self, description: BimanualDescription) -> None:
        self.description = description
        self.name = description.name
        self.left = load_robot(description.left)
        self.right = load_robot(description.right)
        for side, arm in zip(SIDES, (self.left, self.right), strict=True):
            if arm.description.side not in (Side.ANY, Side(side)):
                raise robots.RobotConfigError(
                    f"bimanual robot {self.name!r}: its {side} arm {arm.name!r} is a "
                    f"{arm.description.side.value} hand"
                )
        self._transforms = {
            "left": transform_matrix(description.transform_left_base_to_base),
            "right": transform_matrix(description.transform_right_base_to_base),
        }
        self.joint_names = tuple(
            f"{side}.{name}"
            for side, arm in zip(SIDES, (self.left, self.right), strict=True)
            for name in arm.joint_names
        )
        self.nq = len(self.joint_names)

        def joined(left: NDArray[np.float64], right: NDArray[np.float64]) -> NDArray[np.float64]:
            return readonly(np.concatenate([left, right]))

        self.lower = joined(self.left.lower, self.right.lower)
        self.upper = joined(self.left.upper, self.right.upper)
        self.velocity_limit = joined(self.left.velocity_limit, self.right.velocity_limit)
        self.rest = joined(self.left.rest, self.right.rest)
        self.urdf_paths = self.left.urdf_paths + self.right.urdf_paths
        layout = repr(
            (description.transform_left_base_to_base, description.transform_right_base_to_base)
        )
        self.urdf_sha256 = hashlib.sha256(
            (self.left.urdf_sha256 + self.right.urdf_sha256 + layout).encode()
        ).hexdigest()

    def arm(self, side: str) -> Robot:
        """The arm that takes the ``side`` hand."""
        return self.left if _check_side(side) == "left" else self.right

    def transform_arm_base_to_base(self, side: str) -> NDArray[np.float64]:
        """Pose of the ``side`` arm's base in the shared base frame, (4, 4) [m]."""
        return self._transforms[_check_side(side)].copy()

    def columns(self, side: str) -> slice:
        """The columns of ``q`` that belong to the ``side`` arm."""
        return slice(0, self.left.nq) if _check_side(side) == "left" else slice(self.left.nq, None)

    def nominal_ee_position(self, side: str) -> NDArray[np.float64]:
        """The ``side`` arm's nominal reachable point in the shared base frame [m]."""
        point = np.append(self.arm(side).description.nominal_ee_position, 1.0)
        return (self._transforms[_check_side(side)] @ point)[:3]

    def __repr__(self) -> str:
        return f"BimanualRobot({self.name!r}, left={self.left.name!r}, right={self.right.name!r})"


def _check_side(side: str) -> str:
    if side not in SIDES:
        raise InvalidInputError(f"unknown hand side {side!r}; valid choices: 'left', 'right'")
    return side


def load_bimanual(name: str | BimanualDescription) -> BimanualRobot:
    """Load a bimanual robot by registry name (``robots.bimanual_names()``) or description.

    Raises:
        RobotNotFound: Unknown name (the message lists the bimanual robots).
    """
    description = name if isinstance(name, BimanualDescription) else robots.get_bimanual(name)
    return BimanualRobot(description)


def load_any_robot(name: str | Path) -> Robot | BimanualRobot:
    """A registry robot, a robot config file (``.toml``) or a bimanual robot, by name.

    The one place that tells the two kinds apart by name.

    Raises:
        RobotNotFound: Neither a robot nor a bimanual robot of the registry, nor a file (the
            message lists the valid names).
    """
    if str(name) in robots.bimanual_names():
        return load_bimanual(str(name))
    return load_robot(name)


@dataclass(frozen=True)
class BimanualResult:
    """A retargeted two-hand trajectory. Arrays are read-only.

    Attributes:
        joint_names: Names of the columns of ``q`` (``left.`` then ``right.``).
        q: Joint positions of both arms, shape (T, nq).
        feasible: No flag set on either arm, shape (T,).
        flags: Union of both arms' :class:`retarget.Flag` bitmasks, shape (T,).
        residual: Per figure, the worse of the two arms (NaN where neither applies); for
            ``collisions``, the contacts of both arms plus those between them.
        iterations: Solver iterations of both arms, shape (T,).
        left: The left arm's own result (its joints only). ``right``: the other's.
    """

    joint_names: tuple[str, ...]
    q: NDArray[np.float64]
    feasible: NDArray[np.bool_]
    flags: NDArray[np.int64]
    residual: Residual
    iterations: NDArray[np.int64]
    left: RetargetResult
    right: RetargetResult

    @property
    def optimized(self) -> bool:
        """Whether both arms' trajectories were refined as whole trajectories.

        Each on its own: the optimiser does not see the other arm.
        """
        return self.left.optimized and self.right.optimized


class BimanualRetargeter:
    """Retarget both hands onto a :class:`BimanualRobot`, each onto the arm of its side.

    Args:
        robot: A loaded bimanual robot.
        config: Solver and flag settings, shared by both arms.
    """

    def __init__(self, robot: BimanualRobot, config: RetargetConfig | None = None) -> None:
        self.robot = robot
        self.arms = {side: Retargeter(robot.arm(side), config) for side in SIDES}
        left, right = (self.arms[side].solvers.collision for side in SIDES)
        self.cross = None  # with check_self_collision off, neither is checked
        if left is not None and right is not None:
            self.cross = CrossCollision(
                left,
                right,
                robot.transform_arm_base_to_base("left"),
                robot.transform_arm_base_to_base("right"),
            )

    def retarget_sequence(
        self,
        keypoints: Mapping[str, NDArray[np.floating]],
        transform_wrist_to_base: Mapping[str, NDArray[np.floating]],
        *,
        present: Mapping[str, NDArray[np.bool_]] | None = None,
        timestamps: NDArray[np.floating] | None = None,
        score: Mapping[str, NDArray[np.floating]] | None = None,
        lift_error: Mapping[str, NDArray[np.floating]] | None = None,
        wrist_std: Mapping[str, NDArray[np.floating]] | None = None,
        camera_std: NDArray[np.floating] | None = None,
    ) -> BimanualResult:
        """Retarget both hands frame by frame (see :meth:`Retargeter.retarget_sequence`).

        Args:
            keypoints: ``{"left": (T, 21, 3), "right": (T, 21, 3)}`` [m], MediaPipe order.
            transform_wrist_to_base: Per hand, (T, 4, 4) hand-frame poses in the *shared* base
                frame [m]; each is moved into its arm's own base frame here.
            present: Per hand, (T,) frames with that hand (default: all).
            timestamps: (T,) [s], strictly increasing.
            score: Per hand, (T,) detector confidence.
            lift_error: Per hand, (T,) PnP error over the hand's image size.
            wrist_std: Per hand, (T,) [m] the lifted wrist's standard deviation.
            camera_std: (T,) [deg] the camera rotation's standard deviation (one camera).

        Raises:
            InvalidInputError: A hand missing from a mapping, different lengths, or any input
                error of the single-arm retargeter.
        """
        for name, mapping in (
            ("keypoints", keypoints),
            ("transform_wrist_to_base", transform_wrist_to_base),
            ("present", present),
            ("score", score),
            ("lift_error", lift_error),
            ("wrist_std", wrist_std),
        ):
            if mapping is not None and set(mapping) != set(SIDES):
                raise InvalidInputError(
                    f"{name} must have exactly the keys 'left' and 'right', got {sorted(mapping)}"
                )
        frames = {side: len(keypoints[side]) for side in SIDES}
        if frames["left"] != frames["right"]:
            raise InvalidInputError(f"the hands have different frame counts: {frames}")
        results = {}
        for side in ARM_SIDES:
            to_arm_base = np.linalg.inv(self.robot.transform_arm_base_to_base(side))
            wrist = to_arm_base @ np.asarray(transform_wrist_to_base[side], dtype=np.float64)
            results[side] = self.arms[side].retarget_sequence(
                keypoints[side],
                wrist,
                present=None if present is None else present[side],
                side=side,
                timestamps=timestamps,
                score=None if score is None else score[side],
                lift_error=None if lift_error is None else lift_error[side],
                wrist_std=None if wrist_std is None else wrist_std[side],
                camera_std=camera_std,
            )
        return self._combine(results["left"], results["right"])

    def _combine(self, left: RetargetResult, right: RetargetResult) -> BimanualResult:
        """One two-arm result from each arm's: flags joined, the worse residuals, and contacts.

        Contacts are each arm's own plus those between the arms.
        """
        flags = left.flags | right.flags
        worse = {
            name: np.fmax(getattr(left.residual, name), getattr(right.residual, name))
            for name in Residual.__dataclass_fields__
        }
        # Contacts: each arm's own, plus those between the arms on frames with either hand.
        own = left.residual.collisions, right.residual.collisions
        collisions = np.where(
            np.isnan(own[0]) & np.isnan(own[1]),
            np.nan,
            np.nan_to_num(own[0]) + np.nan_to_num(own[1]),
        )
        if self.cross is not None:
            either = ((left.flags & right.flags & Flag.NO_HAND) == 0).nonzero()[0]
            for frame in either.tolist():
                between = self.cross.colliding(
                    self.robot.left.model_configuration(left.q[frame]),
                    self.robot.right.model_configuration(right.q[frame]),
                )
                collisions[frame] = np.nan_to_num(collisions[frame]) + len(between)
                if between:
                    flags[frame] |= Flag.SELF_COLLISION
        worse["collisions"] = collisions
        worse = {name: readonly(value) for name, value in worse.items()}
        return BimanualResult(
            joint_names=self.robot.joint_names,
            q=readonly(np.concatenate([left.q, right.q], axis=1)),
            feasible=readonly(flags == 0),
            flags=readonly(flags),
            residual=Residual(**worse),
            iterations=readonly(left.iterations + right.iterations),
            left=left,
            right=right,
        )
