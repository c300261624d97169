"""Hand identity, gap filling and smoothing, on constructed cases with known answers."""

from pathlib import Path

import numpy as np
import pytest

from pipeline import hand_identity
from pipeline.decoding import folder_timestamps

RNG_SEED = 7


def _hand(center: tuple[float, float], size: float = 120.0) -> np.ndarray:
    """A hand-like set of 21 image points spread over a box of ``size`` px."""
    grid = np.linspace(-0.5, 0.5, 21)
    return np.column_stack([center[0] + size * grid, center[1] + size * np.sin(4 * grid) / 2])


def _detection(frame, center, right, score=0.99):
    return hand_identity.Detection(
        frame=frame,
        probability_right=score if right else 1 - score,
        score=score,
        image_keypoints=_hand(center),
        world_keypoints=np.zeros((21, 3)),
    )


def test_crossing_hands_with_flickering_labels_keep_identity():
    # Two hands cross paths; the detector calls each the wrong side in 30% of frames with a
    # confident 0.99, and the right hand drops out for 10 frames.
    rng = np.random.default_rng(RNG_SEED)
    frames = 120
    timestamps = np.arange(frames) / 30.0
    detections = []
    for t in range(frames):
        right_x = 300 + 6 * t  # moves right, crosses the left hand near t = 50
        left_x = 900 - 6 * t
        found = []
        if not 70 <= t < 80:
            found.append(_detection(t, (right_x, 300), right=rng.random() > 0.3))
        found.append(_detection(t, (left_x, 360), right=rng.random() < 0.3))
        rng.shuffle(found)
        detections.append(found)
    tracklets = hand_identity.link_tracklets(detections, timestamps, gate=0.6, max_gap_s=0.5)
    sides, extra = hand_identity.assign_sides(tracklets, one_person=True)
    assert extra == []
    for side, direction in (("right", 1), ("left", -1)):
        xs = np.array([d.image_keypoints[10, 0] for t in sides[side] for d in t])
        frames_seen = np.array([d.frame for t in sides[side] for d in t])
        order = np.argsort(frames_seen)
        # Every frame of the track is the same physical hand: monotone motion, no swap.
        assert np.all(direction * np.diff(xs[order]) > 0)
    assert len([d for t in sides["right"] for d in t]) == frames - 10
    assert len([d for t in sides["left"] for d in t]) == frames


def test_a_stretch_with_both_labels_wrong_follows_the_hands_positions():
    # Frames 0-19: both hands seen, both labels wrong (as at the start of the cups clip);
    # frames 20-29: neither is detected (longer than the linking gap, so new tracklets start);
    # frames 30-89: both seen, labels right and more numerous. Hands stay where they are.
    timestamps = np.arange(90) / 30.0
    detections = []
    for t in range(90):
        if 20 <= t < 30:
            detections.append([])
            continue
        wrong = t < 20
        detections.append(
            [
                _detection(t, (300, 300), right=not wrong, score=0.9),  # the right hand
                _detection(t, (900, 300), right=wrong, score=0.9),  # the left hand
            ]
        )
    tracklets = hand_identity.link_tracklets(detections, timestamps, gate=0.6, max_gap_s=0.2)
    assert len(tracklets) == 4
    sides, extra = hand_identity.assign_sides(tracklets, one_person=True)
    assert extra == []
    for side, x in (("right", 300.0), ("left", 900.0)):
        frames = [d.frame for t in sides[side] for d in t]
        assert len(frames) == 80
        assert {d.image_keypoints[10, 0] for t in sides[side] for d in t} == {x}
    # Without neighbours of both sides to compare with, the labels decide (no guessing).
    early = hand_identity.link_tracklets(detections[:20], timestamps[:20], gate=0.6, max_gap_s=0.2)
    sides, _ = hand_identity.assign_sides(early, one_person=True)
    assert sides["right"][0][0].image_keypoints[10, 0] == 900.0


def test_positions_do_not_overrule_a_long_confidently_named_track():
    # One hand, named right with 0.99 in frames 0-59 (A) and 90-99 (D); between them, after a
    # gap longer than the linking gap, the same hand named left with 0.7 (B, frames 62-75),
    # while another hand far away is named left too for two frames (C, 66-67), so one person's
    # two hands put C on the right. B continues A and D in position, C does not: positions
    # alone would turn A and D left. Their labels (60 and 10 frames at 0.99) outweigh B's.
    # The same layout as arm-wrestling_lowres.mp4 at 24 fps (167 frames named right, 179 of
    # 189 once turned left).
    timestamps = np.arange(100) / 30.0
    detections: list[list[hand_identity.Detection]] = [[] for _ in range(100)]
    for t in [*range(60), *range(90, 100)]:
        detections[t].append(_detection(t, (300, 300), right=True, score=0.99))
    for t in range(62, 76):
        detections[t].append(_detection(t, (300, 300), right=False, score=0.7))
    for t in (66, 67):
        detections[t].append(_detection(t, (900, 520), right=False, score=0.9))
    tracklets = hand_identity.link_tracklets(detections, timestamps, gate=0.6, max_gap_s=0.05)
    assert len(tracklets) == 4
    sides, extra = hand_identity.assign_sides(tracklets, one_person=True)
    assert extra == []
    right = sorted(d.frame for t in sides["right"] for d in t)
    assert set(range(60)) | set(range(90, 100)) <= set(right)
    assert sorted(d.frame for t in sides["left"] for d in t) == list(range(62, 76))


def test_arm_wrestling_at_24_fps_keeps_the_right_hand_right(armwrestling_24fps) -> None:
    """Real footage: the clasped right hands of two people, resampled to 24 fps (a dataset's
    default rate for mixed inputs). The hand the detector names right on most frames stays the
    right track (it was turned left by its neighbours' positions: 195 frames)."""
    right, left = armwrestling_24fps.hands["right"], armwrestling_24fps.hands["left"]
    detected = right.present & ~right.interpolated
    # Measured: right 179 detected frames, 175 named right by the detector; left 16 frames.
    assert detected.sum() >= 170
    assert right.label_agrees[detected].mean() > 0.9
    assert left.present.sum() <= 20


def test_one_person_resolves_two_same_labels_but_a_still_image_keeps_them():
    # Both hands labelled Left in every frame; the first is more certain.
    timestamps = np.arange(5) / 30.0
    detections = [
        [_detection(t, (200, 300), right=False, score=0.99), _detection(t, (900, 300), False, 0.8)]
        for t in range(5)
    ]
    tracklets = hand_identity.link_tracklets(detections, timestamps, gate=0.6, max_gap_s=0.5)
    sides, extra = hand_identity.assign_sides(tracklets, one_person=True)
    assert [d.image_keypoints[10, 0] for d in sides["left"][0]] == [200.0] * 5
    assert [d.image_keypoints[10, 0] for d in sides["right"][0]] == [900.0] * 5
    sides, extra = hand_identity.assign_sides(tracklets, one_person=False)
    assert len(sides["left"]) == 1 and sides["right"] == []
    assert [side for side, _ in extra] == ["left"]


def test_duplicate_detection_of_one_hand_is_suppressed():
    a = _detection(0, (500, 300), right=True, score=0.9)
    b = _detection(0, (520, 310), right=False, score=0.95)  # same hand, 20 px off
    c = _detection(0, (900, 300), right=False, score=0.5)
    kept = hand_identity.suppress_duplicates([a, b, c], overlap=0.5)
    assert kept == [b, c]
    assert hand_identity.box_overlap(a.image_keypoints, c.image_keypoints) == 0.0


def test_gaps_are_filled_only_inside_one_identity_and_bounded():
    timestamps = np.arange(12) / 10.0
    identity = np.array([0, -1, -1, 0, -1, -1, -1, -1, -1, 0, 1, 1])
    values = np.arange(12, dtype=float)[:, None] * np.array([[1.0, 2.0]])
    values[identity < 0] = np.nan
    filled = hand_identity.interpolate_gaps(timestamps, identity, [values], max_gap_s=0.35)
    # Gap 0 -> 3 (0.3 s) is filled linearly; 3 -> 9 (0.6 s) is too long and stays masked.
    np.testing.assert_array_equal(np.flatnonzero(filled), [1, 2])
    np.testing.assert_allclose(values[1:3], [[1, 2], [2, 4]], atol=1e-12)
    assert np.isnan(values[4:9]).all()
    identity = np.array([0, -1, 1])
    values = np.array([[0.0], [np.nan], [2.0]])
    filled = hand_identity.interpolate_gaps(np.arange(3) / 10.0, identity, [values], max_gap_s=1.0)
    assert not filled.any()  # different hands on either side: never bridged


def test_smoothing_is_zero_phase_and_honours_uneven_time():
    rng = np.random.default_rng(RNG_SEED)
    timestamps = np.cumsum(rng.uniform(0.02, 0.05, size=400))  # variable frame rate
    clean = np.sin(2 * np.pi * 0.5 * timestamps)  # 0.5 Hz motion
    noisy = clean + rng.normal(scale=0.05, size=timestamps.size)
    valid = np.ones_like(timestamps, dtype=bool)
    smoothed = hand_identity.smooth(timestamps, valid, noisy[:, None], sigma_s=0.04)[:, 0]
    inner = slice(20, -20)
    # Noise drops, the 0.5 Hz signal passes with no lag (a lag of 1 frame would cost ~0.01).
    assert np.std(smoothed[inner] - clean[inner]) < 0.6 * np.std(noisy[inner] - clean[inner])
    lags = np.arange(-5, 6)
    errors = [np.mean((np.roll(smoothed, k)[inner] - clean[inner]) ** 2) for k in lags]
    assert lags[int(np.argmin(errors))] == 0
    # A symmetric pulse stays centred on its true time, at uneven sampling.
    pulse = np.exp(-0.5 * ((timestamps - timestamps[200]) / 0.2) ** 2)
    out = hand_identity.smooth(timestamps, valid, pulse[:, None], sigma_s=0.04)[:, 0]
    centre = np.sum(out * timestamps) / np.sum(out)
    assert abs(centre - np.sum(pulse * timestamps) / np.sum(pulse)) < 1e-3


def test_smoothing_never_mixes_across_gaps():
    timestamps = np.arange(10) / 30.0
    valid = np.array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1], dtype=bool)
    values = np.where(np.arange(10) < 4, 0.0, 10.0)[:, None]
    values[~valid] = np.nan
    out = hand_identity.smooth(timestamps, valid, values, sigma_s=0.1)
    np.testing.assert_allclose(out[:3], 0.0, atol=1e-12)
    np.testing.assert_allclose(out[5:], 10.0, atol=1e-12)
    assert np.isnan(out[3:5]).all()
    np.testing.assert_array_equal(hand_identity.smooth(timestamps, valid, values, 0.0), values)


@pytest.mark.parametrize(
    ("names", "expected", "how"),
    [
        (["a_1739654368.000.png", "a_1739654370.500.png"], [0.0, 2.5], "file names [s]"),
        (["1700000000123.png", "1700000000156.png"], [0.0, 0.033], "Unix, 0.001 s"),
        (["frame_1.png", "frame_2.png", "frame_4.png"], [0, 1 / 30, 3 / 30], "frame numbers"),
        (["b.png", "a.png"], [0.0, 1 / 30], "30 fps"),
    ],
)
def test_folder_timestamps_from_names(names, expected, how):
    times, source = folder_timestamps(tuple(Path(n) for n in names), fps=30.0)
    np.testing.assert_allclose(times, expected, atol=1e-9)
    assert how in source
