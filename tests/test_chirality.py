"""The landmarker's mirrored hands found along a track and reflected through the palm (#23)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pipeline
from pipeline.chirality import CURL_FREE, finger_curl, mirrored_hands, reflect_fingers

SAMPLE = Path(__file__).parents[1] / "data/kettle_pour.tracks.parquet"


@pytest.fixture(scope="module")
def sample() -> pipeline.HandTracks:
    return pipeline.read_tracks(SAMPLE)


def _bones(points: np.ndarray) -> np.ndarray:
    """Every keypoint's distance to every other, (N, 21, 21)."""
    return np.linalg.norm(points[:, :, None] - points[:, None], axis=-1)


def test_reflection_through_the_palm_flips_the_curl_and_keeps_the_hand(sample) -> None:
    for side, hand in sample.hands.items():
        world = hand.world_keypoints[hand.present]
        reflected = reflect_fingers(world)
        np.testing.assert_allclose(reflect_fingers(reflected), world, atol=1e-12)
        # The palm plane (wrist, index MCP, little MCP) stays; every length stays.
        np.testing.assert_allclose(reflected[:, [0, 5, 17]], world[:, [0, 5, 17]], atol=1e-12)
        np.testing.assert_allclose(_bones(reflected), _bones(world), atol=1e-12)
        curl = finger_curl(world, side)
        np.testing.assert_allclose(finger_curl(reflected, side), -curl, atol=1e-12)
        # The sample's hands hold a mug and a kettle: fingers flexed towards the palm (none
        # behind it by more than the free margin; its lowest curl is -0.02).
        assert np.all(curl > -CURL_FREE)
        assert np.median(curl) > 0.15


def test_a_mirrored_stretch_is_found_and_nothing_else(sample) -> None:
    hand = sample.hands["left"]
    world = hand.world_keypoints[hand.present]
    assert not mirrored_hands(world, "left").any()
    # The landmarker's answer on 60 frames of 287, then on 10 more elsewhere, is the other hand.
    truth = np.zeros(len(world), dtype=bool)
    truth[100:160] = truth[200:210] = True
    given = world.copy()
    given[truth] = reflect_fingers(world[truth])
    found = mirrored_hands(given, "left")
    np.testing.assert_array_equal(found, truth)
    # Nearly flat hands in the stretch (curl under CURL_FREE, no anatomy to go by) are found by
    # continuity alone: the sample has such frames there.
    assert np.any(np.abs(finger_curl(given[truth], "left")) < CURL_FREE)
    # A gap cuts the continuity, but not the anatomy.
    starts = np.zeros(len(world), dtype=bool)
    starts[130] = True
    np.testing.assert_array_equal(mirrored_hands(given, "left", starts), truth)


def test_a_track_mostly_of_the_other_hand_is_left_as_it_is(sample) -> None:
    # Most frames of the other chirality: the track's side is in doubt (another person's hand),
    # not the landmarker's shapes.
    hand = sample.hands["right"]
    world = hand.world_keypoints[hand.present]
    given = world.copy()
    given[: len(world) * 2 // 3] = reflect_fingers(world[: len(world) * 2 // 3])
    assert not mirrored_hands(given, "right").any()
    assert mirrored_hands(given[len(world) // 2 :], "right").sum() > 0
    assert mirrored_hands(np.zeros((0, 21, 3)), "right").shape == (0,)
