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
collision geometry as spheres and boxes (:class:`retarget.shapes.HandShapes`: never closer than
coal's exact distance), over every pair of the hand at every step.
The Jacobian of ``v_k = p_b - p_a`` is ``R_palm^T (J_b - J_a)`` (world point Jacobians).

The whole frame's solve is one compiled call (:mod:`retarget._hand_solver`, numba): forward
kinematics, Jacobians, distances and the loop run without Python in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

from retarget import _hand_solver
from retarget.exceptions import InvalidInputError
from retarget.shapes import Chain, HandShapes

_ROUNDS = 5
"""Re-solves with ten times the collision weight after a solve that ends in contact."""
_WATCH = 0.015
"""Pairs within this beyond ``collision_margin + collision_slack`` at the start of a frame are
measured at every step of it [m]; the others are checked where a solve ends, and join it there
if it brought them within reach."""


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
    such a solve is run again from where it ended with ten times the weight (five times at
    most)."""
    collision_slack: float = 0.005
    """Pairs within ``collision_margin + collision_slack`` [m] enter each step's linear model
    (each switched on once the step would bring it inside the margin). Margin, weight and slack
    were chosen on four shared clips (BENCHMARKS.md, "Self-collision avoidance in the hand
    solver"): 2 and 5 mm margins, weights 30 and 300 and a 3 mm slack all left fewer frames
    feasible. The margin is kept on the hand's :class:`retarget.shapes.HandShapes`, which are
    never closer than the URDF geometry: a solution clear of the margin is clear of the
    contact ``SELF_COLLISION`` reports, and a pinch ends within the margin."""

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
        model: Pinocchio model whose free joints are exactly the hand's joints (revolute or
            prismatic, :class:`retarget.shapes.Chain`).
        palm_frame: Frame the vectors are expressed in.
        wrist_point: The wrist point in the palm frame, shape (3,) [m].
        tip_frames: Fingertip frame names (points 1..F).
        vector_pairs: ``(a, b)`` point indices of each vector.
        weights: Weight of each vector, shape (K,).
        config: Solver settings.
        shapes: The hand's collision shapes kept apart (:class:`retarget.shapes.HandShapes`
            built on the same joints); ``None`` for no avoidance.

    Attributes:
        lower: Joint lower limits, shape (n_hand,); :meth:`set_limits` changes them.
        upper: Joint upper limits, shape (n_hand,).
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
        shapes: HandShapes | None = None,
    ) -> None:
        if shapes is not None and list(shapes.model.names) != list(model.names):
            raise InvalidInputError(
                "the collision shapes' joints differ from the solver model's: "
                f"{list(shapes.model.names)[1:]} vs {list(model.names)[1:]}"
            )
        self.shapes = shapes
        self.model = model
        self.config = config or VectorConfig()
        self.pairs = np.asarray(vector_pairs, dtype=np.intp)
        self.weights = np.repeat(np.asarray(weights, dtype=np.float64), 3)
        # The palm frame is fixed in this model (hand root, or arm locked): cache its pose.
        data = model.createData()
        pin.framesForwardKinematics(model, data, pin.neutral(model))
        palm = data.oMf[model.getFrameId(palm_frame)]
        self.rotation_palm = palm.rotation.copy()
        self.wrist_point = np.asarray(wrist_point, dtype=np.float64)
        frames = [model.frames[model.getFrameId(f)] for f in tip_frames]
        # Vector k = point b - point a, as one matrix over the points: (K, F + 1).
        incidence = np.zeros((len(self.pairs), len(tip_frames) + 1))
        for k, (a, b) in enumerate(self.pairs):
            incidence[k, b] += 1.0
            incidence[k, a] -= 1.0
        self._tip_rows = np.flatnonzero(self.pairs[:, 0] == 0)  # wrist-to-fingertip vectors
        none = np.zeros(0, dtype=np.int64)
        self.chain = Chain.from_model(model)
        """The model's joint tree, as the compiled loop reads it."""
        self.wrist_position = palm.translation + self.rotation_palm @ self.wrist_point
        """The wrist point in the model's world frame, shape (3,) [m]."""
        self._fixed = (
            *self.chain.arrays(),
            np.array([f.parentJoint for f in frames], dtype=np.int64),
            np.array([f.placement.translation for f in frames], dtype=np.float64).reshape(-1, 3),
            np.ascontiguousarray(self.rotation_palm),
            self.wrist_position,
            incidence,
            self.weights,
        )
        self._shape_arrays = (
            shapes.arrays()
            if shapes is not None
            else (none, np.zeros((0, 3)), np.zeros((0, 3, 3)), none, np.zeros((0, 3)),
                  np.zeros(0), np.zeros((0, 2), dtype=np.int64))
        )  # fmt: skip
        cfg = self.config
        self._settings = _hand_solver.settings_array(
            cfg.max_iterations,
            cfg.step_tolerance,
            cfg.temporal_weight,
            cfg.damping,
            cfg.damping_gain,
            cfg.relative_tolerance,
            cfg.collision_margin,
            cfg.collision_weight,
            cfg.collision_slack,
            _ROUNDS,
            _WATCH,
        )
        self.set_limits(model.lowerPositionLimit, model.upperPositionLimit)

    def set_limits(self, lower: NDArray[np.float64], upper: NDArray[np.float64]) -> None:
        """Solve within ``lower`` and ``upper`` (shape (n_hand,); +-inf for none)."""
        self.lower = np.array(lower, dtype=np.float64)
        self.upper = np.array(upper, dtype=np.float64)
        self._arrays = (
            *self._fixed,
            self.lower,
            self.upper,
            self._tip_rows.astype(np.int64),
            *self._shape_arrays,
        )

    def vectors(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        """Robot vectors at ``q`` in the palm frame, shape (K, 3) [m]."""
        q = np.asarray(q, dtype=np.float64)
        return _hand_solver.vectors_and_jacobian(q, self._arrays, False)[0]

    def vectors_many(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        """Robot vectors of many configurations (T, n_hand) in the palm frame, (T, K, 3) [m]."""
        q = np.ascontiguousarray(q, dtype=np.float64).reshape(-1, self.model.nv)
        return _hand_solver.vectors_many(q, self._arrays)

    def fingertip_errors(
        self, vectors: NDArray[np.float64], targets: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """:meth:`fingertip_error` of many frames: vectors, targets (T, K, 3); errors (T,) [m]."""
        error = np.asarray(targets, dtype=np.float64) - np.asarray(vectors, dtype=np.float64)
        tips = error[:, self._tip_rows]
        return np.sqrt(np.einsum("tki,tki->tk", tips, tips)).mean(axis=1)

    def vector_jacobian(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        """Jacobian of the stacked vectors w.r.t. ``q``, shape (3K, n_hand)."""
        q = np.asarray(q, dtype=np.float64)
        return _hand_solver.vectors_and_jacobian(q, self._arrays, True)[1]

    def fingertip_error(self, vectors: NDArray[np.float64], targets: NDArray[np.float64]) -> float:
        """Mean error of the wrist-to-fingertip vectors among ``vectors`` against ``targets`` [m].

        Args:
            vectors: Robot vectors in the palm frame (:attr:`VectorResult.vectors`), shape (K, 3).
            targets: Target vectors in the palm frame, shape (K, 3) [m].
        """
        one = np.asarray(vectors, dtype=np.float64)[None]
        return float(self.fingertip_errors(one, np.asarray(targets, dtype=np.float64)[None])[0])

    def in_contact(self, q: NDArray[np.float64]) -> bool:
        """Whether two of the hand's shapes touch at ``q``; ``False`` without :attr:`shapes`.

        The shapes are the parts themselves for spheres and boxes (the Allegro's), so this is
        coal's answer there; a part held in a box can only report contact early.
        """
        if self.shapes is None:
            return False
        return self.shapes.in_contact(q)

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

        With :attr:`shapes`, the objective also holds ``collision_weight * (margin - d)^2``
        for each pair of the hand's shapes closer than ``collision_margin``; the step's linear
        model also holds the pairs within ``collision_slack`` beyond the margin, each switched
        on once the step would bring it inside (without them a step taken while a pair is
        still clear runs straight into it, is rejected, and the damping climbs). The solve
        starts from ``q_prev`` (clear of contact when the previous frame was), so the fingers
        slide along each other instead of being pushed out of a deep overlap in whatever
        direction is shortest. A solve that ends in contact anyway (targets pulling hard) is
        run again from where it ended with ten times the weight, up to five times.

        Args:
            targets: Target vectors in the palm frame, shape (K, 3) [m].
            q_prev: Previous solution (warm start and temporal anchor), shape (n_hand,).
            goal: Stop at the first accepted step whose mean wrist-to-fingertip vector error
                (:meth:`fingertip_error`) is at most this [m] with no two shapes in contact.
                This answers "can the targets be met?" rather than finding the best match: the
                steps are those of the solve without ``goal``, cut short, so the result meets
                the goal clear of contact exactly when some step of the full solve did.
        """
        target = np.ascontiguousarray(targets, dtype=np.float64).ravel()
        start = np.array(q_prev, dtype=np.float64)
        count = len(self.pairs)
        if target.shape != (3 * count,) or start.shape != (self.model.nv,):
            raise InvalidInputError(
                f"targets must have shape ({count}, 3) and q_prev ({self.model.nv},), "
                f"got {np.shape(targets)} and {np.shape(q_prev)}"
            )
        wanted = -1.0 if goal is None else float(goal)
        q, iterations, met, vectors = _hand_solver.solve_frame(
            target, start, wanted, self._arrays, self._settings
        )
        return VectorResult(q, vectors, int(iterations), bool(met))
