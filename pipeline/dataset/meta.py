"""The metadata of a dataset: ``info.json`` and the provenance record that tags it surrogate.

``meta/hand2robot.json`` holds the surrogate tag, the conventions of the columns, one record per
appended input (its source, model, settings, placement) and one per episode (its frame range,
feasible fraction, flag counts and statistics).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.dataset.layout import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_PATH,
    PROVENANCE_FORMAT,
    VIDEO_PATH,
)
from pipeline.exceptions import DatasetError
from pipeline.extract import package_version
from retarget import BimanualRobot, Flag, Robot

LIFTING_METHOD = (
    "MediaPipe hand landmarker world landmarks (metric, hand-centred) placed in the camera "
    "frame by PnP (OpenCV SQPnP) against the image landmarks and the camera intrinsics"
)
"""The lift of hand-track files that record no ``monocular_depth`` setting (and of
``monocular_depth="landmarker"``)."""


def lifting_method(settings: dict[str, Any], source: dict[str, Any]) -> str:
    """How the tracks' hands were lifted to metric 3D, for the provenance."""
    if settings.get("monocular_depth", "landmarker") == "landmarker":
        method = LIFTING_METHOD
    else:
        size = settings.get("hand_size")
        length = f"{size} m (given)" if size else "0.185 m (the adult mean, unknown)"
        method = (
            "MediaPipe hand landmarker: per-frame articulation from its world landmarks, "
            "orientation by PnP (OpenCV SQPnP), distance from the angles the hand's segments "
            f"subtend against a fixed-proportion hand of length {length}, "
        )
        spread = settings.get("distance_spread")
        if spread:
            method += f"drawn towards the track's median by its noise (spread {spread}), "
        method += "smoothed in time (pipeline.lifting)"
    if "depth" in source:
        method += "; then fitted to the depth maps " + str(source["depth"])
    return method


def new_info(
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


def new_provenance(robot: Robot | BimanualRobot) -> dict[str, Any]:
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
            "camera": "observation.camera.transform_camera_to_world: the camera in the world "
            "frame the robot motion was placed in (inputs[].source.camera_motion: static = "
            "identity, estimate = the first frame's camera, rotation only, or a trajectory "
            "file), x, y, z [m], qx, qy, qz, qw; an unknown pose holds the last known one and its "
            "observation.camera.rotation_std [deg] is NaN (Flag CAMERA_UNCERTAIN)",
        },
        "inputs": [],
        "episodes": [],
    }


def feasible_fraction(episodes: list[dict[str, Any]]) -> float:
    """The frame-weighted feasible fraction of the provenance's episode records."""
    frames = sum(e["frames"] for e in episodes)
    feasible = sum(e["feasible_fraction"] * e["frames"] for e in episodes)
    return feasible / frames if frames else 0.0


def source_record(source: dict[str, Any], url: str | None) -> dict[str, Any]:
    """The tracks' source record, with an absolute path where the file is here, and the URL."""
    record = dict(source)
    path = Path(str(record.get("path", "")))
    if record.get("path") and path.exists():
        record["path"] = str(path.resolve())
    if url:
        record["url"] = url
    return record


def check_compatible(
    root: Path,
    info: dict[str, Any],
    features: dict[str, Any],
    robot: Robot | BimanualRobot,
    fps: int,
) -> None:
    """Raise unless episodes of ``robot`` at ``fps`` with ``features`` fit the dataset.

    Raises:
        DatasetError: Every mismatch at once (robot, fps, features, codec, video size), each
            with the option that would make it fit.
    """
    problems = []
    if info.get("robot_type") != robot.name:
        problems.append(f"robot {info.get('robot_type')!r}, this input {robot.name!r}")
    held = int(info.get("fps", -1))
    if held != int(fps):
        problems.append(
            f"{held} fps, this input {fps} fps: "
            + (
                "it is slower, and hand2robot repeats no frames; give it a dataset of its own "
                f"(another --out, or --fps {fps} for a new one)"
                if fps < held
                else f"extract it again at the dataset's rate (--fps {held})"
            )
        )
    old = info.get("features", {})
    if set(old) != set(features):
        missing = sorted(set(old) ^ set(features))
        problems.append(f"features differ: {', '.join(missing)} (camera key or --no-video?)")
    else:
        problems.extend(_feature_problems(old, features))
    if problems:
        raise DatasetError(f"cannot append to {root}: the dataset has " + "; ".join(problems))


def _feature_problems(old: dict[str, Any], features: dict[str, Any]) -> list[str]:
    """Codec and shape mismatches between the dataset's features and an input's."""
    problems = []
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
    return problems
