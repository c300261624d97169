"""One input, extracted and ready to retarget and write: hand tracks, stored video, frame rate.

Step 1 of the chain the CLI, the API and the batch stages share: download (URLs), extraction
through the hand-track cache (:func:`pipeline.extract_cached`), and the stored video encoded in
the same decoding pass (or decoded again for tracks read from the cache or a hand-track file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.decoding import content_sha256, iter_frames, open_media
from pipeline.depth_maps import DepthRequest, find_depth_sidecar
from pipeline.download import DownloadConfig, fetch, is_url
from pipeline.encoding import EpisodeVideo, VideoConfig, VideoEncoder, nominal_fps
from pipeline.exceptions import DatasetError
from pipeline.extract import ExtractConfig, cache_key, extract_cached
from pipeline.model import cache_dir
from pipeline.tracks import HandTracks, read_tracks
from retarget import Hand2RobotError


@dataclass(frozen=True)
class ExtractedInput:
    """One input, extracted and ready to retarget and write.

    Attributes:
        tracks: The hand tracks (one row per kept frame).
        video: The kept frames encoded for a dataset (a temporary file the caller removes), or
            None when no video is stored.
        fps: The dataset frame rate of the kept frames (:func:`pipeline.encoding.nominal_fps`).
        source_url: The URL the input was downloaded from, if it was.
        cache_hit: The tracks came from the hand-track cache.
    """

    tracks: HandTracks
    video: EpisodeVideo | None
    fps: int
    source_url: str | None = None
    cache_hit: bool = False

    def discard(self) -> None:
        """Remove the temporary video file."""
        if self.video is not None:
            self.video.path.unlink(missing_ok=True)


def record_video(
    media_path: str | Path,
    temp_dir: Path,
    fps: int,
    extract: ExtractConfig,
    config: VideoConfig,
    frames: int,
    frame_size: tuple[int, int] | None = None,
) -> EpisodeVideo:
    """Decode the input's kept frames again and encode them (for tracks read from a cache).

    Raises:
        DatasetError: The input now yields another number of frames than its tracks.
    """
    media = open_media(media_path)
    encoder = _temp_encoder(temp_dir, fps, config, frame_size)
    decoded = iter_frames(
        media, stride=extract.stride, max_fps=extract.max_fps, folder_fps=extract.folder_fps
    )
    with encoder, contextlib.closing(decoded):  # the decoding thread joined on any way out
        for frame in decoded:
            encoder.add(frame.rgb)
    if encoder.frames != frames:
        encoder.path.unlink(missing_ok=True)
        raise DatasetError(
            f"{media_path} now yields {encoder.frames} frames, its hand tracks {frames}: the "
            "input changed since extraction"
        )
    return encoder.result()


def _temp_encoder(
    temp_dir: Path, fps: int, config: VideoConfig, frame_size: tuple[int, int] | None
) -> VideoEncoder:
    temp_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".hand2robot-", suffix=".mp4", dir=temp_dir)
    os.close(handle)
    return VideoEncoder(name, fps, config, frame_size=frame_size)


def extract_input(
    input_path: str | Path,
    *,
    extract: ExtractConfig | None = None,
    video: VideoConfig | None = None,
    temp_dir: str | Path,
    frame_size: tuple[int, int] | None = None,
    intrinsics: str | Path | None = None,
    model: str | Path | None = None,
    cache: str | Path | None = None,
    download: DownloadConfig | None = None,
    progress: Callable[[int], None] | None = None,
    depth: str | Path | None = None,
    depth_scale: float = 1000.0,
    camera_motion: str | Path = "static",
) -> ExtractedInput:
    """Step 1 of the chain, shared by the CLI, the API and the batch stages.

    Extraction goes through the hand-track cache; on a miss the stored video is encoded in the
    same decoding pass (in the decoding thread), on a hit (or for a hand-track file, whose
    source media must still exist) the kept frames are decoded again.

    Args:
        input_path: Video, GIF, image folder, image, hand-track file (``.parquet``), or an
            http(s) URL of one (downloaded into ``<cache dir>/downloads``).
        extract: Extraction settings (a hand-track file keeps its own).
        video: Stored video settings; None stores none.
        temp_dir: Where the temporary video is written (beside the dataset, same filesystem).
        frame_size: Stored (width, height) to fit frames into (an existing dataset's).
        intrinsics: Intrinsics file (see :func:`pipeline.extract_hands`).
        model: An official ``hand_landmarker.task``.
        cache: Hand-track cache (see :func:`pipeline.extract_cached`).
        download: URL download limits.
        progress: Called with frames extracted so far.
        depth: Depth-map folder (see :func:`pipeline.extract_hands`); None: monocular.
        depth_scale: Raw depth units per metre.
        camera_motion: ``static``, ``estimate`` or a trajectory file (see
            :func:`pipeline.extract_hands`).

    Raises:
        Hand2RobotError: Bad input, model, URL or video (see the subclasses).
    """
    temp_dir = Path(temp_dir)
    source_url = None
    if is_url(input_path):
        source_url = str(input_path)
        input_path = fetch(source_url, cache_dir(), download)
    input_path = Path(input_path)
    encoder: VideoEncoder | None = None
    episode_video: EpisodeVideo | None = None
    hit = True
    try:
        if input_path.suffix == ".parquet":
            tracks, media_path, extract, fps = _read_track_file(input_path, video is not None)
        else:
            extract = extract or ExtractConfig()
            media_path = input_path
            fps = _media_fps(media_path, extract)
            if video is not None:
                encoder = _temp_encoder(temp_dir, fps, video, frame_size)
            tracks, _, hit = extract_cached(
                media_path,
                intrinsics,
                config=extract,
                model=model,
                cache=cache,
                progress=progress,
                sink=encoder.add if encoder is not None else None,
                depth=depth,
                depth_scale=depth_scale,
                camera_motion=camera_motion,
            )
            if encoder is not None and not hit:
                encoder.close()
                episode_video = encoder.result()
                encoder = None
        if video is not None and episode_video is None:
            episode_video = record_video(
                media_path, temp_dir, fps, extract, video, tracks.num_frames, frame_size
            )
        return ExtractedInput(tracks, episode_video, fps, source_url, hit)
    except BaseException:
        if episode_video is not None:
            episode_video.path.unlink(missing_ok=True)
        raise
    finally:
        if encoder is not None:
            encoder.abort()


def _read_track_file(path: Path, with_video: bool) -> tuple[HandTracks, Path, ExtractConfig, int]:
    """A hand-track file's tracks, source media, recorded settings and dataset frame rate.

    Raises:
        DatasetError: Its source media is gone and a video is to be stored.
    """
    tracks = read_tracks(path)
    media_path = Path(str(tracks.source.get("path", "")))
    extract = _settings(tracks.settings)
    if not media_path.exists() and with_video:
        raise DatasetError(
            f"{path}: its source {media_path} is not there to take the video "
            "frames from; put it back or pass --no-video"
        )
    fps = (
        _media_fps(media_path, extract)
        if media_path.exists()
        else _fps_from_timestamps(tracks.timestamps)
    )
    return tracks, media_path, extract, fps


def depth_sidecar(input_path: str | Path) -> Path | None:
    """The depth-map folder found beside a local media input, if any.

    None for URLs, hand-track files and inputs without one (see
    :func:`pipeline.depth_maps.find_depth_sidecar`).
    """
    if is_url(input_path) or Path(input_path).suffix == ".parquet":
        return None
    return find_depth_sidecar(input_path)


def input_key(
    input_path: str | Path,
    extract: ExtractConfig,
    model_sha256: str,
    depth: str | Path | None = None,
    depth_scale: float = 1000.0,
    camera_motion: str = "static",
) -> str | None:
    """The hand-track key an input's tracks will have, known before extracting it.

    A hand-track file's own key; for local media the key of its content, the model, the
    settings and the depth maps, if any (:func:`pipeline.extract.cache_key`). None for URLs and
    unreadable inputs (they are known only once fetched or extracted).
    """
    if is_url(input_path):
        return None
    path = Path(input_path)
    try:
        if path.suffix == ".parquet":
            return str(read_tracks(path).key)
        media = open_media(path)
        request = DepthRequest.of(depth, depth_scale)
        sha256 = content_sha256(media)
        return cache_key(media, None, extract, model_sha256, sha256, request, camera_motion)
    except (Hand2RobotError, OSError):
        return None


def _settings(recorded: dict[str, Any]) -> ExtractConfig:
    """The extraction settings a hand-track file records (fields of other versions dropped)."""
    known = {f.name for f in dataclasses.fields(ExtractConfig)}
    return ExtractConfig(**{k: v for k, v in recorded.items() if k in known})


def _media_fps(media_path: Path, extract: ExtractConfig) -> int:
    return nominal_fps(
        open_media(media_path),
        stride=extract.stride,
        max_fps=extract.max_fps,
        folder_fps=extract.folder_fps,
    )


def _fps_from_timestamps(timestamps: NDArray[np.float64]) -> int:
    steps = np.diff(timestamps)
    return max(1, round(1.0 / float(np.median(steps)))) if len(steps) else 1
