"""Whole-robot retargeting of a hand trajectory: check, targets, solve frame by frame, evaluate.

:meth:`Retargeter.retarget_sequence` is three named steps: :meth:`Retargeter.targets` (the
inputs checked and turned into end-effector poses, finger vectors and gripper positions),
:meth:`Retargeter.solve` (per-frame IK, warm-started from the previous frame) and
:meth:`Retargeter.evaluate` (every residual and flag, :mod:`retarget.evaluate`), which judges any
joint trajectory, not only the solver's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from retarget.arm_ik import IKResult
from retarget.collision import SelfCollision
from retarget.config import FeasibilityConfig, RetargetConfig
from retarget.contacts import clear_hand_contacts, clear_robot_contacts
from retarget.evaluate import Evaluation, Evaluator, Targets
from retarget.exceptions import InvalidInputError
from retarget.flags import Flag
from retarget.gripper import aperture_from_keypoints, gripper_position
from retarget.hand_frame import HandSide, check_keypoints, keypoints_in_hand_frame
from retarget.result import Residual, RetargetResult, readonly
from retarget.robot import Robot
from retarget.solvers import ArmSolvers, build_solvers
from retarget.symmetry import nearest_turn, other_turn, turned
from robots import RobotKind, Side, Symmetry

if TYPE_CHECKING:
    from retarget.optimizer import TrajectoryOptimizer

__all__ = [
    "FeasibilityConfig",
    "Residual",
    "RetargetConfig",
    "RetargetResult",
    "Retargeter",
]


class Retargeter:
    """Turn hand keypoints (and wrist poses, for arms) into robot joint trajectories.

    Args:
        robot: A loaded robot (:func:`retarget.load_robot`).
        config: Solver and flag settings; defaults are documented on each field.
    """

    def __init__(self, robot: Robot, config: RetargetConfig | None = None) -> None:
        self.robot = robot
        self.config = config or RetargetConfig()
        self.solvers = build_solvers(robot, self.config)
        """The solvers and the collision check (:class:`retarget.solvers.Solvers`)."""
        self.evaluator = Evaluator(robot, self.config, self.solvers)
        """What :meth:`evaluate` runs."""
        self._optimizer: TrajectoryOptimizer | None = None

    @property
    def optimizer(self) -> TrajectoryOptimizer | None:
        """The whole-clip refinement, built on first use; None when ``config.optimize`` is False.

        torch takes about 1.5 s to import (measured: `hand2robot --help` 1.1 -> 2.6 s): only a
        retargeter that optimises loads it.
        """
        if self.config.optimize is False:
            return None
        if self._optimizer is None:
            from retarget.optimizer import TrajectoryOptimizer

            self._optimizer = TrajectoryOptimizer(self.robot, self.config, self.solvers)
        return self._optimizer

    def optimizes(self, targets: Targets) -> bool:
        """Whether this clip is refined over its whole length (``config.optimize``).

        None: where it has timestamps; True: always (timestamps are then required).
        """
        if self.config.optimize is None:
            return targets.timestamps is not None
        return self.config.optimize

    @property
    def side(self) -> HandSide:
        """The human hand this retargeter expects (``"right"`` for side-agnostic grippers)."""
        return "left" if self.robot.description.side is Side.LEFT else "right"

    @property
    def collision(self) -> SelfCollision | None:
        """The self-collision check behind ``SELF_COLLISION`` (None with the check off)."""
        return self.solvers.collision

    @property
    def kind(self) -> RobotKind:
        """The robot's kind."""
        return self.robot.description.kind

    def target_vectors(
        self, keypoints: NDArray[np.floating], side: HandSide
    ) -> NDArray[np.float64]:
        """Scaled human vectors in the robot's palm frame (``RetargetConfig.finger_roots``).

        Args:
            keypoints: Shape (T, 21, 3), any metric frame [m], finite.
            side: Which hand the keypoints are.

        Returns:
            Shape (T, K, 3) [m], the targets of the vector solver.

        Raises:
            InvalidInputError: The robot has no dexterous hand.
        """
        hand = self.solvers.hand
        if hand is None:
            raise InvalidInputError(f"robot {self.robot.name!r} has no dexterous hand")
        in_hand = keypoints_in_hand_frame(keypoints, side)
        ends = hand.keypoint_of_point[hand.pairs[:, 1]]
        vectors = in_hand[:, ends] - in_hand[:, hand.human_start]
        rotation = self.robot.transform_hand_to_ee[:3, :3]
        scaled = self.robot.description.scale * vectors @ rotation.T
        return np.asarray(scaled + hand.robot_start)

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
        wrist_std: NDArray[np.floating] | None = None,
        camera_std: NDArray[np.floating] | None = None,
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
                ``Flag.LIFT_UNCERTAIN`` (the figure of earlier releases' lifting).
            wrist_std: Shape (T,) [m], the lifted wrist's standard deviation along its viewing
                ray (``HandTrack.wrist_position_std``); enables ``Flag.LIFT_UNCERTAIN``.
            camera_std: Shape (T,) [deg], the standard deviation of the camera rotation taken
                out of the wrist poses (``HandTracks.camera_rotation_std``; NaN: unknown);
                enables ``Flag.CAMERA_UNCERTAIN``.

        With ``config.optimize`` the per-frame answer is refined over the whole clip
        (:class:`retarget.TrajectoryOptimizer`; timestamps are then required) before it is
        judged. The flags are :meth:`evaluate`'s (:meth:`retarget.evaluate.Evaluator.evaluate` lists
        them); ``feasible`` is "no flag".

        Returns:
            The joint trajectory with flags and residuals; one row per input frame.

        Raises:
            InvalidInputError: On wrong shapes, NaN in a present frame, a missing wrist pose for
                an arm, or a hand side the robot cannot take.
        """
        targets = self.targets(
            keypoints,
            transform_wrist_to_base,
            present=present,
            side=side,
            timestamps=timestamps,
            score=score,
            lift_error=lift_error,
            wrist_std=wrist_std,
            camera_std=camera_std,
        )
        return self.retarget_targets([targets])[0]

    def retarget_targets(self, clips: Sequence[Targets]) -> list[RetargetResult]:
        """Retarget many clips whose targets are made (:meth:`targets`), in their order.

        Each clip is solved frame by frame; with ``config.optimize`` all of them are then
        refined in one call of the trajectory optimiser (one padded batch: the way to use a
        GPU, or the CPU's vector units, on many short clips); each is judged by
        :meth:`evaluate`. :meth:`retarget_sequence` is this for one clip.

        Raises:
            InvalidInputError: Optimisation of a clip without timestamps.
        """
        solved = [self.solve_turns(targets) for targets in clips]
        trajectories = [q for q, _, _ in solved]
        chosen = [index for index, targets in enumerate(clips) if self.optimizes(targets)]
        if chosen:
            from retarget.optimizer import Clip  # loaded with the optimiser (see optimizer)

            optimizer = self.optimizer
            assert optimizer is not None
            starts = [Clip(clips[i], solved[i][0], solved[i][2]) for i in chosen]
            for index, answer in zip(chosen, optimizer.optimize_many(starts), strict=True):
                trajectories[index] = clear_hand_contacts(
                    answer.q, solved[index][0], self.solvers.hand
                )
        results = []
        for index, (targets, q, (start, iterations, turns)) in enumerate(
            zip(clips, trajectories, solved, strict=True)
        ):
            verdict = self.evaluate(q, targets)
            # An optimised clip: arm-link contacts the optimiser made step back, and the clip
            # is judged again only where a frame did.
            if index in chosen:
                touching = np.flatnonzero(verdict.flags & Flag.SELF_COLLISION)
                cleared = clear_robot_contacts(
                    q, start, touching, self.solvers.collision, self.robot
                )
                if cleared is not q:
                    q, verdict = cleared, self.evaluate(cleared, targets)
            results.append(
                RetargetResult(
                    joint_names=self.robot.joint_names,
                    q=readonly(q),
                    feasible=readonly(verdict.flags == 0),
                    flags=verdict.flags,
                    residual=verdict.residual,
                    transform_ee_to_base=verdict.transform_ee_to_base,
                    iterations=readonly(iterations),
                    target_turn=readonly(turns),
                    optimized=index in chosen,
                )
            )
        return results

    def targets(
        self,
        keypoints: NDArray[np.floating],
        transform_wrist_to_base: NDArray[np.floating] | None = None,
        *,
        present: NDArray[np.bool_] | None = None,
        side: HandSide | None = None,
        timestamps: NDArray[np.floating] | None = None,
        score: NDArray[np.floating] | None = None,
        lift_error: NDArray[np.floating] | None = None,
        wrist_std: NDArray[np.floating] | None = None,
        camera_std: NDArray[np.floating] | None = None,
    ) -> Targets:
        """The checked inputs of :meth:`retarget_sequence` as the robot's targets.

        Takes exactly :meth:`retarget_sequence`'s inputs (the two signatures repeat on
        purpose: the per-frame call stays one call, and ``targets`` serves any other producer
        of joint trajectories).

        Raises:
            InvalidInputError: As :meth:`retarget_sequence`.
        """
        points = check_keypoints(keypoints)
        frames = len(points)
        side = self._checked_side(side)
        mask = np.ones(frames, dtype=bool) if present is None else np.asarray(present, dtype=bool)
        if mask.shape != (frames,):
            raise InvalidInputError(f"present must have shape ({frames},), got {mask.shape}")
        bad = mask & ~np.isfinite(points).all(axis=(1, 2))
        if bad.any():
            raise InvalidInputError(
                f"keypoints have NaN/inf in present frames {np.flatnonzero(bad)[:10].tolist()}; "
                "mark frames without a hand with present=False"
            )
        extras = _checked_figures(
            frames,
            timestamps=timestamps,
            score=score,
            lift_error=lift_error,
            wrist_std=wrist_std,
            camera_std=camera_std,
        )
        wrist = self._checked_wrist(transform_wrist_to_base, mask)
        valid = np.flatnonzero(mask)
        vectors = None
        if self.solvers.hand is not None and len(valid):
            vectors = np.full((frames, len(self.solvers.hand.pairs), 3), np.nan)
            vectors[valid] = self.target_vectors(points[valid], side)
        gripper = None
        description = self.robot.description
        if self.solvers.gripper_column is not None and len(valid):
            assert description.gripper is not None  # a robot with a gripper joint has one
            gripper = np.full(frames, np.nan)
            gripper[valid] = gripper_position(
                aperture_from_keypoints(points[valid]), description.gripper
            )
        ee = None
        if wrist is not None:
            ee = wrist @ np.linalg.inv(self.robot.transform_hand_to_ee)
        return Targets(mask, ee, vectors, gripper, **extras)

    def solve(self, targets: Targets) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """The per-frame solution: joints (T, nq) and solver iterations (T,) per frame.

        Each frame starts from the previous frame's answer; frames without a hand keep it.
        """
        q, iterations, _ = self.solve_turns(targets)
        return q, iterations

    def solve_turns(
        self, targets: Targets
    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
        """:meth:`solve`, and the turn of each frame's end-effector target it reached, (T,).

        With a symmetric gripper (``RobotDescription.symmetry``, ``config.use_symmetry``) a
        target and its twin turned 180 deg about the approach axis are equally good. The turn
        is chosen per stretch, with hysteresis: the first frame with a hand takes the twin the
        arm reaches better; later frames keep the current turn while it is reached, and switch
        only where it is missed and the twin is reached (the switch is a motion the arm must
        make: ``VELOCITY_LIMIT`` flags it if it is too fast). Continuous symmetry leaves the
        turn free: each frame takes the turn nearest to where the arm is.
        """
        robot, solvers = self.robot, self.solvers
        frames = len(targets.present)
        q_all = np.empty((frames, robot.nq))
        iterations = np.zeros(frames, dtype=np.int64)
        turns = np.full(frames, np.nan)
        q = robot.rest.copy()
        arm, hand = solvers.arm, solvers.hand
        q_arm_good = robot.rest[arm.columns].copy() if arm is not None else None
        turn: float | None = None
        for t in range(frames):
            if not targets.present[t]:
                q_all[t] = q
                continue
            if arm is not None:
                assert targets.transform_ee_to_base is not None and q_arm_good is not None
                target = targets.transform_ee_to_base[t]
                result, turn = self._solve_turned(arm, target, q, q_arm_good, turn)
                turns[t] = turn
                if arm.ik.succeeded(result):
                    q_arm_good = result.q
                q[arm.columns] = result.q
                iterations[t] += result.iterations
            if hand is not None:
                assert targets.vectors is not None
                answer = hand.vector.solve(targets.vectors[t], q[hand.columns])
                q[hand.columns] = answer.q
                iterations[t] += answer.iterations
            if targets.gripper is not None and solvers.gripper_column is not None:
                q[solvers.gripper_column] = targets.gripper[t]
            q_all[t] = q
        return q_all, iterations, turns

    @property
    def symmetry(self) -> Symmetry:
        """The end-effector symmetry the solve and the residuals use (the evaluator's)."""
        return self.evaluator.symmetry

    def _solve_turned(
        self,
        arm: ArmSolvers,
        target: NDArray[np.float64],
        q: NDArray[np.float64],
        q_arm_good: NDArray[np.float64],
        turn: float | None,
    ) -> tuple[IKResult, float]:
        """One frame's arm solve for the chosen twin of ``target``; the turn it took [rad]."""
        symmetry = self.symmetry
        if symmetry is Symmetry.NONE:
            return self._solve_arm(arm, target, q, q_arm_good), 0.0
        if symmetry is Symmetry.CONTINUOUS:
            # The turn nearest to the warm start, then again from where the arm got to.
            start = arm.ik.forward(q[arm.columns])
            first = nearest_turn(target, start, symmetry)
            result = self._solve_arm(arm, turned(target, first), q, q_arm_good)
            angle = nearest_turn(target, result.transform_ee_to_base, symmetry)
            again = arm.ik.solve(turned(target, angle), result.q)
            return (result, first) if arm.ik.better(result, again) else (again, angle)
        current = 0.0 if turn is None else turn
        result = self._solve_arm(arm, turned(target, current), q, q_arm_good)
        if turn is not None and arm.ik.succeeded(result):
            return result, current
        twin = other_turn(current)
        other = self._solve_arm(arm, turned(target, twin), q, q_arm_good)
        if turn is None:  # the first frame: the better of the two
            return (other, twin) if arm.ik.better(other, result) else (result, current)
        return (other, twin) if arm.ik.succeeded(other) else (result, current)

    def evaluate(self, q: NDArray[np.floating], targets: Targets) -> Evaluation:
        """Every residual and flag of any joint trajectory ``q`` (T, nq) against ``targets``."""
        return self.evaluator.evaluate(q, targets)

    def _solve_arm(
        self,
        arm: ArmSolvers,
        target: NDArray[np.float64],
        q: NDArray[np.float64],
        q_arm_good: NDArray[np.float64],
    ) -> IKResult:
        """One frame's arm IK from the previous frame, else the last good answer or the rest.

        Another start is tried while the answer does not reach the target
        (:meth:`ArmIK.succeeded`: for an arm of fewer than six joints, whose IK reaches the
        position first, that includes turning within the orientation flag's threshold).
        Measured on the SO-101 (``armwrestling_lowres.mp4`` at 24 fps, the right hand): the warm
        start reached every position with the gripper turned 78 deg away (median), where a
        start from the rest pose turns within it: 8 -> 161 of 181 frames without a flag.
        """
        result = arm.ik.solve(target, q[arm.columns])
        if not arm.ik.succeeded(result):
            # Warm starts can be trapped after a jump or an unreachable stretch (arm stretched
            # against its limits): also try the last good solution and the rest pose, keep the
            # best. Every attempt is a real solve, reported as is.
            for start in (q_arm_good, self.robot.rest[arm.columns]):
                retry = arm.ik.solve(target, start)
                if arm.ik.better(retry, result):
                    result = retry
                if arm.ik.succeeded(result):
                    break
        return result

    def _checked_side(self, side: HandSide | None) -> HandSide:
        side = side or self.side
        if side not in ("right", "left"):
            raise InvalidInputError(f"unknown hand side {side!r}; valid choices: 'right', 'left'")
        if self.solvers.hand is not None and side != self.side:
            raise InvalidInputError(
                f"robot {self.robot.name!r} is a {self.side} hand and cannot take {side} hand "
                "keypoints; choose a robot of that side (e.g. allegro_left / allegro_right)"
            )
        return side

    def _checked_wrist(
        self, transform_wrist_to_base: NDArray[np.floating] | None, mask: NDArray[np.bool_]
    ) -> NDArray[np.float64] | None:
        frames = len(mask)
        if transform_wrist_to_base is None:
            if self.solvers.arm is not None:
                raise InvalidInputError(
                    f"robot {self.robot.name!r} has an arm: pass transform_wrist_to_base, the "
                    "(T, 4, 4) wrist poses in the robot base frame"
                )
            return None
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
        return wrist


def _checked_figures(
    frames: int, **figures: NDArray[np.floating] | None
) -> dict[str, NDArray[np.float64]]:
    """The given per-frame figures as (T,) float arrays; timestamps strictly increasing."""
    extras = {}
    for name, values in figures.items():
        if values is None:
            continue
        array = np.asarray(values, dtype=np.float64)
        if array.shape != (frames,):
            raise InvalidInputError(f"{name} must have shape ({frames},), got {array.shape}")
        extras[name] = array
    if "timestamps" in extras and not np.all(np.diff(extras["timestamps"]) > 0):
        raise InvalidInputError("timestamps must be finite and strictly increasing [s]")
    return extras
