"""Arm inverse kinematics: the end-effector pose from the wrist pose, on a Pinocchio model.

Levenberg-Marquardt with Sugihara's damping (lambda = ||e||^2 + bias; T. Sugihara, "Solvability-
unconcerned inverse kinematics by the Levenberg-Marquardt method", IEEE T-RO 2011): well-behaved
near singularities and for unreachable targets, where it converges to the closest reachable pose
instead of diverging. Joint limits are enforced by projection after each step. Arms with fewer
than six joints solve position first and orientation in the position task's null space
(task priority), so the orientation they cannot reach is reported, not traded against position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

from retarget._linalg import solve_spd

_LOCAL = pin.ReferenceFrame.LOCAL


@dataclass(frozen=True)
class IKConfig:
    """Settings of the arm IK solver."""

    max_iterations: int = 30
    """Iterations per frame before giving up (the residual is then reported)."""
    position_tolerance: float = 1e-4
    """Converged when the position error is below this [m] ..."""
    orientation_tolerance: float = 1e-3
    """... and the orientation error below this [rad]."""
    step_tolerance: float = 1e-6
    """Stop when a step changes no joint by more than this [rad] or [m] (stalled: at a limit,
    or the closest reachable pose of an unreachable target)."""
    stall_ratio: float = 0.98
    """Stop when a small step (< 1 mrad) keeps more than this fraction of the squared error:
    converging solves shrink it far faster; creeping ones are at a limit or out of reach."""
    damping_bias: float = 1e-6
    """Constant part of the Levenberg-Marquardt damping."""
    posture_gain: float = 0.1
    """Redundant arms (more joints than the pose task's 6, e.g. the Panda): each iteration also
    moves the joints this fraction of the way towards the middle of their ranges, within the
    task's null space (the pose is not disturbed, to first order), so that the next frames stay
    reachable away from the limits. 0 turns it off."""


@dataclass(frozen=True)
class IKResult:
    """Outcome of one IK solve.

    Attributes:
        q: Arm joint positions, shape (n_arm,).
        position_error: Distance between reached and target position [m].
        orientation_error: Angle between reached and target orientation [rad].
        iterations: Solver iterations used.
        converged: Both errors within tolerance.
        transform_ee_to_base: The reached end-effector pose, shape (4, 4).
    """

    q: NDArray[np.float64]
    position_error: float
    orientation_error: float
    iterations: int
    converged: bool
    transform_ee_to_base: NDArray[np.float64]


class ArmIK:
    """IK for one frame of a model whose joints are exactly the arm's joints.

    Args:
        model: Pinocchio model with only the arm's joints free (others locked).
        frame: Name of the end-effector frame.
        config: Solver settings.
        orientation_bound: An arm of fewer than six joints reaches its target when the
            position is within tolerance and the orientation within this [rad] (its IK reaches
            the position first); the retargeter gives the ``UNREACHABLE`` threshold,
            ``FeasibilityConfig.max_orientation_error``. Full-pose arms ignore it.
    """

    def __init__(
        self,
        model: pin.Model,
        frame: str,
        config: IKConfig | None = None,
        orientation_bound: float = float("inf"),
    ) -> None:
        self.model = model
        self.data = model.createData()
        self.frame_id = model.getFrameId(frame)
        self.config = config or IKConfig()
        self.lower = model.lowerPositionLimit.copy()
        self.upper = model.upperPositionLimit.copy()
        self.prioritized = model.nv < 6
        self.orientation_bound = orientation_bound
        finite = np.isfinite(self.lower) & np.isfinite(self.upper)
        self.redundant = model.nv > 6 and bool(finite.all()) and self.config.posture_gain > 0
        self._middle = np.where(finite, (self.lower + self.upper) / 2, 0.0)
        self._error = np.empty(6)
        self._identity = np.eye(model.nv)

    def errors(self, q: NDArray[np.float64], target: pin.SE3) -> NDArray[np.float64]:
        """Error from the pose at ``q`` to ``target`` in the end-effector frame.

        Returns ``(R^T (p_target - p), log3(R^T R_target))``, shape (6,): position [m] and
        rotation vector [rad], both in the current end-effector frame, matching the rows of the
        LOCAL frame Jacobian. Leaves that Jacobian's ingredients in ``self.data``.
        """
        pin.computeJointJacobians(self.model, self.data, q)
        current = pin.updateFramePlacement(self.model, self.data, self.frame_id)
        relative = current.actInv(target)
        error = self._error
        error[:3] = relative.translation
        error[3:] = pin.log3(relative.rotation)
        return error

    def forward(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        """The end-effector pose at ``q`` (n_arm,), shape (4, 4) in the base frame."""
        pin.framesForwardKinematics(self.model, self.data, np.asarray(q, dtype=np.float64))
        return np.asarray(self.data.oMf[self.frame_id].homogeneous.copy())

    def solve(self, transform_target: NDArray[np.float64], q_init: NDArray[np.float64]) -> IKResult:
        """Solve for ``transform_target`` (4x4, base frame) starting from ``q_init`` (n_arm,)."""
        cfg = self.config
        target = pin.SE3(np.asarray(transform_target, dtype=np.float64))
        q = np.minimum(np.maximum(np.asarray(q_init, dtype=np.float64), self.lower), self.upper)
        pos_tol2 = cfg.position_tolerance**2
        ori_tol2 = cfg.orientation_tolerance**2
        step_tol2 = cfg.step_tolerance**2
        iterations = 0
        error = self.errors(q, target)
        previous_ori2 = np.inf
        previous_cost = np.inf
        last_step2 = np.inf
        while True:
            pos2 = float(error[:3] @ error[:3])
            ori2 = float(error[3:] @ error[3:])
            if (pos2 < pos_tol2 and ori2 < ori_tol2) or iterations >= cfg.max_iterations:
                break
            if self.prioritized and pos2 < pos_tol2 and previous_ori2 - ori2 < ori_tol2:
                break  # Position reached; the orientation left is what this arm cannot do.
            if pos2 + ori2 > cfg.stall_ratio * previous_cost and last_step2 < 1e-6:
                break  # Stalled: creeping at a limit, or the closest pose to an unreachable one.
            previous_ori2 = ori2
            previous_cost = pos2 + ori2
            jacobian = pin.getFrameJacobian(self.model, self.data, self.frame_id, _LOCAL)
            if self.prioritized:
                dq = self._prioritized_step(jacobian, error)
            else:
                jjt = jacobian @ jacobian.T
                jjt.flat[::7] += pos2 + ori2 + cfg.damping_bias
                dq = jacobian.T @ solve_spd(jjt, error)
                if self.redundant:
                    # Towards mid-range, projected out of the task: (I - J+ J) k (mid - q).
                    pull = cfg.posture_gain * (self._middle - q)
                    dq += pull - jacobian.T @ solve_spd(jjt, jacobian @ pull)
            q_next = np.minimum(np.maximum(q + dq, self.lower), self.upper)
            iterations += 1
            moved = q_next - q
            q = q_next
            error = self.errors(q, target)
            last_step2 = float(moved @ moved)
            if last_step2 < step_tol2:
                break
        if self.prioritized:
            # Orientation steps in the (damped, linearised) null space disturb the position a
            # little; finish with position-only steps so that position really comes first.
            for _ in range(cfg.max_iterations):
                pos2 = float(error[:3] @ error[:3])
                if pos2 < pos_tol2:
                    break
                j_pos = pin.getFrameJacobian(self.model, self.data, self.frame_id, _LOCAL)[:3]
                jjt = j_pos @ j_pos.T
                jjt.flat[::4] += pos2 + cfg.damping_bias
                q_next = np.minimum(
                    np.maximum(q + j_pos.T @ solve_spd(jjt, error[:3]), self.lower), self.upper
                )
                iterations += 1
                moved = q_next - q
                q = q_next
                error = self.errors(q, target)
                if float(moved @ moved) < step_tol2:
                    break
        pos = float(np.sqrt(error[:3] @ error[:3]))
        ori = float(np.sqrt(error[3:] @ error[3:]))
        converged = pos < cfg.position_tolerance and ori < cfg.orientation_tolerance
        reached = self.data.oMf[self.frame_id].homogeneous
        return IKResult(q, pos, ori, iterations, converged, reached)

    def succeeded(self, result: IKResult) -> bool:
        """Whether a result reached its target.

        Position and orientation within tolerance; for arms with fewer than six joints, the
        position within tolerance and the orientation within ``orientation_bound``.
        """
        return self.reached(result.position_error, result.orientation_error)

    def reached(self, position_error: float, orientation_error: float) -> bool:
        """Whether a position [m] and orientation [rad] error reach the target.

        :meth:`succeeded` on the figures alone.
        """
        cfg = self.config
        close = position_error < cfg.position_tolerance
        if self.prioritized:
            return close and orientation_error <= self.orientation_bound
        return close and orientation_error < cfg.orientation_tolerance

    def better(self, a: IKResult, b: IKResult) -> bool:
        """Whether ``a`` is closer to the target than ``b``.

        Arms with fewer than six joints: position first, then orientation: of two answers that
        reach the position (within ``position_tolerance``) the one with the smaller orientation
        error, else the one nearer in position. Full-pose arms weigh 1 cm like 0.1 rad.
        """
        if self.prioritized:
            return self._priority(a) < self._priority(b)
        return (
            a.position_error + 0.1 * a.orientation_error
            < b.position_error + 0.1 * b.orientation_error
        )

    def _priority(self, result: IKResult) -> tuple[bool, float]:
        """Sort key of :meth:`better` for an arm of fewer than six joints."""
        if result.position_error < self.config.position_tolerance:
            return False, result.orientation_error
        return True, result.position_error

    def _prioritized_step(
        self, jacobian: NDArray[np.float64], error: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Position first, orientation in the position task's null space (damped)."""
        bias = self.config.damping_bias
        j_pos, j_ori = jacobian[:3], jacobian[3:]
        e_pos, e_ori = error[:3], error[3:]
        jjt = j_pos @ j_pos.T
        jjt.flat[::4] += float(e_pos @ e_pos) + bias
        pinv_pos = solve_spd(jjt, j_pos).T
        dq = pinv_pos @ e_pos
        null = self._identity - pinv_pos @ j_pos
        j_ori_null = j_ori @ null
        residual = e_ori - j_ori @ dq
        jjt = j_ori_null @ j_ori_null.T
        jjt.flat[::4] += float(residual @ residual) + bias
        return np.asarray(dq + null @ (j_ori_null.T @ solve_spd(jjt, residual)))


def chain_length(model: pin.Model, frame_id: int) -> float:
    """Length of the kinematic chain that carries a frame [m].

    The sum of the distances between consecutive joint origins, from the first joint to the
    frame's origin. Each distance is fixed in one body, so the sum holds in every configuration:
    it bounds how far the frame can be from the first joint.
    """
    data = model.createData()
    pin.framesForwardKinematics(model, data, pin.neutral(model))
    chain = [j for j in model.supports[model.frames[frame_id].parentJoint] if j > 0]
    points = [data.oMi[j].translation for j in chain] + [data.oMf[frame_id].translation]
    return float(sum(np.linalg.norm(b - a) for a, b in zip(points, points[1:], strict=False)))


def dexterity(
    model: pin.Model,
    data: pin.Data,
    frame_id: int,
    q: NDArray[np.float64],
    length: float,
) -> float:
    """Smallest singular value of a frame's Jacobian, its linear rows divided by ``length``.

    The Jacobian's linear rows are in [m/rad] and its angular rows in [rad/rad]; dividing the
    linear rows by the arm's :func:`chain_length` makes the figure dimensionless, so that one
    threshold suits arms of every size (a small arm's linear rows are small for its size
    alone). Zero at a singular configuration.
    """
    jacobian = pin.computeFrameJacobian(model, data, q, frame_id, _LOCAL)
    jacobian[:3] /= length
    return float(np.linalg.svd(jacobian, compute_uv=False)[-1])
