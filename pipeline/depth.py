"""Depth maps in: per-frame metric depth fitted to the lifted hands.

A depth folder holds one map per input frame, 16-bit PNG (raw units, ``depth_scale`` of them per
metre: 1000 for millimetres, the RealSense/Open3D convention) or ``.npy`` (any numeric dtype, same
units). Maps are matched to the frames of an image folder by file stem and to the frames of a
video by order (natural name order, the n-th map for the n-th decoded frame, before ``stride``
and ``max_fps``). 0, NaN and inf mean "no depth". A map may have another resolution than the
colour frames: keypoint pixels are scaled to it (the two must show the same field of view, as an
aligned RGB-D stream does).

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
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.decoding import Media, _natural_key
from pipeline.exceptions import InputMediaError
from pipeline.tracks import HandTrack, Intrinsics
from retarget import hand_frame_from_keypoints

DEPTH_SUFFIXES = (".png", ".npy")
MIN_KEYPOINTS = 4
"""Fewest keypoints with depth for a frame's fit; fewer keeps the monocular lift."""
INLIER_BAND_M = 0.02
"""Keypoints within this of the first fit's depth (or 3 median deviations) are kept [m]."""
NEAREST_M = 0.05
FARTHEST_M = 10.0


@dataclass(frozen=True)
class DepthMaps:
    """The depth maps of one input, one per kept frame (None where a frame has no map).

    Attributes:
        folder: Where they come from.
        files: Per kept frame, its map's path.
        scale: Raw units per metre.
        sha256: Digest of the folder's maps (:func:`depth_digest`).
    """

    folder: Path
    files: tuple[Path, ...]
    scale: float
    sha256: str

    def load(self, row: int) -> NDArray[np.float64]:
        """Frame ``row``'s depth [m], shape (h, w); NaN where there is none.

        Raises:
            InputMediaError: An unreadable map.
        """
        path = self.files[row]
        try:
            if path.suffix.lower() == ".npy":
                raw = np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
            else:
                image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                if image is None:
                    raise ValueError("not a readable image")
                raw = np.asarray(image, dtype=np.float64)
        except (ValueError, OSError) as err:
            raise InputMediaError(
                f"{path}: cannot read this depth map ({err}); give 16-bit PNG or .npy maps"
            ) from None
        if raw.ndim != 2:
            raise InputMediaError(
                f"{path}: a depth map must be one channel (h, w), got shape {raw.shape}"
            )
        raw[~np.isfinite(raw) | (raw <= 0)] = np.nan
        return raw / self.scale


def depth_files(folder: str | Path) -> list[Path]:
    """The depth maps in a folder, in natural name order.

    Raises:
        InputMediaError: No such folder, or no ``.png``/``.npy`` file in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputMediaError(f"{folder}: depth folder not found (--depth names a folder of maps)")
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DEPTH_SUFFIXES),
        key=_natural_key,
    )
    if not files:
        raise InputMediaError(f"{folder}: holds no depth maps; valid: {', '.join(DEPTH_SUFFIXES)}")
    return files


def match_depth(
    folder: str | Path, media: Media, sources: Sequence[int], scale: float
) -> DepthMaps:
    """The depth map of every kept frame.

    Args:
        folder: The depth folder.
        media: The colour input.
        sources: Per kept frame, its position in the input (before ``stride``/``max_fps``).
        scale: Raw units per metre (> 0).

    Raises:
        InputMediaError: Bad scale, no maps, fewer maps than frames, or (image folders) a frame
            with no map of the same stem; the message names the frame and what to do.
    """
    if not np.isfinite(scale) or scale <= 0:
        raise InputMediaError(f"depth scale must be > 0 raw units per metre, got {scale}")
    files = depth_files(folder)
    if media.kind in ("images", "image"):
        by_stem = {p.stem: p for p in files}
        images = media.files if media.kind == "images" else (media.path,)
        chosen = []
        for source in sources:
            stem = images[source].stem
            if stem not in by_stem:
                raise InputMediaError(
                    f"{folder}: no depth map named {stem}.png or {stem}.npy for frame "
                    f"{images[source].name}; maps are matched to images by file stem"
                )
            chosen.append(by_stem[stem])
    else:
        needed = max(sources) + 1 if len(sources) else 0
        if len(files) < needed:
            raise InputMediaError(
                f"{folder}: {len(files)} depth maps for a video of at least {needed} frames; "
                "give one map per frame (matched by order)"
            )
        chosen = [files[source] for source in sources]
    return DepthMaps(Path(folder), tuple(chosen), float(scale), depth_digest(folder))


def depth_digest(folder: str | Path) -> str:
    """SHA-256 of a depth folder's maps, names and bytes (part of the hand-track cache key).

    Raises:
        InputMediaError: No such folder, or no maps in it.
    """
    digest = hashlib.sha256()
    for path in depth_files(folder):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def sample_depth(
    depth: NDArray[np.float64], pixels: NDArray[np.float64], image_size: tuple[int, int]
) -> NDArray[np.float64]:
    """Depth [m] at keypoint pixels: the median of the valid values in a 3x3 window.

    Args:
        depth: Shape (h, w) [m], NaN where none.
        pixels: Shape (N, 2) [px] in the colour frame of ``image_size`` (width, height).
        image_size: The colour frame's size; pixels are scaled to the depth map's size.

    Returns:
        Shape (N,) [m], NaN where no valid depth is near the pixel or it lies outside.
    """
    height, width = depth.shape
    scale = np.array([width / image_size[0], height / image_size[1]])
    found = np.full(len(pixels), np.nan)
    for index, (u, v) in enumerate(pixels * scale):
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        x, y = int(np.floor(u)), int(np.floor(v))
        if 0 <= x < width and 0 <= y < height:
            window = depth[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
            valid = window[np.isfinite(window)]
            if valid.size:
                found[index] = float(np.median(valid))
    return found


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


def _keypoints_in_camera(hand: HandTrack, rows: NDArray[np.intp]) -> NDArray[np.float64]:
    """The lifted keypoints of frames ``rows`` in the camera frame, shape (N, 21, 3) [m]."""
    world = hand.world_keypoints[rows]
    hand_to_world = hand_frame_from_keypoints(world, hand.side)  # type: ignore[arg-type]
    world_to_camera = hand.transform_wrist_to_camera[rows] @ np.linalg.inv(hand_to_world)
    return (
        np.einsum("nij,nkj->nki", world_to_camera[:, :3, :3], world)
        + world_to_camera[:, None, :3, 3]
    )


def _reposed(
    hand: HandTrack, row: int, points: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(world keypoints (21, 3) [m], transform_wrist_to_camera (4, 4)) of moved keypoints.

    The keypoints keep the landmarker frame W's orientation (and its origin's ray), now at the
    measured depth.
    """
    world = hand.world_keypoints[row]
    hand_to_world = hand_frame_from_keypoints(world, hand.side)[0]  # type: ignore[arg-type]
    world_to_camera = hand.transform_wrist_to_camera[row] @ np.linalg.inv(hand_to_world)
    rotation = world_to_camera[:3, :3]
    origin = world_to_camera[:3, 3] * (
        points[0, 2] / (rotation @ world[0] + world_to_camera[:3, 3])[2]
    )
    moved_world = (points - origin) @ rotation
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = origin
    return moved_world, pose @ hand_frame_from_keypoints(moved_world, hand.side)[0]  # type: ignore[arg-type]


def apply_depth_maps(
    hands: Sequence[HandTrack], maps: DepthMaps, intrinsics: Intrinsics
) -> list[HandTrack]:
    """Hands moved along their viewing rays to the depth the maps show, frame by frame.

    Per frame and hand, the factor of :func:`fit_depth_scale` scales the hand about the camera
    centre (its size comes out of the depth); then every keypoint the fit kept is moved along
    its own viewing ray to the depth seen there, so that the hand's shape follows the depth too
    (the landmarker's 3D shape flattens when the fingers wrap an object). The image keypoints
    stay; the hand frame is taken again from the moved keypoints. Frames whose keypoints have
    too little depth keep the monocular lift and a NaN residual.

    Returns:
        The hands, each with ``depth_residual`` (T,) [m] set.

    Raises:
        InputMediaError: An unreadable map, or a fitted depth beyond 10 m or nearer than 5 cm
            (a wrong ``depth_scale``).
    """
    size = (intrinsics.width, intrinsics.height)
    fitted = [
        (hand, hand.world_keypoints.copy(), hand.transform_wrist_to_camera.copy()) for hand in hands
    ]
    residuals = [np.full(len(hand.present), np.nan) for hand in hands]
    # Frames where a hand has a finite lift; each map is read once for all hands.
    usable = [
        hand.present & np.isfinite(hand.transform_wrist_to_camera).all(axis=(1, 2))
        for hand in hands
    ]
    camera = [
        dict(zip(np.flatnonzero(ok), _keypoints_in_camera(hand, np.flatnonzero(ok)), strict=True))
        if ok.any()
        else {}
        for hand, ok in zip(hands, usable, strict=True)
    ]
    rows = sorted(set().union(*(set(np.flatnonzero(ok).tolist()) for ok in usable)))
    for row in rows:
        depth = maps.load(row)
        for index, (hand, world, poses) in enumerate(fitted):
            if row not in camera[index]:
                continue
            points = camera[index][row]
            observed = sample_depth(depth, hand.image_keypoints[row], size)
            factor, residual, kept = fit_depth_scale(points[:, 2], observed)
            if not np.isfinite(factor):
                continue
            check_fitted_depth(factor * points[0, 2], maps.files[row], maps.scale)
            moved = points * factor
            moved[kept] = points[kept] * (observed[kept] / points[kept, 2])[:, None]
            world[row], poses[row] = _reposed(hand, row, moved)
            residuals[index][row] = residual
    return [
        dataclasses.replace(
            hand, world_keypoints=world, transform_wrist_to_camera=poses, depth_residual=residual
        )
        for (hand, world, poses), residual in zip(fitted, residuals, strict=True)
    ]


def depth_request(
    depth: str | Path | None, depth_scale: float
) -> tuple[Path, float, tuple[str, float]] | None:
    """(folder, scale, cache-key part) of a depth folder, or None without one."""
    if depth is None:
        return None
    return Path(depth), float(depth_scale), (depth_digest(depth), float(depth_scale))
