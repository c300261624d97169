"""Feasibility flags on constructed cases whose answers are known: each fires where it must."""

import numpy as np
import pytest

import retarget
from retarget import Flag
from tests.synthetic import FROM_WRIST, synthetic_keypoints


@pytest.fixture(scope="module")
def panda(robots_loaded):
    return robots_loaded["panda"]


def _targets(robot, q):
    """Wrist poses and keypoints whose retargeting is exactly the robot at ``q`` (T, nq)."""
    ee = np.stack([robot.frame_placements(qt, (robot.description.ee_frame,))[0] for qt in q])
    return synthetic_keypoints(robot, q, "right"), ee @ robot.transform_hand_to_ee


def _sequence(robot, frames):
    # A slow, comfortable motion: joint 1 sweeps 0.5 rad over the clip.
    q = np.tile([0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8, 0.02], (frames, 1))
    q[:, 0] = np.linspace(-0.25, 0.25, frames)
    return q


#: The per-frame solve's flags (the trajectory optimiser, on by default where timestamps are
#: given, would smooth the jumps these tests plant).
PER_FRAME = retarget.RetargetConfig(optimize=False)


def test_each_flag_fires_on_its_frame_only(panda):
    frames = 20
    keypoints, wrist = _targets(panda, _sequence(panda, frames))
    timestamps = np.arange(frames) / 30.0
    present = np.ones(frames, dtype=bool)
    score = np.full(frames, 0.95)
    lift = np.full(frames, 0.05)
    present[3] = False
    keypoints[3] = np.nan
    score[6] = 0.2
    lift[9] = 0.4
    wrist[12, :3, 3] += [2.0, 0.0, 0.0]  # 2 m further than the Panda reaches
    result = retarget.Retargeter(panda, PER_FRAME).retarget_sequence(
        keypoints, wrist, present=present, timestamps=timestamps, score=score, lift_error=lift
    )
    expected = np.zeros(frames, dtype=np.int64)
    expected[3] = Flag.NO_HAND
    expected[6] = Flag.LOW_CONFIDENCE
    expected[9] = Flag.LIFT_UNCERTAIN
    # Toward the far target and back at 30 fps, the arm also swings faster than its URDF
    # velocity limits allow.
    expected[12] = Flag.UNREACHABLE | Flag.VELOCITY_LIMIT
    expected[13] = Flag.VELOCITY_LIMIT
    np.testing.assert_array_equal(result.flags, expected)
    np.testing.assert_array_equal(result.feasible, expected == 0)
    assert result.residual.joint_speed[13] > 1.0 > np.nanmax(result.residual.joint_speed[:12])


def test_jump_between_frames_is_a_velocity_flag(panda):
    q = _sequence(panda, 10)
    q[5:, 0] += 0.3  # 0.3 rad in 1/30 s = 9 rad/s against the URDF's 2.175 rad/s
    keypoints, wrist = _targets(panda, q)
    result = retarget.Retargeter(panda, PER_FRAME).retarget_sequence(
        keypoints, wrist, timestamps=np.arange(10) / 30.0
    )
    np.testing.assert_array_equal(np.flatnonzero(result.flags), [5])
    assert result.flags[5] == Flag.VELOCITY_LIMIT
    # The redundant arm may spread the jump over several joints; it is still too fast.
    assert result.residual.joint_speed[5] > 1.0
    # Slow enough in true time (1 s per frame): the same jump is fine.
    slow = retarget.Retargeter(panda, PER_FRAME).retarget_sequence(
        keypoints, wrist, timestamps=np.arange(10.0)
    )
    assert not slow.flags.any()


def test_pose_beyond_a_joint_limit_is_a_joint_limit_flag(robots_loaded):
    hand = robots_loaded["allegro_right"]
    q = np.tile((hand.lower + hand.upper) / 2, (3, 1))
    # Frame 1: the middle and ring fingers' first two flexion joints far past their upper
    # limits (the index finger would also run into the opposed thumb: see the self-collision
    # test).
    beyond = [
        i for i, n in enumerate(hand.joint_names) if n.endswith(("_5.0", "_6.0", "_9.0", "_10.0"))
    ]
    q[1, beyond] = hand.upper[beyond] + 0.8
    keypoints = synthetic_keypoints(hand, q, "right")
    retargeter = retarget.Retargeter(hand, FROM_WRIST)
    result = retargeter.retarget_sequence(keypoints)
    # The best reachable answer curls the distal joints fully to make up for the held ones,
    # which presses a middle/ring fingertip into the palm: SELF_COLLISION is then also set,
    # and only where the returned configuration really collides.
    np.testing.assert_array_equal(result.flags & ~Flag.SELF_COLLISION, [0, Flag.JOINT_LIMIT, 0])
    collides = bool(retargeter.collision.colliding(hand.model_configuration(result.q[1])))
    assert bool(result.flags[1] & Flag.SELF_COLLISION) == collides


def test_near_singular_arm_is_flagged(panda):
    import pinocchio as pin

    q = _sequence(panda, 3)
    q[1, :7] = [0.0, 0.0, 0.0, -0.0698, 0.0, 1.5, 0.0]  # elbow straight at its limit
    keypoints, wrist = _targets(panda, q)
    config = retarget.RetargetConfig(feasibility=retarget.FeasibilityConfig(min_singular_value=0.1))
    result = retarget.Retargeter(panda, config).retarget_sequence(keypoints, wrist)
    np.testing.assert_array_equal(result.flags, [0, Flag.SINGULAR, 0])
    # The figure is the smallest singular value of the end-effector Jacobian at the solution,
    # its linear rows divided by the arm's length (the Panda's links: 1.0897 m).
    model = panda.model
    data = model.createData()
    for t in range(3):
        jacobian = pin.computeFrameJacobian(
            model,
            data,
            panda.model_configuration(result.q[t]),
            panda.ee_frame_id,
            pin.ReferenceFrame.LOCAL,
        )[:, :7]
        jacobian[:3] /= 1.0897
        smallest = np.linalg.svd(jacobian, compute_uv=False)[-1]
        np.testing.assert_allclose(result.residual.singular_value[t], smallest, rtol=1e-4)
    assert result.residual.singular_value[1] < 0.1 < result.residual.singular_value[0]


def test_fingers_driven_through_each_other_are_a_self_collision(robots_loaded):
    hand = robots_loaded["allegro_right"]
    q = np.tile((hand.lower + hand.upper) / 2, (3, 1))  # collision-free (checked below)
    index = hand.joint_names.index("joint_1.0")
    # Frame 1: the index finger flexed (within its limits) into the opposed thumb.
    q[1, index] = hand.upper[index] - 0.05
    keypoints = synthetic_keypoints(hand, q, "right")
    # The raw mapping follows the finger into the thumb (the avoidance, on by default, stops it
    # short: tests/test_collision_avoidance.py).
    raw = retarget.RetargetConfig(avoid_self_collision=False)
    retargeter = retarget.Retargeter(hand, raw)
    result = retargeter.retarget_sequence(keypoints)
    np.testing.assert_allclose(result.q[1, index], q[1, index], atol=0.1)  # temporal term
    np.testing.assert_array_equal(result.flags, [0, Flag.SELF_COLLISION, 0])
    assert result.residual.collisions[0] == result.residual.collisions[2] == 0
    assert result.residual.collisions[1] >= 1
    pairs = retargeter.collision.colliding(hand.model_configuration(result.q[1]))
    assert all("link_15.0" in a + b for a, b in pairs)  # index links against the thumb tip
    # Adjacent links are never checked; the check can be turned off.
    assert retargeter.collision.excluded["adjacent"] > 0
    off = retarget.RetargetConfig(
        feasibility=retarget.FeasibilityConfig(check_self_collision=False),
        avoid_self_collision=False,
    )
    unchecked = retarget.Retargeter(hand, off).retarget_sequence(keypoints)
    assert not unchecked.flags.any() and np.isnan(unchecked.residual.collisions).all()


def test_panda_srdf_pairs_are_excluded(panda):
    from retarget.collision import SelfCollision, find_srdf

    srdf = find_srdf(panda.description.urdf.resolve())
    assert srdf is not None and srdf.name == "panda.srdf"
    checker = SelfCollision(panda)
    assert checker.excluded["srdf"] > 0
    assert not checker.colliding(panda.model_configuration(panda.rest))
    # Folded: the hand pushed down onto the base (shoulder and elbow bent far), a pose the
    # Panda's own geometry forbids.
    folded = panda.rest.copy()
    folded[:7] = [0.0, 1.7, 0.0, -3.0, 0.0, 0.0, 0.0]
    pairs = checker.colliding(panda.model_configuration(folded))
    assert pairs, "a folded Panda must collide with itself"
