"""Hand tracks from per-frame detections: linked, sided, gaps filled, smoothed, lifted.

What :mod:`pipeline.extract` does once the landmarker has seen every frame: detections are
linked into tracklets by keypoint continuity and given sides (:mod:`pipeline.hand_identity`),
a landmarker 3D hand of the other chirality is reflected through its palm to the track's side
(:mod:`pipeline.chirality`), short gaps inside a tracklet are interpolated, keypoints smoothed in
time, and each frame's hand lifted to a metric pose in the camera frame
(:mod:`pipeline.lifting`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from pipeline import hand_identity
from pipeline.chirality import mirrored_hands, reflect_fingers
from pipeline.extract_config import ExtractConfig
from pipeline.lifting import lift_track, lift_wrist_poses
from pipeline.tracks import SIDES, HandTrack, Intrinsics


def side_track(
    side: str,
    tracklets: list[list[hand_identity.Detection]],
    timestamps: NDArray[np.float64],
    intrinsics: Intrinsics,
    config: ExtractConfig,
) -> HandTrack:
    """One side's track: detections placed, gaps filled, smoothed, lifted to metric 3D."""
    track = HandTrack.empty(side, len(timestamps))
    identity = np.full(len(timestamps), -1, dtype=np.int64)
    for number, tracklet in enumerate(tracklets):
        for detection in tracklet:
            identity[detection.frame] = number
            frame = detection.frame
            track.present[frame] = True
            track.score[frame] = detection.score
            track.image_keypoints[frame] = detection.image_keypoints
            track.world_keypoints[frame] = detection.world_keypoints
            track.label_agrees[frame] = (detection.probability_right > 0.5) == (side == "right")
    detected = track.present.copy()
    # Decided before gaps are filled and shapes smoothed: a reflected hand among its neighbours
    # would blend two chiralities.
    mirrored = np.zeros(len(timestamps), dtype=bool)
    if config.reflect_mirrored:
        rows = np.flatnonzero(detected)
        starts = np.ones(len(rows), dtype=bool)
        starts[1:] = (np.diff(rows) > 1) | (np.diff(identity[rows]) != 0)
        mirrored[rows] = mirrored_hands(track.world_keypoints[rows], side, starts)
    # Two versions of the 3D hand: as the landmarker gave it, for the pose (its image keypoints
    # follow its chirality; PnP on the reflected fingers turns a mirrored hand by 130-150 deg,
    # median, on the shared cups clip), and reflected to the track's side, for the articulation
    # written out. Both have the same wrist, index MCP and little MCP in every frame, through
    # the filling and smoothing below, and so the same hand frame H.
    given = track.world_keypoints
    articulated = given.copy()
    articulated[mirrored] = reflect_fingers(given[mirrored])
    filled = hand_identity.interpolate_gaps(
        timestamps,
        identity,
        [track.image_keypoints, given, articulated, track.score],
        config.interpolate_max_gap_s,
    )
    track.interpolated[:] = filled
    track.present[:] = detected | filled
    image, world, articulated = (
        hand_identity.smooth(timestamps, track.present, values, config.smoothing_sigma_s)
        for values in (track.image_keypoints, given, articulated)
    )
    track.image_keypoints[:] = image
    track.world_keypoints[:] = articulated
    rows = np.flatnonzero(track.present)
    track = dataclasses.replace(
        track, wrist_position_std=np.full(len(timestamps), np.nan), mirrored=mirrored
    )
    if rows.size:
        if config.monocular_depth == "landmarker":
            poses, errors = lift_wrist_poses(world[rows], image[rows], intrinsics, side)
            scaled, std = world[rows], np.full(len(rows), np.nan)
        else:
            poses, scaled, errors, std = lift_track(
                world[rows],
                image[rows],
                intrinsics,
                side,
                timestamps[rows],
                config.hand_size,
                config.distance_spread,
            )
        # The reflected articulation at the size the lift gave the landmarker's hand (a scale
        # about W's origin), where the two versions differ.
        changed = np.flatnonzero((articulated[rows] != world[rows]).any(axis=(1, 2)))
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.linalg.norm(scaled[changed], axis=(1, 2)) / np.linalg.norm(
                world[rows[changed]], axis=(1, 2)
            )
        scaled[changed] = articulated[rows[changed]] * scale[:, None, None]
        track.transform_wrist_to_camera[rows] = poses
        track.world_keypoints[rows] = scaled
        track.reprojection_error[rows] = errors
        assert track.wrist_position_std is not None
        track.wrist_position_std[rows] = std
    return track


def build_tracks(
    detections: list[list[hand_identity.Detection]],
    timestamps: NDArray[np.float64],
    intrinsics: Intrinsics,
    config: ExtractConfig,
) -> tuple[dict[str, HandTrack], tuple[HandTrack, ...]]:
    """Per-frame detections -> left/right tracks (and extra hands), lifted to metric poses."""
    tracklets = hand_identity.link_tracklets(
        detections, timestamps, gate=config.link_gate, max_gap_s=config.link_max_gap_s
    )
    # A single frame has no continuity to argue with the detector's labels.
    one_person = config.one_person and len(timestamps) > 1
    sides, spare = hand_identity.assign_sides(tracklets, one_person=one_person)
    hands = {side: side_track(side, sides[side], timestamps, intrinsics, config) for side in SIDES}
    # Spare tracklets of one side that do not overlap share an extra track.
    lanes: list[tuple[str, list[list[hand_identity.Detection]]]] = []
    for side, tracklet in spare:
        frames = {d.frame for d in tracklet}
        lane = next(
            (
                lane
                for lane in lanes
                if lane[0] == side and not any(frames & {d.frame for d in t} for t in lane[1])
            ),
            None,
        )
        if lane is None:
            lanes.append((side, [tracklet]))
        else:
            lane[1].append(tracklet)
    extra = tuple(side_track(side, group, timestamps, intrinsics, config) for side, group in lanes)
    return hands, extra
