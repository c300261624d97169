"""Depth maps in: per-frame metric depth fitted to the lifted hands.

The maps themselves (files, matching to frames, reading) are :mod:`pipeline.depth_maps`'s.

The fit: the monocular lift places every keypoint on its pixel's viewing ray, right up to one
unknown factor along the rays (scaling the hand about the camera centre leaves its image
unchanged). Per frame and hand that factor is fitted to the depth seen at the keypoints: a
median of depth ratios, then the keypoints within 2 cm (or three times the median deviation) of
the fitted depth are kept and the median taken again, so that the held object, the other hand
or the background seen at some keypoints does not pull the fit. The hand then lies on the
visible surface (keypoints are joint centres, up to about half a finger's thickness behind it).
The fit residual is the median absolute depth difference of the kept keypoints [m].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.depth_maps import DepthMaps, sample_depth
from pipeline.exceptions import InputMediaError
from pipeline.lifting import HAND_LENGTH_REL_STD, RULERS, lifted_in_camera
from pipeline.tracks import HandTrack, HandTracks, Intrinsics
from retarget import hand_frame_from_keypoints

MIN_KEYPOINTS = 4
"""Fewest keypoints with depth for a frame's fit; fewer keeps the monocular lift."""
INLIER_BAND_M = 0.02
"""Keypoints within this of the first fit's depth (or 3 median deviations) are kept [m]."""
NEAREST_M = 0.05
FARTHEST_M = 10.0
SURFACE_STD_M = 0.01
"""Uncertainty of a fitted wrist beyond the fit residual [m]: the maps see the skin, the
keypoints are joint centres up to about half a wrist's thickness behind it."""
SET_ASIDE_STD_M = 0.03
"""Further uncertainty of a wrist that the fit set aside (or that had no depth), placed by the
hand's shape from the kept keypoints [m]: the set-aside keypoints of the ZED frames lie within
2.7 cm of their measured depth at the 90th percentile."""


def fit_depth_scale(
    keypoint_depth: NDArray[np.float64], observed_depth: NDArray[np.float64]
) -> tuple[float, float, NDArray[np.bool_]]:
    """The factor along the viewing rays that puts a lifted hand at the observed depth.

    Args:
        keypoint_depth: Shape (21,) [m], the lifted keypoints' z in the camera frame.
        observed_depth: Shape (21,) [m], the depth maps' values there (NaN where none).

    Returns:
        (factor, residual [m], kept): ``kept`` (21,) marks the keypoints the fit kept; factor
        and residual are NaN (and nothing kept) when fewer than :data:`MIN_KEYPOINTS` keypoints
        have depth.
    """
    valid = np.isfinite(keypoint_depth) & np.isfinite(observed_depth) & (keypoint_depth > 0)
    none = np.zeros(len(keypoint_depth), dtype=bool)
    if valid.sum() < MIN_KEYPOINTS:
        return float("nan"), float("nan"), none
    model, seen = keypoint_depth[valid], observed_depth[valid]
    factor = float(np.median(seen / model))
    misfit = np.abs(factor * model - seen)
    band = max(INLIER_BAND_M, 3.0 * float(np.median(misfit)))
    kept = misfit <= band
    if kept.sum() < MIN_KEYPOINTS:
        return float("nan"), float("nan"), none
    factor = float(np.median(seen[kept] / model[kept]))
    residual = float(np.median(np.abs(factor * model[kept] - seen[kept])))
    chosen = none.copy()
    chosen[np.flatnonzero(valid)[kept]] = True
    return factor, residual, chosen


def check_fitted_depth(depth_m: float, path: Path, scale: float) -> None:
    """Refuse a fitted wrist depth that only a wrong ``--depth-scale`` explains.

    Raises:
        InputMediaError: Nearer than 5 cm or farther than 10 m.
    """
    if NEAREST_M <= depth_m <= FARTHEST_M:
        return
    raise InputMediaError(
        f"{path}: with --depth-scale {scale:g} raw units per metre the hand lies at "
        f"{depth_m:.3g} m (valid: {NEAREST_M} to {FARTHEST_M:g} m); give the scale of these "
        "maps (1000 for millimetres, 1 for metres)"
    )


def fit_frame(
    points: NDArray[np.float64],
    world_to_camera: NDArray[np.float64],
    observed: NDArray[np.float64],
    side: str,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float, bool] | None:
    """One frame's hand moved to the depth seen at its keypoints.

    Args:
        points: Shape (21, 3) [m], the lifted keypoints in the camera frame.
        world_to_camera: Shape (4, 4), the pose of the landmarker frame W they come from.
        observed: Shape (21,) [m], the depth maps' values at the keypoints (NaN where none).
        side: ``"left"`` or ``"right"``.

    Returns:
        (world keypoints (21, 3) [m] in W, ``transform_wrist_to_camera`` (4, 4), residual [m],
        fitted factor, whether the wrist was among the kept keypoints), or None when too few
        keypoints have depth. W keeps its orientation;
        its origin moves along its ray by the fitted factor.
    """
    factor, residual, kept = fit_depth_scale(points[:, 2], observed)
    if not np.isfinite(factor):
        return None
    moved = points * factor
    moved[kept] = points[kept] * (observed[kept] / points[kept, 2])[:, None]
    rotation = world_to_camera[:3, :3]
    origin = world_to_camera[:3, 3] * factor
    world = (moved - origin) @ rotation
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = origin
    wrist_pose = pose @ hand_frame_from_keypoints(world, side)[0]  # type: ignore[arg-type]
    return world, wrist_pose, residual, factor, bool(kept[0])


def apply_depth_maps(
    hands: Sequence[HandTrack], maps: DepthMaps, intrinsics: Intrinsics
) -> list[HandTrack]:
    """Hands moved along their viewing rays to the depth the maps show, frame by frame.

    Per frame and hand, the factor of :func:`fit_depth_scale` scales the hand about the camera
    centre (its size comes out of the depth); then every keypoint the fit kept is moved along
    its own viewing ray to the depth seen there, so that the hand's shape follows the depth too
    (the landmarker's 3D shape flattens when the fingers wrap an object). The image keypoints
    stay; the hand frame is taken again from the moved keypoints (:func:`fit_frame`). Frames
    whose keypoints have too little depth keep the monocular lift and a NaN residual.

    The fitted factors also measure the hand's size: frames without a fit are scaled by the
    track's median factor, and their ``wrist_position_std`` loses its hand-size part. A fitted
    frame's ``wrist_position_std`` is its residual and :data:`SURFACE_STD_M` together, and
    :data:`SET_ASIDE_STD_M` where the fit did not keep the wrist itself.

    Returns:
        The hands, each with ``depth_residual`` (T,) [m] and ``wrist_position_std`` set.

    Raises:
        InputMediaError: An unreadable map, or a fitted depth beyond 10 m or nearer than 5 cm
            (a wrong ``depth_scale``).
    """
    size = (intrinsics.width, intrinsics.height)
    lifted = [lifted_in_camera(hand) for hand in hands]
    worlds = [hand.world_keypoints.copy() for hand in hands]
    poses = [hand.transform_wrist_to_camera.copy() for hand in hands]
    residuals = [np.full(len(hand.present), np.nan) for hand in hands]
    factors = [np.full(len(hand.present), np.nan) for hand in hands]
    wrists = [np.zeros(len(hand.present), dtype=bool) for hand in hands]
    # Each map is read once, for every hand lifted in its frame.
    rows = np.flatnonzero(np.any([np.isfinite(p[:, 0, 0]) for p, _ in lifted], axis=0))
    for row in rows:
        depth = maps.load(int(row))
        for index, hand in enumerate(hands):
            points, world_to_camera = lifted[index][0][row], lifted[index][1][row]
            if not np.isfinite(points[0, 0]):
                continue
            observed = sample_depth(depth, hand.image_keypoints[row], size)
            fit = fit_frame(points, world_to_camera, observed, hand.side)
            if fit is None:
                continue
            check_fitted_depth(fit[3] * points[0, 2], maps.files[row], maps.scale)
            worlds[index][row], poses[index][row], residuals[index][row], factor, wrist = fit
            factors[index][row] = factor
            wrists[index][row] = wrist
    return [
        _sized(hand, world, pose, residual, factor, wrist)
        for hand, world, pose, residual, factor, wrist in zip(
            hands, worlds, poses, residuals, factors, wrists, strict=True
        )
    ]


def _sized(
    hand: HandTrack,
    world: NDArray[np.float64],
    pose: NDArray[np.float64],
    residual: NDArray[np.float64],
    factor: NDArray[np.float64],
    wrist_kept: NDArray[np.bool_],
) -> HandTrack:
    """A fitted track: unfitted frames scaled by the median fit factor, uncertainties set."""
    fitted = np.isfinite(factor)
    std = (
        np.full(len(residual), np.nan)
        if hand.wrist_position_std is None
        else hand.wrist_position_std.copy()
    )
    rest = hand.present & ~fitted & np.isfinite(pose).all(axis=(1, 2))
    if fitted.any() and rest.any():
        median = float(np.median(factor[fitted]))
        world[rest] *= median
        pose[rest, :3, 3] *= median
        depth = pose[rest, 2, 3]
        known = (std[rest] * median) ** 2 - (HAND_LENGTH_REL_STD * depth) ** 2
        std[rest] = np.sqrt(np.maximum(known, 0.0))
    std[fitted] = np.hypot(residual[fitted], SURFACE_STD_M)
    aside = fitted & ~wrist_kept
    std[aside] = np.hypot(std[aside], SET_ASIDE_STD_M)
    return dataclasses.replace(
        hand,
        world_keypoints=world,
        transform_wrist_to_camera=pose,
        depth_residual=residual,
        wrist_position_std=std,
    )


def fitted_hand_length(hand: HandTrack) -> float | None:
    """The hand length [m] a depth-fitted track implies, None without a fitted frame.

    The median over fitted frames of the palm's rulers (wrist to the four MCPs, over their
    share of the hand length, :data:`pipeline.lifting.RULERS`).
    """
    if hand.depth_residual is None or not np.isfinite(hand.depth_residual).any():
        return None
    rows = np.isfinite(hand.depth_residual)
    world = hand.world_keypoints[rows]
    lengths = [
        np.linalg.norm(world[:, b] - world[:, a], axis=1) / ratio
        for a, b, ratio in RULERS
        if a == 0 and b in (5, 9, 13, 17)
    ]
    return float(np.median(np.concatenate(lengths)))


def measured_depth_pairs(
    tracks: HandTracks, maps: DepthMaps
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lifted against measured depth, to judge a lift: every keypoint with depth, and wrists.

    Returns:
        (lifted z, measured depth) [m] of every present keypoint whose pixel has depth, shape
        (N, 2), and the same for the wrists alone, shape (M, 2).
    """
    size = (tracks.intrinsics.width, tracks.intrinsics.height)
    pairs: list[NDArray[np.float64]] = []
    wrists: list[NDArray[np.float64]] = []
    for hand in tracks.hands.values():
        points = lifted_in_camera(hand)[0]
        for row in np.flatnonzero(np.isfinite(points[:, 0, 0])):
            seen = sample_depth(maps.load(int(row)), hand.image_keypoints[row], size)
            both = np.stack([points[row, :, 2], seen], axis=1)
            pairs.append(both[np.isfinite(seen)])
            if np.isfinite(seen[0]):
                wrists.append(both[:1])
    return np.concatenate(pairs or [np.empty((0, 2))]), np.concatenate(wrists or [np.empty((0, 2))])
