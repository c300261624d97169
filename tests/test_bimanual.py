"""Bimanual robots: two arms, one per hand, in one shared base frame."""

import numpy as np
import pytest

import retarget
import robots
from retarget import Flag, InvalidInputError
from tests.synthetic import synthetic_keypoints


@pytest.fixture(scope="module")
def pair() -> retarget.BimanualRobot:
    return retarget.load_bimanual("bimanual_panda")


def _arm_motion(offset: float, frames: int) -> np.ndarray:
    q = np.tile([0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8, 0.02], (frames, 1))
    q[:, 0] = np.linspace(-0.25, 0.25, frames) + offset
    q[:, 3] += np.linspace(0.0, 0.4, frames) * offset
    return q


def _targets(pair, side, q):
    """Keypoints and hand poses in the shared base frame whose answer is the arm at ``q``."""
    arm = pair.arm(side)
    ee = np.stack([arm.frame_placements(qt, (arm.description.ee_frame,))[0] for qt in q])
    in_arm_base = ee @ arm.transform_hand_to_ee
    return synthetic_keypoints(arm, q, side), pair.transform_arm_base_to_base(side) @ in_arm_base


def test_registry_entry_and_joint_columns(pair):
    assert "bimanual_panda" in robots.bimanual_names()
    assert pair.nq == 2 * pair.left.nq == 16
    assert pair.joint_names[0] == "left.panda_joint1"
    assert pair.joint_names[8] == "right.panda_joint1"
    assert pair.columns("right") == slice(8, None)
    # The arms stand 0.6 m apart along y; each nominal point 0.5 m ahead of its own base.
    np.testing.assert_allclose(pair.nominal_ee_position("left"), [0.5, 0.3, 0.35])
    np.testing.assert_allclose(pair.nominal_ee_position("right"), [0.5, -0.3, 0.35])
    with pytest.raises(robots.RobotNotFound, match="is a bimanual robot"):
        retarget.load_robot("bimanual_panda")
    with pytest.raises(robots.RobotNotFound, match="valid choices: bimanual_panda"):
        retarget.load_bimanual("panda")


def test_round_trip_each_hand_drives_its_own_arm(pair):
    frames = 12
    truth = {"left": _arm_motion(0.3, frames), "right": _arm_motion(-0.3, frames)}
    keypoints, wrists = {}, {}
    for side in ("left", "right"):
        keypoints[side], wrists[side] = _targets(pair, side, truth[side])
    present = {"left": np.ones(frames, bool), "right": np.ones(frames, bool)}
    present["right"][5] = False
    keypoints["right"][5] = np.nan
    result = retarget.BimanualRetargeter(pair).retarget_sequence(
        keypoints, wrists, present=present, timestamps=np.arange(frames) / 30.0
    )
    assert result.q.shape == (frames, 16) and result.joint_names == pair.joint_names
    for side in ("left", "right"):
        arm = pair.arm(side)
        mine = result.q[:, pair.columns(side)]
        ok = present[side]
        reached = np.stack([arm.frame_placements(q, (arm.description.ee_frame,))[0] for q in mine])
        wanted = np.linalg.inv(pair.transform_arm_base_to_base(side)) @ wrists[side]
        target = wanted @ np.linalg.inv(arm.transform_hand_to_ee)
        error = np.linalg.norm(reached[ok, :3, 3] - target[ok, :3, 3], axis=-1)
        assert error.max() < 1e-4, error.max()  # [m]
    # Frame 5 lacks the right hand: the right arm holds its joints, and the frame is flagged.
    np.testing.assert_array_equal(result.q[5, 8:], result.q[4, 8:])
    assert result.flags[5] & Flag.NO_HAND and not result.feasible[5]
    assert (result.flags == (result.left.flags | result.right.flags)).all()
    assert result.feasible[[0, 1, 2, 3, 4, 6]].all()


def test_bad_input_names_the_problem(pair):
    keypoints, wrist = _targets(pair, "left", _arm_motion(0.0, 3))
    bimanual = retarget.BimanualRetargeter(pair)
    with pytest.raises(InvalidInputError, match="exactly the keys 'left' and 'right'"):
        bimanual.retarget_sequence({"left": keypoints}, {"left": wrist})
    with pytest.raises(InvalidInputError, match="different frame counts"):
        bimanual.retarget_sequence(
            {"left": keypoints, "right": keypoints[:2]}, {"left": wrist, "right": wrist[:2]}
        )
