"""Stored episode video: the frames hand2robot processed, resized and encoded for a dataset.

The encoder receives every frame the hand extraction keeps (after stride and fps limits), in
order, and writes frame ``k`` at presentation time ``k / fps`` exactly, which is what LeRobot
readers expect (they look frames up by ``from_timestamp + k / fps`` within 1e-4 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.decoding import Media, resamples, source_rate
from pipeline.exceptions import DatasetError

#: Encoders hand2robot writes with, and the pixel format each gets.
CODECS = {"libx264": "yuv420p", "libsvtav1": "yuv420p"}
#: Each encoder's speed presets, fastest first, and the default (see ``scripts/bench_dataset.py``
#: and ``scripts/bench_batch.py``: ultrafast x264 encodes 480 px frames 2-4x faster than
#: veryfast, at 0.8-1.8 dB less PSNR for the same file size).
PRESETS = {
    "libx264": (
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
        "veryslow",
    ),
    "libsvtav1": tuple(str(level) for level in range(13, -1, -1)),
}  # fmt: skip
DEFAULT_PRESETS = {"libx264": "veryfast", "libsvtav1": "10"}


@dataclass(frozen=True)
class VideoConfig:
    """How episode videos are stored.

    Defaults: H.264 at ``preset="veryfast"``, ``crf=23``, a keyframe every 2 frames (as LeRobot's
    own encoder, for fast random access while training), longer side 480 px (policies train on
    224-480 px images; full 720p costs about 4x the encoding time). Measured in
    ``scripts/bench_dataset.py``.
    """

    max_size: int | None = 480
    """Longer side of the stored frames [px]; None keeps the source resolution."""
    codec: str = "libx264"
    """``libx264`` (H.264) or ``libsvtav1`` (AV1, LeRobot's default; slower to encode)."""
    crf: int = 23
    """Constant rate factor: lower is better quality and larger files."""
    preset: str | None = None
    """Encoder speed preset (libx264: ultrafast ... veryslow; libsvtav1: 13 (fastest) ... 0);
    None: the codec's default (:data:`DEFAULT_PRESETS`: veryfast, 10). Always a string once
    the config is made."""
    gop: int = 2
    """Frames between keyframes."""
    threads: int = 1
    """Encoder threads (libx264); 1 leaves the other cores to the hand model."""

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise DatasetError(
                f"unknown video codec {self.codec!r}; valid choices: {', '.join(CODECS)}"
            )
        if self.preset is None:
            object.__setattr__(self, "preset", DEFAULT_PRESETS[self.codec])
        elif str(self.preset) not in PRESETS[self.codec]:
            raise DatasetError(
                f"unknown {self.codec} preset {self.preset!r}; valid choices: "
                f"{', '.join(PRESETS[self.codec])}"
            )
        else:
            object.__setattr__(self, "preset", str(self.preset))
        if self.max_size is not None and self.max_size < 16:
            raise DatasetError(f"video max_size must be >= 16 px or None, got {self.max_size}")
        if self.gop < 1:
            raise DatasetError(f"video gop must be >= 1, got {self.gop}")


def stored_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """(width, height) of stored frames: longer side at most ``max_size``, both even [px]."""
    scale = 1.0 if max_size is None else min(1.0, max_size / max(width, height))
    return (
        max(2, 2 * round(width * scale / 2)),
        max(2, 2 * round(height * scale / 2)),
    )


def nominal_fps(
    media: Media, *, stride: int = 1, max_fps: float | None = None, folder_fps: float = 30.0
) -> int:
    """The integer frame rate a dataset gives the frames kept from ``media`` [Hz].

    LeRobot datasets have one integer ``fps``: frame ``k`` of an episode is at ``k / fps``. This
    is the input's rate (video header, or folder time stamps) after ``stride``, or ``max_fps``
    where :func:`pipeline.decoding.iter_frames` resamples to it, rounded (29.97 -> 30). The true
    time of each frame is kept in the dataset's ``source_timestamp`` column.

    Raises:
        DatasetError: The rate cannot be known from the input.
        InputMediaError: The file is not a readable video.
    """
    rate = source_rate(media, folder_fps)
    if resamples(rate, stride, max_fps):
        assert max_fps is not None
        return max(1, round(max_fps))
    if not rate > 0:
        raise DatasetError(f"{media.path}: the video header gives no frame rate")
    return max(1, round(rate / stride))


@dataclass(frozen=True)
class EpisodeVideo:
    """An MP4 of the input's kept frames, frame ``k`` at ``k / fps`` (a ``VideoEncoder``'s).

    Attributes:
        path: The file (moved into the dataset).
        frames: Frames it holds (must equal the tracks' frames).
        info: The LeRobot video ``info`` block (:meth:`pipeline.encoding.VideoEncoder.info`).
        channel_stats: Per-frame RGB statistics in [0, 1], shape (T, 4, 3): min, max, mean,
            mean of squares.
        letterboxed: Frames were padded to fit a dataset's stored size of another aspect.
    """

    path: Path
    frames: int
    info: dict[str, Any]
    channel_stats: NDArray[np.float64]
    letterboxed: bool = False


def downscale(rgb: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    """Resize to ``size`` (width, height) [px], fast.

    Area averaging by the largest integer factor (OpenCV's fast path), then bilinear for the
    rest (bicubic when that enlarges).

    Measured on 1280x720 -> 480x270: 0.48 ms against 1.98 ms for one non-integer area resize,
    0.4 grey levels apart on average.
    """
    height, width = rgb.shape[:2]
    factor = min(width // size[0], height // size[1])
    if factor >= 2:
        size_down = (width // factor, height // factor)
        rgb = np.asarray(cv2.resize(rgb, size_down, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    if (rgb.shape[1], rgb.shape[0]) == size:
        return np.asarray(rgb, dtype=np.uint8)
    linear = cv2.INTER_LINEAR if rgb.shape[1] > size[0] else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(rgb, size, interpolation=linear), dtype=np.uint8)


def _channel_stats(rgb: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Per-channel min, max, mean and mean of squares in [0, 1], shape (4, 3)."""
    mean, std = cv2.meanStdDev(rgb)
    bounds = [cv2.minMaxLoc(channel)[:2] for channel in cv2.split(rgb)]
    lo, hi = np.array(bounds, dtype=np.float64).T
    mean, std = mean.ravel(), std.ravel()
    return np.stack([lo, hi, mean, std**2 + mean**2]) / np.array(
        [[255.0], [255.0], [255.0], [255.0**2]]
    )


class VideoEncoder:
    """Encode RGB frames into an MP4, frame ``k`` at time ``k / fps``.

    Args:
        path: MP4 file to write.
        fps: Frame rate [Hz] (integer, the dataset's).
        config: Codec settings.
        frame_size: Stored (width, height) [px] to fit every frame into, keeping its aspect
            and padding with black (an existing dataset's size); default from the first frame
            (:func:`stored_size`).

    Every frame must have the first frame's size. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self,
        path: str | Path,
        fps: int,
        config: VideoConfig | None = None,
        frame_size: tuple[int, int] | None = None,
    ) -> None:
        self.path = Path(path)
        self.fps = int(fps)
        self.config = config or VideoConfig()
        self.frames = 0
        self.frame_size = frame_size
        self.letterboxed = False
        self.width = 0
        self.height = 0
        self._source_size: tuple[int, int] | None = None
        self._container: Any = None
        self._stream: Any = None
        self._channel_stats: list[NDArray[np.float64]] = []

    def _open(self, width: int, height: int) -> None:
        import av

        config = self.config
        self._source_size = (width, height)
        if self.frame_size is None:
            self.width, self.height = stored_size(width, height, config.max_size)
        else:
            self.width, self.height = self.frame_size
        self._container = av.open(str(self.path), mode="w", format="mp4")
        options = {"crf": str(config.crf), "g": str(config.gop), "preset": str(config.preset)}
        if config.codec == "libx264":
            options["bf"] = "0"  # no B-frames: decode order is presentation order
            # One thread: the encoder runs in the decoding thread beside the model; its own
            # thread pool would compete with the model for the cores.
            options["threads"] = str(config.threads)
        stream = self._container.add_stream(config.codec, rate=Fraction(self.fps), options=options)
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = CODECS[config.codec]
        stream.time_base = Fraction(1, self.fps)
        stream.codec_context.time_base = Fraction(1, self.fps)
        self._stream = stream

    def add(self, rgb: NDArray[np.uint8]) -> None:
        """Append one frame, shape (h, w, 3) uint8 RGB, at the source resolution."""
        import av

        height, width = rgb.shape[:2]
        if self._container is None:
            self._open(width, height)
        elif (width, height) != self._source_size:
            raise DatasetError(
                f"{self.path}: frame {self.frames} is {width}x{height}, the first was "
                f"{self._source_size[0]}x{self._source_size[1]}"  # type: ignore[index]
            )
        if (width, height) != (self.width, self.height):
            rgb = self._fit(rgb)
        self._channel_stats.append(_channel_stats(rgb))
        # OpenCV's RGB -> I420 is several times faster than swscale's (see pipeline.decoding).
        planes = np.asarray(
            cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420), dtype=np.uint8
        )
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = self.frames
        frame.time_base = Fraction(1, self.fps)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def _fit(self, rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Resize to the stored size; letterbox when the aspect differs."""
        height, width = rgb.shape[:2]
        scale = min(self.width / width, self.height / height)
        size = (min(self.width, round(width * scale)), min(self.height, round(height * scale)))
        resized = downscale(rgb, size)
        if size == (self.width, self.height):
            return resized
        self.letterboxed = True
        canvas = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        top, left = (self.height - size[1]) // 2, (self.width - size[0]) // 2
        canvas[top : top + size[1], left : left + size[0]] = resized
        return canvas

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None

    def result(self) -> EpisodeVideo:
        """The finished file as an :class:`EpisodeVideo` (call after :meth:`close`)."""
        if self._container is not None:
            raise DatasetError(f"{self.path}: close the encoder first")
        if not self.frames:
            raise DatasetError(f"{self.path}: no frame was encoded")
        return EpisodeVideo(
            self.path, self.frames, self.info(), np.stack(self._channel_stats), self.letterboxed
        )

    def abort(self) -> None:
        """Close without flushing and delete the file."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is deleted anyway
                pass
            self._container = None
        self.path.unlink(missing_ok=True)

    def info(self) -> dict[str, Any]:
        """The ``info`` block of a LeRobot video feature."""
        return {
            "video.height": self.height,
            "video.width": self.width,
            "video.codec": "h264" if self.config.codec == "libx264" else "av1",
            "video.pix_fmt": CODECS[self.config.codec],
            "video.is_depth_map": False,
            "video.fps": self.fps,
            "video.channels": 3,
            "has_audio": False,
        }

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def refit_video(
    video: EpisodeVideo, frame_size: tuple[int, int], config: VideoConfig
) -> EpisodeVideo:
    """Re-encode a stored episode video into another (width, height), letterboxed if needed.

    Used when a batch job encoded an input before the dataset's stored size was known (another
    input, written first, set it). Decodes the small stored video, not the source.
    """
    import av

    target = video.path.with_name(video.path.stem + f"-{frame_size[0]}x{frame_size[1]}.mp4")
    encoder = VideoEncoder(target, int(video.info["video.fps"]), config, frame_size=frame_size)
    with encoder, av.open(str(video.path)) as container:
        for frame in container.decode(video=0):
            encoder.add(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
    if encoder.frames != video.frames:
        target.unlink(missing_ok=True)
        raise DatasetError(f"{video.path}: decoded {encoder.frames} of {video.frames} frames")
    return encoder.result()
