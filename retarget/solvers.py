"""The per-robot solvers a retargeter runs, built once from a robot and its settings.

Each part of a robot gets its solver on a model where only that part's joints move: the arm's
:class:`~retarget.arm_ik.ArmIK`, the dexterous hand's
:class:`~retarget.vector_retargeting.VectorRetargeter` (with the self-collision avoidance on the
hand's :class:`~retarget.shapes.HandShapes`, if on), each with a twin that ignores the joint
limits (it tells a target missed *because of* a limit from one out of reach), and the whole
robot's :class:`~retarget.collision.SelfCollision`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

from retarget.arm_ik import ArmIK, chain_length
from retarget.collision import SelfCollision
from retarget.config import RetargetConfig
from retarget.hand_frame import FINGER_MCP, WRIST
from retarget.robot import Robot
from retarget.shapes import HandShapes
from retarget.vector_retargeting import VectorRetargeter


def locked_model(robot: Robot, free: tuple[str, ...]) -> pin.Model:
    """The robot's model with every joint but ``free`` locked at the rest configuration."""
    model = robot.model
    lock = [j for j in range(1, model.njoints) if model.names[j] not in free]
    return pin.buildReducedModel(model, lock, robot.model_configuration(robot.rest))


@dataclass(frozen=True)
class ArmSolvers:
    """The arm's IK, with and without joint limits."""

    ik: ArmIK
    """The solver, on a model with only the arm's joints free."""
    free: ArmIK
    """The same solver without joint limits."""
    columns: NDArray[np.intp]
    """Columns of the arm's joints in the robot's ``q``."""
    length: float
    """The arm's chain length [m] (:func:`retarget.arm_ik.chain_length`)."""


@dataclass(frozen=True)
class HandSolvers:
    """The dexterous hand's vector solver, with and without joint limits."""

    vector: VectorRetargeter
    """The solver, on a model with only the hand's joints free."""
    free: VectorRetargeter
    """The same solver (same avoidance) without joint limits."""
    columns: NDArray[np.intp]
    """Columns of the hand's joints in the robot's ``q``."""
    keypoint_of_point: NDArray[np.intp]
    """MediaPipe keypoint of each mapped point: the wrist, then each fingertip."""
    pairs: NDArray[np.intp]
    """Shape (K, 2): the points each target vector runs between."""
    human_start: NDArray[np.intp]
    """Shape (K,): the MediaPipe keypoint each target's human vector starts at: the first
    point's, or a finger's MCP where the target starts at the robot's finger root
    (``RetargetConfig.finger_roots``)."""
    robot_start: NDArray[np.float64]
    """Shape (K, 3) [m]: added to each scaled human vector, in the palm frame: the robot's
    wrist point to that finger's root joint where the target starts there, else zero."""


@dataclass(frozen=True)
class Solvers:
    """Everything a :class:`~retarget.Retargeter` solves and judges with."""

    arm: ArmSolvers | None
    """None for a robot without an arm."""
    hand: HandSolvers | None
    """None for a robot without a dexterous hand."""
    gripper_column: int | None
    """Column of the gripper joint in ``q``, None without one."""
    collision: SelfCollision | None
    """The self-collision check, None when ``check_self_collision`` is off."""


def build_solvers(robot: Robot, config: RetargetConfig) -> Solvers:
    """The solvers of ``robot`` under ``config`` (one :class:`SelfCollision` serves all)."""
    checker: SelfCollision | None = None
    if config.avoid_self_collision and robot.hand_joints:
        checker = SelfCollision(robot)
    if config.feasibility.check_self_collision:
        checker = checker or SelfCollision(robot)
    return Solvers(
        _arm_solvers(robot, config) if robot.arm_joints else None,
        _hand_solvers(robot, config, checker) if robot.hand_joints else None,
        robot.joint_names.index(robot.gripper_joint) if robot.gripper_joint else None,
        checker if config.feasibility.check_self_collision else None,
    )


def _without_limits(solver: ArmIK | VectorRetargeter) -> ArmIK | VectorRetargeter:
    lower, upper = np.full(solver.model.nq, -np.inf), np.full(solver.model.nq, np.inf)
    if isinstance(solver, ArmIK):
        solver.lower, solver.upper = lower, upper
        solver.redundant = False  # no limits, no mid-range to keep to: it only decides reach
    else:
        solver.set_limits(lower, upper)
    return solver


def _arm_solvers(robot: Robot, config: RetargetConfig) -> ArmSolvers:
    model = locked_model(robot, robot.arm_joints)
    frame = robot.description.ee_frame
    bound = config.feasibility.max_orientation_error
    ik = ArmIK(model, frame, config.ik, bound)
    free = ArmIK(model, frame, config.ik, bound)
    _without_limits(free)
    return ArmSolvers(
        ik, free, robot.joint_indices(robot.arm_joints), chain_length(model, ik.frame_id)
    )


def _hand_solvers(
    robot: Robot, config: RetargetConfig, checker: SelfCollision | None
) -> HandSolvers:
    description = robot.description
    tips = description.fingertips
    pairs = [(0, i + 1) for i in range(len(tips))]
    weights = [1.0] * len(tips)
    thumb = next((i + 1 for i, f in enumerate(tips) if f.keypoint == 4), None)
    if config.thumb_vectors and thumb is not None:
        for i in range(len(tips)):
            if i + 1 != thumb:
                pairs.append((thumb, i + 1))
                weights.append(config.hand.thumb_vector_weight)
    model = locked_model(robot, robot.hand_joints)
    shapes = None
    if config.avoid_self_collision:
        assert checker is not None
        shapes = HandShapes(
            checker, robot.hand_joints, description.ee_frame, robot.model_configuration(robot.rest)
        )
    arguments = (
        description.ee_frame,
        robot.transform_hand_to_ee[:3, 3],
        tuple(f.frame for f in tips),
        tuple(pairs),
        np.array(weights),
        config.hand,
        shapes,
    )
    free = VectorRetargeter(model, *arguments)
    _without_limits(free)
    solver = VectorRetargeter(model, *arguments)
    keypoints = np.array([WRIST] + [f.keypoint for f in tips])
    human_start = keypoints[np.array(pairs)[:, 0]]
    robot_start = np.zeros((len(pairs), 3))
    if config.finger_roots:
        roots = finger_roots(solver, tuple(f.frame for f in tips))
        for k, (a, b) in enumerate(pairs):
            mcp = FINGER_MCP.get(int(keypoints[b]))
            if a == 0 and mcp is not None:
                human_start[k], robot_start[k] = mcp, roots[b - 1]
    return HandSolvers(
        solver,
        free,
        robot.joint_indices(robot.hand_joints),
        keypoints,
        np.array(pairs),
        human_start,
        robot_start,
    )


def finger_roots(solver: VectorRetargeter, tip_frames: tuple[str, ...]) -> NDArray[np.float64]:
    """Each fingertip's root joint (the finger's first joint), from the solver's wrist point.

    Returns:
        Shape (F, 3) [m], in the palm frame the solver's vectors are in. A root joint's origin
        does not move with the finger's own joints.
    """
    model = solver.model
    data = model.createData()
    pin.forwardKinematics(model, data, pin.neutral(model))
    roots = np.empty((len(tip_frames), 3))
    for i, name in enumerate(tip_frames):
        joint = model.frames[model.getFrameId(name)].parentJoint
        while model.parents[joint] != 0:
            joint = model.parents[joint]
        roots[i] = solver.rotation_palm.T @ (data.oMi[joint].translation - solver.wrist_position)
    return roots
