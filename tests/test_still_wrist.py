"""A still wrist opening and closing the hand (#20): a clip made from a shared one, on the Panda."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import pipeline
from pipeline.camera_geometry import rotation_angle_deg
from tests.media import (
    hand_closure,
    open_close_stretches,
    still_wrist_clip,
    turn_from_medoid_deg,
)


def test_a_still_wrist_opening_and_closing_the_hand_is_feasible_on_the_panda(
    robots_loaded, shared_data: Path, tmp_path: Path
) -> None:
    """The juggler's right hand catches and lets go; its stretches that keep their orientation
    (90% of frames within 30 deg of the median) made into a clip whose wrist stands still."""
    source = shared_data / "videos/juggle_small_hands.mp4"
    tracks = pipeline.extract_hands(source)
    hand = tracks.hands["right"]
    stretches = open_close_stretches(hand.world_keypoints, hand.present)
    still = [
        frames
        for frames in stretches
        if np.mean(turn_from_medoid_deg(hand.transform_wrist_to_camera[frames, :3, :3]) <= 30)
        >= 0.9
    ]
    assert len(still) >= 1  # measured: 2 of the hand's 4 stretches
    frames = max(still, key=len)
    clip = still_wrist_clip(
        source, tmp_path / "still", tracks.timestamps[frames], hand.image_keypoints[frames]
    )
    made = pipeline.extract_hands(clip)
    seen = made.hands["right"]
    present = seen.present
    assert present.sum() >= 0.9 * len(frames)
    # What the clip claims: the lifted wrist stays within 5 cm (measured 3.3 cm) while the hand
    # opens or closes (its closure spans 0.25 or more).
    wrist = seen.transform_wrist_to_camera[present, :3, 3]
    assert np.ptp(wrist, axis=0).max() < 0.05
    assert np.ptp(hand_closure(seen.world_keypoints[present])) >= 0.25
    done = pipeline.retarget_tracks(made, robots_loaded["panda"], side="right")
    # Measured: every frame feasible, by default (per frame 26 of 30).
    assert done.result.feasible[present].mean() >= 0.9


def test_the_clasped_hand_made_still_keeps_its_orientation_and_the_panda_follows_it(
    robots_loaded, shared_data: Path, armwrestling_24fps: pipeline.HandTracks, tmp_path: Path
) -> None:
    """The arm-wrestlers' clasped right hand (its one still stretch at 24 fps, 30 frames).

    On three of its nearly identical first frames PnP's mirror solution of the nearly flat hand
    fitted the image as well as the hand itself, and the lifted hand turned by 89 and 92 deg
    into and out of it (the landmarker's own hand by 12 deg); the Panda then followed 15 of the
    26 frames. The landmarker's view now decides such ties (:mod:`pipeline.hand_pnp`).
    """
    source = shared_data / "videos/armwrestling_lowres.mp4"
    tracks = armwrestling_24fps
    hand = tracks.hands["right"]
    still = [
        frames
        for frames in open_close_stretches(hand.world_keypoints, hand.present)
        if np.mean(turn_from_medoid_deg(hand.transform_wrist_to_camera[frames, :3, :3]) <= 30)
        >= 0.9
    ]
    assert [len(frames) for frames in still] == [30]
    clip = still_wrist_clip(
        source, tmp_path / "still", tracks.timestamps[still[0]], hand.image_keypoints[still[0]]
    )
    made = pipeline.extract_hands(clip)
    seen = made.hands["right"]
    assert seen.present.sum() >= 25  # measured 26
    rotation = seen.transform_wrist_to_camera[seen.present, :3, :3]
    turn = rotation_angle_deg(rotation[:-1], rotation[1:])
    # Measured over the first eight steps: 28, 13, 6, 23, 4, 4, 20, 22 deg (was 89 and 92 on
    # the fourth and seventh).
    assert turn[:8].max() < 45
    done = pipeline.retarget_tracks(made, robots_loaded["panda"], side="right")
    # Measured: 23 of the 26 frames with a hand feasible by default (15 before).
    assert done.result.feasible[seen.present].sum() >= 20
