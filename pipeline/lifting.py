"""Lifting a detected hand to metric 3D: the wrist pose in the camera frame.

The landmarker gives 21 keypoints in a hand-centred frame W (its world landmarks) and the same
keypoints in the image. Two steps:

1. **Orientation and shape** (:func:`lift_wrist_poses`): SQPnP (OpenCV) against the camera
   intrinsics places W in the camera frame, kept near the landmarker's own view of the hand
   where a nearly flat hand's mirror solution fits as well (:mod:`pipeline.hand_pnp`);
   :func:`retarget.hand_frame_from_keypoints` turns
   that into the pose of the hand frame H. The landmarker's 3D hand has no reliable size: it
   shrinks and flattens when the fingers wrap an object (measured on the ZED frames: 2-3x too
   close while the hand holds the bottle), so PnP's depth is not kept.
2. **Distance from the hand's own rulers** (:func:`monocular_ranges`): a person's bones do not
   change length. A segment of length l whose ends are at distance r from the camera centre
   subtends an angle whose chord on the unit sphere of viewing rays is at most l / r (exactly
   that when it lies across the line of sight), so every segment of a fixed-proportion hand of
   length ``hand_length`` (:data:`RULERS`) gives an upper bound on the wrist's distance from its
   2D keypoints alone; the mean of the two tightest bounds bounds the frame's distance, and
   since a hand's distance changes at most so fast (:data:`MAX_DEPTH_SPEED_M_S`) the
   neighbouring frames' bounds tighten it (:func:`speed_envelope`). A frame whose rulers
   disagree says little about its distance, and a hand stays within a limited range of
   distances over a clip, so each frame is drawn towards the track's median distance in
   proportion to its noise (:func:`towards_track_median`); then it is smoothed in time (in log
   distance). Angles between viewing rays do not change when the camera turns, so a
   turning camera (a head camera, a hand-held phone) sees the same hand at the same distance
   wherever it falls in the image; a length in the image plane grows towards the image's edges
   (by 1 / cos of the angle off the axis). Step 1's hand, resized so that its palm has the
   fixed-proportion palm's size (:func:`landmarker_hand_length`), keeps PnP's orientation and
   is placed with its wrist on the wrist's viewing ray at that distance.

The uncertainty of the result (:func:`wrist_range_std`) has two parts: the hand's unknown size
(:data:`HAND_LENGTH_REL_STD`, none when the size is given) and the frame's own disagreement
(the two tightest rulers against each other, the raw distance against the smoothed one). The
prior towards the track's median is left out of it: the prior is an assumption about the clip,
not a measurement of the frame, so the sigma (and ``LIFT_UNCERTAIN``) stays that of the
frame's own rulers.
The mean reprojection error of step 1 is kept as a figure of how well the landmarker's 3D hand
fits its image.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pipeline.hand_identity import smooth
from pipeline.hand_pnp import transforms_world_to_camera, viewing_rays
from pipeline.tracks import HandTrack, HandTracks, Intrinsics
from retarget import hand_frame_from_keypoints
from retarget.exceptions import InvalidInputError

HAND_LENGTH_M = 0.185
"""Default hand length, wrist crease to the tip of the middle finger [m]: the adult mean (about
0.19 m for men, 0.175 m for women in the anthropometric surveys)."""
HAND_LENGTH_REL_STD = 0.10
"""Relative standard deviation of an unknown person's hand scale: the population's spread of
hand length (about 6%) and the error of :data:`RULERS`' fixed proportions for one person
(measured 9-12% on the shared ZED frames, whose depth is known)."""
FRAME_NOISE_GAIN = 1.5
"""Per-frame relative distance noise per unit of ruler disagreement (calibrated on the ZED frames
against their depth and on re-encode pairs, see ``scripts/bench_lifting.py``)."""
FRAME_NOISE_FLOOR = 0.01
"""Smallest per-frame relative distance noise."""
MAX_DEPTH_SPEED_M_S = 0.5
"""Fastest change of a hand's distance that :func:`speed_envelope` allows [m/s]: reaching towards
or away from the camera in manipulation stays below it, and it makes one frame whose rulers are
all foreshortened (a loose bound) take the tighter bounds of its neighbours."""
DEPTH_SMOOTHING_S = 0.15
"""Gaussian width of the temporal smoothing of log distance [s]."""
DISTANCE_SPREAD = 0.15
"""Spread of a hand's distance from the camera about its median over a track (standard deviation
of log distance), the prior of :func:`towards_track_median`. Measured on the shared clips'
frames whose rulers agree (frame noise under 0.10): 0.02-0.09 on the kettle, stove and
arm-wrestling clips, 0.14 on the cups clip; the ZED clip's true wrist depth spreads by 0.025."""

RULERS: tuple[tuple[int, int, float], ...] = (
    # The palm (joint centres in its plane: wrist, index, middle, ring and little-finger MCPs
    # at (0, 0), (0.19, 0.47), (0.06, 0.465), (-0.06, 0.44), (-0.19, 0.355) hand lengths).
    (0, 5, 0.507),
    (0, 9, 0.469),
    (0, 13, 0.444),
    (0, 17, 0.403),
    (5, 13, 0.253),
    (5, 17, 0.382),
    (9, 17, 0.264),
    # Thumb metacarpal and proximal phalanx, proximal phalanges of the fingers (Buchholz et
    # al. 1992, segment lengths over hand length).
    (1, 2, 0.251),
    (2, 3, 0.196),
    (5, 6, 0.265),
    (9, 10, 0.277),
    (13, 14, 0.259),
    (17, 18, 0.206),
)
"""Segments of a fixed-proportion hand: keypoint a, keypoint b, length over hand length. Only
segments of at least a fifth of the hand: a short one's image length is mostly 2D noise."""


def lift_wrist_poses(
    world_keypoints: NDArray[np.float64],
    image_keypoints: NDArray[np.float64],
    intrinsics: Intrinsics,
    side: str,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Metric poses of the hand frame H in the camera frame, by PnP, for many frames.

    :func:`pipeline.hand_pnp.transforms_world_to_camera` places W; PnP's depth is that of the
    landmarker's hand at its own size (the lift of earlier releases).

    Args:
        world_keypoints: Shape (N, 21, 3) [m], the landmarker's hand-centred metric frame W.
        image_keypoints: Shape (N, 21, 2) [px], as observed (distorted) in the image.
        intrinsics: Camera matrix and distortion (SQPnP works on the undistorted points).
        side: ``"left"`` or ``"right"`` (sets the sign of H's palm normal).

    Returns:
        ``transform_wrist_to_camera`` (N, 4, 4) and the mean reprojection errors (N,) [px]; NaN
        for a frame where PnP fails or the hand is degenerate (wrist and MCPs collinear).
    """
    poses, errors = transforms_world_to_camera(world_keypoints, image_keypoints, intrinsics)
    poses = poses @ hand_frames(world_keypoints, side)
    errors[~np.isfinite(poses).all(axis=(1, 2))] = np.nan
    return poses, errors


def hand_frames(world_keypoints: NDArray[np.float64], side: str) -> NDArray[np.float64]:
    """Poses of the hand frame H in W, (N, 4, 4); NaN for a degenerate hand."""
    try:
        return hand_frame_from_keypoints(world_keypoints, side)  # type: ignore[arg-type]
    except InvalidInputError:
        frames = np.full((len(world_keypoints), 4, 4), np.nan)
        for index in range(len(world_keypoints)):
            try:
                one = world_keypoints[index : index + 1]
                frames[index] = hand_frame_from_keypoints(one, side)  # type: ignore[arg-type]
            except InvalidInputError:
                pass
        return frames


def solve_wrist_pose(
    world_keypoints: NDArray[np.float64],
    image_keypoints: NDArray[np.float64],
    intrinsics: Intrinsics,
    side: str,
) -> tuple[NDArray[np.float64], float]:
    """One frame of :func:`lift_wrist_poses`: shapes (21, 3) and (21, 2) in, (4, 4) and [px] out."""
    poses, errors = lift_wrist_poses(world_keypoints[None], image_keypoints[None], intrinsics, side)
    return poses[0], float(errors[0])


def lifted_in_camera(hand: HandTrack) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A track's lifted keypoints in the camera frame, and the pose of its landmarker frame W.

    Returns:
        Keypoints, shape (T, 21, 3) [m], and ``transform_world_to_camera``, shape (T, 4, 4);
        NaN where the hand is absent or has no lift.
    """
    frames = len(hand.present)
    points, world_to_camera = np.full((frames, 21, 3), np.nan), np.full((frames, 4, 4), np.nan)
    rows = np.flatnonzero(
        hand.present & np.isfinite(hand.transform_wrist_to_camera).all(axis=(1, 2))
    )
    if rows.size:
        world = hand.world_keypoints[rows]
        hand_to_world = hand_frame_from_keypoints(world, hand.side)  # type: ignore[arg-type]
        world_to_camera[rows] = hand.transform_wrist_to_camera[rows] @ np.linalg.inv(hand_to_world)
        points[rows] = (
            np.einsum("nij,nkj->nki", world_to_camera[rows, :3, :3], world)
            + world_to_camera[rows, None, :3, 3]
        )
    return points, world_to_camera


def ruler_range_bounds(rays: NDArray[np.float64], hand_length: float) -> NDArray[np.float64]:
    """Upper bounds on the hand's distance from the camera from its segments' angular spans.

    Args:
        rays: Shape (N, 21, 3), the keypoints' unit viewing rays (:func:`viewing_rays`).
        hand_length: Wrist to middle fingertip [m].

    Returns:
        Shape (N, len(RULERS)) [m]: ``hand_length * ratio / chord`` per segment, the chord
        ``|ray_a - ray_b|`` (2 sin of half the angle the segment subtends); the distance of a
        segment across the line of sight, both ends equally far. Unchanged when the camera
        turns (the rays turn together).
    """
    first = np.array([a for a, _, _ in RULERS])
    second = np.array([b for _, b, _ in RULERS])
    ratio = np.array([r for _, _, r in RULERS])
    chords = np.linalg.norm(rays[:, first] - rays[:, second], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(hand_length * ratio / chords)


def monocular_ranges(
    image_keypoints: NDArray[np.float64],
    intrinsics: Intrinsics,
    timestamps: NDArray[np.float64],
    hand_length: float,
    smoothing_s: float = DEPTH_SMOOTHING_S,
    spread: float | None = DISTANCE_SPREAD,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The wrist's distance from the camera in every frame of one track, and its frame noise.

    Args:
        image_keypoints: Shape (N, 21, 2) [px], the track's frames with a hand (distorted).
        intrinsics: The camera.
        timestamps: Shape (N,) [s], increasing.
        hand_length: Wrist to middle fingertip [m].
        smoothing_s: Gaussian width of the smoothing of log distance [s]; 0 turns it off.
        spread: Prior spread of log distance about the track's median
            (:func:`towards_track_median`); None leaves every frame where its rulers put it.

    Returns:
        Distance along the wrist's viewing ray from the frame's tightest rulers, shape (N,) [m],
        and the frame's relative noise of it, shape (N,) (no hand-size part; see
        :func:`wrist_range_std`).
    """
    count = len(image_keypoints)
    if count == 0:
        return np.empty(0), np.empty(0)
    rays = viewing_rays(image_keypoints, intrinsics)
    bounds = np.sort(ruler_range_bounds(rays, hand_length), axis=1)
    log_raw = np.log(bounds[:, :2]).mean(axis=1)
    disagreement = np.log(bounds[:, 1]) - np.log(bounds[:, 0])
    valid = np.isfinite(log_raw)
    log_bound = log_raw.copy()
    log_bound[valid] = np.log(speed_envelope(timestamps[valid], np.exp(log_raw[valid])))

    def smoothed(values: NDArray[np.float64]) -> NDArray[np.float64]:
        if smoothing_s > 0 and count > 1:
            return smooth(timestamps, valid, values[:, None], smoothing_s)[:, 0]
        return values

    log_range = smoothed(log_bound)
    wobble = np.hypot(disagreement, log_raw - log_range)
    noise = np.hypot(FRAME_NOISE_GAIN * wobble, FRAME_NOISE_FLOOR)
    if spread is not None and valid.any():
        log_bound[valid] = towards_track_median(log_bound[valid], noise[valid], spread)
        log_range = smoothed(log_bound)
    return np.exp(log_range), noise


def towards_track_median(
    log_range: NDArray[np.float64], noise: NDArray[np.float64], spread: float
) -> NDArray[np.float64]:
    """Each frame's log distance drawn towards the track's median by its noise, shape (N,).

    The precision-weighted mean of the frame's own estimate (standard deviation ``noise``) and
    a prior at the track's median log distance with standard deviation ``spread``: a frame whose
    rulers agree (noise 0.04) keeps 93% of its offset from the median at ``spread`` 0.15, one
    whose rulers disagree (noise 0.3) 20%. The median of a track does not move with a few
    frames, so a hand half hidden for a while stays near where the track says it is instead of
    following its loosest rulers.
    """
    centre = np.median(log_range)
    keep = spread**2 / (spread**2 + noise**2)
    return np.asarray(centre + keep * (log_range - centre))


def speed_envelope(
    timestamps: NDArray[np.float64],
    bounds: NDArray[np.float64],
    speed: float = MAX_DEPTH_SPEED_M_S,
) -> NDArray[np.float64]:
    """The tightest distances that upper bounds allow for a hand that moves at most ``speed``.

    A frame's rulers bound its distance from above; a hand whose distance changes by at most
    ``speed`` [m/s] is then also below ``bounds[j] + speed * |t_i - t_j|`` for every other frame
    j. The lower envelope of those cones (two linear passes) is that bound, shape (N,) [m].
    """
    envelope = np.array(bounds, dtype=np.float64, copy=True)
    steps = speed * np.diff(timestamps)
    for i in range(1, len(envelope)):
        envelope[i] = min(envelope[i], envelope[i - 1] + steps[i - 1])
    for i in range(len(envelope) - 2, -1, -1):
        envelope[i] = min(envelope[i], envelope[i + 1] + steps[i])
    return envelope


def wrist_range_std(
    distance: NDArray[np.float64], frame_noise: NDArray[np.float64], size_known: bool
) -> NDArray[np.float64]:
    """Standard deviation of the wrist's position along its viewing ray [m], shape (N,).

    ``distance`` [m] is the wrist's from the camera, ``frame_noise`` relative
    (:func:`monocular_ranges`); an unknown hand size adds :data:`HAND_LENGTH_REL_STD`, common to
    every frame of the track.
    """
    size = 0.0 if size_known else HAND_LENGTH_REL_STD
    return np.asarray(distance * np.hypot(frame_noise, size))


def size_prior(tracks: HandTracks) -> float:
    """The relative hand-size part of the tracks' ``wrist_position_std``.

    0 where the size was given (``hand_size``) or fitted to depth maps, else
    :data:`HAND_LENGTH_REL_STD`.
    """
    known = tracks.settings.get("hand_size") is not None or "depth" in tracks.source
    return 0.0 if known else HAND_LENGTH_REL_STD


def frame_std(hand: HandTrack, prior: float) -> NDArray[np.float64]:
    """``wrist_position_std`` without its hand-size part (``prior`` of the distance), (T,) [m]."""
    assert hand.wrist_position_std is not None
    size = prior * np.linalg.norm(hand.transform_wrist_to_camera[:, :3, 3], axis=1)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.sqrt(np.maximum(hand.wrist_position_std**2 - size**2, 0.0)))


def lift_track(
    world_keypoints: NDArray[np.float64],
    image_keypoints: NDArray[np.float64],
    intrinsics: Intrinsics,
    side: str,
    timestamps: NDArray[np.float64],
    hand_length: float | None = None,
    distance_spread: float | None = DISTANCE_SPREAD,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Metric hands of one track: landmarker articulation, PnP orientation, ruler distance.

    The size comes from ``hand_length``; see the module's description.

    Args:
        world_keypoints: Shape (N, 21, 3), the landmarker's hand-centred frame W.
        image_keypoints: Shape (N, 21, 2) [px], as observed (distorted).
        intrinsics: The camera.
        side: ``"left"`` or ``"right"``.
        timestamps: Shape (N,) [s], increasing (the frames' own times).
        hand_length: The person's hand length [m]; None: :data:`HAND_LENGTH_M`, unknown.
        distance_spread: As ``spread`` of :func:`monocular_ranges`.

    Returns:
        ``transform_wrist_to_camera`` (N, 4, 4), world keypoints scaled to the hand's size
        (N, 21, 3) [m], PnP reprojection errors (N,) [px] and ``wrist_position_std`` (N,) [m];
        NaN where a frame cannot be lifted.
    """
    length = hand_length or HAND_LENGTH_M
    world_to_camera, errors = transforms_world_to_camera(
        world_keypoints, image_keypoints, intrinsics
    )
    distance, noise = monocular_ranges(
        image_keypoints, intrinsics, timestamps, length, spread=distance_spread
    )
    # The landmarker's hand at the hand's size (its palm against RULERS' palm), turned as PnP
    # found it, its wrist on the wrist's viewing ray at the rulers' distance.
    world = world_keypoints * (length / landmarker_hand_length(world_keypoints))[:, None, None]
    wrist = viewing_rays(image_keypoints[:, 0], intrinsics) * distance[:, None]
    rotation = world_to_camera[:, :3, :3]
    world_to_camera[:, :3, 3] = wrist - np.einsum("nij,nj->ni", rotation, world[:, 0])
    poses = world_to_camera @ hand_frames(world, side)
    std = wrist_range_std(distance, noise, hand_length is not None)
    lost = ~np.isfinite(poses).all(axis=(1, 2)) | ~np.isfinite(world).all(axis=(1, 2))
    poses[lost], world[lost], errors[lost], std[lost] = np.nan, np.nan, np.nan, np.nan
    return poses, world, errors, std


def landmarker_hand_length(world_keypoints: NDArray[np.float64]) -> NDArray[np.float64]:
    """The hand length each frame of the landmarker's 3D hand implies [m], shape (N,).

    The median of its palm's rulers (wrist to the four MCPs over their share of the hand length
    in :data:`RULERS`): the palm keeps its shape while the fingers move.
    """
    spans = [
        np.linalg.norm(world_keypoints[:, b] - world_keypoints[:, 0], axis=1) / ratio
        for a, b, ratio in RULERS
        if a == 0
    ]
    return np.asarray(np.median(np.stack(spans, axis=1), axis=1))
