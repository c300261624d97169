"""Appending one retargeted input to a dataset: check, cut, build columns, stats, stage, commit.

Every appended input (a video, folder or image) adds one data file, one video file and one or
more episodes (split at long infeasible stretches on request). Frame ``k`` of an episode has
``timestamp = k / fps``; its true time in the source is ``source_timestamp``. The append is
atomic (:mod:`pipeline.dataset.storage`).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from pipeline.dataset import storage
from pipeline.dataset.card import dataset_card
from pipeline.dataset.config import DatasetConfig, WriteReport
from pipeline.dataset.features import RESIDUALS, episode_features
from pipeline.dataset.frames import InputFrames, cut_episodes, default_task, gather
from pipeline.dataset.layout import (
    CARD_PATH,
    CHUNKS_SIZE,
    DATA_PATH,
    EPISODES_PATH,
    INFO_PATH,
    PROVENANCE_PATH,
    REWRITTEN,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
)
from pipeline.dataset.meta import (
    check_compatible,
    feasible_fraction,
    lifting_method,
    new_info,
    new_provenance,
    source_record,
)
from pipeline.dataset.reader import read_existing
from pipeline.dataset.stats import Stats, dataset_stats, episode_stats, public_stats
from pipeline.encoding import EpisodeVideo
from pipeline.extract import package_version
from pipeline.retargeted import RetargetedHand
from pipeline.tracks import SIDES, HandTracks, fixed_size_list
from retarget import BimanualResult, BimanualRobot, Flag, RetargetConfig, RetargetResult, Robot


@dataclass
class _Target:
    """The dataset being appended to: its metadata as it stands before this append."""

    info: dict[str, Any]
    provenance: dict[str, Any]
    tasks: list[str]
    episodes: pa.Table | None
    stats_parts: dict[str, list[Stats]]
    fps: int

    @property
    def data_files(self) -> int:
        """Data files so far: one per appended input."""
        return len(self.provenance["inputs"])

    @property
    def location(self) -> tuple[int, int]:
        """(chunk index, file index) of the next data and video file."""
        chunk, file_index = divmod(self.data_files, CHUNKS_SIZE)
        return chunk, file_index


def append_episodes(
    root: str | Path,
    tracks: HandTracks,
    retargeted: RetargetedHand,
    robot: Robot | BimanualRobot,
    *,
    video: EpisodeVideo | None,
    fps: int,
    config: DatasetConfig | None = None,
    retarget_config: RetargetConfig | None = None,
    source_url: str | None = None,
    hand_requested: str = "auto",
) -> WriteReport:
    """Append one retargeted input to a LeRobot v3.0 dataset (created if missing), atomically.

    Args:
        root: Dataset folder: new, empty, or a dataset hand2robot wrote for the same robot.
        tracks: The input's hand tracks (one row per kept frame).
        retargeted: ``pipeline.retarget_tracks`` of ``tracks`` onto ``robot``.
        robot: The robot.
        video: The kept frames as an MP4 (:class:`EpisodeVideo`); None when
            ``config.video`` is None.
        fps: The dataset's integer frame rate (:func:`pipeline.encoding.nominal_fps`).
        config: Episode cutting and video settings.
        retarget_config: The settings ``retargeted`` was made with (recorded).
        source_url: Where the input was downloaded from, if it was (recorded).
        hand_requested: The hand asked for (``auto``, ``left``, ``right``; recorded, and with
            the tracks' key what a resumed batch job compares).

    Returns:
        What was written.

    Raises:
        DatasetError: A folder that is not a hand2robot dataset, another robot, fps, camera or
            video size than the dataset's, no frame with a hand, a video that does not match.
    """
    root = Path(root)
    config = config or DatasetConfig()
    one = gather(tracks, retargeted, video, fps, config)
    segments = cut_episodes(one, config, fps)
    hands: tuple[str, ...] = SIDES if one.bimanual else ("one",)
    features = episode_features(robot, video.info if video else None, config.camera, hands)
    task = config.task or default_task(str(tracks.source.get("path", "")))
    with storage.locked(root):
        storage.recover(root)
        target = _open(root, robot, fps, features, video is not None, tracks.num_frames)
        if task not in target.tasks:
            target.tasks.append(task)
        table = _frame_table(one, segments, target, target.tasks.index(task))
        episodes, records, stats = _episode_records(one, segments, target, table, task, video)
        record = _input_record(
            one, segments, target, video, retarget_config, source_url, hand_requested
        )
        info = _updated_info(target, len(segments), table.num_rows)
        with storage.replacing(root, REWRITTEN) as staging:
            _stage(staging, target, table, episodes, video)
            _stage_meta(staging, target, info, stats, record, records)
    return WriteReport(
        root=root,
        episodes=[e["episode_index"] for e in records],
        frames=[e["frames"] for e in records],
        feasible_fraction=[e["feasible_fraction"] for e in records],
        dropped_frames=tracks.num_frames - table.num_rows,
        total_episodes=int(info["total_episodes"]),
        total_frames=int(info["total_frames"]),
    )


def _open(
    root: Path,
    robot: Robot | BimanualRobot,
    fps: int,
    features: dict[str, Any],
    video: bool,
    frames: int,
) -> _Target:
    """The dataset at ``root`` as it stands (a new one if there is none), checked to fit.

    Raises:
        DatasetError: Not a hand2robot dataset, or one the input does not fit.
    """
    existing = read_existing(root)
    if existing is None:
        return _Target(
            new_info(robot, fps, features, video), new_provenance(robot), [], None, {}, fps
        )
    info = existing.info
    if frames == 1:
        fps = int(info.get("fps", fps))  # one frame (an image) has no rate of its own
    check_compatible(root, info, features, robot, fps)
    parts: dict[str, list[Stats]] = {}
    for episode in existing.provenance["episodes"]:
        for name, value in episode["stats"].items():
            parts.setdefault(name, []).append(value)
    return _Target(info, existing.provenance, existing.tasks, existing.episodes, parts, fps)


def target_turns(result: RetargetResult | BimanualResult) -> NDArray[np.float64]:
    """Per frame and arm, the turn of the end-effector target the solve reached, (T, arms)."""
    arms = [result.left, result.right] if isinstance(result, BimanualResult) else [result]
    frames = len(result.q)
    return np.stack(
        [np.full(frames, np.nan) if a.target_turn is None else a.target_turn for a in arms], axis=1
    )


def _frame_table(
    one: InputFrames, segments: list[tuple[int, int]], target: _Target, task_index: int
) -> pa.Table:
    """The new data file: one row per written frame, one column per non-video feature."""
    result = one.retargeted.result
    state = result.q.astype(np.float64)
    fps = target.fps
    first_episode = int(target.info["total_episodes"])
    rows = np.concatenate([np.arange(a, b) for a, b in segments])
    episode_of_row = np.concatenate(
        [np.full(b - a, first_episode + i) for i, (a, b) in enumerate(segments)]
    )
    frame_index = np.concatenate([np.arange(b - a) for a, b in segments])
    action = np.concatenate([state[np.minimum(np.arange(a, b) + 1, b - 1)] for a, b in segments])
    columns: dict[str, pa.Array] = {
        "observation.state": fixed_size_list(state[rows], np.float32),
        "action": fixed_size_list(action, np.float32),
        "observation.human.keypoints": fixed_size_list(one.keypoints[rows], np.float32),
        "observation.human.wrist_pose": fixed_size_list(one.wrist[rows], np.float32),
        "observation.human.score": (
            fixed_size_list(one.score[rows], np.float32)
            if one.bimanual
            else pa.array(one.score[rows, 0], pa.float32())
        ),
        "observation.human.present": (
            pa.FixedSizeListArray.from_arrays(pa.array(one.hand_present[rows].ravel()), 2)
            if one.bimanual
            else pa.array(one.present[rows])
        ),
        "observation.human.wrist_position_std": (
            fixed_size_list(one.wrist_std[rows], np.float32)
            if one.bimanual
            else pa.array(one.wrist_std[rows, 0], pa.float32())
        ),
        "observation.camera.transform_camera_to_world": fixed_size_list(
            one.camera[rows], np.float32
        ),
        "observation.camera.rotation_std": pa.array(
            one.tracks.camera_rotation_std[rows], pa.float32()
        ),
        "feasible": pa.array(np.asarray(result.feasible)[rows]),
        "flags": pa.array(np.asarray(result.flags)[rows], pa.int64()),
    }
    for name in RESIDUALS:
        columns[f"residual.{name}"] = pa.array(getattr(result.residual, name)[rows], pa.float32())
    turns = target_turns(result)
    columns["target_turn"] = (
        fixed_size_list(turns[rows], np.float32)
        if one.bimanual
        else pa.array(turns[rows, 0], pa.float32())
    )
    columns["source_timestamp"] = pa.array(one.tracks.timestamps[rows], pa.float32())
    columns["source_frame_index"] = pa.array(rows, pa.int64())
    columns["timestamp"] = pa.array((frame_index / fps).astype(np.float32), pa.float32())
    columns["frame_index"] = pa.array(frame_index, pa.int64())
    columns["episode_index"] = pa.array(episode_of_row, pa.int64())
    first_row = int(target.info["total_frames"])
    columns["index"] = pa.array(first_row + np.arange(len(rows)), pa.int64())
    columns["task_index"] = pa.array(np.full(len(rows), task_index), pa.int64())
    expected = [k for k, v in target.info["features"].items() if v["dtype"] != "video"]
    return pa.table({name: columns[name] for name in expected})


def _episode_records(
    one: InputFrames,
    segments: list[tuple[int, int]],
    target: _Target,
    table: pa.Table,
    task: str,
    video: EpisodeVideo | None,
) -> tuple[dict[str, list[Any]], list[dict[str, Any]], dict[str, list[Stats]]]:
    """The new episodes' rows of ``meta/episodes``, provenance records and statistics."""
    result = one.retargeted.result
    fps = target.fps
    chunk, file_index = target.location
    camera_key = _camera_key(target)
    first_episode = int(target.info["total_episodes"])
    rows: dict[str, list[Any]] = {}
    records: list[dict[str, Any]] = []
    stats: dict[str, list[Stats]] = {}
    start_row = int(target.info["total_frames"])
    piece_start = 0
    for i, (a, b) in enumerate(segments):
        length = b - a
        row: dict[str, Any] = {
            "episode_index": first_episode + i,
            "tasks": [task],
            "length": length,
            "data/chunk_index": chunk,
            "data/file_index": file_index,
            "dataset_from_index": start_row,
            "dataset_to_index": start_row + length,
        }
        if video is not None:
            row |= {
                f"videos/{camera_key}/chunk_index": chunk,
                f"videos/{camera_key}/file_index": file_index,
                f"videos/{camera_key}/from_timestamp": a / fps,
                f"videos/{camera_key}/to_timestamp": b / fps,
            }
        row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        for key, value in row.items():
            rows.setdefault(key, []).append(value)
        start_row += length
        piece = table.slice(piece_start, length)
        piece_start += length
        video_stats = video.channel_stats[a:b] if video is not None else None
        figures = episode_stats(piece, target.info["features"], video_stats)
        for name, value in figures.items():
            stats.setdefault(name, []).append(value)
        flags = np.asarray(result.flags)[a:b]
        records.append(
            {
                "episode_index": first_episode + i,
                "input_index": target.data_files,
                "source_frame_range": [a, b],
                "frames": length,
                "feasible_fraction": float(np.asarray(result.feasible)[a:b].mean()),
                "flag_counts": {str(f.name): int(((flags & f) != 0).sum()) for f in Flag if f.name},
                "stats": figures,
            }
        )
    return rows, records, stats


def _camera_key(target: _Target) -> str:
    """The dataset's video feature key (``observation.images.<camera>``), or '' for none."""
    return next((k for k, v in target.info["features"].items() if v["dtype"] == "video"), "")


def _input_record(
    one: InputFrames,
    segments: list[tuple[int, int]],
    target: _Target,
    video: EpisodeVideo | None,
    retarget_config: RetargetConfig | None,
    source_url: str | None,
    hand_requested: str,
) -> dict[str, Any]:
    """The provenance record of the appended input."""
    tracks, retargeted = one.tracks, one.retargeted
    chunk, file_index = target.location
    first_episode = int(target.info["total_episodes"])
    measured = np.diff(tracks.timestamps)
    written = sum(b - a for a, b in segments)
    return {
        "input_index": target.data_files,
        "source": source_record(tracks.source, source_url),
        "hand_model": tracks.model,
        "intrinsics": tracks.intrinsics.to_json(),
        "lifting": lifting_method(tracks.settings, tracks.source),
        "extraction_settings": tracks.settings,
        "tracks_key": tracks.key,
        "hand": retargeted.side,
        "hand_requested": hand_requested,
        "camera_placement": retargeted.placement,
        "transform_camera_to_base": retargeted.transform_camera_to_base.tolist(),
        "retarget_settings": asdict(retarget_config or RetargetConfig()),
        # Per frame, or refined as a whole trajectory (retarget.TrajectoryOptimizer).
        "optimized": bool(retargeted.result.optimized),
        "hand2robot_version": package_version(),
        "frames": tracks.num_frames,
        "frames_written": int(written),
        "episodes": [first_episode + i for i in range(len(segments))],
        "fps": int(target.fps),
        "measured_fps": float(1.0 / np.median(measured)) if len(measured) else None,
        "video": (
            {
                "file": VIDEO_PATH.format(
                    video_key=_camera_key(target), chunk_index=chunk, file_index=file_index
                )
            }
            | video.info
            | {"letterboxed": video.letterboxed}
            if video is not None
            else None
        ),
    }


def _updated_info(target: _Target, episodes: int, rows: int) -> dict[str, Any]:
    """``info.json`` after the append."""
    total_episodes = int(target.info["total_episodes"]) + episodes
    return target.info | {
        "total_episodes": total_episodes,
        "total_frames": int(target.info["total_frames"]) + rows,
        "total_tasks": len(target.tasks),
        "splits": {"train": f"0:{total_episodes}"},
    }


def _stage(
    staging: Path,
    target: _Target,
    table: pa.Table,
    episodes: dict[str, list[Any]],
    video: EpisodeVideo | None,
) -> None:
    """Write the new data file, video file, episode rows and tasks into ``staging``."""
    chunk, file_index = target.location
    data_path = staging / DATA_PATH.format(chunk_index=chunk, file_index=file_index)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, data_path)
    if video is not None:
        video_path = staging / VIDEO_PATH.format(
            video_key=_camera_key(target), chunk_index=chunk, file_index=file_index
        )
        video_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(video.path, video_path)
    new_episodes = pa.table(episodes)
    if target.episodes is not None:
        new_episodes = pa.concat_tables(
            [target.episodes, new_episodes.cast(target.episodes.schema)]
        )
    (staging / EPISODES_PATH).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(new_episodes, staging / EPISODES_PATH)
    _tasks_table(target.tasks).to_parquet(staging / TASKS_PATH)


def _stage_meta(
    staging: Path,
    target: _Target,
    info: dict[str, Any],
    stats: dict[str, list[Stats]],
    record: dict[str, Any],
    episodes: list[dict[str, Any]],
) -> None:
    """Write the statistics, provenance, ``info.json`` and dataset card into ``staging``."""
    parts = {name: list(values) for name, values in target.stats_parts.items()}
    for name, values in stats.items():
        parts.setdefault(name, []).extend(values)
    storage.write_json(staging / STATS_PATH, public_stats(dataset_stats(parts, info["features"])))
    provenance = target.provenance
    provenance["inputs"].append(record)
    provenance["episodes"].extend(episodes)
    provenance["total_frames"] = info["total_frames"]
    provenance["feasible_fraction"] = feasible_fraction(provenance["episodes"])
    storage.write_json(staging / PROVENANCE_PATH, provenance)
    storage.write_json(staging / INFO_PATH, info)
    (staging / CARD_PATH).write_text(dataset_card(info, provenance))


def _tasks_table(tasks: list[str]) -> Any:
    """``meta/tasks.parquet``: task strings as the pandas index, their indices as a column."""
    import pandas as pd

    return pd.DataFrame(
        {"task_index": np.arange(len(tasks), dtype=np.int64)},
        index=pd.Index(tasks, name="task"),
    )
