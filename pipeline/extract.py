"""Hand pose extraction from video: MediaPipe landmarks, handedness, metric wrist pose by PnP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.exceptions import InputMediaError
from pipeline.model import ModelInfo, ensure_model, sha256_file
from pipeline.tracks import SIDES, HandTrack, HandTracks, Intrinsics
from retarget import hand_frame_from_keypoints


@dataclass(frozen=True)
class ExtractConfig:
    """Extraction settings (all of them are part of a hand-track file's cache key)."""

    num_hands: int = 2
    """Hands the landmarker looks for. 1 is about twice as fast on one-hand clips (the palm
    detector then runs only when tracking is lost)."""
    horizontal_fov_deg: float = 60.0
    """Field of view assumed when no intrinsics are given [deg]."""
    selfie: bool = False
    """Input is mirrored (front camera): swap the detector's Left/Right labels."""
    min_detection_confidence: float = 0.5
    """Palm detector threshold."""
    min_tracking_confidence: float = 0.5
    """Landmark tracking threshold (below it the palm detector runs again)."""

    def __post_init__(self) -> None:
        if self.num_hands not in (1, 2):
            raise InputMediaError(f"num_hands must be 1 or 2, got {self.num_hands}")
        if not 10.0 <= self.horizontal_fov_deg <= 170.0:
            raise InputMediaError(
                "horizontal_fov_deg must be within [10, 170] degrees, got "
                f"{self.horizontal_fov_deg}"
            )


def _frames(path: Path) -> Iterator[tuple[float, NDArray[np.uint8]]]:
    """Decode a video with PyAV: (timestamp [s], RGB frame) in presentation order."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise InputMediaError(f"{path}: cannot open as video ({err})") from None
    with container:
        if not container.streams.video:
            raise InputMediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        first: float | None = None
        try:
            for index, frame in enumerate(container.decode(stream)):
                if frame.time is not None:
                    time = float(frame.time)
                else:
                    rate = float(stream.average_rate or 0)
                    if rate <= 0:
                        raise InputMediaError(f"{path}: frames carry no timestamps and fps is 0")
                    time = index / rate
                first = time if first is None else first
                yield time - first, np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        except av.error.FFmpegError as err:
            raise InputMediaError(f"{path}: decoding failed ({err})") from None


def solve_wrist_pose(
    world_keypoints: NDArray[np.float64],
    image_keypoints: NDArray[np.float64],
    intrinsics: Intrinsics,
    side: str,
) -> tuple[NDArray[np.float64], float]:
    """Metric pose of the hand frame H in the camera frame, by PnP.

    Args:
        world_keypoints: Shape (21, 3) [m], the landmarker's hand-centred metric frame W.
        image_keypoints: Shape (21, 2) [px].
        intrinsics: Camera matrix and distortion (the points are undistorted by OpenCV).
        side: ``"left"`` or ``"right"`` (sets the sign of H's palm normal).

    Returns:
        ``transform_wrist_to_camera`` (4, 4) and the mean reprojection error [px].
    """
    ok, rvec, tvec = cv2.solvePnP(
        world_keypoints,
        image_keypoints,
        intrinsics.matrix,
        intrinsics.distortion,
        flags=cv2.SOLVEPNP_SQPNP,
    )
    if not ok:
        return np.full((4, 4), np.nan), float("nan")
    projected, _ = cv2.projectPoints(
        world_keypoints, rvec, tvec, intrinsics.matrix, intrinsics.distortion
    )
    error = float(np.linalg.norm(projected.reshape(-1, 2) - image_keypoints, axis=1).mean())
    transform_world_to_camera = np.eye(4)
    transform_world_to_camera[:3, :3] = cv2.Rodrigues(rvec)[0]
    transform_world_to_camera[:3, 3] = tvec.ravel()
    transform_hand_to_world = hand_frame_from_keypoints(world_keypoints, side)[0]  # type: ignore[arg-type]
    return transform_world_to_camera @ transform_hand_to_world, error


def extract_hands(
    path: str | Path,
    intrinsics: Intrinsics | None = None,
    *,
    config: ExtractConfig | None = None,
    model: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> HandTracks:
    """Extract per-frame hand poses from a video.

    Args:
        path: A video file (anything PyAV/FFmpeg decodes: mp4, mov, webm, avi, GIF).
        intrinsics: Camera intrinsics; default a pinhole camera of ``config.horizontal_fov_deg``.
        config: Extraction settings.
        model: Path of an official ``hand_landmarker.task``; default the cached PyPI-derived one.
        progress: Called with the number of frames done after each frame.

    Returns:
        One row per decoded frame, with true timestamps; absent hands are masked, not dropped.

    Raises:
        InputMediaError: Unreadable file, no video stream, no frames.
        ModelError: The hand model cannot be obtained.
    """
    from mediapipe import Image, ImageFormat  # Heavy import, only where it is needed.
    from mediapipe.tasks.python import BaseOptions, vision

    config = config or ExtractConfig()
    path = Path(path)
    if not path.is_file():
        raise InputMediaError(f"{path}: no such file")
    info: ModelInfo = ensure_model(model)
    options = vision.HandLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(info.path)),
        running_mode=vision.RunningMode.VIDEO,
        num_hands=config.num_hands,
        min_hand_detection_confidence=config.min_detection_confidence,
        min_tracking_confidence=config.min_tracking_confidence,
    )
    timestamps: list[float] = []
    rows: dict[str, list[tuple[float, NDArray[np.float64], NDArray[np.float64]] | None]] = {
        side: [] for side in SIDES
    }
    with vision.HandLandmarker.create_from_options(options) as landmarker:
        last_ms = -1
        for index, (time, rgb) in enumerate(_frames(path)):
            if intrinsics is None:
                intrinsics = Intrinsics.from_fov(
                    rgb.shape[1], rgb.shape[0], config.horizontal_fov_deg
                )
            # VIDEO mode needs strictly increasing integer milliseconds.
            stamp_ms = max(int(round(time * 1000)), last_ms + 1)
            last_ms = stamp_ms
            result = landmarker.detect_for_video(
                Image(image_format=ImageFormat.SRGB, data=np.ascontiguousarray(rgb)), stamp_ms
            )
            timestamps.append(time)
            best: dict[str, tuple[float, NDArray[np.float64], NDArray[np.float64]]] = {}
            for landmarks, world, handedness in zip(
                result.hand_landmarks, result.hand_world_landmarks, result.handedness, strict=True
            ):
                label = handedness[0].category_name.lower()
                if config.selfie:
                    label = "left" if label == "right" else "right"
                score = float(handedness[0].score)
                image = np.array([[p.x * rgb.shape[1], p.y * rgb.shape[0]] for p in landmarks])
                metric = np.array([[p.x, p.y, p.z] for p in world])
                if label not in best or score > best[label][0]:
                    best[label] = (score, image, metric)
            for side in SIDES:
                rows[side].append(best.get(side))
            if progress is not None:
                progress(index + 1)
    if not timestamps or intrinsics is None:
        raise InputMediaError(f"{path}: no frames could be decoded")
    frames = len(timestamps)
    hands = {}
    for side in SIDES:
        track = HandTrack.empty(side, frames)
        for t, row in enumerate(rows[side]):
            if row is None:
                continue
            score, image, metric = row
            track.present[t] = True
            track.score[t] = score
            track.image_keypoints[t] = image
            track.world_keypoints[t] = metric
            pose, error = solve_wrist_pose(metric, image, intrinsics, side)
            track.transform_wrist_to_camera[t] = pose
            track.reprojection_error[t] = error
        hands[side] = track
    return HandTracks(
        timestamps=np.asarray(timestamps),
        hands=hands,
        intrinsics=intrinsics,
        source={"path": str(path), "sha256": sha256_file(path)},
        model={"source": info.source, "sha256": info.sha256},
        settings=asdict(config),
    )
