"""Hand tracks: per-frame, per-hand poses extracted from one video, and their Parquet file.

File layout (version 2): one row per input frame, columns

- ``timestamp`` float64 [s];
- per hand ``h`` in ``("left", "right")`` and per extra hand ``extra0``, ``extra1``, ... (a
  second hand of a side already taken, e.g. another person's): ``h.present`` bool,
  ``h.interpolated`` bool (filled across a short gap, not detected), ``h.label_agrees`` bool
  (the detector's own per-frame label equals the track's side), ``h.score`` float32,
  ``h.image_keypoints`` fixed_size_list<float32>[42] (21 x (u, v) [px]),
  ``h.world_keypoints`` fixed_size_list<float32>[63] (21 x (x, y, z) [m], MediaPipe's
  hand-centred frame, scaled to the lifted hand's size),
  ``h.transform_wrist_to_camera`` fixed_size_list<float64>[16]
  (row-major 4x4, pose of the hand frame H in the camera frame [m]),
  ``h.reprojection_error`` float32 [px], ``h.wrist_position_std`` float32 [m] (the lift's
  uncertainty along the wrist's viewing ray; absent in files of earlier releases),
  ``h.mirrored`` bool (the landmarker's 3D hand reflected through its palm to the track's side, see
  :func:`pipeline.chirality.mirrored_hands`; absent in files of earlier releases) and, where
  depth maps were given, ``h.depth_residual`` float32 [m] (the depth-map fit's residual, see
  :mod:`pipeline.depth`);

and the schema metadata key ``hand2robot.tracks`` holding JSON: ``format_version``, the cache
``key``, the intrinsics with their source, the input's path, kind and SHA-256, the model's source
and SHA-256, the extraction settings, how timestamps were obtained, and the sides of the extra
hands. Absent hands are NaN in every numeric column.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from pipeline.exceptions import TrackFileError

FORMAT_VERSION = 2
METADATA_KEY = b"hand2robot.tracks"
SIDES = ("left", "right")


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera intrinsics.

    Attributes:
        matrix: The 3x3 camera matrix K [px].
        distortion: OpenCV distortion coefficients (k1, k2, p1, p2[, k3...]); zeros if none.
        width: Image width [px].
        height: Image height [px].
        source: Where K came from (``"fov:60deg"``, a file path, ...).
    """

    matrix: NDArray[np.float64]
    distortion: NDArray[np.float64]
    width: int
    height: int
    source: str

    @staticmethod
    def from_fov(width: int, height: int, horizontal_fov_deg: float) -> Intrinsics:
        """Intrinsics of an undistorted camera with the given field of view across its long side.

        The angle spans the image's longer side, whichever way the frame is displayed: a phone
        clip shown in portrait (``rotate=90`` display metadata) gets the focal length of the same
        camera in landscape, so it lifts to the same depth. For a landscape frame this is the
        horizontal field of view.
        """
        focal = (max(width, height) / 2.0) / np.tan(np.radians(horizontal_fov_deg) / 2.0)
        matrix = np.array([[focal, 0, width / 2.0], [0, focal, height / 2.0], [0, 0, 1]])
        return Intrinsics(matrix, np.zeros(5), width, height, f"fov:{horizontal_fov_deg:g}deg")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "matrix": self.matrix.tolist(),
            "distortion": self.distortion.tolist(),
            "width": self.width,
            "height": self.height,
            "source": self.source,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Intrinsics:
        """Inverse of :meth:`to_json`."""
        return Intrinsics(
            np.asarray(data["matrix"], dtype=np.float64),
            np.asarray(data["distortion"], dtype=np.float64),
            int(data["width"]),
            int(data["height"]),
            str(data["source"]),
        )


@dataclass(frozen=True)
class HandTrack:
    """One hand over a clip; every array has one row per input frame.

    Attributes:
        side: ``"left"`` or ``"right"``: the person's real hand.
        present: Shape (T,) bool: detected, or interpolated across a short gap.
        score: The detector's handedness confidence, shape (T,), NaN where absent (an
            interpolated frame holds the score interpolated between the detections around the gap).
        image_keypoints: Shape (T, 21, 2) [px], MediaPipe order, NaN where absent.
        world_keypoints: Shape (T, 21, 3) [m], the landmarker's hand-centred frame scaled to
            the lifted hand's size (:mod:`pipeline.lifting`), NaN where absent.
        transform_wrist_to_camera: Shape (T, 4, 4): pose of the hand frame H in the camera
            frame [m] (x right, y down, z forward), NaN where absent.
        reprojection_error: Mean PnP reprojection error, shape (T,) [px], NaN where absent.
        interpolated: Shape (T,) bool, frames filled across a short gap.
        label_agrees: Shape (T,) bool, frames whose detector label equals ``side`` (the side
            itself comes from the whole track, see :mod:`pipeline.hand_identity`).
        depth_residual: Shape (T,) [m]: the median depth difference of the keypoints kept by
            the depth-map fit (:mod:`pipeline.depth`), NaN where a frame had too little depth;
            None when no depth maps were given.
        wrist_position_std: Shape (T,) [m]: standard deviation of the wrist's position along
            its viewing ray (:func:`pipeline.lifting.wrist_range_std`; with depth maps, from
            the fit), NaN where absent; None in track files of earlier releases.
        mirrored: Shape (T,) bool: detected frames whose landmarker 3D hand had the other
            hand's chirality and was reflected through its palm to this side
            (:func:`pipeline.chirality.mirrored_hands`); None in files of earlier releases.
    """

    side: str
    present: NDArray[np.bool_]
    score: NDArray[np.float64]
    image_keypoints: NDArray[np.float64]
    world_keypoints: NDArray[np.float64]
    transform_wrist_to_camera: NDArray[np.float64]
    reprojection_error: NDArray[np.float64]
    interpolated: NDArray[np.bool_]
    label_agrees: NDArray[np.bool_]
    depth_residual: NDArray[np.float64] | None = None
    wrist_position_std: NDArray[np.float64] | None = None
    mirrored: NDArray[np.bool_] | None = None

    @staticmethod
    def empty(side: str, frames: int) -> HandTrack:
        """A track with no detection in any of ``frames`` frames."""
        return HandTrack(
            side,
            np.zeros(frames, dtype=bool),
            np.full(frames, np.nan),
            np.full((frames, 21, 2), np.nan),
            np.full((frames, 21, 3), np.nan),
            np.full((frames, 4, 4), np.nan),
            np.full(frames, np.nan),
            np.zeros(frames, dtype=bool),
            np.zeros(frames, dtype=bool),
        )


@dataclass(frozen=True)
class HandTracks:
    """Hand tracks of one input.

    Attributes:
        timestamps: Shape (T,) [s], one per input frame.
        hands: ``"left"`` and ``"right"`` tracks (the person's hands).
        intrinsics: The camera intrinsics used for lifting.
        source: ``{"path", "kind", "sha256", "timestamps"}`` of the input.
        model: ``{"source": ..., "sha256": ...}`` of the hand model.
        settings: Extraction settings (part of the cache key).
        extra: Further hands whose side was already taken at the same time (another person's,
            or both hands of one side in a still image), each with its side.
        key: The cache key (content, model, settings, intrinsics); empty if not computed.
        transform_camera_to_world: Shape (T, 4, 4) [m]: each frame's camera in the world frame
            (identity for a static camera, the first frame's camera for an estimate, a
            trajectory file's world for a file; NaN where unknown). The hands stay in the
            camera frame; placement applies this first (:func:`hands_in_world`). None: static.
        camera_rotation_std: Shape (T,) [deg]: standard deviation of each frame's camera
            rotation (0 for static and for a file; NaN where unknown). None: zeros.
    """

    timestamps: NDArray[np.float64]
    hands: dict[str, HandTrack]
    intrinsics: Intrinsics
    source: dict[str, str] = field(default_factory=dict)
    model: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    extra: tuple[HandTrack, ...] = ()
    key: str = ""
    transform_camera_to_world: NDArray[np.float64] = None  # type: ignore[assignment]
    camera_rotation_std: NDArray[np.float64] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        frames = len(self.timestamps)
        if self.transform_camera_to_world is None:
            object.__setattr__(
                self, "transform_camera_to_world", np.tile(np.eye(4), (frames, 1, 1))
            )
        if self.camera_rotation_std is None:
            object.__setattr__(self, "camera_rotation_std", np.zeros(frames))

    @property
    def num_frames(self) -> int:
        """Number of input frames."""
        return len(self.timestamps)


def fixed_size_list(values: NDArray[np.floating], dtype: type[np.floating]) -> pa.Array:
    """Rows of ``values``, shape (N, ...), flattened into an Arrow fixed-size list of ``dtype``.

    Each row holds ``prod(values.shape[1:])`` numbers, e.g. 63 for keypoints (N, 21, 3).
    """
    width = int(np.prod(values.shape[1:]))
    flat = pa.array(np.ascontiguousarray(values, dtype=dtype).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width)


def write_tracks(tracks: HandTracks, path: str | Path) -> Path:
    """Write tracks to a Parquet file atomically (a temporary file renamed into place)."""
    path = Path(path)
    frames = tracks.num_frames
    columns: dict[str, pa.Array] = {"timestamp": pa.array(tracks.timestamps, pa.float64())}
    named = [(side, tracks.hands.get(side) or HandTrack.empty(side, frames)) for side in SIDES]
    named += [(f"extra{i}", hand) for i, hand in enumerate(tracks.extra)]
    for prefix, hand in named:
        columns[f"{prefix}.present"] = pa.array(hand.present, pa.bool_())
        columns[f"{prefix}.interpolated"] = pa.array(hand.interpolated, pa.bool_())
        columns[f"{prefix}.label_agrees"] = pa.array(hand.label_agrees, pa.bool_())
        columns[f"{prefix}.score"] = pa.array(hand.score.astype(np.float32))
        columns[f"{prefix}.image_keypoints"] = fixed_size_list(hand.image_keypoints, np.float32)
        columns[f"{prefix}.world_keypoints"] = fixed_size_list(hand.world_keypoints, np.float32)
        columns[f"{prefix}.transform_wrist_to_camera"] = fixed_size_list(
            hand.transform_wrist_to_camera, np.float64
        )
        columns[f"{prefix}.reprojection_error"] = pa.array(
            hand.reprojection_error.astype(np.float32)
        )
        if hand.wrist_position_std is not None:
            columns[f"{prefix}.wrist_position_std"] = pa.array(
                hand.wrist_position_std.astype(np.float32)
            )
        if hand.depth_residual is not None:
            columns[f"{prefix}.depth_residual"] = pa.array(hand.depth_residual.astype(np.float32))
        if hand.mirrored is not None:
            columns[f"{prefix}.mirrored"] = pa.array(hand.mirrored, pa.bool_())
    columns["camera.transform_camera_to_world"] = fixed_size_list(
        tracks.transform_camera_to_world, np.float64
    )
    columns["camera.rotation_std"] = pa.array(tracks.camera_rotation_std.astype(np.float32))
    meta = {
        "format_version": FORMAT_VERSION,
        "key": tracks.key,
        "extra_sides": [hand.side for hand in tracks.extra],
        "intrinsics": tracks.intrinsics.to_json(),
        "source": tracks.source,
        "model": tracks.model,
        "settings": tracks.settings,
    }
    table = pa.table(columns).replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, staging, compression="zstd")
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return path


def _column(table: pa.Table, name: str, shape: tuple[int, ...]) -> NDArray[np.float64]:
    column = table.column(name).combine_chunks()
    if isinstance(column.type, pa.FixedSizeListType):
        values = column.flatten().to_numpy(zero_copy_only=False)
    else:
        values = column.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64).reshape((table.num_rows, *shape))


def read_tracks(path: str | Path) -> HandTracks:
    """Read a hand-track file.

    Raises:
        TrackFileError: Missing file, not a hand-track file, or an unsupported version.
    """
    path = Path(path)
    if not path.is_file():
        raise TrackFileError(f"hand-track file not found: {path}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise TrackFileError(f"{path} is not a readable Parquet file: {err}") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise TrackFileError(f"{path} is not a hand2robot hand-track file (no track metadata)")
    meta = json.loads(raw)
    if meta.get("format_version") != FORMAT_VERSION:
        raise TrackFileError(
            f"{path} has track format version {meta.get('format_version')}; this hand2robot "
            f"reads version {FORMAT_VERSION}"
        )

    def flags(name: str) -> NDArray[np.bool_]:
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=bool)

    def optional(name: str) -> NDArray[np.float64] | None:
        return _column(table, name, ()) if name in table.column_names else None

    names = set(table.column_names)

    def track(prefix: str, side: str) -> HandTrack:
        return HandTrack(
            side=side,
            present=flags(f"{prefix}.present"),
            score=_column(table, f"{prefix}.score", ()),
            image_keypoints=_column(table, f"{prefix}.image_keypoints", (21, 2)),
            world_keypoints=_column(table, f"{prefix}.world_keypoints", (21, 3)),
            transform_wrist_to_camera=_column(table, f"{prefix}.transform_wrist_to_camera", (4, 4)),
            reprojection_error=_column(table, f"{prefix}.reprojection_error", ()),
            interpolated=flags(f"{prefix}.interpolated"),
            label_agrees=flags(f"{prefix}.label_agrees"),
            depth_residual=optional(f"{prefix}.depth_residual"),
            wrist_position_std=optional(f"{prefix}.wrist_position_std"),
            mirrored=flags(f"{prefix}.mirrored") if f"{prefix}.mirrored" in names else None,
        )

    try:
        hands = {side: track(side, side) for side in SIDES}
        extra = tuple(track(f"extra{i}", s) for i, s in enumerate(meta.get("extra_sides", [])))
    except KeyError as err:
        raise TrackFileError(f"{path}: missing column {err}") from None
    return HandTracks(
        timestamps=_column(table, "timestamp", ()),
        hands=hands,
        intrinsics=Intrinsics.from_json(meta["intrinsics"]),
        source=meta.get("source", {}),
        model=meta.get("model", {}),
        settings=meta.get("settings", {}),
        extra=extra,
        key=str(meta.get("key", "")),
        # Files of earlier releases have no camera columns: a static camera.
        transform_camera_to_world=(
            _column(table, "camera.transform_camera_to_world", (4, 4))
            if "camera.transform_camera_to_world" in table.column_names
            else None  # type: ignore[arg-type]
        ),
        camera_rotation_std=optional("camera.rotation_std"),  # type: ignore[arg-type]
    )


def hands_in_world(tracks: HandTracks, hands: list[HandTrack]) -> list[HandTrack]:
    """``hands`` with ``transform_wrist_to_camera`` taken to the world frame (camera motion out).

    ``transform_camera_to_world @ transform_wrist_to_camera`` per frame; a frame whose camera
    pose is unknown (NaN) keeps the last known pose before it (the first known one at the start),
    and its ``camera_rotation_std`` stays NaN, so the evaluator flags it.
    """
    poses = held_camera_poses(tracks)
    if np.allclose(poses, np.eye(4)):
        return hands
    return [
        replace(hand, transform_wrist_to_camera=poses @ hand.transform_wrist_to_camera)
        for hand in hands
    ]


def hold(values: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Rows of ``values`` where not ``valid`` replaced by the last valid row (first before)."""
    index = np.where(valid, np.arange(len(valid)), -1)
    index = np.maximum.accumulate(index)
    first = int(np.argmax(valid))
    index[index < 0] = first
    return values[index]


def held_camera_poses(tracks: HandTracks) -> NDArray[np.float64]:
    """``transform_camera_to_world`` (T, 4, 4), each unknown (NaN) pose held from the last one.

    The first known pose stands before it; the identity when none is known.
    """
    poses = np.array(tracks.transform_camera_to_world, dtype=np.float64)
    known = np.asarray(np.isfinite(poses).all(axis=(1, 2)), dtype=bool)
    if not known.any():
        return np.tile(np.eye(4), (len(poses), 1, 1))
    return hold(poses, known)


def read_tracks_key(path: str | Path) -> str | None:
    """The cache key stored in a hand-track file, or None if it is not a current track file."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
    except (pa.ArrowInvalid, OSError):
        return None
    if raw is None:
        return None
    meta = json.loads(raw)
    if meta.get("format_version") != FORMAT_VERSION:
        return None
    return str(meta.get("key") or "") or None
