"""Extraction settings: every field is part of a hand-track file's cache key."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.exceptions import InputMediaError
from pipeline.lifting import DISTANCE_SPREAD

MONOCULAR_DEPTHS = ("rulers", "landmarker")


@dataclass(frozen=True)
class ExtractConfig:
    """Extraction settings (all of them are part of a hand-track file's cache key)."""

    num_hands: int = 2
    """Hands the landmarker looks for. With 2 on a clip that shows one hand, the palm detector
    runs on every frame (about twice the time); use 1 for one-hand clips."""
    horizontal_fov_deg: float = 60.0
    """Field of view assumed when no intrinsics file is given or found [deg], across the image's
    long side (the horizontal one of a landscape frame), so that display rotation does not change
    the focal length (see :meth:`pipeline.Intrinsics.from_fov`)."""
    selfie: bool = False
    """Input is mirrored (front camera): swap the detector's Left/Right labels."""
    min_detection_confidence: float = 0.5
    """Palm detector threshold."""
    min_presence_confidence: float = 0.5
    """Hand presence threshold of the landmark model."""
    min_tracking_confidence: float = 0.5
    """Landmark tracking threshold (below it the palm detector runs again)."""
    stride: int = 1
    """Keep every stride-th input frame."""
    max_fps: float | None = None
    """Resample faster inputs to this rate [Hz] (the frame nearest to each 1/max_fps slot);
    None keeps all. An integer rate gives every input of a dataset the same ``fps``."""
    max_size: int | None = None
    """Downscale frames so that the longer side is at most this before the model [px]."""
    folder_fps: float = 30.0
    """Frame rate of an image folder whose file names carry no times [Hz]."""
    one_person: bool = True
    """Sequences show one person: hands seen at the same time take different sides."""
    link_gate: float = 0.6
    """Largest frame-to-frame keypoint motion, over hand size, that keeps a hand's identity."""
    link_max_gap_s: float = 0.5
    """A hand unseen for longer than this starts a new identity [s]."""
    duplicate_overlap: float = 0.5
    """Two detections whose keypoint boxes overlap more than this (intersection over the smaller
    box) are one hand."""
    interpolate_max_gap_s: float = 0.15
    """Gaps up to this long (between the detections around them) are interpolated [s]."""
    smoothing_sigma_s: float = 0.04
    """Gaussian smoothing width in time [s] (about 3.3 Hz cut-off); 0 turns smoothing off."""
    monocular_depth: str = "rulers"
    """How a monocular lift finds depth: ``"rulers"`` (the hand's segments against a
    fixed-proportion hand of ``hand_size``, see :mod:`pipeline.lifting`) or ``"landmarker"``
    (PnP of the landmarker's own 3D hand, earlier releases' lift, kept for comparison: its
    ``wrist_position_std`` is NaN, so every frame is ``LIFT_UNCERTAIN``)."""
    hand_size: float | None = None
    """The person's hand length, wrist crease to the tip of the middle finger [m], when known:
    it sets the metric depth of a monocular lift (:mod:`pipeline.lifting`). None: the adult mean
    (0.185 m), and its uncertainty enters ``wrist_position_std``."""
    distance_spread: float | None = DISTANCE_SPREAD
    """How far a hand's distance from the camera strays from its track's median (standard
    deviation of log distance): a monocular lift draws each frame towards that median by the
    frame's own noise (:func:`pipeline.lifting.towards_track_median`), so that frames whose
    rulers disagree do not carry the hand tens of centimetres away. None keeps each frame where
    its rulers put it (earlier releases)."""
    reflect_mirrored: bool = True
    """Reflect through its palm each landmarker 3D hand that has the other hand's chirality (fingers
    curled behind the palm; decided along the track, :mod:`pipeline.chirality`), so that it is
    a hand of its track's side; recorded per frame in ``HandTrack.mirrored``. False keeps the
    landmarker's shapes (earlier releases)."""

    def __post_init__(self) -> None:
        problems = []
        if self.num_hands not in (1, 2):
            problems.append(f"num_hands must be 1 or 2, got {self.num_hands}")
        if not 10.0 <= self.horizontal_fov_deg <= 170.0:
            problems.append(
                f"horizontal_fov_deg must be within [10, 170], got {self.horizontal_fov_deg}"
            )
        if self.stride < 1:
            problems.append(f"stride must be >= 1, got {self.stride}")
        if self.max_fps is not None and self.max_fps <= 0:
            problems.append(f"max_fps must be > 0, got {self.max_fps}")
        if self.max_size is not None and self.max_size < 64:
            problems.append(f"max_size must be >= 64 px, got {self.max_size}")
        if self.folder_fps <= 0:
            problems.append(f"folder_fps must be > 0, got {self.folder_fps}")
        for name in ("min_detection_confidence", "min_presence_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be within [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.min_tracking_confidence <= 1.0:
            problems.append(
                f"min_tracking_confidence must be within [0, 1], got {self.min_tracking_confidence}"
            )
        for name in ("interpolate_max_gap_s", "smoothing_sigma_s", "link_max_gap_s"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.monocular_depth not in MONOCULAR_DEPTHS:
            problems.append(
                f"monocular_depth must be one of {', '.join(MONOCULAR_DEPTHS)}, got "
                f"{self.monocular_depth!r}"
            )
        if self.hand_size is not None and not 0.05 <= self.hand_size <= 0.4:
            problems.append(
                f"hand_size must be a hand length within [0.05, 0.4] m, got {self.hand_size}"
            )
        if self.distance_spread is not None and not 0.0 < self.distance_spread <= 2.0:
            problems.append(
                "distance_spread must be within (0, 2] (None, or 0 on the command line, "
                f"turns it off), got {self.distance_spread}"
            )
        if self.link_gate <= 0:
            problems.append(f"link_gate must be > 0, got {self.link_gate}")
        if not 0.0 < self.duplicate_overlap <= 1.0:
            problems.append(
                f"duplicate_overlap must be within (0, 1], got {self.duplicate_overlap}"
            )
        if problems:
            raise InputMediaError("invalid extraction settings: " + "; ".join(problems))
