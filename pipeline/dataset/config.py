"""How episodes are cut and stored (:class:`DatasetConfig`), and what an append wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.encoding import VideoConfig
from pipeline.exceptions import DatasetError

SPLIT_ON = ("infeasible", "no_hand")


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
    allow_duplicate: bool = False
    """Append an input the dataset already holds (same content, hand model, extraction
    settings and hand) again; by default it is left out, said so, and nothing is written."""
    fps: int | None = None
    """The dataset's frame rate [Hz]: every faster input is resampled to it (the source frame
    nearest each ``k / fps`` slot; true times kept in ``source_timestamp``). None: an existing
    dataset's rate; for a new dataset the slowest input's (``batch``) or the input's own
    (``retarget --out``). An input slower than the rate is refused: no frame is repeated or
    made up (:func:`pipeline.dataset.rates.dataset_rate`)."""

    def __post_init__(self) -> None:
        if self.fps is not None and not (isinstance(self.fps, int) and self.fps >= 1):
            raise DatasetError(f"fps must be a positive integer [Hz], got {self.fps!r}")
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
        already_there: Nothing was appended: the dataset already holds this input.
    """

    root: Path
    episodes: list[int]
    frames: list[int]
    feasible_fraction: list[float]
    dropped_frames: int
    total_episodes: int
    total_frames: int
    already_there: bool = False
    """Nothing was appended: the dataset holds this input already (see
    ``DatasetConfig.allow_duplicate``)."""
