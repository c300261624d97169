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
from glob import escape as glob_escape
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.decoding import Media, natural_key
from pipeline.exceptions import InputMediaError
from pipeline.lifting import HAND_LENGTH_REL_STD, RULERS, lifted_in_camera
from pipeline.tracks import HandTrack, HandTracks, Intrinsics
from retarget import hand_frame_from_keypoints

DEPTH_SUFFIXES = (".png", ".npy")
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


@dataclass(frozen=True)
class DepthRequest:
    """A depth folder asked for, checked before any frame is decoded.

    Attributes:
        folder: The folder of maps.
        scale: Raw units per metre (> 0).
        sha256: Digest of the folder's maps (:func:`depth_digest`), part of the cache key.
    """

    folder: Path
    scale: float
    sha256: str

    @staticmethod
    def of(folder: str | Path | None, scale: float = 1000.0) -> DepthRequest | None:
        """The request for ``folder`` (None: no depth maps).

        Raises:
            InputMediaError: A scale that is not > 0; no such folder, or no maps in it.
        """
        if folder is None:
            return None
        if not np.isfinite(scale) or scale <= 0:
            raise InputMediaError(f"depth scale must be > 0 raw units per metre, got {scale}")
        return DepthRequest(Path(folder), float(scale), depth_digest(folder))


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
        return load_depth_map(self.files[row], self.scale)


def load_depth_map(path: Path, scale: float) -> NDArray[np.float64]:
    """One depth map [m], shape (h, w), NaN where there is none (0, NaN, inf or negative).

    Args:
        path: A 16-bit PNG or ``.npy`` map.
        scale: Raw units per metre.

    Raises:
        InputMediaError: An unreadable map, or one of more than one channel.
    """
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
    return raw / scale


DEPTH_SIDECAR_SUFFIX = "_depth"
"""A depth-map folder named like its input plus this (``clip_depth/`` for ``clip.mp4`` or for
the image folder ``clip/``) is that input's depth sidecar."""


def find_depth_sidecar(path: str | Path) -> Path | None:
    """The depth-map folder that belongs to an input, if there is one.

    Looks for, in order: inside an image folder, ``depth/``; beside a file or folder,
    ``STEM_depth/`` (``clip_depth/`` for ``clip.mp4``, ``frames_depth/`` for ``frames/``).
    """
    path = Path(path)
    candidates = [path / "depth"] if path.is_dir() else []
    stem = path.name if path.is_dir() else path.stem
    candidates.append(path.parent / f"{stem}{DEPTH_SIDECAR_SUFFIX}")
    return next((c for c in candidates if c.is_dir()), None)


def is_depth_sidecar(folder: str | Path) -> bool:
    """Whether ``folder`` is the depth sidecar of an input beside it, so not an input itself.

    ``X_depth/`` is the sidecar of ``X/`` or ``X.*`` in the same folder.
    """
    folder = Path(folder)
    if not folder.is_dir() or not folder.name.endswith(DEPTH_SIDECAR_SUFFIX):
        return False
    stem = folder.name[: -len(DEPTH_SIDECAR_SUFFIX)]
    if not stem:
        return False
    return (folder.parent / stem).is_dir() or any(
        p.is_file() for p in folder.parent.glob(f"{glob_escape(stem)}.*")
    )


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
        key=natural_key,
    )
    if not files:
        raise InputMediaError(f"{folder}: holds no depth maps; valid: {', '.join(DEPTH_SUFFIXES)}")
    return files


class DepthIndex:
    """Which depth map belongs to which frame of an input (by stem for images, by order else).

    Args:
        request: The depth folder and scale.
        media: The colour input.

    Raises:
        InputMediaError: No such folder, or no maps in it.
    """

    def __init__(self, request: DepthRequest, media: Media) -> None:
        self.request = request
        self.media = media
        self.files = depth_files(request.folder)
        self.by_stem = {path.stem: path for path in self.files}

    def path(self, source: int) -> Path:
        """The map of the input's frame ``source`` (its position before ``stride``/``max_fps``).

        Raises:
            InputMediaError: (image folders) no map of the frame's stem; (videos) fewer maps
                than frames. The message names the frame and what to do.
        """
        folder = self.request.folder
        if self.media.kind in ("images", "image"):
            images = self.media.files if self.media.kind == "images" else (self.media.path,)
            stem = images[source].stem
            if stem not in self.by_stem:
                raise InputMediaError(
                    f"{folder}: no depth map named {stem}.png or {stem}.npy for frame "
                    f"{images[source].name}; maps are matched to images by file stem"
                )
            return self.by_stem[stem]
        if source >= len(self.files):
            raise InputMediaError(
                f"{folder}: {len(self.files)} depth maps for a video of at least {source + 1} "
                "frames; give one map per frame (matched by order)"
            )
        return self.files[source]

    def load(self, source: int) -> NDArray[np.float64]:
        """The map of the input's frame ``source`` [m] (:func:`load_depth_map`)."""
        return load_depth_map(self.path(source), self.request.scale)


def match_depth(request: DepthRequest, media: Media, sources: Sequence[int]) -> DepthMaps:
    """The depth map of every kept frame.

    Args:
        request: The depth folder and scale.
        media: The colour input.
        sources: Per kept frame, its position in the input (before ``stride``/``max_fps``).

    Raises:
        InputMediaError: Fewer maps than frames, or (image folders) a frame with no map of the
            same stem; the message names the frame and what to do.
    """
    index = DepthIndex(request, media)
    if media.kind not in ("images", "image") and len(sources):
        index.path(max(sources))  # fewer maps than frames: named for the whole video at once
    chosen = tuple(index.path(source) for source in sources)
    return DepthMaps(request.folder, chosen, request.scale, request.sha256)


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
