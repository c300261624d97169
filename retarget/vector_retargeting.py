"""Dexterous-hand vector retargeting on Pinocchio Jacobians.

Objective per frame (cf. Handa et al., "DexPilot", ICRA 2020; Qin et al., "AnyTeleop", RSS
2023), with robot vectors ``v_k(q)`` between mapped points (the wrist point and fingertips),
scaled human target vectors ``t_k`` in the robot's palm frame, weights ``w_k`` and the previous
frame's solution ``q_prev``::

    min_q  sum_k w_k ||v_k(q) - t_k||^2 + lambda ||q - q_prev||^2
           + mu sum_pairs max(0, margin - d_pair(q))^2               s.t.  lower <= q <= upper

solved by projected Levenberg-Marquardt with an active set (joints on a limit whose descent
direction points out of range are held, so the step is a true Gauss-Newton step on the others
instead of one clipped afterwards), warm-started from ``q_prev``. The last term is optional
collision avoidance: ``d_pair`` the signed distance between two parts of the hand's URDF
collision geometry (:class:`retarget.collision.CollisionAvoidance`).
The Jacobian of ``v_k = p_b - p_a`` is ``R_palm^T (J_b - J_a)`` (position rows of Pinocchio's
world-aligned frame Jacobians).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

from retarget._linalg import solve_spd
from retarget.collision import CollisionAvoidance
from retarget.exceptions import InvalidInputError

_LWA = pin.ReferenceFrame.LOCAL_WORLD_ALIGNED


@dataclass(frozen=True)
class VectorConfig:
    """Settings of the vector retargeting solver."""

    max_iterations: int = 20
    """Gauss-Newton iterations per frame."""
    step_tolerance: float = 1e-4
    """Stop when a step moves the joints by less than this (Euclidean norm) [rad]."""
    temporal_weight: float = 1e-5
    """``lambda``: pull towards the previous frame's solution [m^2/rad^2]. 1e-5 prices a
    1 rad change like a 3 mm vector error: it settles the redundant directions and damps jitter
    without making the hand lag (smooth the keypoints for more)."""
    damping: float = 1e-6
    """Constant part and floor of the Levenberg-Marquardt damping [m^2/rad^2]."""
    damping_gain: float = 0.3
    """Each frame starts with damping ``damping_gain * objective + damping`` (Sugihara's choice,
    as in the arm IK: heavy where the targets cannot be met, light near a match). It grows
    tenfold on a rejected step and shrinks 0.3x on an accepted one, down to ``damping``.
    Measured on the real kettle clip (``scripts/bench_retarget.py``): 1.5-2.7 iterations a frame
    against 7-10 with a fixed 1e-6 start, and a final objective closer to the fully converged
    one; on reachable synthetic targets 2.6 iterations against 2.2."""
    relative_tolerance: float = 1e-3
    """Stop when an accepted step lowers the objective by less than this fraction."""
    thumb_vector_weight: float = 1.0
    """Weight of thumb-to-finger vectors relative to wrist-to-fingertip vectors (pinches)."""
    collision_margin: float = 0.003
    """With collision avoidance: pairs of the hand's parts closer than this are pushed apart
    [m]. It keeps solutions clear of the contact that ``Flag.SELF_COLLISION`` reports."""
    collision_weight: float = 100.0
    """Weight of ``(collision_margin - distance)^2`` against the squared vector errors [1].
    100 makes a 1 mm intrusion into the margin cost as much as a 1 cm vector error. Targets
    that pull hard (fingertip errors of several cm) can still hold a pair inside the margin
    (closest distance 0.6-2.7 mm at the 5th percentile on the shared clips), or in contact:
    such a solve is run again from where it ended with ten times the weight."""
    collision_slack: float = 0.005
    """Pairs within ``collision_margin + collision_slack`` [m] at the start of a frame are
    watched from its first step; others join when a solve brings them inside the margin.
    Margin, weight and slack were chosen on four shared clips (BENCHMARKS.md, "Self-collision
    avoidance in the hand solver"): 2 and 5 mm margins, weights 30 and 300 and a 3 mm slack
    all left fewer frames feasible."""

    def __post_init__(self) -> None:
        if self.max_iterations < 1:
            raise InvalidInputError("VectorConfig.max_iterations must be >= 1")
        for name in ("damping", "step_tolerance", "relative_tolerance", "collision_margin"):
            if not getattr(self, name) > 0:
                raise InvalidInputError(f"VectorConfig.{name} must be > 0")
        for name in (
            "damping_gain",
            "temporal_weight",
            "thumb_vector_weight",
            "collision_weight",
            "collision_slack",
        ):
            if not getattr(self, name) >= 0:
                raise InvalidInputError(f"VectorConfig.{name} must be >= 0")


@dataclass(frozen=True)
class VectorResult:
    """Outcome of one hand solve.

    Attributes:
        q: Hand joint positions, shape (n_hand,).
        vectors: Reached robot vectors in the palm frame, shape (K, 3) [m].
        iterations: Solver iterations used.
        goal_met: Whether ``q`` meets the ``goal`` given to :meth:`VectorRetargeter.solve`
            (fingertip error, clear of contact); ``False`` without a goal.
    """

    q: NDArray[np.float64]
    vectors: NDArray[np.float64]
    iterations: int
    goal_met: bool = False


class VectorRetargeter:
    """Solve hand joints so that robot vectors match target vectors.

    Points are indexed ``0`` (the wrist point, fixed in the palm frame) and ``1..F`` (the
    fingertip frames). A vector ``(a, b)`` runs from point ``a`` to point ``b``.

    Args:
        model: Pinocchio model whose free joints are exactly the hand's joints.
        palm_frame: Frame the vectors are expressed in.
        wrist_point: The wrist point in the palm frame, shape (3,) [m].
        tip_frames: Fingertip frame names (points 1..F).
        vector_pairs: ``(a, b)`` point indices of each vector.
        weights: Weight of each vector, shape (K,).
        config: Solver settings.
        avoidance: Keeps the hand's parts apart (:class:`retarget.collision.CollisionAvoidance`
            built on the same model); ``None`` for none.
    """

    def __init__(
        self,
        model: pin.Model,
        palm_frame: str,
        wrist_point: NDArray[np.float64],
        tip_frames: tuple[str, ...],
        vector_pairs: tuple[tuple[int, int], ...],
        weights: NDArray[np.float64],
        config: VectorConfig | None = None,
        avoidance: CollisionAvoidance | None = None,
    ) -> None:
        if avoidance is not None and list(avoidance.model.names) != list(model.names):
            raise InvalidInputError(
                "the collision avoidance model's joints differ from the solver model's: "
                f"{list(avoidance.model.names)[1:]} vs {list(model.names)[1:]}"
            )
        self.avoidance = avoidance
        self.model = model
        self.data = model.createData()
        self.config = config or VectorConfig()
        self.lower = model.lowerPositionLimit.copy()
        self.upper = model.upperPositionLimit.copy()
        self.tip_ids = [model.getFrameId(f) for f in tip_frames]
        self.pairs = np.asarray(vector_pairs, dtype=np.intp)
        self.weights = np.repeat(np.asarray(weights, dtype=np.float64), 3)
        # The palm frame is fixed in this model (hand root, or arm locked): cache its pose.
        data = model.createData()
        pin.framesForwardKinematics(model, data, pin.neutral(model))
        palm = data.oMf[model.getFrameId(palm_frame)]
        self.rotation_palm = palm.rotation.copy()
        self.rotation_palm_T = palm.rotation.T.copy()
        self.palm_position = palm.translation.copy()
        self.wrist_point = np.asarray(wrist_point, dtype=np.float64)
        # Vector k = point b - point a, as one matrix over the points: (K, F + 1).
        self._incidence = np.zeros((len(self.pairs), len(tip_frames) + 1))
        for k, (a, b) in enumerate(self.pairs):
            self._incidence[k, b] += 1.0
            self._incidence[k, a] -= 1.0
        self._tip_rows = np.flatnonzero(self.pairs[:, 0] == 0)  # wrist-to-fingertip vectors
        self._xyz = np.arange(0, 3 * len(self.pairs), 3)  # start of each vector's rows
        # Points and their Jacobians in the world frame; point 0 (the wrist) is fixed.
        self._world_points = np.zeros((len(tip_frames) + 1, 3))
        self._world_points[0] = self.palm_position + self.rotation_palm @ self.wrist_point
        self._world_jacobians = np.zeros((len(tip_frames) + 1, 3, model.nv))

    def _kinematics(
        self, q: NDArray[np.float64], jacobians: bool
    ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        """Robot vectors in the palm frame, shape (K, 3) [m], and their Jacobian (3K, n_hand).

        Pinocchio's calls are a few microseconds here; the per-tip Python work is kept to the
        copies, and the palm rotation and pair differences are two matrix products.
        """
        model, data = self.model, self.data
        if jacobians:
            pin.computeJointJacobians(model, data, q)
        else:
            pin.forwardKinematics(model, data, q)
        points, world_jacobians = self._world_points, self._world_jacobians
        for i, fid in enumerate(self.tip_ids, start=1):
            points[i] = pin.updateFramePlacement(model, data, fid).translation
            if jacobians:
                world_jacobians[i] = pin.getFrameJacobian(model, data, fid, _LWA)[:3]
        vectors = self._incidence @ points @ self.rotation_palm  # rows: R_palm^T (p_b - p_a)
        if not jacobians:
            return vectors, None
        nv = model.nv
        pairs = (self._incidence @ world_jacobians.reshape(len(points), 3 * nv)).reshape(-1, 3, nv)
        return vectors, np.matmul(self.rotation_palm_T, pairs).reshape(-1, nv)

    def vectors(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        """Robot vectors at ``q`` in the palm frame, shape (K, 3) [m]."""
        return self._kinematics(np.asarray(q, dtype=np.float64), jacobians=False)[0]

    def fingertip_error(self, vectors: NDArray[np.float64], targets: NDArray[np.float64]) -> float:
        """Mean error of the wrist-to-fingertip vectors among ``vectors`` against ``targets`` [m].

        Args:
            vectors: Robot vectors in the palm frame (:attr:`VectorResult.vectors`), shape (K, 3).
            targets: Target vectors in the palm frame, shape (K, 3) [m].
        """
        error = np.asarray(targets, dtype=np.float64) - np.asarray(vectors, dtype=np.float64)
        return self._tip_error(error.ravel())

    def _tip_error(self, error: NDArray[np.float64]) -> float:
        """Mean norm of the wrist-to-fingertip rows of a stacked vector error, shape (3K,)."""
        return float(np.sqrt(np.add.reduceat(error * error, self._xyz)[self._tip_rows]).mean())

    def in_contact(self, q: NDArray[np.float64]) -> bool:
        """Whether two of the hand's parts touch at ``q``; ``False`` without :attr:`avoidance`."""
        if self.avoidance is None:
            return False
        return len(self.avoidance.near(np.asarray(q, dtype=np.float64), 0.0)[0]) > 0

    def vector_jacobian(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        """Jacobian of the stacked vectors w.r.t. ``q``, shape (3K, n_hand)."""
        jacobian = self._kinematics(np.asarray(q, dtype=np.float64), jacobians=True)[1]
        assert jacobian is not None
        return jacobian

    def solve(
        self,
        targets: NDArray[np.float64],
        q_prev: NDArray[np.float64],
        goal: float | None = None,
    ) -> VectorResult:
        """Solve one frame by Levenberg-Marquardt with step acceptance.

        A step is kept only if it lowers the objective; otherwise the damping grows tenfold and
        the step is retried (real targets are often unreachable and ill-conditioned, where plain
        Gauss-Newton oscillates). Stops when the objective improves by less than
        ``config.relative_tolerance``, a step is below ``config.step_tolerance``, or after
        ``config.max_iterations`` evaluations.

        With :attr:`avoidance`, the objective also holds ``collision_weight * (margin - d)^2``
        for each pair of the hand's parts closer than ``collision_margin``; the solve starts
        from ``q_prev`` (clear of contact when the previous frame was), so the fingers slide
        along each other instead of being pushed out of a deep overlap in whatever direction
        is shortest.

        Args:
            targets: Target vectors in the palm frame, shape (K, 3) [m].
            q_prev: Previous solution (warm start and temporal anchor), shape (n_hand,).
            goal: Stop at the first accepted step whose mean wrist-to-fingertip vector error
                (:meth:`fingertip_error`) is at most this [m] with no two parts in contact
                (with :attr:`avoidance`). This answers "can the targets be met?" rather than
                finding the best match: the steps are those of the solve without ``goal``,
                cut short, so the result meets the goal clear of contact exactly when some
                step of the full solve did.
        """
        q_prev = np.minimum(
            np.maximum(np.asarray(q_prev, dtype=np.float64), self.lower), self.upper
        )
        target = np.asarray(targets, dtype=np.float64).ravel()
        avoidance = self.avoidance
        if avoidance is None:
            q, iterations, met = self._minimize(target, q_prev, q_prev, None, goal=goal)
            return VectorResult(q, self.vectors(q), iterations, met)
        # Pairs near at the start are watched from the first step; pairs the solve brings
        # inside the margin that were not are added, and the solve goes on from where it was.
        margin = self.config.collision_margin
        watch = avoidance.near(q_prev, margin + self.config.collision_slack)[0]
        q, iterations, met = q_prev, 0, False
        weight = self.config.collision_weight
        for _ in range(6):  # Six rounds at most: each adds new pairs or raises the weight.
            q, more, met = self._minimize(target, q, q_prev, watch, weight, goal)
            iterations += more
            if met:
                break
            near, distance = avoidance.near(q, margin)
            contact = bool((distance < 0.0).any())
            new = np.setdiff1d(near, watch)
            if len(new):
                watch = np.union1d(watch, new)
            elif contact:
                # Still in contact: targets pulling hard (fingertip errors of several cm) can
                # balance the penalty inside the margin. Ten times the weight, from here.
                weight *= 10.0
            else:
                break
        return VectorResult(q, self.vectors(q), iterations, met)

    def _minimize(
        self,
        target: NDArray[np.float64],
        q_start: NDArray[np.float64],
        q_prev: NDArray[np.float64],
        watch: NDArray[np.intp] | None,
        weight: float = 0.0,
        goal: float | None = None,
    ) -> tuple[NDArray[np.float64], int, bool]:
        """The Levenberg-Marquardt loop from ``q_start``.

        With ``watch`` (pair indices of :attr:`avoidance`), each watched pair closer than
        ``collision_margin`` adds ``weight * (margin - distance)^2`` to the objective.
        The step's linear model also holds the pairs within ``collision_slack`` beyond the
        margin, each switched on once the step would bring it inside: without them a step
        taken while a pair is still clear runs straight into it, is rejected, and the damping
        climbs (measured on the stove clip: 18.0 evaluations a frame without, 15.9 with).
        With ``goal``, stops at the first iterate (the start included) whose mean
        fingertip-vector error is at most ``goal`` [m] with no two parts in contact; the last
        value returned says whether it did.

        Returns:
            The joints reached, the steps taken, and whether ``goal`` was met.
        """
        cfg = self.config
        step_tol2 = cfg.step_tolerance**2
        if watch is not None and not len(watch):
            watch = None
        problem = _Problem(target, q_prev, watch, weight)
        q = q_start.copy()
        now = self._objective(q, problem)
        if self._met(q, now, goal):
            return q, 0, True
        damping = cfg.damping_gain * now.cost + cfg.damping
        iterations = 0
        while iterations < cfg.max_iterations:
            candidate = self._step(q, now, problem, damping)
            moved = candidate - q
            if float(moved @ moved) < step_tol2:
                break
            iterations += 1
            new = self._objective(candidate, problem)
            if new.cost < now.cost:
                improvement = now.cost - new.cost
                q, now = candidate, new
                damping = max(damping * 0.3, cfg.damping)
                if self._met(q, now, goal):
                    return q, iterations, True
                if improvement < cfg.relative_tolerance * now.cost:
                    break
            else:
                damping *= 10.0
        return q, iterations, False

    def _objective(self, q: NDArray[np.float64], problem: _Problem) -> _Objective:
        """The objective at ``q`` with its Jacobian, vector errors and watched gaps."""
        cfg = self.config
        current, jac = self._kinematics(q, jacobians=True)
        assert jac is not None  # asked for
        error = problem.target - current.ravel()
        drift = q - problem.q_prev
        cost = float(error @ (self.weights * error)) + cfg.temporal_weight * float(drift @ drift)
        if problem.watch is None or self.avoidance is None:
            return _Objective(cost, jac, error, _NO_GAP, np.zeros((0, self.model.nv)))
        margin = cfg.collision_margin
        reach = margin + cfg.collision_slack
        distance, distance_jac = self.avoidance.distances(q, problem.watch, below=reach)
        rows = distance < reach
        gap, gap_jac = margin - distance[rows], distance_jac[rows]
        inside = gap[gap > 0]
        cost += problem.weight * float(inside @ inside)
        return _Objective(cost, jac, error, gap, gap_jac)

    def _met(self, q: NDArray[np.float64], now: _Objective, goal: float | None) -> bool:
        """Whether ``q`` meets ``goal`` (fingertip error, no two parts in contact)."""
        if goal is None or (now.gap >= self.config.collision_margin).any():
            return False  # no goal, or a watched pair in contact
        return self._tip_error(now.error) <= goal and not self.in_contact(q)

    def _step(
        self, q: NDArray[np.float64], now: _Objective, problem: _Problem, damping: float
    ) -> NDArray[np.float64]:
        """The damped Gauss-Newton candidate from ``q``, joint limits held by an active set."""
        cfg = self.config
        n = self.model.nv
        lower, upper = self.lower, self.upper
        weight, gap, gap_jac = problem.weight, now.gap, now.gap_jac
        jac_w = now.jac * self.weights[:, None]
        base_hessian = jac_w.T @ now.jac
        base_hessian.flat[:: n + 1] += cfg.temporal_weight + damping
        base_descent = jac_w.T @ now.error - cfg.temporal_weight * (q - problem.q_prev)
        active = gap > 0
        while True:
            hessian, descent = base_hessian, base_descent
            if active.any():
                rows = gap_jac[active] * weight
                hessian = hessian + rows.T @ gap_jac[active]
                descent = descent + rows.T @ gap[active]
            held = ((q <= lower) & (descent < 0)) | ((q >= upper) & (descent > 0))
            if held.any():  # Active set: these joints stay on their limits for this step.
                hessian, descent = hessian.copy(), descent.copy()  # base_* serve again
                hessian[held, :] = 0.0
                hessian[:, held] = 0.0
                hessian[held, held] = 1.0
                descent[held] = 0.0
            candidate = np.minimum(np.maximum(q + solve_spd(hessian, descent), lower), upper)
            if not len(gap):
                return candidate
            # Pairs still clear that this step would bring inside the margin join the model.
            entering = ~active & (gap - gap_jac @ (candidate - q) > 0)
            if not entering.any():
                return candidate
            active |= entering


_NO_GAP = np.zeros(0)


class _Problem(NamedTuple):
    """What one frame's loop minimises towards."""

    target: NDArray[np.float64]
    """Stacked target vectors, shape (3K,) [m]."""
    q_prev: NDArray[np.float64]
    """The previous frame's solution (the temporal term's anchor)."""
    watch: NDArray[np.intp] | None
    """Watched collision pairs (:attr:`VectorRetargeter.avoidance`), None for none."""
    weight: float
    """Weight of the collision term."""


class _Objective(NamedTuple):
    """The objective at one iterate."""

    cost: float
    """Weighted squared vector error, temporal term and collision term."""
    jac: NDArray[np.float64]
    """Jacobian of the stacked vectors, shape (3K, n)."""
    error: NDArray[np.float64]
    """Stacked vector errors (target - current), shape (3K,) [m]."""
    gap: NDArray[np.float64]
    """``margin - distance`` of the watched pairs within reach."""
    gap_jac: NDArray[np.float64]
    """Their Jacobians (of the distance), one row each."""
