"""hand2robot's retargeting API: human hand keypoints and wrist poses -> robot joints.

Pure math on arrays and Pinocchio models: no video, no files beyond URDFs, no Ray.

Example::

    import retarget
    robot = retarget.load_robot("allegro_right")
    res = retarget.Retargeter(robot).retarget_sequence(keypoints)   # (T, 21, 3) [m]
    res.q, res.feasible, res.flags, res.residual
    retarget.evaluate(robot, my_q, targets)         # flags and residuals of any trajectory
    smooth = retarget.Retargeter(robot, retarget.RetargetConfig(optimize=True))  # whole clip,
    smooth.retarget_sequence(keypoints, timestamps=t)  # in torch (retarget.TrajectoryOptimizer)
"""

from typing import TYPE_CHECKING

from retarget.arm_ik import ArmIK, IKConfig, IKResult
from retarget.bimanual import (
    BimanualResult,
    BimanualRetargeter,
    BimanualRobot,
    load_any_robot,
    load_bimanual,
)
from retarget.config import FeasibilityConfig, RetargetConfig, TrajectoryConfig
from retarget.evaluate import Evaluation, Evaluator, Targets, evaluate
from retarget.exceptions import Hand2RobotError, InvalidInputError, RobotConfigError, RobotNotFound
from retarget.flags import Flag, flag_names
from retarget.gripper import aperture_from_gripper, aperture_from_keypoints, gripper_position
from retarget.hand_frame import (
    NUM_KEYPOINTS,
    HandSide,
    check_keypoints,
    hand_frame_from_keypoints,
    keypoints_in_hand_frame,
)
from retarget.result import Residual, RetargetResult
from retarget.retargeter import Retargeter
from retarget.robot import MimicJoint, Robot, load_robot, transform_matrix
from retarget.vector_retargeting import VectorConfig, VectorResult, VectorRetargeter

if TYPE_CHECKING:
    from retarget.optimizer import Clip, OptimizedTrajectory, TrajectoryOptimizer

_TORCH = ("Clip", "OptimizedTrajectory", "TrajectoryOptimizer")
"""Names of :mod:`retarget.optimizer`, loaded on first use: torch takes about 1.5 s to
import, which every command would pay otherwise (PEP 562)."""


def __getattr__(name: str) -> object:
    if name in _TORCH:
        from retarget import optimizer

        return getattr(optimizer, name)
    raise AttributeError(f"module 'retarget' has no attribute {name!r}")


__all__ = [
    "NUM_KEYPOINTS",
    "ArmIK",
    "BimanualResult",
    "BimanualRetargeter",
    "BimanualRobot",
    "Clip",
    "Evaluation",
    "Evaluator",
    "FeasibilityConfig",
    "Flag",
    "Hand2RobotError",
    "HandSide",
    "IKConfig",
    "IKResult",
    "InvalidInputError",
    "MimicJoint",
    "OptimizedTrajectory",
    "Residual",
    "RetargetConfig",
    "RetargetResult",
    "Retargeter",
    "Robot",
    "RobotConfigError",
    "RobotNotFound",
    "Targets",
    "TrajectoryConfig",
    "TrajectoryOptimizer",
    "VectorConfig",
    "VectorResult",
    "VectorRetargeter",
    "aperture_from_gripper",
    "aperture_from_keypoints",
    "check_keypoints",
    "evaluate",
    "flag_names",
    "gripper_position",
    "hand_frame_from_keypoints",
    "keypoints_in_hand_frame",
    "load_any_robot",
    "load_bimanual",
    "load_robot",
    "transform_matrix",
]
