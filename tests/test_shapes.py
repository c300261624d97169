"""The hand solver's compiled model (retarget.shapes, retarget._distances): kinematics against
Pinocchio, collision shapes against coal's exact distances, Jacobians against finite
differences, and what the avoidance does with a pinch."""

import numpy as np
import pinocchio as pin
import pytest

import retarget
from retarget.collision import CollisionAvoidance, SelfCollision
from retarget.exceptions import InvalidInputError
from retarget.shapes import Chain, HandShapes
from retarget.solvers import locked_model


def _hand_problem(robot: retarget.Robot) -> tuple[HandShapes, CollisionAvoidance]:
    """The compiled shapes and coal's exact reference, on the same reduced model and pairs."""
    checker = SelfCollision(robot)
    arguments = (
        checker,
        robot.hand_joints,
        robot.description.ee_frame,
        robot.model_configuration(robot.rest),
    )
    return HandShapes(*arguments), CollisionAvoidance(*arguments)


@pytest.mark.parametrize("name", ["allegro_left", "allegro_right", "ur5_allegro"])
def test_chain_places_every_joint_as_pinocchio_does(robots_loaded, name):
    robot = robots_loaded[name]
    model = locked_model(robot, robot.hand_joints)
    chain, data = Chain.from_model(model), model.createData()
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.uniform(model.lowerPositionLimit - 0.5, model.upperPositionLimit + 0.5)
        pin.forwardKinematics(model, data, q)
        rotation, origin, _ = chain.poses(q)
        for j in range(model.njoints):
            np.testing.assert_allclose(rotation[j], data.oMi[j].rotation, atol=1e-12)
            np.testing.assert_allclose(origin[j], data.oMi[j].translation, atol=1e-12)


def test_a_joint_the_chain_cannot_take_is_refused():
    model = pin.Model()
    model.addJoint(0, pin.JointModelSpherical(), pin.SE3.Identity(), "ball")
    with pytest.raises(InvalidInputError, match="Spherical.*revolute"):
        Chain.from_model(model)


@pytest.mark.parametrize("name", ["allegro_right", "ur5_allegro"])
def test_shapes_are_never_closer_than_coal(robots_loaded, name):
    """Random configurations (limits widened, so fingers cross deep): every pair's distance is
    at most coal's exact one (1e-9 m: coal's GJK tolerance); spheres, a sphere against a box and
    overlapping boxes are exact (coal's EPA stops at 1e-6 m of depth); boxes apart are a lower
    bound that is still tight where it matters, within 1 cm. A mesh (the UR5 wrist link the
    Allegro is mounted on) is held in a box: a lower bound too."""
    robot = robots_loaded[name]
    shapes, exact = _hand_problem(robot)
    assert shapes.pairs == exact.pairs and len(shapes.pairs) > 150
    boxes = np.array([[shapes.kinds[a] == shapes.kinds[b] == "box" for a, b in shapes.pair_index]])
    held = np.array([[shapes.held[a] or shapes.held[b] for a, b in shapes.pair_index]])
    every = np.arange(len(shapes.pairs))
    rng = np.random.default_rng(1)
    lower, upper = shapes.model.lowerPositionLimit, shapes.model.upperPositionLimit
    ours, theirs, screened = [], [], []
    for _ in range(150):
        q = rng.uniform(lower - 0.3, upper + 0.3)
        ours.append(shapes.distances(q)[0])
        theirs.append(exact.distances(q, every, below=-np.inf)[0])
        screened.append(shapes.in_contact(q))  # bounding volumes first, as the flag check
    ours_all, coal_all = np.concatenate(ours), np.concatenate(theirs)
    box_box = np.repeat(boxes, len(ours), axis=0).ravel()
    approximated = np.repeat(held, len(ours), axis=0).ravel()
    assert (ours_all <= coal_all + 1e-9).all()
    exact_kind = ~approximated & (~box_box | (coal_all < 0))
    np.testing.assert_allclose(ours_all[exact_kind], coal_all[exact_kind], atol=1e-6)
    overlapping = int((coal_all < 0).sum())
    near = box_box & ~approximated & (coal_all >= 0) & (coal_all < 0.01)
    assert overlapping > 200 and near.sum() > 200  # both cases seen often
    assert np.median(coal_all[near] - ours_all[near]) < 1e-4  # most near box pairs: exact
    # Same verdict on contact as coal, configuration by configuration, where no part is held
    # in a box (the UR5's wrist mesh, fixed to the palm, is).
    if not any(shapes.held):
        assert [(o < 0).any() for o in ours] == [(t < 0).any() for t in theirs]
    assert screened == [bool((o < 0).any()) for o in ours]
    assert 10 < sum(screened) < len(screened)  # both verdicts seen


@pytest.mark.parametrize("name", ["allegro_left", "ur5_allegro"])
def test_distance_jacobian_matches_finite_differences(robots_loaded, name):
    """Pairs within 1 cm, separated and overlapping. The largest-gap axis of two boxes can
    switch between the two sides of a difference (the distance has a kink there); those rows
    are recognised by their one-sided slopes disagreeing, and are few."""
    robot = robots_loaded[name]
    shapes, _ = _hand_problem(robot)
    rng = np.random.default_rng(2)
    lower, upper = shapes.model.lowerPositionLimit, shapes.model.upperPositionLimit
    h = 1e-7
    checked, kinks, overlapping = 0, 0, 0
    for _ in range(60):
        q = rng.uniform(lower - 0.2, upper + 0.2)
        distance, jacobian = shapes.distances(q)
        rows = np.flatnonzero(distance < 0.01)
        for i in range(len(q)):
            step = np.zeros_like(q)
            step[i] = h
            ahead = shapes.distances(q + step)[0][rows]
            behind = shapes.distances(q - step)[0][rows]
            forward, backward = (ahead - distance[rows]) / h, (distance[rows] - behind) / h
            smooth = np.abs(forward - backward) < 1e-4
            np.testing.assert_allclose(jacobian[rows[smooth], i], forward[smooth], atol=2e-5)
            kinks += int((~smooth).sum())
            checked += len(rows)
        overlapping += int((distance[rows] < 0).sum())
    assert checked > 3000 and overlapping > 50
    assert kinks < 0.01 * checked


def test_a_pinch_stays_a_pinch(robots_loaded):
    """A pinch: the raw mapping (no avoidance), pulled to one point between the thumb and index
    tips (3 cm in front of the palm), presses the two tip spheres into each other; its vectors
    are the targets of a pinch the hand can make. The default solver ends with the two tips
    within the avoidance margin of each other (1 mm of slack), not touching, no part of the
    hand in contact (coal)."""
    robot = robots_loaded["allegro_right"]
    raw = retarget.Retargeter(robot, retarget.RetargetConfig(avoid_self_collision=False))
    rt = retarget.Retargeter(robot)
    solver, raw_solver = rt.solvers.hand.vector, raw.solvers.hand.vector
    shapes = solver.shapes
    columns = robot.joint_indices(robot.hand_joints)
    q_open = robot.rest[columns]
    keypoints = [f.keypoint for f in robot.description.fingertips]
    thumb, index = keypoints.index(4) + 1, keypoints.index(8) + 1
    tips = next(
        k
        for k, pair in enumerate(shapes.pairs)
        if set(pair) == {"link_3.0_tip_0", "link_15.0_tip_0"}
    )
    # The tips at rest, in the palm frame; both pulled to one point.
    points = np.zeros((len(keypoints) + 1, 3))
    for k, (a, b) in enumerate(solver.pairs):
        if a == 0:
            points[b] = solver.vectors(q_open)[k]
    points[thumb] = points[index] = 0.5 * (points[thumb] + points[index]) + [0.08, 0.0, -0.05]
    pulled = np.array([points[b] - points[a] for a, b in solver.pairs])
    q_raw = q_open
    for _ in range(30):
        q_raw = raw_solver.solve(pulled, q_raw).q
    assert shapes.distances(q_raw)[0][tips] < -0.005  # the raw pinch presses the tips together
    pinch = raw_solver.vectors(q_raw)
    q = q_open
    for _ in range(10):  # held for a few frames, as a video would
        q = solver.solve(pinch, q).q
    margin = solver.config.collision_margin
    assert 0.0 <= shapes.distances(q)[0][tips] <= margin + 0.001
    assert shapes.distances(q_open)[0][tips] > 0.05  # far apart where the solve started
    state = robot.rest.copy()
    state[columns] = q
    assert not rt.solvers.collision.colliding(robot.model_configuration(state))
