import numpy as np
import pytest

import retarget
from retarget import InvalidInputError
from tests.synthetic import apply_transform, random_rigid, template_keypoints


@pytest.mark.parametrize("side", ["right", "left"])
def test_template_frame_is_identity(side):
    frame = retarget.hand_frame_from_keypoints(template_keypoints(side), side)[0]
    np.testing.assert_allclose(frame, np.eye(4), atol=1e-12)


@pytest.mark.parametrize("side", ["right", "left"])
def test_frame_follows_any_rigid_motion(side):
    rng = np.random.default_rng(3)
    points = template_keypoints(side)
    for _ in range(20):
        motion = random_rigid(rng)
        frame = retarget.hand_frame_from_keypoints(apply_transform(motion, points), side)[0]
        np.testing.assert_allclose(frame, motion, atol=1e-12)
        in_hand = retarget.keypoints_in_hand_frame(apply_transform(motion, points), side)[0]
        np.testing.assert_allclose(in_hand, points, atol=1e-12)


def test_anatomy_of_axes():
    right = template_keypoints("right")
    # Right hand: the little finger lies on +y, the thumb on -y; left hand mirrors.
    assert right[17, 1] > 0 > right[4, 1]
    left = template_keypoints("left")
    frame = retarget.hand_frame_from_keypoints(left, "left")[0]
    assert frame[:3, 2] @ np.array([0, 0, 1]) == pytest.approx(1.0)  # z palmar for both hands
    # Reading a right hand as a left one flips the palm normal: the side matters.
    wrong = retarget.hand_frame_from_keypoints(right, "left")[0]
    assert wrong[:3, 2] @ np.array([0, 0, 1]) == pytest.approx(-1.0)


def test_bad_keypoints_messages():
    with pytest.raises(InvalidInputError, match=r"shape \(T, 21, 3\).*got \(5, 20, 3\)"):
        retarget.hand_frame_from_keypoints(np.zeros((5, 20, 3)), "right")
    points = np.repeat(template_keypoints("right")[None], 4, axis=0)
    points[2, 7] = np.nan
    with pytest.raises(InvalidInputError, match=r"NaN/inf in frames \[2\]"):
        retarget.hand_frame_from_keypoints(points, "right")
    with pytest.raises(InvalidInputError, match="degenerate"):
        retarget.hand_frame_from_keypoints(np.zeros((1, 21, 3)), "right")
    with pytest.raises(InvalidInputError, match="valid choices: 'right', 'left'"):
        retarget.hand_frame_from_keypoints(points[:1], "both")  # type: ignore[arg-type]
