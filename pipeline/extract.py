"""Hand pose extraction: MediaPipe landmarks, stable left/right tracks, metric wrist poses.

Stages, per input: decode (:mod:`pipeline.decoding`, in a background thread) -> the MediaPipe hand
landmarker (Tasks API; VIDEO mode for videos and folders, so the palm detector is skipped while
tracking holds; IMAGE mode for a single image) -> identity and side by continuity
(:mod:`pipeline.hand_identity`) -> short gaps interpolated, zero-phase smoothing -> metric wrist
pose in the camera frame (:mod:`pipeline.lifting`: distance from the angles its segments subtend,
orientation by SQPnP, lens distortion modelled). The settings are :class:`ExtractConfig`
(:mod:`pipeline.extract_config`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from pipeline import hand_identity
from pipeline.calibration import find_sidecar, load_intrinsics
from pipeline.camera_motion import CameraMotion, CameraMotionConfig, CameraMotionEstimator
from pipeline.decoding import Media, content_sha256, folder_timestamps, iter_frames, open_media
from pipeline.depth import apply_depth_maps, fitted_hand_length
from pipeline.depth_maps import DepthIndex, DepthRequest, match_depth
from pipeline.exceptions import InputMediaError
from pipeline.extract_config import ExtractConfig
from pipeline.model import ModelInfo, cache_dir, ensure_model, sha256_file
from pipeline.track_building import build_tracks
from pipeline.tracks import (
    FORMAT_VERSION,
    SIDES,
    HandTracks,
    Intrinsics,
    read_tracks,
    read_tracks_key,
    write_tracks,
)
from pipeline.trajectory import camera_motion_kind, given_motion


def package_version() -> str:
    """The installed hand2robot's version ("unknown" when run from an uninstalled tree)."""
    try:
        return version("hand2robot")
    except PackageNotFoundError:
        return "unknown"


def resolve_intrinsics(
    media: Media,
    intrinsics: Intrinsics | str | Path | None,
    width: int,
    height: int,
    horizontal_fov_deg: float,
) -> Intrinsics:
    """The intrinsics to use: given, else a sidecar file, else the field-of-view default."""
    if isinstance(intrinsics, Intrinsics):
        return intrinsics
    if intrinsics is not None:
        return load_intrinsics(intrinsics, width, height)
    sidecar = find_sidecar(media)
    if sidecar is not None:
        return load_intrinsics(sidecar, width, height)
    return Intrinsics.from_fov(width, height, horizontal_fov_deg)


def cache_key(
    media: Media,
    intrinsics: Intrinsics | str | Path | None,
    config: ExtractConfig,
    model_sha256: str,
    input_sha256: str,
    depth: DepthRequest | None = None,
    camera_motion: str = "static",
) -> str:
    """Key of a hand-track file: input content, model, settings, intrinsics and code version.

    ``depth``: the depth maps asked for (their digest and scale enter the key).
    ``camera_motion``: as :func:`camera_motion_kind` returns it (a file's digest enters the key).
    """
    if isinstance(intrinsics, Intrinsics):
        camera: Any = intrinsics.to_json()
    else:
        path = Path(intrinsics) if intrinsics is not None else find_sidecar(media)
        camera = sha256_file(path) if path is not None and path.is_file() else "fov"
    record = {
        "input": input_sha256,
        "model": model_sha256,
        "settings": asdict(config),
        "intrinsics": camera,
        "format": FORMAT_VERSION,
        "sampling": 3,  # an integer max_fps resamples any rate rounding above it (was: 5% margin)
        "fov": "long side",  # the field of view spans the long side (was: the displayed width)
        # Distance from the angles the hand's segments subtend (was: their lengths in the
        # normalised image plane; before that, landmarker PnP); where PnP's mirror solution fits
        # as well, the landmarker's own view decides (was: SQPnP's answer kept as it came).
        "lift": "ruler angles+envelope, pnp ties to the view",
        # A group of tracks turns to the other sides by position only where its labels weigh
        # less than its neighbours' (was: by position alone).
        "sides": "labels weighed",
        "hand2robot": package_version(),
    }
    if depth is not None:
        record["depth"] = [depth.sha256, depth.scale]
    if camera_motion == "estimate":
        record["camera_motion"] = ["estimate", asdict(CameraMotionConfig())]
        if depth is not None:  # the whole pose from the depth maps (was: rotation only)
            record["camera_motion"].append("pose from depth")
    elif camera_motion != "static":
        record["camera_motion"] = ["file", sha256_file(Path(camera_motion))]
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _detections(
    result: Any, width: int, height: int, frame: int, config: ExtractConfig
) -> list[hand_identity.Detection]:
    found = []
    for landmarks, world, handedness in zip(
        result.hand_landmarks, result.hand_world_landmarks, result.handedness, strict=True
    ):
        right = handedness[0].category_name.lower() == "right"
        right ^= config.selfie
        score = float(handedness[0].score)
        found.append(
            hand_identity.Detection(
                frame=frame,
                probability_right=score if right else 1.0 - score,
                score=score,
                image_keypoints=np.array([[p.x * width, p.y * height] for p in landmarks]),
                world_keypoints=np.array([[p.x, p.y, p.z] for p in world]),
            )
        )
    return hand_identity.suppress_duplicates(found, config.duplicate_overlap)


def with_hand_size(config: ExtractConfig, hand_size: float | None) -> ExtractConfig:
    """``config`` with ``hand_size`` set, when one is given (checked like every setting)."""
    return config if hand_size is None else dataclasses.replace(config, hand_size=hand_size)


def extract_hands(
    path: str | Path,
    intrinsics: Intrinsics | str | Path | None = None,
    *,
    config: ExtractConfig | None = None,
    model: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    sink: Callable[[NDArray[np.uint8]], None] | None = None,
    depth: str | Path | None = None,
    depth_scale: float = 1000.0,
    hand_size: float | None = None,
    camera_motion: str | Path = "static",
) -> HandTracks:
    """Extract per-frame hand poses from a video, GIF, image folder or image.

    Args:
        path: A video file (anything FFmpeg decodes: mp4, mov, webm, avi, GIF), a folder of
            images (natural name order), or one image.
        intrinsics: Camera intrinsics, or the path of an intrinsics file (``.json``/``.npy``,
            see :mod:`pipeline.calibration`); default a sidecar file found beside the input,
            else a pinhole camera of ``config.horizontal_fov_deg``.
        config: Extraction settings.
        model: Path of an official ``hand_landmarker.task``; default the cached PyPI-derived one.
        progress: Called with the number of frames done after each frame.
        sink: Called with every kept frame at full resolution, in order (see
            :func:`pipeline.decoding.iter_frames`); e.g. :meth:`pipeline.encoding.VideoEncoder.add`.
        depth: A folder of per-frame depth maps (16-bit PNG or ``.npy``, matched by file stem
            to an image folder's frames, by order to a video's; :mod:`pipeline.depth_maps`):
            each hand is moved along its viewing rays to the depth the maps show, and an
            estimated camera motion is a whole pose. None: monocular.
        depth_scale: Raw depth units per metre (1000: millimetres).
        hand_size: The person's hand length (wrist crease to middle fingertip) [m], when known;
            sets ``config.hand_size`` (the monocular depth scales with it).
        camera_motion: ``"static"`` (the camera does not move: identity poses), ``"estimate"``
            (each frame's camera rotation from the background, :mod:`pipeline.camera_motion`;
            the world is the first frame's camera), or the path of a camera trajectory (TUM
            text or ``.npy``, :mod:`pipeline.trajectory`). Sets
            ``HandTracks.transform_camera_to_world``; the hands stay in the camera frame.

    Returns:
        One row per input frame (after ``stride``/``max_fps``), with true timestamps; absent
        hands are masked, not dropped.

    Raises:
        InputMediaError: Missing, unreadable or empty input; bad intrinsics file; a depth
            folder with too few or unreadable maps, or a scale that puts a hand beyond 10 m or
            nearer than 5 cm.
        ModelError: The hand model cannot be obtained.
    """
    config = with_hand_size(config or ExtractConfig(), hand_size)
    media = open_media(path)
    info = ensure_model(model)
    request = DepthRequest.of(depth, depth_scale)
    motion = camera_motion_kind(camera_motion)
    return _extract(
        media, intrinsics, config, info, content_sha256(media), progress, sink, request, motion
    )


def _extract(
    media: Media,
    intrinsics: Intrinsics | str | Path | None,
    config: ExtractConfig,
    info: ModelInfo,
    input_sha256: str,
    progress: Callable[[int], None] | None,
    sink: Callable[[NDArray[np.uint8]], None] | None = None,
    depth: DepthRequest | None = None,
    camera_motion: str = "static",
) -> HandTracks:
    if intrinsics is not None and not isinstance(intrinsics, Intrinsics):
        if not Path(intrinsics).is_file():
            raise InputMediaError(f"{intrinsics}: intrinsics file not found")
    detections, timestamps, sources, camera, estimated = _run_landmarker(
        media, intrinsics, config, info, progress, sink, camera_motion == "estimate", depth
    )
    # A trajectory file is read before anything is written: a bad one leaves nothing behind.
    motion = estimated or given_motion(camera_motion, timestamps)
    hands, extra = build_tracks(detections, timestamps, camera, config)
    source_depth = {}
    if depth is not None:
        maps = match_depth(depth, media, sources)
        fitted = apply_depth_maps([*(hands[side] for side in SIDES), *extra], maps, camera)
        hands = dict(zip(SIDES, fitted[: len(SIDES)], strict=True))
        extra = tuple(fitted[len(SIDES) :])
        source_depth = {"depth": str(depth.folder), "depth_sha256": depth.sha256}
        source_depth["depth_scale"] = f"{depth.scale:g}"
        lengths = {hand.side: fitted_hand_length(hand) for hand in hands.values()}
        source_depth["hand_length_m"] = ", ".join(
            f"{side} {length:.3f}" for side, length in lengths.items() if length is not None
        )
    if media.kind == "images":
        _, stamps = folder_timestamps(media.files, config.folder_fps)
    else:
        stamps = "video presentation times" if media.kind == "video" else "single image"
    return HandTracks(
        timestamps=timestamps,
        hands=hands,
        intrinsics=camera,
        source={
            "path": str(media.path),
            "kind": media.kind,
            "sha256": input_sha256,
            "timestamps": stamps,
        }
        | source_depth
        | {"camera_motion": motion.source},
        model={"source": info.source, "sha256": info.sha256},
        settings=asdict(config),
        extra=extra,
        key=cache_key(media, intrinsics, config, info.sha256, input_sha256, depth, camera_motion),
        transform_camera_to_world=motion.transform_camera_to_world,
        camera_rotation_std=motion.rotation_std_deg,
    )


def _run_landmarker(
    media: Media,
    intrinsics: Intrinsics | str | Path | None,
    config: ExtractConfig,
    info: ModelInfo,
    progress: Callable[[int], None] | None,
    sink: Callable[[NDArray[np.uint8]], None] | None,
    estimate: bool = False,
    depth: DepthRequest | None = None,
) -> tuple[
    list[list[hand_identity.Detection]],
    NDArray[np.float64],
    list[int],
    Intrinsics,
    CameraMotion | None,
]:
    from mediapipe import Image, ImageFormat  # Heavy import, only where it is needed.
    from mediapipe.tasks.python import BaseOptions, vision

    video = media.kind != "image"
    options = vision.HandLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(info.path)),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_hands=config.num_hands,
        min_hand_detection_confidence=config.min_detection_confidence,
        min_hand_presence_confidence=config.min_presence_confidence,
        min_tracking_confidence=config.min_tracking_confidence,
    )
    timestamps: list[float] = []
    sources: list[int] = []
    detections: list[list[hand_identity.Detection]] = []
    camera: Intrinsics | None = None
    motion_config = CameraMotionConfig()
    frames = iter_frames(
        media,
        stride=config.stride,
        max_fps=config.max_fps,
        max_size=config.max_size,
        folder_fps=config.folder_fps,
        sink=sink,
        # The model's input image is a copy of the frame (0.6 ms at 720p): made in the decoding
        # thread, beside the model, instead of before each model call.
        prepare=lambda rgb: (
            Image(image_format=ImageFormat.SRGB, data=rgb),
            motion_config.work_image(rgb) if estimate else None,
        ),
    )
    estimator: CameraMotionEstimator | None = None
    # With depth maps the camera's motion is fitted to 3D points: its translation too.
    maps = DepthIndex(depth, media) if estimate and depth is not None else None
    # Closed on the way out, an interrupt included: the decoding thread is stopped and joined
    # here, not left running into the interpreter's exit (where a thread inside a native call
    # is unwound by force: "FATAL: exception not rethrown", an abort after Ctrl-C).
    with (
        contextlib.closing(frames),
        vision.HandLandmarker.create_from_options(options) as landmarker,
    ):
        last_ms = -1
        for frame in frames:
            if camera is None:  # iter_frames holds every frame to the first one's size
                camera = resolve_intrinsics(
                    media, intrinsics, frame.width, frame.height, config.horizontal_fov_deg
                )
                estimator = CameraMotionEstimator(camera, motion_config) if estimate else None
            image, work = frame.prepared
            if video:
                # VIDEO mode needs strictly increasing integer milliseconds.
                stamp_ms = max(int(round(frame.timestamp * 1000)), last_ms + 1)
                last_ms = stamp_ms
                result = landmarker.detect_for_video(image, stamp_ms)
            else:
                result = landmarker.detect(image)
            found = _detections(result, frame.width, frame.height, frame.index, config)
            detections.append(found)
            if estimator is not None:
                hands = [detection.image_keypoints for detection in found]
                load = None if maps is None else functools.partial(maps.load, frame.source)
                estimator.add(work, hands, load)
            timestamps.append(frame.timestamp)
            sources.append(frame.source)
            if progress is not None:
                progress(frame.index + 1)
    if camera is None:
        raise InputMediaError(f"{media.path}: no frames could be decoded")
    motion = estimator.result() if estimator is not None else None
    return detections, np.asarray(timestamps, dtype=np.float64), sources, camera, motion


class CachedTracks(NamedTuple):
    """What :func:`extract_cached` returns (unpacks as ``tracks, path, hit``)."""

    tracks: HandTracks
    """The hand tracks."""
    path: Path
    """The hand-track file they are cached in."""
    hit: bool
    """They were read from the cache, not extracted."""


def extract_cached(
    path: str | Path,
    intrinsics: Intrinsics | str | Path | None = None,
    *,
    config: ExtractConfig | None = None,
    model: str | Path | None = None,
    cache: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    sink: Callable[[NDArray[np.uint8]], None] | None = None,
    depth: str | Path | None = None,
    depth_scale: float = 1000.0,
    hand_size: float | None = None,
    camera_motion: str | Path = "static",
) -> CachedTracks:
    """:func:`extract_hands` through a hand-track cache keyed by content, model and settings.

    Args:
        path: As for :func:`extract_hands`.
        intrinsics: As for :func:`extract_hands`.
        config: As for :func:`extract_hands`.
        model: As for :func:`extract_hands`.
        progress: As for :func:`extract_hands`.
        sink: As for :func:`extract_hands`; not called on a cache hit (nothing is decoded).
        depth: As for :func:`extract_hands` (the maps' content is part of the key).
        depth_scale: As for :func:`extract_hands`.
        hand_size: As for :func:`extract_hands`.
        camera_motion: As for :func:`extract_hands` (a trajectory file's content is part of
            the key).
        cache: A hand-track file to reuse or write (``hand2robot extract --out``), or a folder
            that holds files named by key; default ``<cache dir>/tracks/``.

    Returns:
        The tracks, the file they are stored in, and whether it was a cache hit.
    """
    config = with_hand_size(config or ExtractConfig(), hand_size)
    media = open_media(path)
    info = ensure_model(model)
    input_sha256 = content_sha256(media)
    request = DepthRequest.of(depth, depth_scale)
    motion = camera_motion_kind(camera_motion)
    key = cache_key(media, intrinsics, config, info.sha256, input_sha256, request, motion)
    if cache is None:
        target = cache_dir() / "tracks" / f"{key}.parquet"
    elif Path(cache).is_dir():
        target = Path(cache) / f"{key}.parquet"
    else:
        target = Path(cache)
    if read_tracks_key(target) == key:
        tracks = read_tracks(target)
        # Same content under another name: the tracks describe this input.
        source = dict(tracks.source) | {"path": str(media.path)}
        return CachedTracks(dataclasses.replace(tracks, source=source), target, True)
    tracks = _extract(
        media, intrinsics, config, info, input_sha256, progress, sink, request, motion
    )
    write_tracks(tracks, target)
    return CachedTracks(tracks, target, False)
