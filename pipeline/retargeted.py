"""The retargeted input (what the retargeting step hands to the writer) and the hand asked for.

Both live below the two (``pipeline.retargeting`` makes them, ``pipeline.dataset`` writes
them), so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from retarget import BimanualResult, RetargetResult
from retarget.exceptions import InvalidInputError


class HandRequest(StrEnum):
    """Which human hand to retarget (``--hand``); a plain string of the same value also works."""

    AUTO = "auto"
    """The hand with the most frames free of input flags (then the hand seen most); a dexterous
    hand takes its own side, a bimanual robot both."""
    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"
    """One two-arm trajectory on a bimanual robot; else one trajectory per hand seen."""

    @classmethod
    def parse(cls, value: str) -> HandRequest:
        """``value`` as a request.

        Raises:
            InvalidInputError: Not one of the four, listing them.
        """
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in cls)
            raise InvalidInputError(f"unknown hand {value!r}; valid choices: {choices}") from None


@dataclass(frozen=True)
class RetargetedHand:
    """A retargeted hand track.

    Attributes:
        side: The human hand used (``"both"`` for a bimanual robot).
        result: The robot trajectory with flags and residuals.
        transform_camera_to_base: The camera placement used, (4, 4).
        placement: How it was chosen (``default third-person``, ``default egocentric``,
            ``camera pose x,y,z,roll,pitch,yaw``, ``given``), with the workspace scale.
    """

    side: str
    result: RetargetResult | BimanualResult
    transform_camera_to_base: NDArray[np.float64]
    placement: str = "default third-person"
