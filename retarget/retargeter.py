"""Whole-robot retargeting of a hand trajectory: arm IK, finger vectors, gripper, flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

from retarget.arm_ik import ArmIK, IKConfig, chain_length, dexterity
from retarget.collision import CollisionAvoidance, SelfCollision
from retarget.exceptions import InvalidInputError
from retarget.flags import Flag
from retarget.gripper import aperture_from_keypoints, gripper_position
from retarget.hand_frame import WRIST, HandSide, check_keypoints, keypoints_in_hand_frame
from retarget.robot import Robot
from retarget.vector_retargeting import VectorConfig, VectorRetargeter
from robots import RobotKind, Side


@dataclass(frozen=True)
class FeasibilityConfig:
    """Thresholds above which a frame is flagged.

    Defaults: a 1 cm end-effector position error is about the accuracy of monocular metric hand
    lifting, so larger errors mean the robot really missed; 0.35 rad (20 degrees) orientation
    error is beyond the usual wrist-orientation noise of single-camera estimates (about 10
    degrees); a 3 cm mean fingertip error (robot scale) means a visibly different hand shape.
    """

    max_position_error: float = 0.01
    """UNREACHABLE above this end-effector position error [m]."""
    max_orientation_error: float = 0.35
    """UNREACHABLE above this end-effector orientation error [rad]."""
    max_fingertip_error: float = 0.03
    """UNREACHABLE above this mean wrist-to-fingertip vector error [m] (robot scale)."""
    min_score: float = 0.5
    """LOW_CONFIDENCE below this detector score (MediaPipe's own default threshold)."""
    max_lift_error: float = 0.15
    """LIFT_UNCERTAIN above this PnP reprojection error over the hand's image size: measured
    5-12% on well-detected real frames, so 15% marks a 3D hand that does not fit its image."""
    joint_limit_margin: float = 1e-3
    """A joint within this of a URDF limit is on it [rad] or [m]. JOINT_LIMIT is set when a frame
    misses its target with a joint on a limit and the same solve without limits reaches it."""
    velocity_scale: float = 1.0
    """VELOCITY_LIMIT when a joint moves faster than this times its URDF velocity limit between
    consecutive frames with a hand (true timestamps)."""
    min_singular_value: float = 0.03
    """SINGULAR when the arm's dexterity falls below this: the smallest singular value of its
    end-effector Jacobian, the linear rows divided by the arm's chain length
    (:func:`retarget.arm_ik.dexterity`; dimensionless, so one threshold suits arms of every
    size). The arm loses a direction of motion. Measured on the Panda (chain 1.09 m): 0.12-0.16
    on the sample clip's frames (10th-90th percentile), 0.024 with the elbow stretched to its
    limit (q4 = -0.07 rad) and the wrist bent (q6 = 1.5 rad)."""
    check_self_collision: bool = True
    """SELF_COLLISION when two parts of the robot's URDF collision geometry intersect
    (:class:`retarget.collision.SelfCollision`: adjacent links, SRDF-disabled pairs and
    contacts already present at the rest pose excluded). Costs 0.07 (Panda) to 0.5 (UR5 +
    Allegro) ms per frame."""

    def __post_init__(self) -> None:
        for name in (
            "max_position_error",
            "max_orientation_error",
            "max_fingertip_error",
            "max_lift_error",
            "joint_limit_margin",
            "velocity_scale",
        ):
            if not getattr(self, name) > 0:
                raise InvalidInputError(f"FeasibilityConfig.{name} must be > 0")
        if not 0 <= self.min_score <= 1 or self.min_singular_value < 0:
            raise InvalidInputError(
                "FeasibilityConfig.min_score must be within [0, 1] and min_singular_value >= 0"
            )


@dataclass(frozen=True)
class RetargetConfig:
    """Settings of :class:`Retargeter`; every field has a documented default."""

    ik: IKConfig = field(default_factory=IKConfig)
    """Arm inverse kinematics settings."""
    hand: VectorConfig = field(default_factory=VectorConfig)
    """Finger vector retargeting settings."""
    feasibility: FeasibilityConfig = field(default_factory=FeasibilityConfig)
    """Flag thresholds."""
    thumb_vectors: bool = True
    """Also match thumb-to-finger vectors (keeps pinches closed), not only wrist-to-fingertip."""
    avoid_self_collision: bool = True
    """Keep a dexterous hand's fingers apart while solving (finger against finger and against
    the palm, :class:`retarget.collision.CollisionAvoidance`; margin and weight in ``hand``).
    Without it the vector targets, scaled from a human hand that is narrower than the robot's,
    drive neighbouring fingers through each other on most real frames, and those frames are
    flagged ``SELF_COLLISION``. Contacts involving an arm link are not avoided, only flagged."""


@dataclass(frozen=True)
class Residual:
    """Per-frame errors of a retargeted trajectory; NaN where a figure does not apply.

    Attributes:
        position: End-effector position error [m], shape (T,).
        orientation: End-effector orientation error [rad], shape (T,).
        fingertip: Mean wrist-to-fingertip vector error, robot scale [m], shape (T,).
        joint_speed: Largest joint speed over its velocity limit since the previous frame with
            a hand, shape (T,) (1.0 = at the limit); NaN without timestamps.
        singular_value: The arm's dexterity (``FeasibilityConfig.min_singular_value``), shape
            (T,).
        collisions: Number of colliding geometry pairs, shape (T,) (NaN without a hand or with
            the check off).
    """

    position: NDArray[np.float64]
    orientation: NDArray[np.float64]
    fingertip: NDArray[np.float64]
    joint_speed: NDArray[np.float64]
    singular_value: NDArray[np.float64]
    collisions: NDArray[np.float64]


@dataclass(frozen=True)
class RetargetResult:
    """A retargeted trajectory. Arrays are read-only.

    Attributes:
        joint_names: Names of the columns of ``q``.
        q: Joint positions, shape (T, nq) [rad] or [m].
        feasible: No flag set, shape (T,).
        flags: Bitmask of :class:`Flag`, shape (T,).
        residual: Per-frame errors.
        transform_ee_to_base: Reached end-effector (palm) pose, shape (T, 4, 4); for a free
            hand the palm pose implied by the wrist pose, NaN without one.
        iterations: Solver iterations per frame (arm plus hand), shape (T,).
    """

    joint_names: tuple[str, ...]
    q: NDArray[np.float64]
    feasible: NDArray[np.bool_]
    flags: NDArray[np.int64]
    residual: Residual
    transform_ee_to_base: NDArray[np.float64]
    iterations: NDArray[np.int64]


_Array = TypeVar("_Array", bound=np.ndarray)


def _readonly(array: _Array) -> _Array:
    array.setflags(write=False)
    return array


def _locked_model(robot: Robot, free: tuple[str, ...]) -> pin.Model:
    """The robot's model with every joint but ``free`` locked at the rest configuration."""
    model = robot.model
    lock = [j for j in range(1, model.njoints) if model.names[j] not in free]
    return pin.buildReducedModel(model, lock, robot.model_configuration(robot.rest))


class Retargeter:
    """Turn hand keypoints (and wrist poses, for arms) into robot joint trajectories.

    Args:
        robot: A loaded robot (:func:`retarget.load_robot`).
        config: Solver and flag settings; defaults are documented on each field.
    """

    def __init__(self, robot: Robot, config: RetargetConfig | None = None) -> None:
        self.robot = robot
        self.config = config or RetargetConfig()
        description = robot.description
        self._arm: ArmIK | None = None
        self._hand: VectorRetargeter | None = None
        checker: SelfCollision | None = None  # built once, for the avoidance and the flag
        if robot.arm_joints:
            model = _locked_model(robot, robot.arm_joints)
            self._arm = ArmIK(model, description.ee_frame, self.config.ik)
            # The same solve without joint limits tells a limit from the workspace's edge.
            self._arm_free = ArmIK(model, description.ee_frame, self.config.ik)
            self._arm_free.lower = np.full(model.nq, -np.inf)
            self._arm_free.upper = np.full(model.nq, np.inf)
            self._arm_columns = robot.joint_indices(robot.arm_joints)
            self._arm_length = chain_length(model, self._arm.frame_id)
        if robot.hand_joints:
            tips = description.fingertips
            pairs = [(0, i + 1) for i in range(len(tips))]
            weights = [1.0] * len(tips)
            thumb = next((i + 1 for i, f in enumerate(tips) if f.keypoint == 4), None)
            if self.config.thumb_vectors and thumb is not None:
                for i in range(len(tips)):
                    if i + 1 != thumb:
                        pairs.append((thumb, i + 1))
                        weights.append(self.config.hand.thumb_vector_weight)
            self._keypoint_of_point = np.array([WRIST] + [f.keypoint for f in tips])
            self._pairs = np.array(pairs)
            hand_model = _locked_model(robot, robot.hand_joints)
            avoidance = None
            if self.config.avoid_self_collision:
                checker = checker or SelfCollision(robot)
                avoidance = CollisionAvoidance(
                    checker,
                    robot.hand_joints,
                    description.ee_frame,
                    robot.model_configuration(robot.rest),
                )
            arguments = (
                description.ee_frame,
                robot.transform_hand_to_ee[:3, 3],
                tuple(f.frame for f in tips),
                tuple(pairs),
                np.array(weights),
                self.config.hand,
                avoidance,
            )
            self._hand = VectorRetargeter(hand_model, *arguments)
            # The same solve without joint limits (with the avoidance, if on) tells a limit
            # from a target out of reach.
            self._hand_free = VectorRetargeter(hand_model, *arguments)
            self._hand_free.lower = np.full(hand_model.nq, -np.inf)
            self._hand_free.upper = np.full(hand_model.nq, np.inf)
            self._hand_columns = robot.joint_indices(robot.hand_joints)
        if robot.gripper_joint is not None:
            self._gripper_column = robot.joint_names.index(robot.gripper_joint)
        self.collision: SelfCollision | None = None
        if self.config.feasibility.check_self_collision:
            self.collision = checker or SelfCollision(robot)

    @property
    def side(self) -> HandSide:
        """The human hand this retargeter expects (``"right"`` for side-agnostic grippers)."""
        return "left" if self.robot.description.side is Side.LEFT else "right"

    def target_vectors(
        self, keypoints: NDArray[np.floating], side: HandSide
    ) -> NDArray[np.float64]:
        """Scaled human vectors in the robot's palm frame.

        Args:
            keypoints: Shape (T, 21, 3), any metric frame [m], finite.
            side: Which hand the keypoints are.

        Returns:
            Shape (T, K, 3) [m], the targets of the vector solver.
        """
        in_hand = keypoints_in_hand_frame(keypoints, side)
        points = in_hand[:, self._keypoint_of_point]
        vectors = points[:, self._pairs[:, 1]] - points[:, self._pairs[:, 0]]
        rotation = self.robot.transform_hand_to_ee[:3, :3]
        return np.asarray(self.robot.description.scale * vectors @ rotation.T)

    def retarget_sequence(
        self,
        keypoints: NDArray[np.floating],
        transform_wrist_to_base: NDArray[np.floating] | None = None,
        *,
        present: NDArray[np.bool_] | None = None,
        side: HandSide | None = None,
        timestamps: NDArray[np.floating] | None = None,
        score: NDArray[np.floating] | None = None,
        lift_error: NDArray[np.floating] | None = None,
    ) -> RetargetResult:
        """Retarget a trajectory frame by frame, each frame warm-started from the previous one.

        Args:
            keypoints: Shape (T, 21, 3), MediaPipe order, any hand-centred metric frame [m]
                (only relative positions are used; the hand frame is estimated from them).
            transform_wrist_to_base: Shape (T, 4, 4): pose of the hand frame ``H`` (see
                :func:`retarget.hand_frame_from_keypoints`) in the robot base frame [m]. Needed
                for arms; for a free hand it only sets ``transform_ee_to_base``.
            present: Shape (T,), frames with a hand. Absent frames may hold NaN; they keep the
                previous frame's joints and get ``Flag.NO_HAND``. Default: all present.
            side: Which hand the keypoints are. Default: the robot's side (``"right"`` for
                grippers). A dexterous hand only takes its own side.
            timestamps: Shape (T,) [s], strictly increasing; enables ``Flag.VELOCITY_LIMIT``.
            score: Shape (T,) detector confidence; enables ``Flag.LOW_CONFIDENCE``.
            lift_error: Shape (T,) PnP reprojection error over the hand's image size; enables
                ``Flag.LIFT_UNCERTAIN``.

        Flags (thresholds in :class:`FeasibilityConfig`): ``NO_HAND`` where not present;
        ``LOW_CONFIDENCE``, ``LIFT_UNCERTAIN`` from the inputs above; ``JOINT_LIMIT`` where the
        target is missed with a joint on its limit and the same solve without limits reaches it;
        ``UNREACHABLE`` where the target is missed otherwise; ``VELOCITY_LIMIT`` where a joint
        outruns its URDF velocity limit since the previous frame with a hand; ``SINGULAR`` where
        the arm's Jacobian loses rank; ``SELF_COLLISION`` where the robot's collision geometry
        intersects itself. ``feasible`` is "no flag".

        Returns:
            The joint trajectory with flags and residuals; one row per input frame.

        Raises:
            InvalidInputError: On wrong shapes, NaN in a present frame, a missing wrist pose for
                an arm, or a hand side the robot cannot take.
        """
        robot = self.robot
        points = check_keypoints(keypoints)
        frames = len(points)
        side = side or self.side
        if side not in ("right", "left"):
            raise InvalidInputError(f"unknown hand side {side!r}; valid choices: 'right', 'left'")
        if self._hand is not None and side != self.side:
            raise InvalidInputError(
                f"robot {robot.name!r} is a {self.side} hand and cannot take {side} hand "
                "keypoints; "
                "choose a robot of that side (e.g. allegro_left / allegro_right)"
            )
        mask = np.ones(frames, dtype=bool) if present is None else np.asarray(present, dtype=bool)
        if mask.shape != (frames,):
            raise InvalidInputError(f"present must have shape ({frames},), got {mask.shape}")
        bad = mask & ~np.isfinite(points).all(axis=(1, 2))
        if bad.any():
            raise InvalidInputError(
                f"keypoints have NaN/inf in present frames {np.flatnonzero(bad)[:10].tolist()}; "
                "mark frames without a hand with present=False"
            )
        extras = {}
        for name, values in (
            ("timestamps", timestamps),
            ("score", score),
            ("lift_error", lift_error),
        ):
            if values is None:
                continue
            array = np.asarray(values, dtype=np.float64)
            if array.shape != (frames,):
                raise InvalidInputError(f"{name} must have shape ({frames},), got {array.shape}")
            extras[name] = array
        if "timestamps" in extras and not np.all(np.diff(extras["timestamps"]) > 0):
            raise InvalidInputError("timestamps must be finite and strictly increasing [s]")
        wrist = None
        if transform_wrist_to_base is not None:
            wrist = np.asarray(transform_wrist_to_base, dtype=np.float64)
            if wrist.shape != (frames, 4, 4):
                raise InvalidInputError(
                    f"transform_wrist_to_base must have shape ({frames}, 4, 4), got {wrist.shape}"
                )
            bad = mask & ~np.isfinite(wrist).all(axis=(1, 2))
            if bad.any():
                raise InvalidInputError(
                    f"transform_wrist_to_base has NaN/inf in present frames "
                    f"{np.flatnonzero(bad)[:10].tolist()}"
                )
            rot = wrist[mask, :3, :3]
            ortho = np.abs(np.einsum("tji,tjk->tik", rot, rot) - np.eye(3)).max(axis=(1, 2))
            if (ortho > 1e-4).any() or (np.linalg.det(rot) < 0).any():
                raise InvalidInputError(
                    "transform_wrist_to_base holds a matrix that is not a rigid transform"
                )
        elif self._arm is not None:
            raise InvalidInputError(
                f"robot {robot.name!r} has an arm: pass transform_wrist_to_base, the (T, 4, 4) "
                "wrist poses in the robot base frame"
            )

        q_all = np.empty((frames, robot.nq))
        flags = np.zeros(frames, dtype=np.int64)
        position = np.full(frames, np.nan)
        orientation = np.full(frames, np.nan)
        fingertip = np.full(frames, np.nan)
        ee_pose = np.full((frames, 4, 4), np.nan)
        iterations = np.zeros(frames, dtype=np.int64)
        singular = np.full(frames, np.nan)
        limited = np.zeros(frames, dtype=bool)
        feas = self.config.feasibility
        ee_to_hand = np.linalg.inv(robot.transform_hand_to_ee)

        valid = np.flatnonzero(mask)
        targets = None
        if self._hand is not None and len(valid):
            targets = np.full((frames, len(self._pairs), 3), np.nan)
            targets[valid] = self.target_vectors(points[valid], side)
        if self._arm is None and wrist is not None:
            ee_pose[valid] = wrist[valid] @ ee_to_hand
        gripper = None
        if robot.gripper_joint is not None and len(valid):
            assert robot.description.gripper is not None
            gripper = np.full(frames, np.nan)
            gripper[valid] = gripper_position(
                aperture_from_keypoints(points[valid]), robot.description.gripper
            )

        arm_targets = wrist @ ee_to_hand if (self._arm is not None and wrist is not None) else None
        q = robot.rest.copy()
        q_arm_good = robot.rest[self._arm_columns].copy() if self._arm is not None else None
        for t in range(frames):
            if not mask[t]:
                q_all[t] = q
                flags[t] = Flag.NO_HAND
                continue
            if self._arm is not None:
                assert arm_targets is not None
                result = self._arm.solve(arm_targets[t], q[self._arm_columns])
                if not self._arm.succeeded(result):
                    # Warm starts can be trapped after a jump or an unreachable stretch (arm
                    # stretched against its limits): also try the last good solution and the
                    # rest pose, keep the best. Every attempt is a real solve, reported as is.
                    assert q_arm_good is not None
                    for start in (q_arm_good, robot.rest[self._arm_columns]):
                        retry = self._arm.solve(arm_targets[t], start)
                        if self._arm.better(retry, result):
                            result = retry
                        if self._arm.succeeded(result):
                            break
                if self._arm.succeeded(result):
                    q_arm_good = result.q
                elif self._on_limit(result.q, self._arm):
                    free = self._arm_free.solve(arm_targets[t], result.q)
                    limited[t] = self._arm_free.succeeded(free)
                singular[t] = self._smallest_singular_value(result.q)
                q[self._arm_columns] = result.q
                position[t] = result.position_error
                orientation[t] = result.orientation_error
                iterations[t] += result.iterations
                ee_pose[t] = result.transform_ee_to_base
            if self._hand is not None:
                assert targets is not None
                hand = self._hand.solve(targets[t], q[self._hand_columns])
                q[self._hand_columns] = hand.q
                fingertip[t] = self._hand.fingertip_error(hand.vectors, targets[t])
                if fingertip[t] > feas.max_fingertip_error and self._on_limit(hand.q, self._hand):
                    # This solve only decides, so it stops once the targets are met with the
                    # hand's parts clear of each other (a hand crossing itself reaches nothing).
                    free_hand = self._hand_free.solve(
                        targets[t], hand.q, goal=feas.max_fingertip_error
                    )
                    limited[t] |= free_hand.goal_met
                iterations[t] += hand.iterations
            if gripper is not None:
                q[self._gripper_column] = gripper[t]
            q_all[t] = q
        unreachable = (
            (position > feas.max_position_error)
            | (orientation > feas.max_orientation_error)
            | (fingertip > feas.max_fingertip_error)
        )
        flags[unreachable & limited] |= Flag.JOINT_LIMIT
        flags[unreachable & ~limited] |= Flag.UNREACHABLE
        flags[mask & (singular < feas.min_singular_value)] |= Flag.SINGULAR
        if "score" in extras:
            flags[mask & ~(extras["score"] >= feas.min_score)] |= Flag.LOW_CONFIDENCE
        if "lift_error" in extras:
            flags[mask & ~(extras["lift_error"] <= feas.max_lift_error)] |= Flag.LIFT_UNCERTAIN
        collisions = np.full(frames, np.nan)
        if self.collision is not None:
            for frame in valid.tolist():
                pairs = self.collision.colliding(robot.model_configuration(q_all[frame]))
                collisions[frame] = len(pairs)
            flags[collisions > 0] |= Flag.SELF_COLLISION
        speed = np.full(frames, np.nan)
        if "timestamps" in extras and len(valid) > 1:
            limit = np.where(robot.velocity_limit > 0, robot.velocity_limit, np.inf)
            step = (
                np.abs(np.diff(q_all[valid], axis=0))
                / np.diff(extras["timestamps"][valid])[:, None]
            )
            speed[valid[1:]] = (step / limit).max(axis=1)
            flags[valid[1:][speed[valid[1:]] > feas.velocity_scale]] |= Flag.VELOCITY_LIMIT
        return RetargetResult(
            joint_names=robot.joint_names,
            q=_readonly(q_all),
            feasible=_readonly(flags == 0),
            flags=_readonly(flags),
            residual=Residual(
                _readonly(position),
                _readonly(orientation),
                _readonly(fingertip),
                _readonly(speed),
                _readonly(singular),
                _readonly(collisions),
            ),
            transform_ee_to_base=_readonly(ee_pose),
            iterations=_readonly(iterations),
        )

    def _on_limit(self, q: NDArray[np.float64], solver: ArmIK | VectorRetargeter) -> bool:
        margin = self.config.feasibility.joint_limit_margin
        return bool(np.any((q <= solver.lower + margin) | (q >= solver.upper - margin)))

    def _smallest_singular_value(self, q_arm: NDArray[np.float64]) -> float:
        assert self._arm is not None
        arm = self._arm
        return dexterity(arm.model, arm.data, arm.frame_id, q_arm, self._arm_length)

    @property
    def kind(self) -> RobotKind:
        """The robot's kind."""
        return self.robot.description.kind
