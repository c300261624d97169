"""The per-frame feature schema (``info.json``'s ``features``) of a surrogate robot dataset.

Conventions of the per-frame features:

- ``observation.state``: the retargeted joint positions [rad] or [m], names = joint names.
  Frames without a hand hold the last valid state (the first valid one before it) and are
  flagged ``NO_HAND``: state and action never hold NaN.
- ``action``: the commanded joint targets, i.e. the next frame's ``observation.state``; the last
  frame of an episode commands its own state (hold).
- ``feasible`` (bool) and ``flags`` (int, bitmask of :class:`retarget.Flag`); ``residual.*``: the
  figures behind the flags (NaN where a figure does not apply, e.g. no hand); ``target_turn``
  [rad]: the turn about its approach axis of the end-effector target the arm reached (0 or pi
  for a 2-fold gripper, :mod:`retarget.symmetry`; NaN without an arm or a hand).
- ``observation.human.*``: the human hand the robot followed: 21 keypoints in MediaPipe's
  hand-centred metric frame [m], the wrist (hand frame H) pose in the camera frame as
  ``x, y, z [m], qx, qy, qz, qw``, the detector score, whether a hand was present, and
  ``wrist_position_std`` [m], the lift's standard deviation of the wrist along its viewing ray
  (:mod:`pipeline.lifting`; NaN for hand-track files of earlier releases). Absent frames hold
  the last valid values, like the state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from retarget import BimanualRobot, Robot

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
#: The ``residual.<name>`` columns, fields of :class:`retarget.Residual`.
RESIDUALS = (
    "position",
    "orientation",
    "fingertip",
    "joint_speed",
    "singular_value",
    "collisions",
)


def feature_spec(dtype: str, width: int, names: Sequence[str] | None) -> dict[str, Any]:
    """One non-video feature: ``dtype``, a one-dimensional ``shape`` and its ``names``."""
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
        "observation.state": feature_spec("float32", len(joints), joints),
        "action": feature_spec("float32", len(joints), joints),
        "observation.human.keypoints": feature_spec("float32", len(keypoint_names), keypoint_names),
        "observation.human.wrist_pose": feature_spec("float32", len(pose_names), pose_names),
        "observation.human.score": feature_spec(
            "float32", len(hands), list(hands) if two else None
        ),
        "observation.human.present": feature_spec("bool", len(hands), list(hands) if two else None),
        "observation.human.wrist_position_std": feature_spec(
            "float32", len(hands), list(hands) if two else None
        ),
        "observation.camera.transform_camera_to_world": feature_spec(
            "float32", 7, ["x", "y", "z", "qx", "qy", "qz", "qw"]
        ),
        "observation.camera.rotation_std": feature_spec("float32", 1, None),
        "feasible": feature_spec("bool", 1, None),
        "flags": feature_spec("int64", 1, None),
    }
    for name in RESIDUALS:
        features[f"residual.{name}"] = feature_spec("float32", 1, None)
    features["target_turn"] = feature_spec(
        "float32", len(hands), [f"{h}.turn" for h in hands] if two else None
    )
    # float32 as lerobot loads it (it gives float32 for a float64 column): 0.25 ms steps up
    # to an hour of video, 2 ms up to ten hours.
    features["source_timestamp"] = feature_spec("float32", 1, None)
    features["source_frame_index"] = feature_spec("int64", 1, None)
    if video is not None:
        features[f"observation.images.{camera}"] = {
            "dtype": "video",
            "shape": [video["video.height"], video["video.width"], 3],
            "names": ["height", "width", "channels"],
            "info": video,
        }
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        features[name] = feature_spec("float32" if name == "timestamp" else "int64", 1, None)
    return features
