"""``retarget.evaluate`` judges joint trajectories the solver did not make."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

import pipeline
import retarget
from retarget import Flag
from tests.conftest import SAMPLE_TRACKS
from tests.synthetic import synthetic_keypoints


@pytest.fixture(scope="module")
def panda(robots_loaded):
    return robots_loaded["panda"]


def _fk_ee(robot, q):
    return np.stack([robot.frame_placements(qt, (robot.description.ee_frame,))[0] for qt in q])


def test_evaluate_reproduces_the_solvers_own_verdict(panda):
    tracks = pipeline.read_tracks(SAMPLE_TRACKS)
    done = pipeline.retarget_tracks(tracks, panda)
    rt = retarget.Retargeter(panda)
    hand = tracks.hands[done.side]
    wrist = done.transform_camera_to_base @ hand.transform_wrist_to_camera
    present = hand.present & np.isfinite(wrist).all(axis=(1, 2))
    targets = rt.targets(hand.world_keypoints, wrist, present=present, timestamps=tracks.timestamps)
    verdict = retarget.evaluate(panda, done.result.q, targets)
    # Same trajectory, same verdict (score and lift error were not passed here).
    inputs = int(Flag.LOW_CONFIDENCE | Flag.LIFT_UNCERTAIN)
    np.testing.assert_array_equal(verdict.flags, done.result.flags & ~inputs)
    np.testing.assert_array_equal(verdict.residual.position, done.result.residual.position)


def test_a_hand_made_trajectory_is_judged_by_forward_kinematics(panda):
    """A trajectory written by hand: its residuals are FK distances, its flags what it does."""
    frames = 12
    q_true = np.tile([0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8, 0.02], (frames, 1))
    q_true[:, 0] = np.linspace(-0.2, 0.2, frames)
    q_true[8:, 0] += 0.4  # a jump of 0.4 rad in 1/30 s (12 rad/s; the limit is 2.175 rad/s)
    rt = retarget.Retargeter(panda)
    targets = rt.targets(
        synthetic_keypoints(panda, q_true, "right"),
        _fk_ee(panda, q_true) @ panda.transform_hand_to_ee,
        timestamps=np.arange(frames) / 30.0,
    )
    q = q_true.copy()
    q[4, 1] += 0.05  # a small miss: about 3 cm at the gripper
    q[10, 3] = panda.model.upperPositionLimit[3]  # elbow on its limit, target missed
    verdict = rt.evaluate(q, targets)

    # Residuals are the distances between the reached and the target end-effector poses.
    reached = _fk_ee(panda, q)
    expected = np.linalg.norm(reached[:, :3, 3] - targets.transform_ee_to_base[:, :3, 3], axis=1)
    np.testing.assert_allclose(verdict.residual.position, expected, atol=1e-9)
    angle = [
        np.linalg.norm(pin.log3(a[:3, :3].T @ b[:3, :3]))
        for a, b in zip(reached, targets.transform_ee_to_base, strict=True)
    ]
    np.testing.assert_allclose(verdict.residual.orientation, angle, atol=1e-9)
    np.testing.assert_allclose(verdict.transform_ee_to_base, reached, atol=1e-12)
    assert verdict.residual.position[4] > 0.02 and verdict.residual.position[0] < 1e-9

    # Flags: the miss, the jump, and the limit (the same target is reachable without it).
    assert verdict.flags[4] == Flag.UNREACHABLE
    assert verdict.flags[8] == Flag.VELOCITY_LIMIT and verdict.flags[9] == 0
    assert verdict.residual.joint_speed[8] == pytest.approx((0.4 + 0.4 / 11) * 30 / 2.175, rel=1e-9)
    # The elbow swings 2.1 rad to its limit and back within 1/15 s: too fast as well.
    assert verdict.flags[10] == Flag.JOINT_LIMIT | Flag.VELOCITY_LIMIT
    assert verdict.flags[11] == Flag.VELOCITY_LIMIT
    untouched = [0, 1, 2, 3, 5, 6, 7, 9]
    np.testing.assert_array_equal(verdict.flags[untouched], 0)
    assert not verdict.flags.flags.writeable


def test_bad_trajectories_are_refused_with_reasons(panda):
    rt = retarget.Retargeter(panda)
    q = np.tile(panda.rest, (3, 1))
    targets = rt.targets(synthetic_keypoints(panda, q, "right"), _fk_ee(panda, q))
    with pytest.raises(retarget.InvalidInputError, match=r"q must have shape \(3, 8\)"):
        rt.evaluate(q[:2], targets)
    q[1, 0] = np.nan
    with pytest.raises(retarget.InvalidInputError, match="NaN"):
        rt.evaluate(q, targets)
