"""LeRobot v3.0 datasets of surrogate robot episodes, written without depending on lerobot.

One concept per module:

- :mod:`~pipeline.dataset.layout`: where each file lives, the format versions;
- :mod:`~pipeline.dataset.features`: the per-frame feature schema from a robot;
- :mod:`~pipeline.dataset.stats`: per-episode statistics and their merge;
- :mod:`~pipeline.dataset.storage`: lock, staging folder, atomic exchange, crash recovery;
- :mod:`~pipeline.dataset.meta`: ``info.json`` and the surrogate provenance record;
- :mod:`~pipeline.dataset.writer`: :func:`append_episodes`, one input appended;
- :mod:`~pipeline.dataset.reader`: existing datasets, :func:`describe_dataset`;
- :mod:`~pipeline.dataset.card`: the dataset card (``README.md``).
"""

from pipeline.dataset.card import dataset_card
from pipeline.dataset.config import SPLIT_ON, DatasetConfig, WriteReport
from pipeline.dataset.features import KEYPOINT_NAMES, RESIDUALS, episode_features
from pipeline.dataset.frames import default_task, split_segments
from pipeline.dataset.layout import (
    CODEBASE_VERSION,
    DATA_PATH,
    EPISODES_PATH,
    PROVENANCE_PATH,
    VIDEO_PATH,
)
from pipeline.dataset.reader import (
    describe_dataset,
    frame_columns,
    held_inputs,
    stored_robot,
    stored_video_size,
)
from pipeline.dataset.writer import append_episodes

__all__ = [
    "CODEBASE_VERSION",
    "DATA_PATH",
    "EPISODES_PATH",
    "KEYPOINT_NAMES",
    "PROVENANCE_PATH",
    "RESIDUALS",
    "SPLIT_ON",
    "VIDEO_PATH",
    "DatasetConfig",
    "WriteReport",
    "append_episodes",
    "dataset_card",
    "default_task",
    "describe_dataset",
    "frame_columns",
    "episode_features",
    "held_inputs",
    "split_segments",
    "stored_robot",
    "stored_video_size",
]
