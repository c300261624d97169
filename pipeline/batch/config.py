"""How a batch job runs (:class:`BatchConfig`) and what it did (:class:`BatchReport`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.dataset import DatasetConfig
from pipeline.download import DownloadConfig
from pipeline.exceptions import PipelineError
from pipeline.extract import ExtractConfig
from pipeline.placement import PlacementConfig
from pipeline.retargeted import HandRequest
from retarget import RetargetConfig

REPORT_FORMAT = 1


class BatchError(PipelineError):
    """A batch job cannot start (no inputs, bad robot list, unreachable cluster)."""


@dataclass(frozen=True)
class BatchConfig:
    """How a batch job runs; the per-input settings are those of ``hand2robot retarget``."""

    robots: tuple[str, ...] = ("panda",)
    """Robots to retarget onto; with more than one, each gets ``<out>/<robot>/``."""
    workers: int = 2
    """Extraction actors (one CPU each)."""
    retarget_workers: int | None = None
    """Most retargeting actors (half a CPU each); None: as many as ``workers``. The pool starts
    with one and grows while inputs wait for it (retargeting a dexterous hand or a 5-DoF arm
    can take as long as extracting)."""
    optimize_batch: int = 1
    """With ``retarget.optimize`` (on by default): inputs a retargeting actor takes at once, whose
    trajectories go to one optimiser call per robot (a padded batch; on a GPU the way to fill
    it, e.g. 16). 1 (the default): each input is retargeted and optimised on its own as soon as
    it is extracted, so results are written one by one (a batch of N waits for N extractions,
    and an interrupt loses what waits). Without optimisation each input is on its own."""
    max_retries: int = 2
    """Times an input is run again after its worker process died on it (a crash in native
    code, killed for memory, a lost node); then it is an error record."""
    address: str | None = None
    """Ray cluster to join (``ray://...`` or ``host:port``); None reads ``RAY_ADDRESS``, else
    starts an embedded local Ray."""
    side: HandRequest = HandRequest.AUTO
    """Hand to retarget: ``auto``, ``left``, ``right``, or ``both`` (one episode per hand, or
    one two-arm episode on a bimanual robot); a plain string of these is taken too."""
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    """Camera placement and workspace scale, for every input."""
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    """Extraction settings."""
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    """Episode and video settings."""
    retarget: RetargetConfig = field(default_factory=RetargetConfig)
    """Retargeting settings."""
    download: DownloadConfig = field(default_factory=DownloadConfig)
    """URL download limits."""
    model: str | None = None
    """An official ``hand_landmarker.task``; default the cached one."""
    cache: str | None = None
    """Hand-track cache folder; default ``<cache dir>/tracks``."""
    depth_sidecars: bool = True
    """Lift each input with the depth-map folder found beside it, where there is one
    (:func:`pipeline.depth_maps.find_depth_sidecar`: ``depth/`` inside an image folder, or
    ``STEM_depth/`` beside the input), as ``--depth`` does for one input."""
    depth_scale: float = 1000.0
    """Raw units per metre of the sidecar depth maps (1000: millimetres)."""
    camera_motion: str = "static"
    """``"static"`` or ``"estimate"``, for every input (see :func:`pipeline.extract_hands`; a
    trajectory file belongs to one clip: use ``hand2robot retarget --camera-motion FILE``)."""

    @property
    def retarget_batch(self) -> int:
        """Inputs per retargeting call: ``optimize_batch`` when optimising, else 1."""
        # Every input has timestamps: None (the default) optimises them all.
        return self.optimize_batch if self.retarget.optimize is not False else 1

    @property
    def max_retarget_actors(self) -> int:
        """``retarget_workers``, else ``workers``."""
        return self.retarget_workers or self.workers

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", HandRequest.parse(self.side))
        if not self.robots:
            raise BatchError("give at least one robot")
        if len(set(self.robots)) != len(self.robots):
            raise BatchError(f"robots repeat: {', '.join(self.robots)}")
        if self.workers < 1:
            raise BatchError(f"workers must be >= 1, got {self.workers}")
        if self.retarget_workers is not None and self.retarget_workers < 1:
            raise BatchError(f"retarget_workers must be >= 1, got {self.retarget_workers}")
        if self.optimize_batch < 1:
            raise BatchError(f"optimize_batch must be >= 1, got {self.optimize_batch}")
        if self.max_retries < 0:
            raise BatchError(f"max_retries must be >= 0, got {self.max_retries}")
        if not self.depth_scale > 0:
            raise BatchError(f"depth_scale must be > 0 raw units per metre, got {self.depth_scale}")
        if self.camera_motion not in ("static", "estimate"):
            raise BatchError(
                f"camera_motion for a batch must be static or estimate, got {self.camera_motion!r} "
                "(a trajectory file is one clip's: retarget --camera-motion FILE)"
            )


@dataclass(frozen=True)
class WrittenRecord:
    """One input appended to one robot's dataset."""

    input: str
    """The input, as listed."""
    robot: str
    """The robot's name."""
    dataset: str
    """Its dataset folder."""
    episodes: list[int]
    """Indices of the new episodes."""
    frames: list[int]
    """Frames per new episode."""
    feasible_fraction: list[float]
    """Per new episode."""
    input_frames: int
    """Frames of the input (before splitting)."""
    extract_s: float
    """Seconds the extraction took [s]."""
    node: str
    """The Ray node that extracted it."""
    retarget_s: float
    """Seconds retargeting onto this robot took [s]."""
    retarget_actor: str
    """The retargeting actor."""
    write_s: float
    """Seconds the append took [s]."""
    letterboxed: bool = False
    """Its frames have another aspect ratio than the stored video's: they were letterboxed
    (black bars) into it."""


@dataclass(frozen=True)
class SkippedRecord:
    """One input left out for one robot."""

    input: str
    """The input, as listed."""
    robot: str
    """The robot's name."""
    reason: str
    """Why (``already in the dataset``)."""


@dataclass(frozen=True)
class ErrorRecord:
    """One failure: the job went on without it."""

    input: str
    """The input, as listed."""
    robot: str | None
    """The robot, None for a failure before retargeting."""
    stage: str
    """``extract``, ``retarget`` or ``write``."""
    error: str
    """The error's type and message (and where, for an unexpected one)."""


@dataclass
class BatchReport:
    """What a batch job did; written as JSON beside the output.

    Attributes:
        inputs: Every input, as listed.
        written: One record per (input, robot) appended: episodes, frames, feasible fraction.
        skipped: (input, robot) already in the dataset (resume).
        errors: One record per failure: input, robot (None for extraction), stage, error.
        seconds: Wall time of the job [s].
        ray: Where it ran: ``mode`` (``embedded`` or ``cluster``), ``address`` (None when
            embedded), alive ``nodes`` and their ``cpus``; empty when nothing needed Ray.
        interrupted: The job was stopped (Ctrl-C) before every input was run; what it lists
            is in the datasets, and the same command again resumes.
    """

    inputs: list[str]
    written: list[WrittenRecord] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    seconds: float = 0.0
    ray: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def status(self) -> str:
        """``ok``, ``partial`` (some failed), ``failed`` (all failed) or ``interrupted``."""
        if self.interrupted:
            return "interrupted"
        if not self.errors:
            return "ok"
        return "partial" if (self.written or self.skipped) else "failed"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {"report_format": REPORT_FORMAT, "status": self.status} | asdict(self)
