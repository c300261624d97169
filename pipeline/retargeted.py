"""The retargeted input: what the retargeting step hands to the dataset writer.

It lives below both (``pipeline.run`` makes it, ``pipeline.dataset`` writes it), so neither
imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from retarget import BimanualResult, RetargetResult


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
