"""hand2robot's video pipeline: hand extraction, tracks, placement, and the CLI.

The same functions serve the CLI and the Python API::

    import pipeline, retarget
    tracks = pipeline.extract_hands("clip.mp4")              # or pipeline.read_tracks(path)
    done = pipeline.retarget_tracks(tracks, retarget.load_robot("panda"))   # or placement=
    done.result.q, done.result.feasible
    pipeline.convert("clip.mp4", robot, "datasets/x")          # -> LeRobot v3.0 dataset
    pipeline.run_batch(["videos/"], "datasets/x")                # many inputs, on Ray
"""

from pipeline.batch import BatchConfig, BatchError, BatchReport, expand_inputs, run_batch
from pipeline.calibration import find_sidecar, load_intrinsics
from pipeline.conversion import convert
from pipeline.dataset import DatasetConfig, WriteReport, append_episodes, describe_dataset
from pipeline.encoding import VideoConfig
from pipeline.exceptions import (
    DatasetError,
    InputMediaError,
    ModelError,
    PipelineError,
    TrackFileError,
)
from pipeline.extract import ExtractConfig, extract_cached, extract_hands
from pipeline.inputs import ExtractedInput, extract_input
from pipeline.lifting import solve_wrist_pose
from pipeline.model import ModelInfo, ensure_model
from pipeline.placement import (
    ROTATION_CAMERA_TO_BASE,
    ROTATION_EGOCENTRIC_CAMERA_TO_BASE,
    PlacementConfig,
    camera_pose_to_base,
    default_camera_to_base,
)
from pipeline.retargeted import HandRequest, RetargetedHand
from pipeline.retargeting import (
    choose_side,
    retarget_bimanual,
    retarget_many,
    retarget_sides,
    retarget_tracks,
)
from pipeline.tracks import HandTrack, HandTracks, Intrinsics, read_tracks, write_tracks
from retarget import load_any_robot

__all__ = [
    "BatchConfig",
    "BatchError",
    "BatchReport",
    "ExtractedInput",
    "HandRequest",
    "PlacementConfig",
    "camera_pose_to_base",
    "describe_dataset",
    "expand_inputs",
    "extract_input",
    "run_batch",
    "DatasetConfig",
    "DatasetError",
    "VideoConfig",
    "WriteReport",
    "append_episodes",
    "convert",
    "ROTATION_CAMERA_TO_BASE",
    "ROTATION_EGOCENTRIC_CAMERA_TO_BASE",
    "ExtractConfig",
    "HandTrack",
    "HandTracks",
    "InputMediaError",
    "Intrinsics",
    "ModelError",
    "ModelInfo",
    "PipelineError",
    "RetargetedHand",
    "TrackFileError",
    "choose_side",
    "default_camera_to_base",
    "ensure_model",
    "extract_cached",
    "extract_hands",
    "find_sidecar",
    "load_intrinsics",
    "read_tracks",
    "retarget_tracks",
    "retarget_bimanual",
    "retarget_many",
    "retarget_sides",
    "load_any_robot",
    "solve_wrist_pose",
    "write_tracks",
]
