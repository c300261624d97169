"""Self-collision avoidance in the hand solver (retarget.collision.CollisionAvoidance)."""

import dataclasses

import numpy as np
import pytest

import pipeline
import retarget
from retarget import Flag
from retarget.collision import CollisionAvoidance, SelfCollision
from tests.conftest import SAMPLE_TRACKS
from tests.synthetic import FROM_WRIST, smooth_trajectory, synthetic_keypoints

RAW = retarget.RetargetConfig(avoid_self_collision=False)
RAW_FROM_WRIST = dataclasses.replace(FROM_WRIST, avoid_self_collision=False)


def _avoidance(robot: retarget.Robot) -> CollisionAvoidance:
    return CollisionAvoidance(
        SelfCollision(robot),
        robot.hand_joints,
        robot.description.ee_frame,
        robot.model_configuration(robot.rest),
    )


@pytest.mark.parametrize("name", ["allegro_right", "ur5_allegro"])
def test_distance_jacobian_matches_finite_differences(robots_loaded, name):
    robot = robots_loaded[name]
    avoidance = _avoidance(robot)
    rng = np.random.default_rng(0)
    lower, upper = avoidance.model.lowerPositionLimit, avoidance.model.upperPositionLimit
    checked, overlapping = 0, 0
    for _ in range(60):
        q = rng.uniform(lower, upper)
        pairs = avoidance.near(q, 0.01)[0]
        if not len(pairs):
            continue
        distance, jacobian = avoidance.distances(q, pairs)
        numeric = np.zeros_like(jacobian)
        h = 1e-6
        for i in range(len(q)):
            step = np.zeros_like(q)
            step[i] = h
            numeric[:, i] = (
                avoidance.distances(q + step, pairs)[0] - avoidance.distances(q - step, pairs)[0]
            ) / (2 * h)
        # GJK/EPA stop at 1e-9 m, so the central difference carries about 1e-3 of noise.
        np.testing.assert_allclose(jacobian, numeric, atol=3e-3)
        checked += len(pairs)
        overlapping += int((distance < 0).sum())
    assert checked > 100 and overlapping > 20  # separated and overlapping pairs both checked


def test_near_finds_exactly_the_pairs_within_reach(robots_loaded):
    robot = robots_loaded["allegro_left"]
    avoidance = _avoidance(robot)
    every = np.arange(len(avoidance.pairs))
    rng = np.random.default_rng(1)
    lower, upper = avoidance.model.lowerPositionLimit, avoidance.model.upperPositionLimit
    found = 0
    for _ in range(40):
        q = rng.uniform(lower, upper)
        every_distance = avoidance.distances(q, every, below=-np.inf)[0]
        truth = np.flatnonzero(every_distance < 0.008)
        near, distance = avoidance.near(q, 0.008)
        np.testing.assert_array_equal(near, truth)
        np.testing.assert_allclose(distance, every_distance[near], atol=1e-12)
        found += len(near)
    assert found > 40


def test_only_pairs_moved_by_the_hand_alone_are_avoided(robots_loaded):
    """On the UR5 + Allegro, a pair with an arm link would be placed at the arm's rest pose in
    the hand solver's model: such pairs are left to the flag check on the whole robot."""
    robot = robots_loaded["ur5_allegro"]
    checker = SelfCollision(robot)
    avoidance = _avoidance(robot)
    model = checker.model
    hand = {model.getJointId(n) for n in robot.hand_joints}
    palm = model.frames[model.getFrameId("palm_link")].parentJoint
    objects = {o.name: o.parentJoint for o in checker.geometry.geometryObjects}
    for first, second in avoidance.pairs:
        joints = {objects[first], objects[second]}
        assert joints <= hand | {palm} and joints & hand, (first, second)
    with_arm = [
        (a, b)
        for a, b in checker.pairs
        if not {objects[a], objects[b]} <= hand | {palm} and {objects[a], objects[b]} & hand
    ]
    assert with_arm and not set(with_arm) & set(avoidance.pairs)


def test_finger_stops_short_of_the_thumb(robots_loaded):
    """The index flexed into the opposed thumb (the flag test's known collision): with the
    avoidance the solution keeps the margin instead, and misses the target a little."""
    hand = robots_loaded["allegro_right"]
    q = np.tile((hand.lower + hand.upper) / 2, (3, 1))
    index = hand.joint_names.index("joint_1.0")
    q[1, index] = hand.upper[index] - 0.05
    keypoints = synthetic_keypoints(hand, q, "right")
    raw = retarget.Retargeter(hand, RAW_FROM_WRIST).retarget_sequence(keypoints)
    avoided = retarget.Retargeter(hand, FROM_WRIST).retarget_sequence(keypoints)
    assert raw.flags[1] == Flag.SELF_COLLISION
    np.testing.assert_array_equal(avoided.flags, [0, 0, 0])
    np.testing.assert_array_equal(avoided.residual.collisions, [0, 0, 0])
    avoidance = _avoidance(hand)
    columns = hand.joint_indices(hand.hand_joints)
    margin = retarget.VectorConfig().collision_margin
    assert avoidance.closest(raw.q[1, columns]) < -0.005  # the raw finger is deep in the thumb
    assert avoidance.closest(avoided.q[1, columns]) > 0.5 * margin
    # The raw solve meets the target; the avoided one gives up some of it to keep clear.
    assert raw.residual.fingertip[1] < 1e-3 < avoided.residual.fingertip[1]
    # Frames 0 and 2 are reachable and clear: both solvers match them.
    np.testing.assert_allclose(avoided.residual.fingertip[[0, 2]], 0.0, atol=2e-3)


def test_motion_clear_of_contact_is_reproduced(robots_loaded):
    """Avoidance costs nothing where the true hand never comes near itself: a random smooth
    trajectory, shrunk towards the rest pose (1 cm clear) until every frame keeps 1 mm more
    than the avoidance margin between all parts, is reproduced as closely as without it."""
    hand = robots_loaded["allegro_left"]
    avoidance = _avoidance(hand)
    columns = hand.joint_indices(hand.hand_joints)
    rng = np.random.default_rng(4)
    clear = retarget.VectorConfig().collision_margin + 0.001
    full = smooth_trajectory(rng, hand.lower, hand.upper, 90, margin=0.1)
    for scale in (1.0, 0.8, 0.6, 0.5, 0.4, 0.3):
        q = hand.rest + scale * (full - hand.rest)
        if min(avoidance.closest(qt[columns]) for qt in q) > clear:
            break
    else:
        pytest.fail("no scale of the trajectory keeps clear of contact")
    assert np.ptp(q[:, columns], axis=0).min() > 0.15  # every joint still moves 9 deg or more
    keypoints = synthetic_keypoints(hand, q, "left")
    avoided = retarget.Retargeter(hand, FROM_WRIST).retarget_sequence(keypoints)
    raw = retarget.Retargeter(hand, RAW_FROM_WRIST).retarget_sequence(keypoints)
    assert not avoided.flags[1:].any()
    tips_avoided = avoided.residual.fingertip[1:]
    assert np.percentile(tips_avoided, 95) < 2e-3
    np.testing.assert_allclose(tips_avoided, raw.residual.fingertip[1:], atol=5e-4)


@pytest.mark.parametrize(("name", "side"), [("allegro_left", "left"), ("allegro_right", "right")])
def test_real_fingers_are_kept_apart(robots_loaded, name, side):
    """The bundled real kettle clip: the raw mapping drives neighbouring Allegro fingers about
    2 cm through each other (median; 1.9 cm on the right hand since the fingers' targets start
    at their roots, ``RetargetConfig.finger_roots``) on almost every frame; with the avoidance
    no frame collides and the parts stay apart, at the price of a larger fingertip error
    (targets it cannot reach are missed and flagged, not faked)."""
    robot = robots_loaded[name]
    hand = pipeline.read_tracks(SAMPLE_TRACKS).hands[side]
    present = hand.present
    kwargs = {"present": present, "side": side}
    raw = retarget.Retargeter(robot, RAW).retarget_sequence(hand.world_keypoints, **kwargs)
    avoided = retarget.Retargeter(robot).retarget_sequence(hand.world_keypoints, **kwargs)

    def colliding(result: retarget.RetargetResult) -> float:
        return float(((result.flags & Flag.SELF_COLLISION) != 0)[present].mean())

    assert colliding(raw) > 0.9
    assert colliding(avoided) == 0.0
    avoidance = _avoidance(robot)
    columns = robot.joint_indices(robot.hand_joints)
    closest = np.array([avoidance.closest(q[columns]) for q in avoided.q[present]])
    assert closest.min() > 0.0
    raw_closest = np.array([avoidance.closest(q[columns]) for q in raw.q[present]])
    assert np.median(raw_closest) < -0.015
    tip_raw = np.nanmedian(raw.residual.fingertip)
    tip_avoided = np.nanmedian(avoided.residual.fingertip)
    assert tip_raw < tip_avoided < 0.06
    assert avoided.feasible.sum() >= raw.feasible.sum()


def test_hard_pulled_thumb_is_kept_out_of_the_palm(robots_loaded, shared_data, tmp_path):
    """The shared kettle video's left hand (the mug grasp): its targets pull the Allegro thumb
    into the palm hard enough to balance the default penalty inside the contact (18 frames in
    contact when the weight stayed at 100, measured); the solver raises the weight on such
    frames until the parts are apart."""
    done = pipeline.extract_input(
        shared_data / "videos" / "kettle_pour_third_person.mp4",
        extract=pipeline.ExtractConfig(num_hands=2),
        video=None,
        temp_dir=tmp_path,
    )
    robot = robots_loaded["allegro_left"]
    result = pipeline.retarget_tracks(done.tracks, robot, side="left").result
    present = (result.flags & Flag.NO_HAND) == 0
    assert present.sum() > 250
    assert not ((result.flags & Flag.SELF_COLLISION) != 0).any()
    avoidance = _avoidance(robot)
    columns = robot.joint_indices(robot.hand_joints)
    assert min(avoidance.closest(q[columns]) for q in result.q[present]) > 0.0


def test_goal_stops_the_solve_once_the_targets_are_met_clear_of_contact(robots_loaded):
    """The re-solve without joint limits only decides JOINT_LIMIT against UNREACHABLE, so it
    stops once the fingertip goal is met with no part in contact. Stopping adds exits and
    nothing else: a goal solve is the full solve cut short, never longer. Targets: the bundled
    real clip's left hand (mostly out of reach) and poses past the joint limits (reachable
    once the limits are dropped), each solved from where the limited solver ends."""
    robot = robots_loaded["allegro_left"]
    rt = retarget.Retargeter(robot)
    limited, free = (
        rt.solvers.hand.vector,
        rt.solvers.hand.free,
    )  # the free solver, as the flag step runs it
    hand = pipeline.read_tracks(SAMPLE_TRACKS).hands["left"]
    real = rt.target_vectors(hand.world_keypoints[hand.present], "left")[::4]
    rng = np.random.default_rng(3)
    span = limited.upper - limited.lower
    beyond = []
    while len(beyond) < 30:
        q_true = rng.uniform(limited.lower - 0.15 * span, limited.upper + 0.15 * span)
        if not free.in_contact(q_true) and not limited.in_contact(q_true):
            beyond.append(free.vectors(q_true))
    goal = 0.01
    q = robot.rest[robot.joint_indices(robot.hand_joints)]
    stopped, met = 0, 0
    for target in [*real, *beyond]:
        q = limited.solve(target, q).q
        full, early = free.solve(target, q), free.solve(target, q, goal=goal)
        assert early.iterations <= full.iterations
        error = free.fingertip_error(early.vectors, target)
        np.testing.assert_allclose(
            error, np.linalg.norm(early.vectors[:4] - target[:4], axis=-1).mean(), atol=1e-12
        )
        assert early.goal_met == (error <= goal and not free.in_contact(early.q))
        assert not full.goal_met  # no goal given
        if early.iterations < full.iterations:
            stopped += 1
            assert error <= goal
            assert not free.in_contact(early.q)
        else:
            # The contact checks between steps leave coal's last bits (1e-14 rad) changed.
            np.testing.assert_allclose(early.q, full.q, rtol=0, atol=1e-9)
        if free.fingertip_error(full.vectors, target) <= goal and not free.in_contact(full.q):
            met += 1
            assert error <= goal  # the full solve met the goal, so the goal solve stopped there
    assert stopped >= 10 and met >= 10
