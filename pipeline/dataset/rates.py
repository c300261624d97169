"""One frame rate per dataset, chosen before any work: every input is resampled to it.

LeRobot datasets have one integer ``fps``. Web video comes at 24, 25, 29.97, 30 and 60 fps, so
hand2robot chooses the dataset's rate up front (:func:`dataset_rate`) and extracts every input at
it: a faster input keeps the source frame nearest each ``k / fps`` slot (its true times stay in
``source_timestamp``), one within rounding (29.97 for 30) keeps every frame. An input slower than
the rate is refused with the reason: filling its missing slots would repeat frames (a hand that
stops dead, then jumps), which a policy would learn as motion. So the default rate is the
slowest input's: nothing is repeated, and faster inputs lose only frames.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.dataset.config import DatasetConfig
from pipeline.decoding import open_media, source_rate
from pipeline.download import is_url
from pipeline.encoding import nominal_fps
from pipeline.exceptions import DatasetError
from pipeline.extract_config import ExtractConfig
from retarget import Hand2RobotError


def existing_rate(root: str | Path) -> int | None:
    """The frame rate of the dataset at ``root``, None where there is none yet."""
    info = Path(root) / "meta" / "info.json"
    if not info.is_file():
        return None
    try:
        return int(json.loads(info.read_text())["fps"])
    except (ValueError, KeyError, TypeError):
        return None


def input_rate(input_path: str | Path, extract: ExtractConfig) -> int | None:
    """The integer rate a local video or image folder gives under ``extract``.

    Its own ``stride``/``max_fps`` apply. None for URLs, hand-track files, single images and
    unreadable inputs (they are judged when they are appended).
    """
    if is_url(input_path) or Path(input_path).suffix == ".parquet":
        return None
    try:
        media = open_media(input_path)
        if media.kind == "image" or not source_rate(media, extract.folder_fps) > 0:
            return None
        return nominal_fps(
            media, stride=extract.stride, max_fps=extract.max_fps, folder_fps=extract.folder_fps
        )
    except (Hand2RobotError, OSError):
        return None


def dataset_rate(
    asked: int | None,
    roots: Iterable[str | Path],
    inputs: Sequence[str | Path],
    extract: ExtractConfig,
) -> int | None:
    """The rate the datasets at ``roots`` get.

    ``asked``, else the one they hold, else the slowest input's; None when nothing tells (one
    image, URLs only).

    Raises:
        DatasetError: ``asked`` differs from an existing dataset's rate, or the datasets hold
            different rates.
    """
    held = {rate for rate in (existing_rate(root) for root in roots) if rate is not None}
    if len(held) > 1:
        raise DatasetError(
            f"the datasets hold different frame rates ({', '.join(map(str, sorted(held)))}); "
            "give each its own --out"
        )
    if held:
        rate = held.pop()
        if asked is not None and asked != rate:
            raise DatasetError(
                f"--fps {asked}: the dataset already has {rate} fps; give --fps {rate} (or "
                "none), or another --out for a dataset of another rate"
            )
        return rate
    if asked is not None:
        return asked
    rates = [rate for rate in (input_rate(item, extract) for item in inputs) if rate is not None]
    return min(rates) if rates else None


def extract_for(
    root: str | Path,
    dataset: DatasetConfig,
    extract: ExtractConfig | None,
    input_path: str | Path,
) -> ExtractConfig | None:
    """One input's extraction settings for the dataset at ``root``, at its rate.

    The rate: ``dataset.fps``, else the dataset's, else (a new dataset) the input's own; a
    hand-track file keeps the settings it was extracted with (None: its own).
    """
    if Path(str(input_path)).suffix == ".parquet":
        return extract
    fps = dataset_rate(dataset.fps, [root], [input_path], extract or ExtractConfig())
    return at_rate(extract or ExtractConfig(), fps)


def at_rate(extract: ExtractConfig, fps: int | None) -> ExtractConfig:
    """``extract`` resampling to ``fps`` (its ``max_fps``); unchanged for None.

    Raises:
        DatasetError: A ``max_fps`` below the dataset's rate (it could not fill the rate).
    """
    if fps is None:
        return extract
    if extract.max_fps is not None and extract.max_fps < fps:
        raise DatasetError(
            f"--max-fps {extract.max_fps:g} is below the dataset's rate of {fps} fps: give "
            f"--fps {int(extract.max_fps)} for a new dataset, or leave --max-fps out"
        )
    return dataclasses.replace(extract, max_fps=float(fps))
