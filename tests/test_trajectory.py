"""Whole-trajectory retargeting in torch: kinematics, derivatives, the optimiser's behaviour."""

from __future__ import annotations

import dataclasses

import numpy as np
import pinocchio as pin
import pytest
import torch

import pipeline
import retarget
import robots
from retarget import Flag, RetargetConfig, Targets, TrajectoryConfig
from retarget import _banded as banded
from retarget import _smoothness as smooth
from retarget._tracking import FrameTargets, Tracking
from retarget.collision import SelfCollision
from retarget.contacts import clear_hand_contacts, clear_robot_contacts
from retarget.spheres import SphereModel
from retarget.torch_kinematics import TorchKinematics
from tests.conftest import SAMPLE_TRACKS

OPTIMIZE = RetargetConfig(optimize=True)


def _random_q(robot: retarget.Robot, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = np.where(np.isfinite(robot.lower), robot.lower, -np.pi)
    high = np.where(np.isfinite(robot.upper), robot.upper, np.pi)
    return rng.uniform(low, high, size=(count, robot.nq))


def _fold(robot: retarget.Robot, jacobian: np.ndarray) -> np.ndarray:
    """A Pinocchio model Jacobian (6, nv) in the robot's q columns (mimics folded in)."""
    model = robot.model
    out = np.zeros((6, robot.nq))
    for column, name in enumerate(robot.joint_names):
        out[:, column] += jacobian[:, model.joints[model.getJointId(name)].idx_v]
    for mimic in robot.mimic_joints:
        follower = model.joints[model.getJointId(mimic.follower)].idx_v
        out[:, robot.joint_names.index(mimic.leader)] += mimic.multiplier * jacobian[:, follower]
    return out


@pytest.mark.parametrize("name", robots.names())
def test_torch_kinematics_matches_pinocchio_on_every_robot(robots_loaded, name):
    robot = robots_loaded[name]
    frames = (robot.description.ee_frame,) + tuple(f.frame for f in robot.description.fingertips)
    kinematics = TorchKinematics(robot, frames)
    q = _random_q(robot, 20, seed=1)
    got = kinematics.jacobians(torch.as_tensor(q))
    model, data = robot.model, robot.model.createData()
    for t in range(len(q)):
        configuration = robot.model_configuration(q[t])
        pin.computeJointJacobians(model, data, configuration)
        pin.framesForwardKinematics(model, data, configuration)
        for k, frame in enumerate(frames):
            fid = model.getFrameId(frame)
            np.testing.assert_allclose(got.positions[t, k], data.oMf[fid].translation, atol=1e-9)
            np.testing.assert_allclose(got.rotations[t, k], data.oMf[fid].rotation, atol=1e-9)
            jacobian = _fold(robot, pin.getFrameJacobian(model, data, fid, pin.LOCAL_WORLD_ALIGNED))
            np.testing.assert_allclose(got.linear[t, k], jacobian[:3], atol=1e-9)
            np.testing.assert_allclose(got.angular[t, k], jacobian[3:], atol=1e-9)


def test_smoothness_adjoint_and_banded_solve_are_exact():
    generator = torch.Generator().manual_seed(0)
    clips, frames, joints = 2, 13, 3

    def rand(*shape):
        return torch.rand(*shape, generator=generator, dtype=torch.float64)

    steps = smooth.periods(0.02 + 0.05 * rand(clips, frames - 1))  # uneven frame periods [s]
    weights = smooth.Derivatives(
        rand(clips, frames - 1, joints),
        rand(clips, frames - 2, joints) * 1e-3,
        rand(clips, frames - 3, joints) * 1e-6,
    )
    x = rand(clips, frames, joints)
    y = smooth.Derivatives(*(rand(*w.shape) for w in weights))
    moves = smooth.derivatives(x, steps)
    lhs = sum(float((a * b).sum()) for a, b in zip(moves, y, strict=True))
    assert lhs == pytest.approx(float((x * smooth.adjoint(y, steps)).sum()), rel=1e-12)

    blocks = rand(clips, frames, joints, joints)
    blocks = blocks @ blocks.transpose(-1, -2) + 0.1 * torch.eye(joints, dtype=torch.float64)
    rhs = rand(clips, frames, joints)

    def product(p):
        moved = smooth.derivatives(p, steps)
        scaled = smooth.Derivatives(*(w * m for w, m in zip(weights, moved, strict=True)))
        return (blocks @ p[..., None])[..., 0] + smooth.adjoint(scaled, steps)

    bands = smooth.bands(weights, steps)
    for group in (3, 4, 5, 13):
        answer = banded.solve(blocks, bands, rhs, group)
        np.testing.assert_allclose(product(answer), rhs, atol=1e-10)


@pytest.mark.parametrize("name", ["panda", "so101", "allegro_right", "ur5_allegro"])
def test_tracking_jacobian_matches_finite_differences(robots_loaded, name):
    robot = robots_loaded[name]
    retargeter = retarget.Retargeter(robot)
    tracking = Tracking(
        robot, RetargetConfig(), retargeter.solvers, torch.float64, torch.device("cpu")
    )
    q = torch.as_tensor(_random_q(robot, 6, seed=2)).reshape(2, 3, -1)
    far = torch.as_tensor(_random_q(robot, 6, seed=3)).reshape(2, 3, -1)
    rotations, positions = tracking.kinematics.forward(far)  # targets: another pose
    hand = retargeter.solvers.hand
    pairs = 0 if hand is None else len(hand.pairs)
    targets = FrameTargets(
        torch.ones(2, 3, dtype=torch.float64),
        rotations[..., 0, :, :],
        positions[..., 0, :],
        torch.full((2, 3, pairs, 3), 0.05, dtype=torch.float64),  # guard active
        torch.full((2, 3), 0.01, dtype=torch.float64),
    )
    residual, jacobian = tracking.residuals(q, targets, jacobian=True)
    step = 1e-6
    for column in range(robot.nq):
        moved = q.clone()
        moved[..., column] += step
        numeric = (tracking.residuals(moved, targets, jacobian=False)[0] - residual) / step
        np.testing.assert_allclose(numeric, jacobian[..., column], atol=1e-4, rtol=1e-4)


def test_hand_spheres_hold_every_coal_contact_and_their_gaps_differentiate(robots_loaded):
    robot = robots_loaded["allegro_right"]
    checker = SelfCollision(robot)
    spheres = SphereModel(robot, checker)
    assert (spheres.gaps(torch.as_tensor(np.array(robot.rest))) > 0).all()
    q = _random_q(robot, 200, seed=4)
    gaps = spheres.gaps(torch.as_tensor(q))
    finger_pairs = {
        (checker.geometry.geometryObjects[a].name, checker.geometry.geometryObjects[b].name)
        for a, b in retarget.spheres.hand_pairs(robot, checker)
    }
    contacts = 0
    for t in range(len(q)):
        touching = set(checker.colliding(robot.model_configuration(q[t]))) & finger_pairs
        if touching:
            contacts += 1
            assert (gaps[t] < 0).any(), f"frame {t}: coal sees {touching}, no sphere overlaps"
    assert contacts > 20  # the check is not vacuous
    near = spheres.near(torch.as_tensor(q[:20]), 0.005)
    assert len(near.frame) > 0
    step = 1e-6
    for k in range(0, len(near.frame), max(1, len(near.frame) // 10)):
        frame = int(near.frame[k])
        base = spheres.gaps(torch.as_tensor(q[frame]))
        pair = int(torch.nonzero(torch.isclose(base, near.gap[k])).ravel()[0])
        numeric = [
            (
                spheres.gaps(torch.as_tensor(q[frame] + step * np.eye(robot.nq)[j]))[pair]
                - base[pair]
            )
            / step
            for j in range(robot.nq)
        ]
        np.testing.assert_allclose(numeric, near.slope[k], atol=1e-5)


def _panda_clip(panda, frames=90, seed=5, jump_at=None, gap=None):
    """Targets from a known smooth Panda motion plus noise, and the true end-effector poses."""
    rng = np.random.default_rng(seed)
    time = np.arange(frames) / 30.0
    phase = rng.uniform(0, 2 * np.pi, panda.nq)
    q_true = panda.rest + 0.25 * np.sin(2 * np.pi * 0.4 * time[:, None] + phase)
    q_true = np.clip(q_true, panda.lower, panda.upper)
    truth = np.stack([panda.frame_placements(q, (panda.description.ee_frame,))[0] for q in q_true])
    noisy = truth.copy()
    noisy[:, :3, 3] += rng.normal(0, 0.003, (frames, 3))  # 3 mm
    for t in range(frames):
        noisy[t, :3, :3] = noisy[t, :3, :3] @ pin.exp3(rng.normal(0, 0.02, 3))  # ~1 deg
    if jump_at is not None:
        noisy[jump_at:, :3, 3] += [0.0, 0.10, 0.0]  # 10 cm in one frame
        truth = noisy
    present = np.ones(frames, dtype=bool)
    if gap is not None:
        present[gap[0] : gap[1]] = False
        noisy[~present] = np.nan
    gripper = np.where(present, 0.02, np.nan)
    return Targets(present, noisy, None, gripper, timestamps=time), truth


def _ee_poses(panda, q):
    return np.stack([panda.frame_placements(qt, (panda.description.ee_frame,))[0] for qt in q])


def _ee_error(panda, q, truth):
    reached = np.stack([panda.frame_placements(qt, (panda.description.ee_frame,))[0] for qt in q])
    return np.linalg.norm(reached[:, :3, 3] - truth[:, :3, 3], axis=1)


def test_optimised_motion_is_closer_to_the_truth_and_inside_the_limits(robots_loaded):
    panda = robots_loaded["panda"]
    targets, truth = _panda_clip(panda)
    retargeter = retarget.Retargeter(panda, OPTIMIZE)
    q_frame, _, turns = retargeter.solve_turns(targets)
    answer = retargeter.optimizer.optimize(retarget.Clip(targets, q_frame, turns))
    frame_error = _ee_error(panda, q_frame, truth)
    optimised_error = _ee_error(panda, answer.q, truth)
    # Per frame the arm follows the 3 mm noise exactly; the optimised motion smooths it out.
    assert np.median(frame_error) == pytest.approx(0.0046, abs=0.0015)
    assert np.median(optimised_error) < 0.85 * np.median(frame_error)
    assert (answer.q >= panda.lower - 1e-12).all() and (answer.q <= panda.upper + 1e-12).all()
    assert answer.cost < answer.cost_start
    verdict = retargeter.evaluate(answer.q, targets)
    assert (verdict.flags == 0).mean() == 1.0


def test_the_default_optimises_every_clip_with_timestamps_and_no_other(robots_loaded):
    panda = robots_loaded["panda"]
    timed, _ = _panda_clip(panda, frames=40, jump_at=20)
    untimed = timed._replace(timestamps=None)
    default = retarget.Retargeter(panda)
    assert RetargetConfig().optimize is None
    with_time, without = default.retarget_targets([timed, untimed])
    assert with_time.optimized and not without.optimized
    # The jump is smoothed where there are speeds to weigh, left as it is where there are not.
    assert not (with_time.flags & Flag.VELOCITY_LIMIT).any()
    np.testing.assert_array_equal(without.q, default.solve_turns(untimed)[0])
    # Asked for, the refinement needs timestamps; turned off, nothing is refined.
    with pytest.raises(retarget.InvalidInputError, match="needs timestamps"):
        retarget.Retargeter(panda, OPTIMIZE).retarget_targets([untimed])
    off = retarget.Retargeter(panda, RetargetConfig(optimize=False))
    assert off.optimizer is None and not off.retarget_targets([timed])[0].optimized


def test_a_jump_followed_in_one_frame_becomes_motion_within_the_velocity_limits(robots_loaded):
    panda = robots_loaded["panda"]
    targets, _ = _panda_clip(panda, jump_at=45)
    retargeter = retarget.Retargeter(panda)
    q_frame, _, _ = retargeter.solve_turns(targets)
    frame_verdict = retargeter.evaluate(q_frame, targets)
    assert frame_verdict.flags[45] & Flag.VELOCITY_LIMIT
    assert frame_verdict.residual.joint_speed[45] > 2.0
    optimised = retarget.Retargeter(panda, OPTIMIZE)
    q, _, turns = optimised.solve_turns(targets)
    answer = optimised.optimizer.optimize(retarget.Clip(targets, q, turns))
    verdict = optimised.evaluate(answer.q, targets)
    assert np.nanmax(verdict.residual.joint_speed) <= 1.0
    assert not (verdict.flags & Flag.VELOCITY_LIMIT).any()


def test_frames_without_a_hand_are_smooth_not_held_then_jumped(robots_loaded):
    panda = robots_loaded["panda"]
    targets, _ = _panda_clip(panda, gap=(30, 60))
    retargeter = retarget.Retargeter(panda, OPTIMIZE)
    q_frame, _, turns = retargeter.solve_turns(targets)
    held = np.abs(np.diff(q_frame[29:61], axis=0)).max(axis=1)
    assert held[:-1].max() == 0.0 and held[-1] > 0.05  # per frame: held, then a jump
    answer = retargeter.optimizer.optimize(retarget.Clip(targets, q_frame, turns))
    steps = np.abs(np.diff(answer.q[29:61], axis=0)).max(axis=1)
    assert steps.max() < 0.3 * held[-1]
    assert steps.min() > 0.0


def test_many_clips_in_one_batch_give_each_clip_s_own_answer(robots_loaded):
    panda = robots_loaded["panda"]
    config = dataclasses.replace(
        OPTIMIZE, trajectory=TrajectoryConfig(iterations=6, tolerance=1e-12)
    )
    retargeter = retarget.Retargeter(panda, config)
    clips = []
    for frames, seed in ((40, 6), (70, 7)):
        targets, _ = _panda_clip(panda, frames=frames, seed=seed)
        q, _, turns = retargeter.solve_turns(targets)
        clips.append(retarget.Clip(targets, q, turns))
    together = retargeter.optimizer.optimize_many(clips)
    for clip, answer in zip(clips, together, strict=True):
        alone = retargeter.optimizer.optimize(clip)
        assert answer.q.shape == clip.q.shape
        np.testing.assert_allclose(answer.q, alone.q, atol=1e-8)


def test_the_sample_clip_optimised_keeps_every_flag_from_pinocchio(robots_loaded):
    panda = robots_loaded["panda"]
    tracks = pipeline.read_tracks(SAMPLE_TRACKS)
    frame = pipeline.retarget_tracks(tracks, panda, config=RetargetConfig(optimize=False)).result
    done = pipeline.retarget_tracks(tracks, panda, config=OPTIMIZE)
    result = done.result
    assert result.optimized and not frame.optimized
    assert int(((frame.flags & Flag.VELOCITY_LIMIT) > 0).sum()) == 2
    assert not (result.flags & Flag.VELOCITY_LIMIT).any()
    assert result.feasible.sum() >= frame.feasible.sum()
    assert np.nanmax(result.residual.position[result.feasible]) < 0.01
    # The flags are Pinocchio's verdict on the optimised q, as for any trajectory.
    retargeter = retarget.Retargeter(panda)
    hand = tracks.hands[done.side]
    wrist = done.transform_camera_to_base @ hand.transform_wrist_to_camera
    present = hand.present & np.isfinite(wrist).all(axis=(1, 2))
    targets = retargeter.targets(
        hand.world_keypoints, wrist, present=present, timestamps=tracks.timestamps
    )
    verdict = retargeter.evaluate(result.q, targets)
    inputs = int(Flag.LOW_CONFIDENCE | Flag.LIFT_UNCERTAIN)
    np.testing.assert_array_equal(verdict.flags, result.flags & ~inputs)


def test_bad_optimiser_input_is_an_error_naming_the_choices(robots_loaded):
    panda = robots_loaded["panda"]
    with pytest.raises(retarget.InvalidInputError, match="valid choices: cpu"):
        retarget.TrajectoryOptimizer(
            panda, RetargetConfig(trajectory=TrajectoryConfig(device="nowhere"))
        )
    with pytest.raises(retarget.InvalidInputError, match="valid choices: float64, float32"):
        TrajectoryConfig(dtype="float16")
    targets, _ = _panda_clip(panda, frames=10)
    optimizer = retarget.TrajectoryOptimizer(panda, OPTIMIZE)
    start = np.tile(panda.rest, (10, 1))
    with pytest.raises(retarget.InvalidInputError, match="needs timestamps"):
        optimizer.optimize(retarget.Clip(targets._replace(timestamps=None), start))
    with pytest.raises(retarget.InvalidInputError, match=r"shape \(10, 8\)"):
        optimizer.optimize(retarget.Clip(targets, start[:, :3]))
    backwards = targets._replace(timestamps=targets.timestamps[::-1])
    with pytest.raises(retarget.InvalidInputError, match="strictly increasing"):
        optimizer.optimize(retarget.Clip(backwards, start))
    with pytest.raises(retarget.InvalidInputError, match="NaN"):
        optimizer.optimize(retarget.Clip(targets, start * np.nan))


def test_clips_of_one_to_three_frames_and_without_a_hand_are_optimised(robots_loaded):
    panda = robots_loaded["panda"]
    retargeter = retarget.Retargeter(panda, OPTIMIZE)
    for frames in (1, 2, 3):
        targets, _ = _panda_clip(panda, frames=frames)
        result = retargeter.retarget_targets([targets])[0]
        assert result.q.shape == (frames, panda.nq) and result.optimized
        assert result.feasible.all()
    targets, _ = _panda_clip(panda, frames=20, gap=(0, 20))  # no hand at all: rest, unmoved
    result = retargeter.retarget_targets([targets])[0]
    np.testing.assert_allclose(result.q, np.tile(panda.rest, (20, 1)), atol=1e-9)
    assert (result.flags == Flag.NO_HAND).all()


# Every device this machine has: the CPU always, CUDA where torch sees it (no skip: the CPU
# runs the same device and dtype plumbing a GPU does).
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_optimiser_gives_the_same_answer_on_every_device_and_dtype(
    robots_loaded, device, dtype
):
    panda = robots_loaded["panda"]
    targets, _ = _panda_clip(panda, frames=60)
    reference = retarget.Retargeter(panda, OPTIMIZE)  # CPU, float64
    q, _, turns = reference.solve_turns(targets)
    clip = retarget.Clip(targets, q, turns)
    settings = TrajectoryConfig(device=device, dtype=dtype)
    optimizer = retarget.TrajectoryOptimizer(
        panda, dataclasses.replace(OPTIMIZE, trajectory=settings)
    )
    assert optimizer.device.type == device and optimizer.dtype == getattr(torch, dtype)
    answer = optimizer.optimize(clip)
    assert answer.q.dtype == np.float64 and answer.q.shape == q.shape
    expected = reference.optimizer.optimize(clip)
    assert not np.allclose(expected.q, q, atol=1e-3)  # the optimiser did move the start
    if dtype == "float64":
        np.testing.assert_allclose(answer.q, expected.q, atol=1e-6)
        return
    # float32: the same motion of the end effector and the same cost; the Panda's seventh
    # joint (its null space, held only by smoothness) may settle up to ~0.03 rad elsewhere.
    np.testing.assert_allclose(
        _ee_error(panda, answer.q, _ee_poses(panda, expected.q)), 0, atol=1e-4
    )
    assert answer.cost == pytest.approx(expected.cost, rel=0.01)
    np.testing.assert_array_equal(
        reference.evaluate(answer.q, targets).flags, reference.evaluate(expected.q, targets).flags
    )


def test_many_inputs_retargeted_together_make_one_optimiser_call(robots_loaded, monkeypatch):
    panda = robots_loaded["panda"]
    tracks = pipeline.read_tracks(SAMPLE_TRACKS)
    calls = []
    optimize_many = retarget.TrajectoryOptimizer.optimize_many

    def counted(self, clips):
        calls.append(len(clips))
        return optimize_many(self, clips)

    monkeypatch.setattr(retarget.TrajectoryOptimizer, "optimize_many", counted)
    allegro = robots_loaded["allegro_right"]
    done = pipeline.retarget_many(
        [(tracks, "auto"), (tracks, "both"), (tracks, "both")], allegro, config=OPTIMIZE
    )
    assert isinstance(done[1], retarget.InvalidInputError)  # a right hand takes no "both"
    assert "is a right hand" in str(done[1])
    done = pipeline.retarget_many([(tracks, "auto"), (tracks, "both")], panda, config=OPTIMIZE)
    # Sample: the left hand in all 287 frames, the right in 74; one call for three clips.
    assert calls[-1:] == [3]
    assert [hand.side for hand in done[0]] == ["left"]
    assert [hand.side for hand in done[1]] == ["left", "right"]
    # Each clip stops when it settles, alone or in a batch: the same answer either way, also
    # on the right hand's 213 frames without a hand, which only the smoothness terms hold (a
    # batch that ran on moved them by up to 0.34 rad).
    for side, hand in (("left", done[0][0]), ("left", done[1][0]), ("right", done[1][1])):
        alone = pipeline.retarget_tracks(tracks, panda, side=side, config=OPTIMIZE).result
        np.testing.assert_allclose(hand.result.q, alone.q, atol=1e-9)
        np.testing.assert_array_equal(hand.result.flags, alone.flags)


def test_optimised_fingers_are_kept_out_of_contacts_the_per_frame_answer_was_clear_of(
    robots_loaded,
):
    """A frame the optimiser leaves inside the hand's shapes steps back towards the per-frame
    answer, just far enough (measured on the shared clips: 0.1-1.2 mm deep, 3 frames a clip)."""
    robot = robots_loaded["allegro_right"]
    retargeter = retarget.Retargeter(robot, OPTIMIZE)
    hand = retargeter.solvers.hand
    shapes = hand.vector.shapes
    columns = hand.columns
    rng = np.random.default_rng(3)
    samples = _random_q(robot, 400, seed=7)
    touching = shapes.in_contact_many(samples[:, columns])
    assert 0 < touching.sum() < len(samples)  # both kinds among random hands
    inside, clear = samples[touching][:5], samples[~touching][:5]
    start = np.concatenate([clear, clear])  # per-frame answers, clear of contact
    optimised = np.concatenate([inside, clear + rng.normal(scale=1e-3, size=clear.shape)])
    optimised[5:, columns] = np.clip(
        optimised[5:, columns], robot.lower[columns], robot.upper[columns]
    )
    out = clear_hand_contacts(optimised, start, hand)
    assert not shapes.in_contact_many(out[:, columns]).any()
    checker = SelfCollision(robot)
    assert all(not checker.colliding(robot.model_configuration(q)) for q in out)
    # Frames clear of contact are untouched; the others moved along the line to the start,
    # no further than needed (a little less and they touch again).
    untouched = ~shapes.in_contact_many(optimised[:, columns])
    np.testing.assert_array_equal(out[untouched], optimised[untouched])
    for t in np.flatnonzero(~untouched):
        step = start[t] - optimised[t]
        fraction = np.linalg.norm(out[t] - optimised[t]) / np.linalg.norm(step)
        np.testing.assert_allclose(out[t], optimised[t] + fraction * step, atol=1e-12)
        assert 0 < fraction <= 1
        assert shapes.in_contact(optimised[t, columns] + (fraction - 1e-5) * step[columns])


def test_optimised_arm_links_are_kept_out_of_contacts_the_per_frame_answer_was_clear_of(
    robots_loaded,
):
    """The SO-101's links (no sphere cover in the optimiser) stepped back to clear coal's
    contacts where the per-frame answer is clear; left as they are where it is not."""
    robot = robots_loaded["so101"]
    checker = SelfCollision(robot)
    samples = _random_q(robot, 400, seed=11)
    colliding = np.array([bool(checker.colliding(robot.model_configuration(q))) for q in samples])
    assert 3 <= colliding.sum() < len(samples) - 5  # both kinds among random poses
    inside, clear = samples[colliding][:3], samples[~colliding][:5]
    # Frames 0-2 collide with clear per-frame answers, 3 collides with a colliding one, 4-7 are
    # clear.
    optimised = np.concatenate([inside, inside[:1], clear[1:]])
    start = np.concatenate([clear[:3], inside[:1], clear[1:]])
    frames = np.array([0, 1, 2, 3])
    out = clear_robot_contacts(optimised, start, frames, checker, robot)
    assert out is not optimised
    for t in range(3):
        assert not checker.colliding(robot.model_configuration(out[t]))
        step = start[t] - optimised[t]
        fraction = np.linalg.norm(out[t] - optimised[t]) / np.linalg.norm(step)
        np.testing.assert_allclose(out[t], optimised[t] + fraction * step, atol=1e-12)
        assert 0 < fraction <= 1
        assert checker.colliding(robot.model_configuration(optimised[t] + (fraction - 1e-5) * step))
    np.testing.assert_array_equal(out[3:], optimised[3:])
    # Nothing flagged: the very same array back.
    assert clear_robot_contacts(optimised, start, frames[:0], checker, robot) is optimised
