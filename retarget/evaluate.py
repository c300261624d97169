"""Judging a joint trajectory: every residual and flag, from the trajectory and its targets alone.

The per-frame solver is one producer of joint trajectories among others (an optimised one, a
user's); :func:`evaluate` judges any of them the same way, by Pinocchio forward kinematics on the
robot's own models: how far the end effector and fingertips are from their targets, whether a
miss is a joint limit's fault, dexterity, self-collision and joint speed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

from retarget.arm_ik import dexterity
from retarget.config import FeasibilityConfig, RetargetConfig
from retarget.exceptions import InvalidInputError
from retarget.flags import Flag
from retarget.result import Residual, readonly
from retarget.robot import Robot
from retarget.solvers import ArmSolvers, HandSolvers, Solvers, build_solvers
from retarget.symmetry import nearest_turn, symmetry_of, turned


class Targets(NamedTuple):
    """What a trajectory of ``T`` frames should reach (:meth:`retarget.Retargeter.targets`)."""

    present: NDArray[np.bool_]
    """Shape (T,): frames with a hand; the others are ``NO_HAND`` and not judged."""
    transform_ee_to_base: NDArray[np.float64] | None
    """Shape (T, 4, 4): the end-effector (palm) pose the wrist implies, in the robot base frame
    [m] (NaN where absent); the arm's target. None when no wrist pose is known."""
    vectors: NDArray[np.float64] | None
    """Shape (T, K, 3): the dexterous hand's target vectors in its palm frame [m] (NaN where
    absent); None for a robot without a dexterous hand."""
    gripper: NDArray[np.float64] | None
    """Shape (T,): the gripper joint's target [m] or [rad]; None without a gripper."""
    timestamps: NDArray[np.float64] | None = None
    """Shape (T,) [s], strictly increasing; enables ``VELOCITY_LIMIT``."""
    score: NDArray[np.float64] | None = None
    """Shape (T,): detector confidence; enables ``LOW_CONFIDENCE``."""
    lift_error: NDArray[np.float64] | None = None
    """Shape (T,): PnP error over the hand's image size; enables ``LIFT_UNCERTAIN``."""
    wrist_std: NDArray[np.float64] | None = None
    """Shape (T,) [m]: the lifted wrist's standard deviation along its viewing ray; enables
    ``LIFT_UNCERTAIN`` (above ``max_wrist_std``)."""
    camera_std: NDArray[np.float64] | None = None
    """Shape (T,) [deg]: the standard deviation of the camera rotation taken out of the hand
    motion (NaN: unknown); enables ``CAMERA_UNCERTAIN`` (above ``max_camera_std``)."""


class Evaluation(NamedTuple):
    """The verdict on a joint trajectory. Arrays are read-only."""

    flags: NDArray[np.int64]
    """Shape (T,): bitmask of :class:`retarget.Flag`."""
    residual: Residual
    """The figures behind the flags."""
    transform_ee_to_base: NDArray[np.float64]
    """Shape (T, 4, 4): the reached end-effector pose; for a free hand the palm pose the
    wrist implies; NaN without one."""


class Evaluator:
    """Judge joint trajectories of one robot (the models are built once).

    Args:
        robot: A loaded robot.
        config: The thresholds (``config.feasibility``) and the solvers' settings: a miss is
            ``JOINT_LIMIT`` when the same solver without limits, started where the trajectory
            is, reaches the target.
        solvers: Solvers already built for ``robot`` and ``config`` (a retargeter's).
    """

    def __init__(
        self, robot: Robot, config: RetargetConfig | None = None, solvers: Solvers | None = None
    ) -> None:
        self.robot = robot
        self.config = config or RetargetConfig()
        self.solvers = solvers or build_solvers(robot, self.config)
        self.symmetry = symmetry_of(robot, self.config)
        """The end-effector symmetry the residuals are measured with."""

    def evaluate(self, q: NDArray[np.floating], targets: Targets) -> Evaluation:
        """Every residual and flag of the joint trajectory ``q``, shape (T, nq).

        Flags (thresholds in :class:`~retarget.FeasibilityConfig`): ``NO_HAND`` where not
        present; ``LOW_CONFIDENCE``, ``LIFT_UNCERTAIN`` from the targets' figures;
        ``JOINT_LIMIT`` where the target is missed with a joint on its limit and the same solve
        without limits reaches it; ``UNREACHABLE`` where it is missed otherwise;
        ``VELOCITY_LIMIT`` where a joint outruns its URDF velocity limit since the previous
        frame with a hand; ``SINGULAR`` where the arm's dexterity is too low;
        ``SELF_COLLISION`` where the robot's collision geometry intersects itself.

        Raises:
            InvalidInputError: ``q`` of another shape than (T, nq) or not finite, or targets of
                another length.
        """
        q = _checked_trajectory(q, targets, self.robot)
        frames = len(q)
        feas = self.config.feasibility
        mask = np.asarray(targets.present, dtype=bool)
        flags = np.where(mask, 0, int(Flag.NO_HAND)).astype(np.int64)
        nan = np.full(frames, np.nan)
        position, orientation, fingertip, singular = (nan.copy() for _ in range(4))
        ee_pose = np.full((frames, 4, 4), np.nan)
        limited = np.zeros(frames, dtype=bool)
        arm, hand = self.solvers.arm, self.solvers.hand
        if arm is not None and targets.transform_ee_to_base is not None:
            for t in np.flatnonzero(mask).tolist():
                figures = self._judge_arm(arm, q[t, arm.columns], targets.transform_ee_to_base[t])
                position[t], orientation[t], singular[t], limited[t], ee_pose[t] = figures
        elif targets.transform_ee_to_base is not None:
            valid = np.flatnonzero(mask)
            ee_pose[valid] = targets.transform_ee_to_base[valid]
        if hand is not None and targets.vectors is not None:
            valid = np.flatnonzero(mask)
            fingertip[valid], free_met = self._judge_hands(
                hand, q[valid][:, hand.columns], targets.vectors[valid]
            )
            limited[valid] |= free_met
        unreachable = (
            (position > feas.max_position_error)
            | (orientation > feas.max_orientation_error)
            | (fingertip > feas.max_fingertip_error)
        )
        flags[unreachable & limited] |= Flag.JOINT_LIMIT
        flags[unreachable & ~limited] |= Flag.UNREACHABLE
        flags[mask & (singular < feas.min_singular_value)] |= Flag.SINGULAR
        flags |= input_flags(mask, targets, feas)
        collisions = self._collisions(q, mask)
        flags[collisions > 0] |= Flag.SELF_COLLISION
        speed = _joint_speed(q, mask, targets.timestamps, self.robot.velocity_limit)
        flags[speed > feas.velocity_scale] |= Flag.VELOCITY_LIMIT
        residual = Residual(
            *(readonly(a) for a in (position, orientation, fingertip, speed, singular, collisions))
        )
        return Evaluation(readonly(flags), residual, readonly(ee_pose))

    def _judge_arm(
        self, arm: ArmSolvers, q_arm: NDArray[np.float64], target: NDArray[np.float64]
    ) -> tuple[float, float, float, bool, NDArray[np.float64]]:
        """Position and orientation error, dexterity, the limit's fault, the reached pose."""
        ik = arm.ik
        target = np.asarray(target, dtype=np.float64)
        error = ik.errors(q_arm, pin.SE3(target))  # places the end effector in ik.data
        # Measured to the nearest equivalent target (a symmetric gripper's twin).
        turn = nearest_turn(target, ik.data.oMf[ik.frame_id].homogeneous, self.symmetry)
        if turn:
            target = turned(target, turn)
            error = ik.errors(q_arm, pin.SE3(target))
        position = float(np.sqrt(error[:3] @ error[:3]))
        orientation = float(np.sqrt(error[3:] @ error[3:]))
        reached = ik.data.oMf[ik.frame_id].homogeneous.copy()
        limited = False
        if not ik.reached(position, orientation) and self._on_limit(q_arm, ik.lower, ik.upper):
            free = arm.free.solve(target, q_arm)
            limited = arm.free.succeeded(free)
        singular = dexterity(ik.model, ik.data, ik.frame_id, q_arm, arm.length)
        return position, orientation, singular, limited, reached

    def _judge_hands(
        self, hand: HandSolvers, q_hand: NDArray[np.float64], targets: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Per frame: the mean fingertip error (T,), and whether the limit-free solve meets it.

        For hand joints (T, n_hand) and target vectors (T, K, 3).
        """
        solver = hand.vector
        limit = self.config.feasibility.max_fingertip_error
        errors = solver.fingertip_errors(solver.vectors_many(q_hand), targets)
        margin = self.config.feasibility.joint_limit_margin
        on_limit = ((q_hand <= solver.lower + margin) | (q_hand >= solver.upper - margin)).any(1)
        met = np.zeros(len(q_hand), dtype=bool)
        for t in np.flatnonzero((errors > limit) & on_limit).tolist():
            # This solve only decides, so it stops once the targets are met with the hand's
            # parts clear of each other (a hand crossing itself reaches nothing).
            met[t] = hand.free.solve(targets[t], q_hand[t], goal=limit).goal_met
        return errors, met

    def _on_limit(
        self, q: NDArray[np.float64], lower: NDArray[np.float64], upper: NDArray[np.float64]
    ) -> bool:
        margin = self.config.feasibility.joint_limit_margin
        return bool(np.any((q <= lower + margin) | (q >= upper - margin)))

    def _collisions(self, q: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Colliding geometry pairs per frame with a hand (NaN elsewhere or with the check off)."""
        collisions = np.full(len(q), np.nan)
        checker, hand = self.solvers.collision, self.solvers.hand
        if checker is None:
            return collisions
        # A bare hand's pairs are all its shapes' (never closer than the URDF parts): where no
        # two shapes overlap, coal cannot find a contact, and is not asked.
        shapes = hand.vector.shapes if hand is not None else None
        if shapes is None or len(shapes.pairs) != len(checker.pairs):
            shapes = None  # arm links too: coal on every frame
        valid = np.flatnonzero(mask)
        ask = np.ones(len(valid), dtype=bool)
        if shapes is not None and hand is not None:
            ask = shapes.in_contact_many(q[valid][:, hand.columns])
            collisions[valid[~ask]] = 0
        for frame in valid[ask].tolist():
            collisions[frame] = len(checker.colliding(self.robot.model_configuration(q[frame])))
        return collisions


def evaluate(
    robot: Robot,
    q: NDArray[np.floating],
    targets: Targets,
    config: RetargetConfig | None = None,
) -> Evaluation:
    """Judge a joint trajectory of ``robot``, however it was made (:meth:`Evaluator.evaluate`).

    Builds the robot's models each call: for many trajectories keep an :class:`Evaluator`
    (or a :class:`~retarget.Retargeter`, whose :meth:`~retarget.Retargeter.evaluate` is this).
    """
    return Evaluator(robot, config).evaluate(q, targets)


def _checked_trajectory(
    q: NDArray[np.floating], targets: Targets, robot: Robot
) -> NDArray[np.float64]:
    array = np.asarray(q, dtype=np.float64)
    frames = len(targets.present)
    if array.shape != (frames, robot.nq):
        raise InvalidInputError(
            f"q must have shape ({frames}, {robot.nq}) (frames of the targets, joints of "
            f"{robot.name!r}), got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise InvalidInputError("q holds NaN/inf; every frame needs joint positions")
    figures = ("timestamps", "score", "lift_error", "wrist_std", "camera_std")
    for name in ("transform_ee_to_base", "vectors", "gripper", *figures):
        values = getattr(targets, name)
        if values is not None and len(values) != frames:
            raise InvalidInputError(f"targets.{name} has {len(values)} frames, present {frames}")
    return array


def input_flags(
    mask: NDArray[np.bool_], targets: Targets, feas: FeasibilityConfig
) -> NDArray[np.int64]:
    """``LOW_CONFIDENCE``, ``LIFT_UNCERTAIN``, ``CAMERA_UNCERTAIN`` from the input's figures.

    The flags a frame has before any solve: its target itself is in doubt.
    """
    flags = np.zeros(len(mask), dtype=np.int64)
    if targets.score is not None:
        flags[mask & ~(targets.score >= feas.min_score)] |= Flag.LOW_CONFIDENCE
    if targets.lift_error is not None:
        flags[mask & ~(targets.lift_error <= feas.max_lift_error)] |= Flag.LIFT_UNCERTAIN
    if targets.wrist_std is not None:
        flags[mask & ~(targets.wrist_std <= feas.max_wrist_std)] |= Flag.LIFT_UNCERTAIN
    if targets.camera_std is not None:
        flags[mask & ~(targets.camera_std <= feas.max_camera_std)] |= Flag.CAMERA_UNCERTAIN
    return flags


def _joint_speed(
    q: NDArray[np.float64],
    mask: NDArray[np.bool_],
    timestamps: NDArray[np.float64] | None,
    velocity_limit: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Largest joint speed over its limit since the previous frame with a hand, (T,)."""
    speed = np.full(len(q), np.nan)
    valid = np.flatnonzero(mask)
    if timestamps is not None and len(valid) > 1:
        limit = np.where(velocity_limit > 0, velocity_limit, np.inf)
        step = np.abs(np.diff(q[valid], axis=0)) / np.diff(timestamps[valid])[:, None]
        speed[valid[1:]] = (step / limit).max(axis=1)
    return speed
