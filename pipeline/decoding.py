"""Input media: videos and animated GIFs (PyAV), folders of images, single images.

Every input becomes a stream of :class:`Frame` with a true timestamp and an RGB image the right
way up. Videos keep their own presentation timestamps (variable frame rate preserved) and their
rotation metadata is applied. Folders are read in natural name order (``f2`` before ``f10``);
their timestamps come from the file names when every name ends in a number (see
:func:`folder_timestamps`), else from a frame rate.

Decoding runs (single-threaded) in a background thread, a few frames ahead of the consumer, so
that it overlaps with the landmark model (both release the GIL). On Linux that thread runs at a
lower priority (:data:`DECODE_NICENESS`), so that it yields the core to the model's threads.
"""

from __future__ import annotations

import functools
import hashlib
import os
import queue
import re
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.exceptions import InputMediaError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".avi", ".mkv", ".gif"})
_NUMBER_AT_END = re.compile(r"(\d+(?:\.\d+)?)$")
#: Niceness added to the decoding thread (Linux keeps niceness per thread). The landmarker hands
#: every call to a worker thread of its own and waits for it; beside a decoding thread of equal
#: priority those calls took 0.5-0.8 ms longer per 720p frame, niced about 0.2-0.4 ms (kettle
#: clip; see BENCHMARKS.md). A niced decoder still gets any idle core, so decoding keeps its pace
#: whenever a core is free.
DECODE_NICENESS = 10
#: Integer file-name stamps with this many digits are Unix times in these units [s].
_EPOCH_DIGITS = {10: 1.0, 13: 1e-3, 16: 1e-6, 19: 1e-9}
_T = TypeVar("_T")


@dataclass(frozen=True)
class Media:
    """An input, checked and classified.

    Attributes:
        path: The path given.
        kind: ``"video"`` (also animated GIF), ``"images"`` (a folder) or ``"image"``.
        files: The image files, in order (empty for a video).
    """

    path: Path
    kind: str
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Frame:
    """One decoded input frame.

    Attributes:
        index: Position in the input (after stride and fps limits).
        timestamp: [s] from the start of the input.
        rgb: Shape (h, w, 3) uint8, upright, possibly downscaled (``max_size``).
        width: Width of the upright frame at full resolution [px].
        height: Height of the upright frame at full resolution [px].
    """

    index: int
    timestamp: float
    rgb: NDArray[np.uint8]
    width: int
    height: int
    prepared: Any = None
    """``prepare(rgb)`` when :func:`iter_frames` was given ``prepare`` (made in the decoding
    thread), else None."""
    source: int = 0
    """Position in the input before ``stride`` and ``max_fps`` (the n-th image or video frame)."""


def natural_key(path: Path) -> list[object]:
    """Sort key of natural name order (``f2`` before ``f10``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def open_media(path: str | Path) -> Media:
    """Classify an input path.

    Raises:
        InputMediaError: The path does not exist, or is a folder with no image files.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
            key=natural_key,
        )
        if not files:
            raise InputMediaError(
                f"{path}: folder holds no image files (looked for "
                f"{', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        return Media(path, "images", tuple(files))
    if not path.is_file():
        raise InputMediaError(f"{path}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return Media(path, "image", (path,))
    return Media(path, "video")


def content_sha256(media: Media) -> str:
    """SHA-256 of an input's content (for a folder: of its image names and contents, in order)."""
    digest = hashlib.sha256()
    if media.kind == "video":
        paths = [media.path]
    else:
        paths = list(media.files)
    for path in paths:
        if media.kind == "images":
            digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def folder_timestamps(files: tuple[Path, ...], fps: float) -> tuple[NDArray[np.float64], str]:
    """Timestamps of a folder's frames [s] from their names, and how they were obtained.

    Rules, applied when every file name (without suffix) ends in a number and the numbers
    increase strictly in name order:

    - a number with a decimal point is a time in seconds (``1739654368.000.png``);
    - an integer of 10, 13, 16 or 19 digits is a Unix time in s, ms, us or ns;
    - any other integer is a frame number at ``fps`` (gaps in the numbering are kept).

    Otherwise frames are ``1 / fps`` apart. Timestamps start at 0.
    """
    matches = [_NUMBER_AT_END.search(p.stem) for p in files]
    if all(matches):
        texts = [m.group(1) for m in matches if m]
        numbers = np.array([float(t) for t in texts])
        if len(numbers) == 1 or np.all(np.diff(numbers) > 0):
            if all("." in t for t in texts):
                return numbers - numbers[0], "file names [s]"
            digits = {len(t) for t in texts}
            if len(digits) == 1 and (count := digits.pop()) in _EPOCH_DIGITS:
                unit = _EPOCH_DIGITS[count]
                return (numbers - numbers[0]) * unit, f"file names [Unix, {unit:g} s]"
            return (numbers - numbers[0]) / fps, f"file names [frame numbers at {fps:g} fps]"
    return np.arange(len(files)) / fps, f"{fps:g} fps"


def _read_image(path: Path) -> NDArray[np.uint8]:
    # IMREAD_COLOR applies the EXIF orientation.
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputMediaError(f"{path}: not a readable image")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _downscale(rgb: NDArray[np.uint8], max_size: int | None) -> NDArray[np.uint8]:
    if max_size is None or max(rgb.shape[:2]) <= max_size:
        return rgb
    scale = max_size / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _to_rgb(frame: Any) -> NDArray[np.uint8]:
    """RGB of a decoded frame.

    Planar YUV 4:2:0 goes through OpenCV's SIMD conversion: measured 0.44 ms against swscale's
    2.1 ms for a 1280x720 frame.
    """
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        planes = frame.to_ndarray(format="yuv420p")
        return np.asarray(cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420), dtype=np.uint8)
    return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def _video_frames(path: Path) -> Iterator[tuple[float, Callable[[], NDArray[np.uint8]]]]:
    """(timestamp [s], its upright RGB on call) of a video's frames, in presentation order.

    The RGB conversion (1.3 ms for a 720p frame, about as long as decoding it) is left to the
    caller, so that frames thinned out by ``stride`` or ``max_fps`` are decoded but not
    converted.
    """
    import av  # PyAV's import is cheap, but keep media modules importable without FFmpeg.

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise InputMediaError(f"{path}: not a readable video ({err})") from None
    with container:
        if not container.streams.video:
            raise InputMediaError(f"{path}: holds no video stream")
        stream = container.streams.video[0]
        # One decoding thread: it runs beside the landmark model (which keeps one core busy);
        # FFmpeg's frame threads would compete with the model (measured on 2 cores: 13.6 ms per
        # 720p frame end to end with them, 12.5 ms without).
        stream.thread_type = "NONE"
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        first: float | None = None
        try:
            for index, frame in enumerate(container.decode(stream)):
                if frame.time is not None:
                    time = float(frame.time)
                elif rate > 0:
                    time = index / rate
                else:
                    raise InputMediaError(f"{path}: frames carry no timestamps and the fps is 0")
                first = time if first is None else first
                yield time - first, functools.partial(_upright_rgb, frame, path)
        except av.error.FFmpegError as err:
            raise InputMediaError(f"{path}: decoding failed ({err})") from None


def _upright_rgb(frame: Any, path: Path) -> NDArray[np.uint8]:
    """RGB of a decoded frame of the video ``path``, display rotation applied, shape (h, w, 3)."""
    import av

    try:
        rgb = _to_rgb(frame)
    except av.error.FFmpegError as err:
        raise InputMediaError(f"{path}: frame conversion failed ({err})") from None
    # The display matrix rotates the stored frame counterclockwise by this angle.
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    if quarter_turns:
        rgb = np.rot90(rgb, quarter_turns)
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _raw_frames(
    media: Media, fps: float
) -> Iterator[tuple[float, Callable[[], NDArray[np.uint8]]]]:
    """(timestamp [s], its RGB on call) of every input frame: images are read only if asked."""
    if media.kind == "video":
        yield from _video_frames(media.path)
        return
    times, _ = folder_timestamps(media.files, fps)
    for time, path in zip(times, media.files, strict=True):
        yield float(time), functools.partial(_read_image, path)


def source_rate(media: Media, folder_fps: float = 30.0) -> float:
    """Frame rate of an input [Hz]: the video header's, or a folder's from its time stamps.

    Returns 0 when a video header gives none (and 1 for a single image).
    """
    if media.kind == "image":
        return 1.0
    if media.kind == "images":
        times, _ = folder_timestamps(media.files, folder_fps)
        steps = np.diff(times)
        return 1.0 / float(np.median(steps)) if len(steps) else folder_fps
    import av

    try:
        with av.open(str(media.path)) as container:
            if not container.streams.video:
                raise InputMediaError(f"{media.path}: holds no video stream")
            stream = container.streams.video[0]
            guess = stream.average_rate or stream.guessed_rate or stream.base_rate
            return float(guess) if guess else 0.0
    except (av.error.FFmpegError, OSError) as err:
        raise InputMediaError(f"{media.path}: not a readable video ({err})") from None


def resamples(rate: float, stride: int, max_fps: float | None) -> bool:
    """Whether ``max_fps`` thins a ``rate`` [Hz] input after ``stride``.

    Yes where ``max_fps`` is more than 5% below the rate, and, for an integer ``max_fps`` (a
    dataset's rate), wherever the rate rounds above it: a 25 fps clip goes into a 24 fps
    dataset at 24 fps, a 29.97 fps one into a 30 fps dataset whole.
    """
    if max_fps is None:
        return False
    if rate <= 0 or max_fps < 0.95 * rate / stride:
        return True
    return float(max_fps).is_integer() and round(rate / stride) > max_fps


def _nearest_to_slots(items: Iterator[tuple[float, _T]], fps: float) -> Iterator[tuple[float, _T]]:
    """The frame nearest to each time slot ``t0 + k / fps``, each frame at most once.

    A slot whose nearest frame already filled the slot before (a gap in the input) stays
    empty; no frame is repeated. Slots after the last frame are not filled.
    """
    period = 1.0 / fps
    slot: float | None = None
    previous: tuple[float, _T, bool] | None = None  # (time, item, used)
    for time, item in items:
        if slot is None:
            slot = time + period
            previous = (time, item, True)
            yield time, item
            continue
        used = False
        while time >= slot:
            if previous is not None and slot - previous[0] <= time - slot:
                if not previous[2]:
                    yield previous[0], previous[1]
                    previous = (previous[0], previous[1], True)
            elif not used:
                yield time, item
                used = True
            slot += period
        previous = (time, item, used)


def iter_frames(
    media: Media,
    *,
    stride: int = 1,
    max_fps: float | None = None,
    max_size: int | None = None,
    folder_fps: float = 30.0,
    prefetch: int = 4,
    sink: Callable[[NDArray[np.uint8]], None] | None = None,
    prepare: Callable[[NDArray[np.uint8]], Any] | None = None,
) -> Generator[Frame, None, None]:
    """Decode an input's frames.

    Args:
        media: From :func:`open_media`.
        stride: Keep every ``stride``-th frame.
        max_fps: Resample to this rate [Hz] when the input (after ``stride``) is faster: the
            frame nearest to each slot ``t0 + k / max_fps`` is kept, so inputs of 24, 28 and
            30 fps all give ``max_fps`` frames per second. Inputs no faster are kept whole.
        max_size: Downscale so that the longer side is at most this [px] (the model input only;
            coordinates stay in full-resolution pixels).
        folder_fps: Frame rate for a folder whose names carry no times [Hz].
        prefetch: Frames decoded ahead in a background thread (0 decodes inline).
        sink: Called with each kept frame at full resolution (upright RGB, shape (h, w, 3)),
            in order, in the decoding thread (a video encoder runs there beside the model).
        prepare: Called with each frame's (downscaled) RGB in the decoding thread; its result
            is the frame's ``prepared`` (e.g. the model's input image, copied there rather than
            on the model's thread).

    Raises:
        InputMediaError: Unreadable file, not a video, no frames.
    """
    thin = resamples(source_rate(media, folder_fps), stride, max_fps) if max_fps else False

    def frames() -> Generator[Frame, None, None]:
        strided = (
            (time, (number, load))
            for number, (time, load) in enumerate(_raw_frames(media, folder_fps))
            if number % stride == 0
        )
        kept = 0
        first_size: tuple[int, int] | None = None
        # With a decoding thread, it keeps the last frames alive a little longer than the
        # consumer, so that their memory is released here and not on the model's thread
        # (freeing a 720p model image takes about 0.2 ms).
        recent: deque[Frame] = deque(maxlen=prefetch + 3 if prefetch > 0 else 0)
        chosen = _nearest_to_slots(strided, max_fps) if thin and max_fps else strided
        for time, (source, load) in chosen:
            rgb = load()  # Only kept frames are converted (or read, in a folder).
            height, width = rgb.shape[:2]
            first_size = first_size or (width, height)
            if (width, height) != first_size:
                raise InputMediaError(_size_changed(media, kept, (width, height), first_size))
            if sink is not None:
                sink(rgb)
            small = _downscale(rgb, max_size)
            ready = prepare(small) if prepare is not None else None
            frame = Frame(kept, time, small, width, height, ready, source)
            recent.append(frame)
            yield frame
            kept += 1
        if kept == 0:
            raise InputMediaError(f"{media.path}: no frames could be decoded")

    if prefetch <= 0:
        return frames()
    return _prefetched(frames(), prefetch)


def _size_changed(media: Media, index: int, size: tuple[int, int], first: tuple[int, int]) -> str:
    message = (
        f"{media.path}: frame {index} is {size[0]}x{size[1]}, the first was "
        f"{first[0]}x{first[1]}; one input keeps one size"
    )
    if media.kind == "images":
        message += (
            ": the images of a folder are one sequence; give images of other sizes as "
            f"separate inputs (for example {media.path}/*.jpg)"
        )
    return message


_DONE = object()


def _prefetched(source: Iterator[Frame], depth: int) -> Generator[Frame, None, None]:
    """Run ``source`` in a daemon thread, ``depth`` items ahead; errors are re-raised here.

    The thread starts at once, not at the first ``next``: the first frames decode while the
    caller still sets up (the landmark model loads in about 25 ms). It stops when the returned
    iterator is exhausted, closed or garbage-collected, even if it was never started.
    """
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        _lower_own_priority(DECODE_NICENESS)
        try:
            for item in source:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, re-raised there.
            put(err)

    thread = threading.Thread(target=work, name="hand2robot-decode", daemon=True)
    thread.start()
    drained = _drain(items, stop, thread)
    weakref.finalize(drained, stop.set)
    return drained


def _drain(
    items: queue.Queue[object], stop: threading.Event, thread: threading.Thread
) -> Generator[Frame, None, None]:
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5.0)


def _lower_own_priority(niceness: int) -> None:
    """Add ``niceness`` to the calling thread's nice value (Linux only: per process elsewhere)."""
    if sys.platform.startswith("linux") and niceness > 0:
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + niceness))


def estimate_frame_count(media: Media) -> int | None:
    """Frames the input holds, from its header (None when the header does not say)."""
    if media.kind != "video":
        return len(media.files)
    import av

    try:
        with av.open(str(media.path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            if stream.duration and stream.time_base and stream.average_rate:
                return int(round(float(stream.duration * stream.time_base * stream.average_rate)))
    except (av.error.FFmpegError, OSError):
        return None
    return None
