"""Input errors of the video pipeline (same hierarchy as the retargeting API)."""

from robots.exceptions import Hand2RobotError


class PipelineError(Hand2RobotError):
    """Base class of pipeline input errors."""


class ModelError(PipelineError):
    """The hand model cannot be obtained, read or verified."""


class InputMediaError(PipelineError):
    """A video, image or folder cannot be read (the message names the file and the reason)."""


class TrackFileError(PipelineError):
    """A hand-track file is missing, unreadable, or of an unsupported version."""


class DatasetError(PipelineError):
    """A dataset cannot be written or appended to (the message says why and what to do)."""
