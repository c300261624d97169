"""Whole-trajectory retargeting in torch: every frame of a clip (of many clips) solved at once.

The per-frame solve (:meth:`retarget.Retargeter.solve`) answers each frame on its own;
:class:`TrajectoryOptimizer` starts from its answer and minimises, over the whole clip, the
tracking error of every frame with a hand (in units of the flag thresholds,
:mod:`retarget._tracking`) plus the joints' velocity, acceleration and jerk
(:mod:`retarget._smoothness`), with a steep penalty on speeds near the URDF velocity limits,
the URDF position limits held, and a dexterous hand's fingers kept apart
(:mod:`retarget.spheres`); see :class:`retarget.TrajectoryConfig`. Frames without a hand have
no target: they start interpolated between their neighbours and stay smooth. The solver is
Levenberg-Marquardt: analytic Jacobians through
:class:`retarget.torch_kinematics.TorchKinematics`, the normal equations (block diagonal plus
the banded smoothness terms) solved exactly by block-tridiagonal Cholesky
(:mod:`retarget._banded`). Everything is batched over frames and clips (padded), on the CPU or
CUDA.

The optimiser judges nothing: :meth:`retarget.Retargeter.evaluate` recomputes every flag and
residual from the optimised ``q`` with Pinocchio, as for the per-frame answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray

from retarget import _banded as banded
from retarget import _smoothness as smooth
from retarget._tracking import FrameTargets, Tracking
from retarget.collision import SelfCollision
from retarget.config import RetargetConfig
from retarget.evaluate import Targets, input_flags
from retarget.exceptions import InvalidInputError
from retarget.robot import Robot
from retarget.solvers import Solvers, build_solvers
from retarget.spheres import SphereModel
from retarget.symmetry import turned


class Clip(NamedTuple):
    """One clip to optimise: its targets, the per-frame answer and the targets' turns."""

    targets: Targets
    """The targets (:meth:`retarget.Retargeter.targets`); ``timestamps`` are required."""
    q: NDArray[np.float64]
    """Shape (T, nq): the start, normally the per-frame solution."""
    turns: NDArray[np.float64] | None = None
    """Shape (T,) [rad]: the turn of each frame's end-effector target the start reached
    (:meth:`retarget.Retargeter.solve_turns`; NaN or None: 0)."""


class OptimizedTrajectory(NamedTuple):
    """The optimiser's answer for one clip."""

    q: NDArray[np.float64]
    """Shape (T, nq): the optimised joint trajectory, inside the URDF position limits."""
    cost_start: float
    """The cost at the start (absent frames interpolated)."""
    cost: float
    """The cost at the answer."""
    iterations: int
    """Levenberg-Marquardt iterations run for this clip (it stops on its own in a batch)."""


class _Batch(NamedTuple):
    """A padded batch of clips as tensors (B clips, T frames)."""

    targets: FrameTargets  # per frame: what to reach, how much it weighs
    steps: smooth.Periods  # frame periods [s]
    masks: smooth.Derivatives  # (B, T-1|T-2|T-3, 1): 1 inside a clip
    inside: torch.Tensor  # (B, T): 1 for a frame of the clip, 0 in the padding
    weights: smooth.Derivatives  # per-difference weights of the squared derivatives
    allowance: torch.Tensor | None = None  # (B, T, P) [m]: the gap each sphere pair keeps


class TrajectoryOptimizer:
    """Optimise joint trajectories of one robot over whole clips (models built once).

    Args:
        robot: A loaded robot.
        config: ``config.trajectory`` (weights, solver, device) and ``config.feasibility``
            (the thresholds that are the tracking units, the velocity scale).
        solvers: Solvers already built for ``robot`` and ``config`` (a retargeter's): the
            hand's vector pairs and weights are theirs.

    Raises:
        InvalidInputError: A device torch does not have (e.g. ``cuda`` without a GPU).
    """

    def __init__(
        self, robot: Robot, config: RetargetConfig | None = None, solvers: Solvers | None = None
    ) -> None:
        self.robot = robot
        self.config = config or RetargetConfig()
        self.solvers = solvers or build_solvers(robot, self.config)
        settings = self.config.trajectory
        self.device = _checked_device(settings.device)
        self.dtype = getattr(torch, settings.dtype)
        self.tracking = Tracking(robot, self.config, self.solvers, self.dtype, self.device)
        """The tracking term (:class:`retarget._tracking.Tracking`)."""
        limit = np.asarray(robot.velocity_limit, dtype=np.float64)
        known = np.isfinite(limit) & (limit > 0)
        # Speeds in limits; a joint without one is smoothed in [unit/s] and never penalised.
        self._speed_unit = self._tensor(np.where(known, limit, 1.0))
        self._limited = self._tensor(known.astype(np.float64))
        self._group = banded.group_frames(robot.nq)
        avoid = self.config.avoid_self_collision and robot.hand_joints
        self.spheres = None
        if avoid and settings.collision_weight > 0:
            checker = self.solvers.collision or SelfCollision(robot)
            self.spheres = SphereModel(robot, checker, self.dtype, self.device)
        """The collision cover kept apart (:class:`retarget.spheres.SphereModel`), or None."""
        self._collision_scale = (
            settings.collision_weight / self.config.feasibility.max_position_error
        )
        self._lower = self._tensor(robot.lower)
        self._upper = self._tensor(robot.upper)

    def _tensor(self, values: object) -> torch.Tensor:
        array = np.array(values, dtype=np.float64)  # a copy: torch takes no read-only arrays
        return torch.as_tensor(array, device=self.device).to(self.dtype)

    def optimize(self, clip: Clip) -> OptimizedTrajectory:
        """Optimise one clip (:meth:`optimize_many` with one clip)."""
        return self.optimize_many([clip])[0]

    def optimize_many(self, clips: Sequence[Clip]) -> list[OptimizedTrajectory]:
        """Optimise many clips in one batch (padded to the longest), in their order.

        Raises:
            InvalidInputError: A clip without timestamps, or a start of another shape than
                (T, nq).
        """
        if not clips:
            return []
        batch, start = self._batch(clips)
        x, cost_start, cost, iterations = self._solve(batch, start)
        settings = self.config.trajectory
        if settings.hard_velocity_limit:
            # What the penalty left above the limit (an unconverged stretch) is rate limited.
            speed = settings.hard_speed * self.config.feasibility.velocity_scale * self._speed_unit
            speed = torch.where(self._limited > 0, speed, torch.inf)
            x = _rate_limited(x, batch.steps.velocity, speed)
            cost = self._cost(x, batch, settings.velocity_penalty)
        q = x.detach().cpu().numpy().astype(np.float64)
        return [
            OptimizedTrajectory(
                q[b, : len(c.targets.present)],
                float(cost_start[b]),
                float(cost[b]),
                int(iterations[b]),
            )
            for b, c in enumerate(clips)
        ]

    # -- the problem -------------------------------------------------------------------------

    def _batch(self, clips: Sequence[Clip]) -> tuple[_Batch, torch.Tensor]:
        """The padded tensors of ``clips`` and their starts (B, T, nq)."""
        settings = self.config.trajectory
        frames = max(len(c.targets.present) for c in clips)
        frames = max(frames, 4)  # jerk needs four frames
        pairs = len(self.solvers.hand.pairs) if self.solvers.hand is not None else 0
        weight = np.zeros((len(clips), frames))
        rotation = np.tile(np.eye(3), (len(clips), frames, 1, 1))
        position = np.zeros((len(clips), frames, 3))
        vectors = np.zeros((len(clips), frames, pairs, 3))
        gripper = np.zeros((len(clips), frames))
        dt = np.ones((len(clips), frames - 1))
        inside = np.zeros((len(clips), frames - 1))
        frame_inside = np.zeros((len(clips), frames))
        start = np.zeros((len(clips), frames, self.robot.nq))
        for b, clip in enumerate(clips):
            length, present = self._checked_clip(clip)
            doubt = input_flags(present > 0, clip.targets, self.config.feasibility) != 0
            weight[b, :length] = present * np.where(doubt, settings.uncertain_weight, 1.0)
            start[b, :length] = _interpolated(np.asarray(clip.q, dtype=np.float64), present)
            start[b, length:] = start[b, length - 1]
            dt[b, : length - 1] = np.diff(np.asarray(clip.targets.timestamps))
            inside[b, : length - 1] = 1.0
            frame_inside[b, :length] = 1.0
            valid = np.flatnonzero(present)
            targets = clip.targets
            if self.tracking.arm and targets.transform_ee_to_base is not None:
                turns = np.zeros(length) if clip.turns is None else np.nan_to_num(clip.turns)
                poses = turned(targets.transform_ee_to_base[valid], turns[valid])
                rotation[b, valid], position[b, valid] = poses[:, :3, :3], poses[:, :3, 3]
            if pairs and targets.vectors is not None:
                vectors[b, valid] = targets.vectors[valid]
            if self.solvers.gripper_column is not None and targets.gripper is not None:
                gripper[b, valid] = targets.gripper[valid]
        steps = smooth.periods(self._tensor(dt))
        step = self._tensor(inside)
        masks = smooth.Derivatives(
            step[..., None],
            (step[:, 1:] * step[:, :-1])[..., None],
            (step[:, 2:] * step[:, 1:-1] * step[:, :-2])[..., None],
        )
        batch = _Batch(
            FrameTargets(
                *(self._tensor(a) for a in (weight, rotation, position, vectors, gripper))
            ),
            steps,
            masks,
            self._tensor(frame_inside),
            self._smooth_weights(steps, masks),
        )
        begin = torch.minimum(torch.maximum(self._tensor(start), self._lower), self._upper)
        if self.spheres is not None:
            # A sphere pair may come as close as the start has it (the per-frame solve keeps
            # coal's exact geometry apart; the spheres are larger), no closer, and no closer
            # than the margin where the start leaves more room.
            gaps = self.spheres.gaps(begin)
            batch = batch._replace(allowance=gaps.clamp(max=settings.collision_margin))
        return batch, begin

    def _checked_clip(self, clip: Clip) -> tuple[int, NDArray[np.float64]]:
        targets = clip.targets
        length = len(targets.present)
        if targets.timestamps is None:
            raise InvalidInputError(
                "the trajectory optimiser needs timestamps [s] to weigh joint speeds; pass "
                "timestamps= to the retargeter or turn optimisation off"
            )
        timestamps = np.asarray(targets.timestamps, dtype=np.float64)
        if timestamps.shape != (length,) or not np.all(np.diff(timestamps) > 0):
            raise InvalidInputError(
                f"timestamps must be ({length},), finite and strictly increasing [s]"
            )
        if np.shape(clip.q) != (length, self.robot.nq):
            raise InvalidInputError(
                f"the start q must have shape ({length}, {self.robot.nq}), got {np.shape(clip.q)}"
            )
        if not np.isfinite(clip.q).all():
            raise InvalidInputError("the start q holds NaN/inf; every frame needs joints")
        if self.tracking.arm and targets.transform_ee_to_base is None and np.any(targets.present):
            raise InvalidInputError(f"robot {self.robot.name!r} has an arm: targets need poses")
        return length, np.asarray(targets.present, dtype=np.float64)

    # -- the cost ----------------------------------------------------------------------------

    def _smooth_weights(
        self, steps: smooth.Periods, masks: smooth.Derivatives
    ) -> smooth.Derivatives:
        """Per-difference weights of the squared velocity, acceleration, jerk (B, ., n)."""
        settings = self.config.trajectory
        tau = settings.time_scale
        unit = self._speed_unit**2
        # Each term is integrated over time (times its period over the time scale), so that
        # the cost does not grow with the frame rate.
        return smooth.Derivatives(
            settings.velocity_weight * masks.velocity * (steps.velocity / tau)[..., None] / unit,
            settings.acceleration_weight
            * tau**2
            * masks.acceleration
            * (steps.acceleration / tau)[..., None]
            / unit,
            settings.jerk_weight * tau**4 * masks.jerk * (steps.jerk / tau)[..., None] / unit,
        )

    def _overspeed(self, velocity: torch.Tensor, batch: _Batch, penalty: float) -> torch.Tensor:
        """Speed above the margin, in limits times the penalty's root, (B, T - 1, n)."""
        settings = self.config.trajectory
        allowed = settings.velocity_margin * self.config.feasibility.velocity_scale
        over = torch.relu(velocity.abs() / self._speed_unit - allowed) * self._limited
        return penalty * over * batch.masks.velocity

    def _cost(self, x: torch.Tensor, batch: _Batch, penalty: float) -> torch.Tensor:
        """Half the sum of squares per clip, (B,)."""
        residual, _ = self.tracking.residuals(x, batch.targets, jacobian=False)
        moves = smooth.derivatives(x, batch.steps)
        total = residual.pow(2).sum(dim=(1, 2))
        for weight, value in zip(batch.weights, moves, strict=True):
            total = total + (weight * value.pow(2)).sum(dim=(1, 2))
        total = total + self._overspeed(moves.velocity, batch, penalty).pow(2).sum(dim=(1, 2))
        if self.spheres is not None and batch.allowance is not None:
            gaps = self.spheres.gaps(x)  # (B, T, P)
            overlap = torch.relu(batch.allowance - gaps)
            total = total + (overlap * self._collision_scale).pow(2).sum(-1).mul(batch.inside).sum(
                1
            )
        return total / 2

    def _collisions(
        self, x: torch.Tensor, batch: _Batch
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The sphere gaps' part of the Gauss-Newton system: blocks (B, T, n, n), gradient."""
        if self.spheres is None or batch.allowance is None:
            return None
        shape, n = x.shape[:2], x.shape[-1]
        allowance = batch.allowance.reshape(shape[0] * shape[1], -1)
        near = self.spheres.near(x.reshape(-1, n), allowance)
        inside = batch.inside.reshape(-1)[near.frame]
        residual = (allowance[near.frame, near.pair] - near.gap) * self._collision_scale
        slope = -near.slope * self._collision_scale
        residual, slope = residual * inside, slope * inside[:, None]
        blocks = torch.zeros(shape[0] * shape[1], n, n, dtype=x.dtype, device=x.device)
        blocks.index_add_(0, near.frame, slope[:, :, None] * slope[:, None, :])
        gradient = torch.zeros(shape[0] * shape[1], n, dtype=x.dtype, device=x.device)
        gradient.index_add_(0, near.frame, slope * residual[:, None])
        return blocks.reshape(*shape, n, n), gradient.reshape(*shape, n)

    # -- the solver --------------------------------------------------------------------------

    def _solve(
        self, batch: _Batch, start: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Levenberg-Marquardt from ``start`` (inside the position limits).

        Each clip stops on its own when it settles (its steps are no longer taken while the
        rest of the batch goes on), so a clip's answer does not depend on the clips batched
        with it: a stretch that only the smoothness terms hold (frames without a hand) moves
        with every further iteration.

        Returns the answer, the costs at start and end, and each clip's iterations (B,).
        """
        settings = self.config.trajectory
        x = start
        cost_start = self._cost(x, batch, settings.velocity_penalty)
        damping = torch.full_like(cost_start, 1e-3)
        growth = torch.full_like(cost_start, 2.0)
        active = torch.ones_like(cost_start, dtype=torch.bool)
        iterations = torch.zeros_like(cost_start, dtype=torch.int64)
        penalty = -1.0
        for count in range(1, settings.iterations + 1):
            # Continuation: the speed penalty grows to its weight over the first iterations,
            # so that the per-frame answer's jumps are first smoothed, then pushed under the
            # limits (its full weight at once traps the solve near the start).
            stage = settings.penalty_ramp ** max(0, settings.penalty_stages - count)
            if settings.velocity_penalty / stage != penalty:
                penalty = settings.velocity_penalty / stage
                cost = self._cost(x, batch, penalty)
            step, predicted = self._step(x, batch, damping, penalty)
            candidate = torch.minimum(torch.maximum(x + step, self._lower), self._upper)
            new_cost = self._cost(candidate, batch, penalty)
            better = (new_cost < cost) & active
            gain = torch.where(better, (cost - new_cost) / cost.clamp_min(1e-12), 0.0)
            x = torch.where(better[:, None, None], candidate, x)
            # Nielsen's damping update from the gain ratio (actual over predicted decrease).
            ratio = (cost - new_cost) / predicted.clamp_min(1e-30)
            shrink = torch.clamp(1 - (2 * ratio - 1) ** 3, min=1 / 3)
            updated = torch.where(better, damping * shrink, damping * growth).clamp(1e-9, 1e9)
            damping = torch.where(active, updated, damping)
            growth = torch.where(active, torch.where(better, 2.0, growth * 2), growth)
            cost = torch.where(better, new_cost, cost)
            iterations += active.to(torch.int64)
            if count >= settings.penalty_stages:  # settled: the penalty has its full weight
                active &= ~((better & (gain < settings.tolerance)) | (damping >= 1e9))
                if not bool(active.any()):
                    break
        return x, cost_start, cost, iterations

    def _step(
        self,
        x: torch.Tensor,
        batch: _Batch,
        damping: torch.Tensor,
        penalty: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The damped Gauss-Newton step at ``x`` (B, T, nq) and the decrease it predicts (B,)."""
        residual, jacobian = self.tracking.residuals(x, batch.targets, jacobian=True)
        assert jacobian is not None
        blocks = jacobian.transpose(-1, -2) @ jacobian  # (B, T, n, n)
        gradient = (jacobian.transpose(-1, -2) @ residual[..., None])[..., 0]
        collisions = self._collisions(x, batch)
        if collisions is not None:
            blocks, gradient = blocks + collisions[0], gradient + collisions[1]
        weights = batch.weights
        moves = smooth.derivatives(x, batch.steps)
        over = self._overspeed(moves.velocity, batch, penalty)
        slope = penalty * torch.sign(moves.velocity) / self._speed_unit * (over > 0)
        # The overspeed penalty, linearised: its slope squared joins the velocity weight.
        curvature = smooth.Derivatives(weights.velocity + slope**2, *weights[1:])
        gradient = gradient + smooth.adjoint(
            smooth.Derivatives(
                weights.velocity * moves.velocity + slope * over,
                weights.acceleration * moves.acceleration,
                weights.jerk * moves.jerk,
            ),
            batch.steps,
        )
        bands = smooth.bands(curvature, batch.steps)
        # Marquardt's damping: each unknown's own curvature, scaled (stiff ones move least).
        curvatures = damping[:, None, None] * (blocks.diagonal(dim1=-2, dim2=-1) + bands[0] + 1e-6)
        blocks, bands, gradient = self._held(
            x, gradient, blocks + torch.diag_embed(curvatures), bands
        )
        step = banded.solve(blocks, bands, -gradient, self._group)
        # The quadratic model's decrease: -g.s/2 + (damping's curvature) s.s/2.
        predicted = (-(gradient * step) + curvatures * step * step).sum(dim=(1, 2)) / 2
        return step, predicted

    def _held(
        self, x: torch.Tensor, gradient: torch.Tensor, blocks: torch.Tensor, bands: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The system with joints on a limit that the descent pushes outwards held still.

        A step computed as if there were no limit, then clipped, is no longer a descent step
        near a limit (the solve stalls there); the joints held are taken out of the system
        (their rows become the identity with a zero right-hand side), the others solve around
        them.
        """
        margin = 1e-9
        held = ((x <= self._lower + margin) & (gradient > 0)) | (
            (x >= self._upper - margin) & (gradient < 0)
        )
        free = (~held).to(x.dtype)
        blocks = blocks * free[..., :, None] * free[..., None, :]
        blocks = blocks + torch.diag_embed(held.to(x.dtype))
        frames = x.shape[1]
        pairs = [free]
        for d in range(1, 4):
            shifted = torch.ones_like(free)
            shifted[:, : frames - d] = free[:, d:]
            pairs.append(free * shifted)  # both ends of a coupling t <-> t + d free
        bands = bands * torch.stack(pairs)
        return blocks, bands, gradient * free


def _rate_limited(x: torch.Tensor, dt: torch.Tensor, speed: torch.Tensor) -> torch.Tensor:
    """``x`` (B, T, n) with no joint faster than ``speed`` (n,) [unit/s] between frames.

    The mean of a forward and a backward rate limiter (each follows ``x`` as closely as the
    speed allows): it obeys the same bound, lags neither way, stays within the position
    limits ``x`` keeps (each step moves towards ``x``), and is ``x`` itself where ``x`` obeys
    the bound.
    """
    reach = dt[..., None] * speed  # (B, T - 1, n)
    frames = x.shape[1]
    forward, backward = [x[:, 0]], [x[:, -1]]
    for t in range(1, frames):
        step = x[:, t] - forward[-1]
        forward.append(forward[-1] + torch.clamp(step, -reach[:, t - 1], reach[:, t - 1]))
    for t in range(frames - 2, -1, -1):
        step = x[:, t] - backward[-1]
        backward.append(backward[-1] + torch.clamp(step, -reach[:, t], reach[:, t]))
    return (torch.stack(forward, dim=1) + torch.stack(backward[::-1], dim=1)) / 2


def _interpolated(q: NDArray[np.float64], present: NDArray[np.float64]) -> NDArray[np.float64]:
    """``q`` with frames without a hand interpolated between their neighbours (edges held)."""
    valid = np.flatnonzero(present)
    if len(valid) == 0 or len(valid) == len(q):
        return q.copy()
    frames = np.arange(len(q))
    return np.stack([np.interp(frames, valid, q[valid, j]) for j in range(q.shape[1])], axis=1)


def _checked_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:
        raise InvalidInputError(
            f"torch device {name!r} is not available here ({error}); valid choices: cpu"
            + (", cuda" if torch.cuda.is_available() else "")
        ) from error
    return device
