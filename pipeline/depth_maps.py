"""Depth maps in: where an input's maps are, which map is which frame's, reading them.

A depth folder holds one map per input frame, 16-bit PNG (raw units, ``depth_scale`` of them per
metre: 1000 for millimetres, the RealSense/Open3D convention) or ``.npy`` (any numeric dtype, same
units). Maps are matched to the frames of an image folder by file stem and to the frames of a
video by order (natural name order, the n-th map for the n-th decoded frame, before ``stride``
and ``max_fps``). 0, NaN and inf mean "no depth". A map may have another resolution than the
colour frames: pixels are scaled to it (the two must show the same field of view, as an aligned
RGB-D stream does). What the maps are used for: the hands' depth (:mod:`pipeline.depth`) and
the camera's motion (:mod:`pipeline.camera_motion`).
"""

from __future__ import annotations

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

DEPTH_SUFFIXES = (".png", ".npy")


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
