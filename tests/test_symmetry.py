"""Symmetric end effectors (#20 item 1): a parallel gripper turned 180 deg grasps the same way."""

from __future__ import annotations

import dataclasses
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

import pipeline
import retarget
from retarget import Flag
from retarget.symmetry import nearest_turn, turned
from robots import RobotConfigError, Symmetry
from tests.conftest import SAMPLE_TRACKS
from tests.test_arm_ik import _arm_round_trip

OFF = dataclasses.replace(retarget.RetargetConfig(), use_symmetry=False)

PANDA_TOML = """
    name = "my_panda"
    kind = "arm+gripper"
    urdf = "panda_description/urdf/panda.urdf"
    urdf_package = "example-robot-data"
    ee_frame = "panda_hand_tcp"
    nominal_ee_position = [0.5, 0.0, 0.35]
    {symmetry}
    [transform_hand_to_ee]
    rpy = [0.0, 0.0, 0.0]
    [gripper]
    joint = "panda_finger_joint1"
    closed_position = 0.0
    open_position = 0.04
    [rest_pose]
    panda_joint2 = -0.785
    panda_joint4 = -2.356
    panda_joint6 = 1.571
    panda_joint7 = 0.785
"""


def _toml(tmp_path: Path, symmetry: str) -> Path:
    path = tmp_path / "robot.toml"
    path.write_text(textwrap.dedent(PANDA_TOML.format(symmetry=symmetry)))
    return path


def test_turned_twins_are_nearest_to_their_own_orientation() -> None:
    rng = np.random.default_rng(4)
    target = np.eye(4)
    target[:3, :3] = np.linalg.qr(rng.standard_normal((3, 3)))[0] * [1, 1, 1]
    if np.linalg.det(target[:3, :3]) < 0:
        target[:3, 0] *= -1
    target[:3, 3] = rng.uniform(-1, 1, 3)
    twin = turned(target, math.pi)
    np.testing.assert_allclose(twin[:3, 2], target[:3, 2], atol=1e-12)  # same approach axis
    np.testing.assert_allclose(twin[:3, 0], -target[:3, 0], atol=1e-12)
    assert nearest_turn(target, twin, Symmetry.TWO_FOLD) == pytest.approx(math.pi)
    assert nearest_turn(target, turned(target, 0.3), Symmetry.TWO_FOLD) == 0.0
    assert nearest_turn(target, turned(target, 0.7), Symmetry.CONTINUOUS) == pytest.approx(0.7)
    assert nearest_turn(target, twin, Symmetry.NONE) == 0.0


def test_a_target_and_its_turned_twin_give_the_same_residual(robots_loaded) -> None:
    robot = robots_loaded["panda"]
    q, ee, wrist, keypoints = _arm_round_trip(robot, seed=21, frames=20)
    rt = retarget.Retargeter(robot)
    targets = rt.targets(keypoints, wrist)
    twins = targets._replace(
        transform_ee_to_base=np.stack([turned(t, math.pi) for t in targets.transform_ee_to_base])
    )
    a, b = rt.evaluate(q, targets), rt.evaluate(q, twins)
    np.testing.assert_allclose(a.residual.orientation, b.residual.orientation, atol=1e-9)
    np.testing.assert_allclose(a.residual.position, b.residual.position, atol=1e-12)
    assert np.max(a.residual.orientation) < 1e-6  # q is the trajectory the targets came from
    # Without the symmetry the twin is half a turn away.
    off = retarget.Retargeter(robot, OFF).evaluate(q, twins)
    np.testing.assert_allclose(off.residual.orientation, math.pi, atol=1e-6)


def test_nearest_twin_alternating_is_solved_without_a_flip(robots_loaded) -> None:
    robot = robots_loaded["panda"]
    q, ee, wrist, keypoints = _arm_round_trip(robot, seed=8, frames=60)
    # The wrist's own orientation turns back and forth through 90 deg about the approach axis,
    # so the twin nearest to a fixed orientation alternates; the arm can follow either twin.
    angles = math.pi / 2 + 0.25 * np.sin(np.linspace(0, 6 * math.pi, 60))
    asked = np.stack([turned(t, a) for t, a in zip(ee, angles, strict=True)])
    result = retarget.Retargeter(robot).retarget_sequence(
        keypoints, asked @ robot.transform_hand_to_ee
    )
    turns = np.asarray(result.target_turn)
    assert len(set(turns.tolist())) == 1  # one stretch, one turn: no flip
    assert np.max(result.residual.orientation[1:]) < 1e-2
    assert np.max(result.residual.position[1:]) < 1e-3
    steps = np.abs(np.diff(result.q[1:], axis=0)).max()
    assert steps < 0.3  # no half-turn of a joint between neighbouring frames


def test_symmetry_none_keeps_the_single_orientation_exactly(robots_loaded, tmp_path) -> None:
    tracks = pipeline.read_tracks(SAMPLE_TRACKS)
    plain = retarget.load_robot(_toml(tmp_path, 'symmetry = "none"'))
    assert plain.description.symmetry is Symmetry.NONE
    declared = pipeline.retarget_tracks(tracks, plain).result
    off = pipeline.retarget_tracks(tracks, plain, config=OFF).result
    np.testing.assert_array_equal(declared.q, off.q)
    np.testing.assert_array_equal(declared.flags, off.flags)
    assert not np.nanmax(np.asarray(declared.target_turn))  # never turned
    # The default of a user file is "none" too; a 2-fold one may turn.
    default = retarget.load_robot(_toml(tmp_path, ""))
    assert default.description.symmetry is Symmetry.NONE
    two = retarget.load_robot(_toml(tmp_path, 'symmetry = "2-fold"'))
    assert two.description.symmetry is Symmetry.TWO_FOLD


def test_bad_symmetry_is_refused_with_the_choices(tmp_path) -> None:
    with pytest.raises(RobotConfigError, match=r"unknown symmetry 'three'.*'none', '2-fold'"):
        retarget.load_robot(_toml(tmp_path, 'symmetry = "three"'))
    from robots import get_description

    allegro = get_description("allegro_right")
    with pytest.raises(RobotConfigError, match="a hand has none"):
        dataclasses.replace(allegro, symmetry=Symmetry.TWO_FOLD)


def test_the_gripper_symmetry_takes_joint_limits_out_of_the_real_sample(robots_loaded) -> None:
    robot = robots_loaded["panda"]
    assert robot.description.symmetry is Symmetry.TWO_FOLD
    tracks = pipeline.read_tracks(SAMPLE_TRACKS)
    before = pipeline.retarget_tracks(tracks, robot, config=OFF).result
    after = pipeline.retarget_tracks(tracks, robot).result
    present = ~(np.asarray(after.flags) & Flag.NO_HAND).astype(bool)
    limit_before = int(np.count_nonzero(np.asarray(before.flags)[present] & Flag.JOINT_LIMIT))
    limit_after = int(np.count_nonzero(np.asarray(after.flags)[present] & Flag.JOINT_LIMIT))
    assert limit_after <= limit_before
    assert after.feasible[present].mean() >= before.feasible[present].mean()
    # The residual never gets worse: the nearest twin is at most the asked orientation.
    worse = after.residual.orientation[present] > before.residual.orientation[present] + 1e-3
    assert not worse.any()
    turns = np.asarray(after.target_turn)[present]
    assert set(np.unique(turns).tolist()) <= {0.0, math.pi}
