"""LeRobot v3.0 datasets of surrogate robot episodes, written without depending on lerobot.

Layout (``../shared/LEROBOT_FORMAT.md``; loads in lerobot 0.4 and later)::

    meta/info.json  meta/stats.json  meta/tasks.parquet  meta/episodes/chunk-000/file-000.parquet
    meta/hand2robot.json                      provenance: surrogate data from human video
    data/chunk-CCC/file-FFF.parquet           one file per appended input
    videos/observation.images.<camera>/chunk-CCC/file-FFF.mp4
    README.md                                 dataset card

Every appended input (a video, folder or image) adds one data file, one video file and one or
more episodes (split at long infeasible stretches on request). Frame ``k`` of an episode has
``timestamp = k / fps``; its true time in the source is ``source_timestamp``.

Conventions of the per-frame features:

- ``observation.state``: the retargeted joint positions [rad] or [m], names = joint names.
  Frames without a hand hold the last valid state (the first valid one before it) and are
  flagged ``NO_HAND``: state and action never hold NaN.
- ``action``: the commanded joint targets, i.e. the next frame's ``observation.state``; the last
  frame of an episode commands its own state (hold).
- ``feasible`` (bool) and ``flags`` (int, bitmask of :class:`retarget.Flag`); ``residual.*``: the
  figures behind the flags (NaN where a figure does not apply, e.g. no hand).
- ``observation.human.*``: the human hand the robot followed: 21 keypoints in MediaPipe's
  hand-centred metric frame [m], the wrist (hand frame H) pose in the camera frame as
  ``x, y, z [m], qx, qy, qz, qw``, the detector score and whether a hand was present (absent
  frames hold the last valid values, like the state).

Appends are atomic: the new version is built in a staging folder beside the dataset (existing
files hard-linked, not copied) and swapped in with one ``renameat2(RENAME_EXCHANGE)``, so a crash
at any point leaves the previous dataset as it was.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from pipeline.exceptions import DatasetError
from pipeline.extract import package_version
from pipeline.tracks import SIDES, HandTracks, fixed_size_list
from pipeline.video import EpisodeVideo, VideoConfig
from retarget import BimanualResult, BimanualRobot, Flag, RetargetConfig, Robot

if TYPE_CHECKING:
    from pipeline.run import RetargetedHand

CODEBASE_VERSION = "v3.0"
PROVENANCE_PATH = "meta/hand2robot.json"
PROVENANCE_FORMAT = 1
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
SPLIT_ON = ("infeasible", "no_hand")
KEYPOINT_NAMES = (
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_mcp",
    "index_pip",
    "index_dip",
    "index_tip",
    "middle_mcp",
    "middle_pip",
    "middle_dip",
    "middle_tip",
    "ring_mcp",
    "ring_pip",
    "ring_dip",
    "ring_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
)
RESIDUALS = (
    "position",
    "orientation",
    "fingertip",
    "joint_speed",
    "singular_value",
    "collisions",
)
LIFTING_METHOD = (
    "MediaPipe hand landmarker world landmarks (metric, hand-centred) placed in the camera "
    "frame by PnP (OpenCV SQPnP) against the image landmarks and the camera intrinsics"
)


@dataclass(frozen=True)
class DatasetConfig:
    """How episodes are cut and stored.

    Defaults keep each input as one episode with every frame flagged (filter on ``feasible``
    when training); splitting drops long unusable stretches instead.
    """

    camera: str = "camera"
    """Video feature key: ``observation.images.<camera>``."""
    task: str | None = None
    """Task string of the episodes; default the input's file name without suffix, with ``_``
    and ``-`` as spaces."""
    split_min_gap_s: float | None = None
    """Split an input into episodes at stretches of at least this long [s] that are
    ``split_on`` (the stretches are left out); None keeps the input whole."""
    split_on: str = "infeasible"
    """What a left-out stretch is: ``"infeasible"`` (any flag) or ``"no_hand"``."""
    min_episode_frames: int = 2
    """Pieces shorter than this after splitting are left out."""
    video: VideoConfig | None = field(default_factory=VideoConfig)
    """Stored video settings; None writes no video feature."""

    def __post_init__(self) -> None:
        if self.split_on not in SPLIT_ON:
            raise DatasetError(
                f"unknown split_on {self.split_on!r}; valid choices: {', '.join(SPLIT_ON)}"
            )
        if self.split_min_gap_s is not None and not self.split_min_gap_s > 0:
            raise DatasetError("split_min_gap_s must be > 0 [s], or None to keep inputs whole")
        if self.min_episode_frames < 1:
            raise DatasetError("min_episode_frames must be >= 1")
        if not self.camera or "/" in self.camera:
            raise DatasetError(f"camera key {self.camera!r} must be non-empty without '/'")


@dataclass(frozen=True)
class WriteReport:
    """What one append wrote.

    Attributes:
        root: The dataset folder.
        episodes: Indices of the new episodes.
        frames: Frames per new episode.
        feasible_fraction: Per new episode.
        dropped_frames: Input frames left out by splitting.
        total_episodes: Episodes in the dataset now.
        total_frames: Frames in the dataset now.
    """

    root: Path
    episodes: list[int]
    frames: list[int]
    feasible_fraction: list[float]
    dropped_frames: int
    total_episodes: int
    total_frames: int


def default_task(source_path: str) -> str:
    """Task string from an input's name: ``kettle_pour.mp4`` -> ``kettle pour``."""
    name = Path(source_path.rstrip("/")).name
    stem = name.split(".")[0] if "." in name else name
    return " ".join(stem.replace("_", " ").replace("-", " ").split()) or "human video"


def split_segments(
    bad: NDArray[np.bool_], min_gap_frames: int | None, min_frames: int
) -> list[tuple[int, int]]:
    """Ranges ``[start, stop)`` left after removing runs of ``bad`` of ``min_gap_frames`` or more.

    With ``min_gap_frames=None`` the whole input is one range, however short (a single image
    is a one-frame episode). Pieces of a split shorter than ``min_frames`` are left out.
    """
    frames = len(bad)
    if min_gap_frames is None:
        return [(0, frames)] if frames else []
    padded = np.concatenate([[False], bad, [False]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == 1)
    stops = np.flatnonzero(np.diff(padded) == -1)
    cuts = [(a, b) for a, b in zip(starts, stops, strict=True) if b - a >= min_gap_frames]
    segments = []
    begin = 0
    for a, b in cuts:
        segments.append((begin, int(a)))
        begin = int(b)
    segments.append((begin, frames))
    return [(a, b) for a, b in segments if b - a >= min_frames]


def _hold(values: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Rows of ``values`` where not ``valid`` replaced by the last valid row (first before)."""
    index = np.where(valid, np.arange(len(valid)), -1)
    index = np.maximum.accumulate(index)
    first = int(np.argmax(valid))
    index[index < 0] = first
    return values[index]


def _pose_vectors(transforms: NDArray[np.float64]) -> NDArray[np.float64]:
    """(T, 4, 4) rigid transforms -> (T, 7) ``x, y, z, qx, qy, qz, qw``; NaN rows stay NaN."""
    from scipy.spatial.transform import Rotation

    out = np.full((len(transforms), 7), np.nan)
    finite = np.isfinite(transforms).all(axis=(1, 2))
    if finite.any():
        out[finite, :3] = transforms[finite, :3, 3]
        out[finite, 3:] = Rotation.from_matrix(transforms[finite, :3, :3]).as_quat()
    return out


def _feature(dtype: str, width: int, names: Sequence[str] | None) -> dict[str, Any]:
    return {"dtype": dtype, "shape": [width], "names": list(names) if names else None}


def episode_features(
    robot: Robot | BimanualRobot,
    video: dict[str, Any] | None,
    camera: str,
    hands: Sequence[str] = ("one",),
) -> dict[str, Any]:
    """The ``features`` block of ``info.json`` for ``robot``.

    ``hands``: one entry for a single-hand episode (the human columns keep their plain names),
    or ``("left", "right")`` for a bimanual one: each human column then holds both hands, left
    first, with names prefixed ``left.`` / ``right.``.
    """
    joints = list(robot.joint_names)
    two = len(hands) == 2

    def per_hand(names: list[str]) -> list[str]:
        return [f"{h}.{n}" for h in hands for n in names] if two else names

    keypoint_names = per_hand([f"{k}.{a}" for k in KEYPOINT_NAMES for a in "xyz"])
    pose_names = per_hand(["x", "y", "z", "qx", "qy", "qz", "qw"])
    features: dict[str, Any] = {
        "observation.state": _feature("float32", len(joints), joints),
        "action": _feature("float32", len(joints), joints),
        "observation.human.keypoints": _feature("float32", len(keypoint_names), keypoint_names),
        "observation.human.wrist_pose": _feature("float32", len(pose_names), pose_names),
        "observation.human.score": _feature("float32", len(hands), list(hands) if two else None),
        "observation.human.present": _feature("bool", len(hands), list(hands) if two else None),
        "feasible": _feature("bool", 1, None),
        "flags": _feature("int64", 1, None),
    }
    for name in RESIDUALS:
        features[f"residual.{name}"] = _feature("float32", 1, None)
    features["source_timestamp"] = _feature("float64", 1, None)
    features["source_frame_index"] = _feature("int64", 1, None)
    if video is not None:
        features[f"observation.images.{camera}"] = {
            "dtype": "video",
            "shape": [video["video.height"], video["video.width"], 3],
            "names": ["height", "width", "channels"],
            "info": video,
        }
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        features[name] = _feature("float32" if name == "timestamp" else "int64", 1, None)
    return features


def _stats(values: NDArray[np.float64]) -> dict[str, list[Any]]:
    """min, max, mean, std, count of (T, n) values over finite entries (0 where none)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    safe = np.where(finite, values, 0.0)
    total = np.maximum(count, 1)
    mean = safe.sum(axis=0) / total
    square = (safe**2).sum(axis=0) / total
    lo = np.where(finite, values, np.inf).min(axis=0)
    hi = np.where(finite, values, -np.inf).max(axis=0)
    return _stats_record(lo, hi, mean, square, len(values), count)


def _stats_record(
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    mean: NDArray[np.float64],
    square: NDArray[np.float64],
    rows: int,
    finite: NDArray[np.integer] | NDArray[np.floating],
) -> dict[str, list[Any]]:
    """The stats entry from its moments (mean of values and of squares); 0 where none finite."""
    none = finite == 0
    lo, hi = lo.copy(), hi.copy()
    lo[none] = hi[none] = 0.0
    return {
        "min": lo.tolist(),
        "max": hi.tolist(),
        "mean": mean.tolist(),
        "std": np.sqrt(np.maximum(square - mean**2, 0.0)).tolist(),
        "count": [int(rows)],
        "_finite": np.asarray(finite).astype(int).tolist(),
    }


def _merge_stats(parts: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    """Combine per-episode :func:`_stats` (weights = finite counts)."""
    finite = np.array([p["_finite"] for p in parts], dtype=np.float64)
    mean = np.array([p["mean"] for p in parts])
    std = np.array([p["std"] for p in parts])
    total = np.maximum(finite.sum(axis=0), 1)
    merged_mean = (finite * mean).sum(axis=0) / total
    square = (finite * (std**2 + mean**2)).sum(axis=0) / total
    has = finite > 0
    lo = np.where(has, np.array([p["min"] for p in parts]), np.inf).min(axis=0)
    hi = np.where(has, np.array([p["max"] for p in parts]), -np.inf).max(axis=0)
    rows = sum(p["count"][0] for p in parts)
    return _stats_record(lo, hi, merged_mean, square, rows, finite.sum(axis=0))


def _image_stats(channel_stats: NDArray[np.float64]) -> dict[str, list[Any]]:
    """LeRobot image statistics (per channel, shaped [[[v]]] x 3) from per-frame RGB figures."""
    mean = channel_stats[:, 2].mean(axis=0)
    square = channel_stats[:, 3].mean(axis=0)

    def nest(v: NDArray[np.float64]) -> list[Any]:
        return [[[float(x)]] for x in v]

    return {
        "min": nest(channel_stats[:, 0].min(axis=0)),
        "max": nest(channel_stats[:, 1].max(axis=0)),
        "mean": nest(mean),
        "std": nest(np.sqrt(np.maximum(square - mean**2, 0.0))),
        "count": [len(channel_stats)],
        "_finite": [len(channel_stats)] * 3,
    }


def _merge_image_stats(parts: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    flat = [
        {key: np.ravel(part[key]).tolist() for key in ("min", "max", "mean", "std")}
        | {"count": part["count"], "_finite": part["_finite"]}
        for part in parts
    ]
    merged = _merge_stats(flat)
    return {
        key: [[[v]] for v in merged[key]] if key in ("min", "max", "mean", "std") else merged[key]
        for key in merged
    }


# --- reading an existing dataset -------------------------------------------------------------


@dataclass
class _Existing:
    info: dict[str, Any]
    provenance: dict[str, Any]
    episodes: pa.Table
    tasks: list[str]


def _read_existing(root: Path) -> _Existing | None:
    if not root.exists():
        return None
    if not root.is_dir():
        raise DatasetError(f"{root} is a file; --out takes a dataset folder")
    if not any(root.iterdir()):
        return None
    info_path = root / "meta" / "info.json"
    provenance_path = root / PROVENANCE_PATH
    if not info_path.is_file():
        raise DatasetError(
            f"{root} is a non-empty folder without meta/info.json; give a new or empty folder, "
            "or a dataset hand2robot wrote"
        )
    if not provenance_path.is_file():
        raise DatasetError(
            f"{root} is a LeRobot dataset that hand2robot did not write (no {PROVENANCE_PATH}); "
            "hand2robot only appends its own surrogate episodes to its own datasets"
        )
    import pandas as pd

    try:
        info = json.loads(info_path.read_text())
        provenance = json.loads(provenance_path.read_text())
        episodes = pq.read_table(root / EPISODES_PATH)
        tasks = pd.read_parquet(root / "meta" / "tasks.parquet")
    except (OSError, ValueError, pa.ArrowException) as err:
        raise DatasetError(f"{root}: dataset metadata is unreadable ({err})") from None
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise DatasetError(
            f"{root}: codebase_version {info.get('codebase_version')!r}; hand2robot appends to "
            f"{CODEBASE_VERSION} datasets only"
        )
    order = tasks.sort_values("task_index").index
    return _Existing(info, provenance, episodes, [str(t) for t in order])


def stored_video_size(root: str | Path, camera: str) -> tuple[int, int] | None:
    """(width, height) of an existing dataset's stored frames, None for a new dataset [px]."""
    info_path = Path(root) / "meta" / "info.json"
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


# --- atomic replacement ---------------------------------------------------------------------

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> None:
    """Swap two folders atomically (Linux ``renameat2(RENAME_EXCHANGE)``).

    Raises:
        OSError: The system has no atomic exchange (the caller falls back to two renames).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())


def _commit(staging: Path, root: Path) -> None:
    """Make ``staging`` the dataset at ``root``; the old version is deleted after the swap."""
    _fsync_tree(staging)
    if not root.exists():
        staging.rename(root)
        return
    try:
        _exchange(staging, root)
    except OSError:
        # No atomic exchange: two renames; a crash between them leaves the old version at
        # the backup path, which the next append restores (see _recover).
        backup = _backup_path(root)
        root.rename(backup)
        staging.rename(root)
        shutil.rmtree(backup, ignore_errors=True)
        return
    shutil.rmtree(staging, ignore_errors=True)  # now the old version


def _staging_path(root: Path) -> Path:
    return root.parent / f".{root.name}.hand2robot-staging"


def _backup_path(root: Path) -> Path:
    return root.parent / f".{root.name}.hand2robot-previous"


def _recover(root: Path) -> None:
    """Clear what a crashed append left beside ``root`` (caller holds the lock)."""
    backup = _backup_path(root)
    if backup.exists():
        if root.exists():
            shutil.rmtree(backup)
        else:
            backup.rename(root)
    staging = _staging_path(root)
    if staging.exists():
        shutil.rmtree(staging)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = root.parent / f".{root.name}.hand2robot-lock"
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatasetError(f"{root} is being written by another process") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _link_tree(source: Path, target: Path, skip: set[str]) -> None:
    """Hard-link every file of ``source`` into ``target`` (copy where links fail)."""
    for folder, _, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        for name in files:
            path = (relative / name).as_posix()
            if path in skip:
                continue
            destination = target / relative / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(Path(folder) / name, destination)
            except OSError:
                shutil.copy2(Path(folder) / name, destination)


# --- writing --------------------------------------------------------------------------------


def _tasks_table(tasks: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {"task_index": np.arange(len(tasks), dtype=np.int64)},
        index=pd.Index(tasks, name="task"),
    )


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")


def _public(stats: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, list[Any]]]:
    return {
        name: {key: value for key, value in s.items() if not key.startswith("_")}
        for name, s in stats.items()
    }


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
        fps: The dataset's integer frame rate (:func:`pipeline.video.nominal_fps`).
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
    result = retargeted.result
    frames = tracks.num_frames
    if len(result.q) != frames:
        raise DatasetError(f"retargeted trajectory has {len(result.q)} frames, tracks {frames}")
    if (video is None) != (config.video is None):
        raise DatasetError("pass the episode video exactly when config.video is set")
    if video is not None and video.frames != frames:
        raise DatasetError(
            f"the episode video holds {video.frames} frames, the tracks {frames}: both must "
            "come from the same decoding settings"
        )
    if not int(fps) >= 1:
        raise DatasetError(f"fps must be a positive integer, got {fps}")
    bimanual = isinstance(result, BimanualResult)
    present = ~(result.flags & Flag.NO_HAND).astype(bool)
    if not present.any():
        raise DatasetError(
            f"{tracks.source.get('path')}: no frame has both hands, which a bimanual robot "
            "needs; nothing to write"
            if bimanual
            else f"{tracks.source.get('path')}: no frame has the {retargeted.side} hand; "
            "nothing to write (try --hand, or check the input)"
        )
    bad = ~result.feasible if config.split_on == "infeasible" else ~present
    gap = None
    if config.split_min_gap_s is not None:
        gap = max(1, math.ceil(config.split_min_gap_s * fps - 1e-9))
    segments = split_segments(bad, gap, config.min_episode_frames)
    if gap is not None:
        # An episode that is entirely unusable is not an episode.
        segments = [(a, b) for a, b in segments if not bad[a:b].all()]
    if not segments:
        raise DatasetError(
            f"{tracks.source.get('path')}: nothing left to write after splitting at "
            f"{config.split_min_gap_s} s {config.split_on} stretches"
        )

    camera_key = f"observation.images.{config.camera}"
    hands: tuple[str, ...] = SIDES if bimanual else ("one",)
    features = episode_features(robot, video.info if video else None, config.camera, hands)
    source_path = str(tracks.source.get("path", ""))
    task = config.task or default_task(source_path)

    # Per-frame columns over the whole input.
    state = result.q.astype(np.float64)
    # Human columns, one hand after the other; each hand held over its own missing frames.
    human: dict[str, list[NDArray[np.float64]]] = {"keypoints": [], "wrist": [], "score": []}
    seen = []
    for side in SIDES if bimanual else (retargeted.side,):
        hand = tracks.hands[side]
        mine = present
        if isinstance(result, BimanualResult):
            arm = result.left if side == "left" else result.right
            mine = ~(arm.flags & Flag.NO_HAND).astype(bool)
        seen.append(mine)
        human["keypoints"].append(_hold(hand.world_keypoints.reshape(frames, 63), mine))
        human["wrist"].append(_hold(_pose_vectors(hand.transform_wrist_to_camera), mine))
        human["score"].append(np.where(mine, np.nan_to_num(hand.score, nan=0.0), 0.0)[:, None])
    keypoints = np.concatenate(human["keypoints"], axis=1)
    wrist = np.concatenate(human["wrist"], axis=1)
    score = np.concatenate(human["score"], axis=1)
    hand_present = np.stack(seen, axis=1)
    residuals = {name: getattr(result.residual, name) for name in RESIDUALS}
    if not np.isfinite(state).all():
        raise DatasetError("internal error: the joint trajectory holds NaN")  # never written

    with _locked(root):
        _recover(root)
        existing = _read_existing(root)
        info: dict[str, Any]
        provenance: dict[str, Any]
        if existing is None:
            info = _new_info(robot, fps, features, video is not None)
            provenance = _new_provenance(robot)
            tasks: list[str] = []
            episodes_table = None
            stats_parts: dict[str, list[dict[str, list[Any]]]] = {}
            data_files = 0
        else:
            info, provenance = existing.info, existing.provenance
            tasks = existing.tasks
            episodes_table = existing.episodes
            if frames == 1:
                fps = int(info.get("fps", fps))  # one frame (an image) has no rate of its own
            _check_compatible(root, info, features, robot, fps)
            stats_parts = {}
            for episode in provenance["episodes"]:
                for name, value in episode["stats"].items():
                    stats_parts.setdefault(name, []).append(value)
            data_files = len(provenance["inputs"])

        if task not in tasks:
            tasks.append(task)
        task_index = tasks.index(task)
        chunk, file_index = divmod(data_files, CHUNKS_SIZE)
        first_episode = int(info["total_episodes"])
        first_row = int(info["total_frames"])

        # Rows of the new episodes.
        rows = np.concatenate([np.arange(a, b) for a, b in segments])
        episode_of_row = np.concatenate(
            [np.full(b - a, first_episode + i) for i, (a, b) in enumerate(segments)]
        )
        frame_index = np.concatenate([np.arange(b - a) for a, b in segments])
        action = np.concatenate(
            [state[np.minimum(np.arange(a, b) + 1, b - 1)] for a, b in segments]
        )
        columns: dict[str, pa.Array] = {
            "observation.state": fixed_size_list(state[rows], np.float32),
            "action": fixed_size_list(action, np.float32),
            "observation.human.keypoints": fixed_size_list(keypoints[rows], np.float32),
            "observation.human.wrist_pose": fixed_size_list(wrist[rows], np.float32),
            "observation.human.score": (
                fixed_size_list(score[rows], np.float32)
                if bimanual
                else pa.array(score[rows, 0], pa.float32())
            ),
            "observation.human.present": (
                pa.FixedSizeListArray.from_arrays(pa.array(hand_present[rows].ravel()), 2)
                if bimanual
                else pa.array(present[rows])
            ),
            "feasible": pa.array(np.asarray(result.feasible)[rows]),
            "flags": pa.array(np.asarray(result.flags)[rows], pa.int64()),
        }
        for name in RESIDUALS:
            columns[f"residual.{name}"] = pa.array(residuals[name][rows], pa.float32())
        columns["source_timestamp"] = pa.array(tracks.timestamps[rows], pa.float64())
        columns["source_frame_index"] = pa.array(rows, pa.int64())
        columns["timestamp"] = pa.array((frame_index / fps).astype(np.float32), pa.float32())
        columns["frame_index"] = pa.array(frame_index, pa.int64())
        columns["episode_index"] = pa.array(episode_of_row, pa.int64())
        columns["index"] = pa.array(first_row + np.arange(len(rows)), pa.int64())
        columns["task_index"] = pa.array(np.full(len(rows), task_index), pa.int64())
        expected = [k for k, v in info["features"].items() if v["dtype"] != "video"]
        table = pa.table({name: columns[name] for name in expected})

        # Per-episode rows of meta/episodes and stats.
        new_episode_rows: dict[str, list[Any]] = {}
        new_provenance: list[dict[str, Any]] = []
        new_stats: dict[str, list[dict[str, list[Any]]]] = {}
        start_row = first_row
        for i, (a, b) in enumerate(segments):
            length = b - a
            row = {
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
                new_episode_rows.setdefault(key, []).append(value)
            start_row += length
            piece = table.slice(int(np.searchsorted(episode_of_row, first_episode + i)), length)
            video_stats = video.channel_stats[a:b] if video is not None else None
            episode_stats = _episode_stats(piece, info["features"], video_stats)
            for name, value in episode_stats.items():
                new_stats.setdefault(name, []).append(value)
            flags = np.asarray(result.flags)[a:b]
            new_provenance.append(
                {
                    "episode_index": first_episode + i,
                    "input_index": data_files,
                    "source_frame_range": [a, b],
                    "frames": length,
                    "feasible_fraction": float(np.asarray(result.feasible)[a:b].mean()),
                    "flag_counts": {
                        str(f.name): int(((flags & f) != 0).sum()) for f in Flag if f.name
                    },
                    "stats": episode_stats,
                }
            )

        measured = np.diff(tracks.timestamps)
        input_record = {
            "input_index": data_files,
            "source": _source_record(tracks.source, source_url),
            "hand_model": tracks.model,
            "intrinsics": tracks.intrinsics.to_json(),
            "lifting": LIFTING_METHOD,
            "extraction_settings": tracks.settings,
            "tracks_key": tracks.key,
            "hand": retargeted.side,
            "hand_requested": hand_requested,
            "camera_placement": retargeted.placement,
            "transform_camera_to_base": retargeted.transform_camera_to_base.tolist(),
            "retarget_settings": asdict(retarget_config or RetargetConfig()),
            "hand2robot_version": package_version(),
            "frames": frames,
            "frames_written": int(len(rows)),
            "episodes": [first_episode + i for i in range(len(segments))],
            "fps": int(fps),
            "measured_fps": float(1.0 / np.median(measured)) if len(measured) else None,
            "video": (
                {
                    "file": VIDEO_PATH.format(
                        video_key=camera_key, chunk_index=chunk, file_index=file_index
                    )
                }
                | video.info
                | {"letterboxed": video.letterboxed}
                if video is not None
                else None
            ),
        }

        staging = _staging_path(root)
        staging.mkdir(parents=True)
        try:
            rewritten = {
                "meta/info.json",
                "meta/stats.json",
                "meta/tasks.parquet",
                EPISODES_PATH,
                PROVENANCE_PATH,
                "README.md",
            }
            if existing is not None:
                _link_tree(root, staging, rewritten)
            data_path = staging / DATA_PATH.format(chunk_index=chunk, file_index=file_index)
            data_path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, data_path)
            if video is not None:
                video_path = staging / VIDEO_PATH.format(
                    video_key=camera_key, chunk_index=chunk, file_index=file_index
                )
                video_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(video.path, video_path)
            new_episodes = pa.table(new_episode_rows)
            if episodes_table is not None:
                new_episodes = pa.concat_tables(
                    [episodes_table, new_episodes.cast(episodes_table.schema)]
                )
            (staging / EPISODES_PATH).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(new_episodes, staging / EPISODES_PATH)
            _tasks_table(tasks).to_parquet(staging / "meta" / "tasks.parquet")
            for name, parts in new_stats.items():
                stats_parts.setdefault(name, []).extend(parts)
            stats = {
                name: (
                    _merge_image_stats(parts)
                    if info["features"][name]["dtype"] == "video"
                    else _merge_stats(parts)
                )
                for name, parts in stats_parts.items()
            }
            total_episodes = first_episode + len(segments)
            info = info | {
                "total_episodes": total_episodes,
                "total_frames": first_row + len(rows),
                "total_tasks": len(tasks),
                "splits": {"train": f"0:{total_episodes}"},
            }
            _write_json(staging / "meta" / "stats.json", _public(stats))
            provenance["inputs"].append(input_record)
            provenance["episodes"].extend(new_provenance)
            provenance["total_frames"] = info["total_frames"]
            provenance["feasible_fraction"] = _feasible_fraction(provenance["episodes"])
            _write_json(staging / PROVENANCE_PATH, provenance)
            _write_json(staging / "meta" / "info.json", info)
            (staging / "README.md").write_text(dataset_card(info, provenance))
            _commit(staging, root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    fractions = [e["feasible_fraction"] for e in new_provenance]
    return WriteReport(
        root=root,
        episodes=[e["episode_index"] for e in new_provenance],
        frames=[e["frames"] for e in new_provenance],
        feasible_fraction=fractions,
        dropped_frames=frames - int(len(rows)),
        total_episodes=int(info["total_episodes"]),
        total_frames=int(info["total_frames"]),
    )


def _episode_stats(
    piece: pa.Table, features: dict[str, Any], video_stats: NDArray[np.float64] | None
) -> dict[str, dict[str, list[Any]]]:
    """Per-feature statistics of one episode's rows (video: from the encoder's figures)."""
    stats = {}
    for name, spec in features.items():
        if spec["dtype"] == "video":
            if video_stats is None:
                raise DatasetError(f"feature {name} has no video statistics")
            stats[name] = _image_stats(video_stats)
            continue
        values = piece.column(name).combine_chunks()
        if isinstance(values.type, pa.FixedSizeListType):
            array = np.asarray(values.flatten().to_numpy(zero_copy_only=False))
        else:
            array = np.asarray(values.to_numpy(zero_copy_only=False))
        stats[name] = _stats(array.reshape(piece.num_rows, -1).astype(np.float64))
    return stats


def _source_record(source: dict[str, Any], url: str | None) -> dict[str, Any]:
    """The tracks' source record, with an absolute path where the file is here, and the URL."""
    record = dict(source)
    path = Path(str(record.get("path", "")))
    if record.get("path") and path.exists():
        record["path"] = str(path.resolve())
    if url:
        record["url"] = url
    return record


def _new_info(
    robot: Robot | BimanualRobot, fps: int, features: dict[str, Any], video: bool
) -> dict[str, Any]:
    """``meta/info.json`` of an empty dataset."""
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot.name,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": int(fps),
        "splits": {},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if video else None,
        "features": features,
    }


def _new_provenance(robot: Robot | BimanualRobot) -> dict[str, Any]:
    """``meta/hand2robot.json`` of an empty dataset: the surrogate tag and the conventions."""
    return {
        "provenance_format": PROVENANCE_FORMAT,
        "surrogate": True,
        "data_source": "human video",
        "summary": (
            "Surrogate robot episodes retargeted from videos of human hands by hand2robot. "
            "They are not robot experience: use them as auxiliary data beside real robot "
            "data, and filter frames on `feasible` (or on `flags`)."
        ),
        "hand2robot_version": package_version(),
        "robot": {
            "name": robot.name,
            "kind": robot.kind
            if isinstance(robot, BimanualRobot)
            else robot.description.kind.value,
            "urdf_sha256": robot.urdf_sha256,
            "urdf_files": [p.name for p in robot.urdf_paths],
            "joint_names": list(robot.joint_names),
        },
        "conventions": {
            "action": "the next frame's observation.state; the last frame of an episode "
            "repeats its own state",
            "masked_frames": "frames without a hand hold the last valid state and human values "
            "and carry Flag NO_HAND",
            "timestamp": "frame_index / fps; the true time in the source is source_timestamp [s]",
            "flags": {f.name: int(f) for f in Flag},
            "wrist_pose": "hand frame H in the camera frame (x right, y down, z forward): "
            "x, y, z [m], quaternion qx, qy, qz, qw",
        },
        "inputs": [],
        "episodes": [],
    }


def _feasible_fraction(episodes: list[dict[str, Any]]) -> float:
    frames = sum(e["frames"] for e in episodes)
    feasible = sum(e["feasible_fraction"] * e["frames"] for e in episodes)
    return feasible / frames if frames else 0.0


def _check_compatible(
    root: Path,
    info: dict[str, Any],
    features: dict[str, Any],
    robot: Robot | BimanualRobot,
    fps: int,
) -> None:
    problems = []
    if info.get("robot_type") != robot.name:
        problems.append(f"robot {info.get('robot_type')!r}, this input {robot.name!r}")
    if int(info.get("fps", -1)) != int(fps):
        problems.append(
            f"fps {info.get('fps')}, this input {fps} (choose --max-fps or --stride so the "
            "rates match)"
        )
    old = info.get("features", {})
    if set(old) != set(features):
        missing = sorted(set(old) ^ set(features))
        problems.append(f"features differ: {', '.join(missing)} (camera key or --no-video?)")
    else:
        for name, spec in features.items():
            codec = spec.get("info", {}).get("video.codec")
            if codec != old[name].get("info", {}).get("video.codec"):
                problems.append(
                    f"feature {name}: codec {old[name]['info']['video.codec']}, this input "
                    f"{codec} (choose --codec to match)"
                )
            if old[name].get("shape") != spec["shape"] or old[name].get("names") != spec["names"]:
                problems.append(
                    f"feature {name}: shape {old[name].get('shape')}, this input "
                    f"{spec['shape']} (for video: choose --video-size to match)"
                )
    if problems:
        raise DatasetError(f"cannot append to {root}: the dataset has " + "; ".join(problems))


def describe_dataset(root: str | Path) -> dict[str, Any]:
    """What ``hand2robot inspect`` shows: totals, flag counts by reason, episodes, provenance.

    Raises:
        DatasetError: Not a dataset hand2robot wrote.
    """
    root = Path(root)
    existing = _read_existing(root) if root.is_dir() else None
    if existing is None:
        raise DatasetError(f"{root}: no dataset here (no meta/info.json)")
    info, provenance = existing.info, existing.provenance
    inputs = {record["input_index"]: record for record in provenance["inputs"]}
    flags = {f.name: 0 for f in Flag if f.name}
    episodes = []
    rows = existing.episodes.to_pylist()
    for record, row in zip(provenance["episodes"], rows, strict=True):
        for name, count in record["flag_counts"].items():
            flags[name] = flags.get(name, 0) + count
        source = inputs[record["input_index"]]["source"]
        episodes.append(
            {
                "episode_index": record["episode_index"],
                "frames": record["frames"],
                "feasible_fraction": record["feasible_fraction"],
                "task": row["tasks"][0],
                "source": source.get("url") or source.get("path"),
                "source_frame_range": record["source_frame_range"],
                "flag_counts": record["flag_counts"],
            }
        )
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
        "episodes": episodes,
    }


def dataset_card(info: dict[str, Any], provenance: dict[str, Any]) -> str:
    """The README.md written beside the data."""
    inputs = provenance["inputs"]
    lines = [
        "---",
        "tags: [LeRobot, hand2robot, surrogate-data, human-video]",
        "---",
        "",
        f"# Surrogate {info['robot_type']} episodes from human video",
        "",
        "**This is surrogate data.** Every episode was retargeted by hand2robot from a video of "
        "human hands onto the robot below; no robot performed it. Use it as auxiliary data beside "
        "real robot experience, never as a replacement. The provenance of every episode is in "
        f"`{PROVENANCE_PATH}` (`surrogate: true`).",
        "",
        f"- robot: `{info['robot_type']}` (URDF SHA-256 `{provenance['robot']['urdf_sha256']}`)",
        f"- episodes: {info['total_episodes']}, frames: {info['total_frames']}, fps: {info['fps']}",
        f"- feasible frames: {provenance['feasible_fraction']:.1%}",
        f"- hand2robot {provenance['hand2robot_version']}",
        "",
        "## Filtering on feasibility",
        "",
        "Each frame has `feasible` (no flag set) and `flags`, a bitmask of the reasons a frame "
        "is not something the robot could do: "
        + ", ".join(
            f"`{name}`={value}" for name, value in provenance["conventions"]["flags"].items()
        )
        + ". Keep only feasible frames when training:",
        "",
        "```python",
        "from lerobot.datasets.lerobot_dataset import LeRobotDataset",
        "",
        "dataset = LeRobotDataset(repo_id, root=path)",
        "feasible = [i for i, ok in enumerate(dataset.hf_dataset['feasible']) if ok]",
        "```",
        "",
        "`action` is the next frame's `observation.state` (the last frame of an episode holds "
        "its state). Frames without a hand hold the last valid state and carry `NO_HAND`.",
        "",
        "## Inputs",
        "",
        "| input | source | SHA-256 | frames | episodes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for record in inputs:
        source = record["source"]
        lines.append(
            f"| {record['input_index']} | `{Path(str(source.get('path', ''))).name}` "
            f"{source.get('url', '')} | `{str(source.get('sha256', ''))[:16]}...` | "
            f"{record['frames_written']} / {record['frames']} | "
            f"{', '.join(map(str, record['episodes']))} |"
        )
    return "\n".join(lines) + "\n"
