"""What a batch job runs on: its inputs, the dataset of each robot, and what they already hold."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from pipeline.batch.config import BatchError
from pipeline.dataset import PROVENANCE_PATH
from pipeline.decoding import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    iter_frames,
    open_media,
)
from pipeline.depth_maps import is_depth_sidecar
from pipeline.download import is_url
from pipeline.encoding import stored_size
from pipeline.exceptions import InputMediaError


def dataset_roots(out: str | Path, robots: Sequence[str]) -> dict[str, Path]:
    """Dataset folder per robot: ``out`` itself for one robot, ``out/<robot>`` for several.

    One robot goes into ``out/<robot>`` too where ``out`` already holds per-robot datasets (an
    earlier job with several robots), so a robot can be added to such a folder later.

    Raises:
        BatchError: Several robots for an ``out`` that is itself one robot's dataset.
    """
    out = Path(out)
    single = (out / PROVENANCE_PATH).is_file()
    if len(robots) == 1 and not _holds_robot_datasets(out):
        return {robots[0]: out}
    if single:
        raise BatchError(
            f"{out} is the dataset of one robot; with several robots --out names a folder that "
            f"gets one dataset per robot (<out>/<robot>/): give a new folder, or one robot"
        )
    return {robot: out / robot for robot in robots}


def _holds_robot_datasets(out: Path) -> bool:
    """Whether ``out`` is a folder of per-robot datasets (and no dataset itself)."""
    if not out.is_dir() or (out / PROVENANCE_PATH).is_file():
        return False
    return any((child / PROVENANCE_PATH).is_file() for child in out.iterdir() if child.is_dir())


def _is_media_folder(folder: Path) -> bool:
    """An image sequence: images (and sidecar files such as calibration.json), no videos."""
    suffixes = [p.suffix.lower() for p in folder.iterdir() if p.is_file()]
    has_images = any(suffix in IMAGE_SUFFIXES for suffix in suffixes)
    return has_images and not any(suffix in VIDEO_SUFFIXES for suffix in suffixes)


def expand_inputs(specs: Sequence[str | Path]) -> list[str]:
    """The inputs named by files, folders, globs, text files of paths/URLs, and URLs.

    - a URL is one input;
    - a ``.txt`` file lists inputs, one per line (``#`` comments and blank lines skipped; paths
      relative to the file);
    - a folder that holds images and no videos is one image-sequence input (sidecars such as
      ``calibration.json`` may sit beside them); any other folder gives each visible file and
      image-sequence subfolder inside as an input (so a corrupt or non-video file becomes an
      error record, not a silent skip);
    - a glob gives every match;
    - a depth sidecar (``X_depth/`` beside the input ``X.mp4`` or ``X/``) is not an input.

    Order is kept; repeats are dropped.

    Raises:
        BatchError: A name that matches nothing.
    """
    found: list[str] = []
    for spec in specs:
        text = str(spec)
        if is_url(text):
            found.append(text)
            continue
        path = Path(text)
        if path.suffix == ".txt" and path.is_file():
            lines = [line.strip() for line in path.read_text().splitlines()]
            listed = [line for line in lines if line and not line.startswith("#")]
            found.extend(
                entry if is_url(entry) else str((path.parent / entry).resolve()) for entry in listed
            )
        elif path.is_dir():
            if _is_media_folder(path):
                found.append(str(path))
            else:
                for child in sorted(path.iterdir()):
                    if child.name.startswith("."):
                        continue
                    if child.is_file() or (child.is_dir() and _is_media_folder(child)):
                        found.append(str(child))
        elif path.exists():
            found.append(str(path))
        else:
            matches = sorted(glob.glob(text))
            if not matches:
                raise BatchError(f"{text}: no such file, folder, list or URL, and no glob match")
            found.extend(matches)
    # A depth-map folder beside its input is that input's sidecar, not an input.
    unique = [item for item in dict.fromkeys(found) if is_url(item) or not is_depth_sidecar(item)]
    if not unique:
        raise BatchError("no inputs found in " + ", ".join(map(str, specs)))
    return unique


PROBED_INPUTS = 32
"""Inputs whose first frame :func:`first_stored_size` looks at."""


def first_stored_size(inputs: Sequence[str], max_size: int | None) -> tuple[int, int] | None:
    """The stored video size a new dataset takes, from the inputs as a whole.

    The first :data:`PROBED_INPUTS` local inputs that decode are looked at (their displayed
    first frame); the orientation most of them have (landscape, portrait or square; a tie goes to
    landscape) wins, and the size is that of the first input of that orientation. The others are
    letterboxed into it (the batch summary counts them). Fixed before extraction so that every
    actor encodes at that size at once, and independent of which input finishes first.
    """
    sizes: list[tuple[int, int]] = []
    for item in inputs:
        if len(sizes) == PROBED_INPUTS:
            break
        if is_url(item) or item.endswith(".parquet"):
            continue
        try:
            frames = iter_frames(open_media(item), prefetch=0)
            try:
                first = next(frames)
            finally:
                getattr(frames, "close", lambda: None)()  # closes the container now
        except (InputMediaError, OSError, StopIteration):
            continue
        sizes.append((first.width, first.height))
    if not sizes:
        return None

    def orientation(size: tuple[int, int]) -> int:
        return (size[0] > size[1]) - (size[0] < size[1])  # 1 landscape, -1 portrait, 0 square

    counts = {o: sum(orientation(s) == o for s in sizes) for o in (1, -1, 0)}
    chosen = max(counts, key=lambda o: counts[o])  # dict order: landscape first on a tie
    width, height = next(s for s in sizes if orientation(s) == chosen)
    return stored_size(width, height, max_size)
