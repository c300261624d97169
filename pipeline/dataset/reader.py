"""Reading an existing dataset: its metadata for an append, and what ``inspect`` shows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dataset.layout import (
    CODEBASE_VERSION,
    EPISODES_PATH,
    INFO_PATH,
    PROVENANCE_PATH,
    TASKS_PATH,
)
from pipeline.exceptions import DatasetError
from retarget import Flag


@dataclass
class ExistingDataset:
    """The metadata of a dataset hand2robot wrote.

    Attributes:
        info: ``meta/info.json``.
        provenance: ``meta/hand2robot.json``.
        episodes: ``meta/episodes``, one row per episode.
        tasks: Task strings, by task index.
    """

    info: dict[str, Any]
    provenance: dict[str, Any]
    episodes: pa.Table
    tasks: list[str]


def read_existing(root: Path, writing: bool = True) -> ExistingDataset | None:
    """The dataset at ``root``; None for a missing or empty folder.

    ``writing``: ``root`` is where a dataset is to be written (``--out``), so the errors say
    what ``--out`` takes; False: a dataset to read (``inspect``, ``adopt --from``).

    Raises:
        DatasetError: A file, a folder that is not a dataset, a dataset hand2robot did not
            write, unreadable metadata or another codebase version.
    """
    if not root.exists():
        return None
    wanted = "--out takes a new or empty folder, or" if writing else "give"
    if not root.is_dir():
        raise DatasetError(f"{root} is a file; {wanted} a dataset folder hand2robot wrote")
    if not any(root.iterdir()):
        return None
    info_path = root / INFO_PATH
    provenance_path = root / PROVENANCE_PATH
    if not info_path.is_file():
        raise DatasetError(
            f"{root} is a non-empty folder without meta/info.json, not a dataset; {wanted} a "
            "dataset folder hand2robot wrote"
        )
    if not provenance_path.is_file():
        raise DatasetError(
            f"{root} is a LeRobot dataset that hand2robot did not write (no {PROVENANCE_PATH}); "
            "hand2robot only reads and appends to its own surrogate datasets. If LeRobot's "
            "tools (lerobot-edit-dataset) made it from hand2robot datasets, write the "
            f"provenance back first: hand2robot adopt {root} --from SOURCE_DATASET"
        )
    import pandas as pd

    try:
        info = json.loads(info_path.read_text())
        provenance = json.loads(provenance_path.read_text())
        episodes = pq.read_table(root / EPISODES_PATH)
        tasks = pd.read_parquet(root / TASKS_PATH)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise DatasetError(f"{root}: dataset metadata is unreadable ({err})") from None
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise DatasetError(
            f"{root}: codebase_version {info.get('codebase_version')!r}; hand2robot appends to "
            f"{CODEBASE_VERSION} datasets only"
        )
    order = tasks.sort_values("task_index").index
    return ExistingDataset(info, provenance, episodes, [str(t) for t in order])


def frame_columns(table: pa.Table) -> dict[str, Any]:
    """A data table's columns as NumPy arrays, one row per frame.

    A list column (a vector feature) comes out with shape (frames, width).
    """
    rows = {}
    for name in table.column_names:
        column = table[name].combine_chunks()
        if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
            flat = column.flatten().to_numpy(zero_copy_only=False)
            rows[name] = flat.reshape(table.num_rows, -1)
        else:
            rows[name] = column.to_numpy(zero_copy_only=False)
    return rows


def stored_video_size(root: str | Path, camera: str) -> tuple[int, int] | None:
    """(width, height) of an existing dataset's stored frames, None for a new dataset [px]."""
    info_path = Path(root) / INFO_PATH
    if not info_path.is_file():
        return None
    try:
        features = json.loads(info_path.read_text()).get("features", {})
        feature = features.get(f"observation.images.{camera}")
    except (OSError, ValueError, AttributeError) as err:
        raise DatasetError(f"{info_path}: unreadable ({err})") from None
    if feature is None:
        return None
    height, width = feature["shape"][:2]
    return int(width), int(height)


def stored_robot(root: str | Path) -> str | None:
    """The robot of the dataset at ``root`` (``info.json``'s ``robot_type``), None for none."""
    info_path = Path(root) / INFO_PATH
    if not info_path.is_file():
        return None
    try:
        return str(json.loads(info_path.read_text()).get("robot_type"))
    except (OSError, ValueError, AttributeError) as err:
        raise DatasetError(f"{info_path}: unreadable ({err})") from None


def held_inputs(root: str | Path) -> set[tuple[str, str]]:
    """(hand-track key, hand asked for) of every input the dataset at ``root`` holds.

    The key names the input's content, the hand model and the extraction settings
    (:func:`pipeline.extract.cache_key`); an input with the same key and hand is the same input
    with the same settings. Empty for a folder that holds no dataset yet.
    """
    path = Path(root) / PROVENANCE_PATH
    if not path.is_file():
        return set()
    provenance = json.loads(path.read_text())
    return {
        (str(record.get("tracks_key")), str(record.get("hand_requested", record.get("hand"))))
        for record in provenance.get("inputs", [])
    }


def describe_dataset(root: str | Path) -> dict[str, Any]:
    """What ``hand2robot inspect`` shows: totals, flag counts by reason, episodes, provenance.

    Raises:
        DatasetError: Not a dataset hand2robot wrote.
    """
    root = Path(root)
    existing = read_existing(root, writing=False) if root.exists() else None
    if existing is None:
        raise DatasetError(f"{root}: no dataset here (no meta/info.json)")
    info, provenance = existing.info, existing.provenance
    flags = {f.name: 0 for f in Flag if f.name}
    for record in provenance["episodes"]:
        for name, count in record["flag_counts"].items():
            flags[name] = flags.get(name, 0) + count
    return {
        "root": str(root),
        "surrogate": provenance["surrogate"],
        "data_source": provenance["data_source"],
        "robot": provenance["robot"]["name"],
        "fps": info["fps"],
        "total_episodes": info["total_episodes"],
        "total_frames": info["total_frames"],
        "feasible_fraction": provenance["feasible_fraction"],
        "flag_counts": flags,
        "tasks": existing.tasks,
        "inputs": len(provenance["inputs"]),
        "hand2robot_version": provenance["hand2robot_version"],
        "video": {
            key: {"shape": spec["shape"], "codec": spec["info"]["video.codec"]}
            for key, spec in info["features"].items()
            if spec["dtype"] == "video"
        },
        "input_settings": [_input_settings(record) for record in provenance["inputs"]],
        "episodes": _episode_summaries(existing),
    }


def _input_settings(record: dict[str, Any]) -> dict[str, Any]:
    """Per input: where it came from, the hand asked for and used, the camera placement."""
    source = record["source"]
    return {
        "input_index": record["input_index"],
        "source": source.get("url") or source.get("path"),
        "hand_requested": record.get("hand_requested"),
        "hand": record.get("hand"),
        "camera_placement": record.get("camera_placement"),
    }


def _episode_summaries(existing: ExistingDataset) -> list[dict[str, Any]]:
    """Per episode: frames, feasible fraction, task, source and flag counts."""
    provenance = existing.provenance
    inputs = {record["input_index"]: record for record in provenance["inputs"]}
    episodes = []
    rows = existing.episodes.to_pylist()
    for record, row in zip(provenance["episodes"], rows, strict=True):
        source = inputs[record["input_index"]]["source"]
        episodes.append(
            {
                "episode_index": record["episode_index"],
                "frames": record["frames"],
                "feasible_fraction": record["feasible_fraction"],
                "task": row["tasks"][0],
                "source": source.get("url") or source.get("path"),
                "hand": inputs[record["input_index"]].get("hand"),
                "camera_placement": inputs[record["input_index"]].get("camera_placement"),
                "source_frame_range": record["source_frame_range"],
                "flag_counts": record["flag_counts"],
            }
        )
    return episodes
