"""One input through the chain: hand tracks -> robot trajectory. Shared by the CLI and the API."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

import retarget
from pipeline.placement import default_camera_to_base
from pipeline.tracking import hand_sizes
from pipeline.tracks import SIDES, HandTracks
from retarget import RetargetConfig, RetargetResult, Robot
from retarget.exceptions import InvalidInputError


@dataclass(frozen=True)
class RetargetedHand:
    """A retargeted hand track.

    Attributes:
        side: The human hand used.
        result: The robot trajectory with flags and residuals.
        transform_camera_to_base: The camera placement used, (4, 4).
    """

    side: str
    result: RetargetResult
    transform_camera_to_base: NDArray[np.float64]


def choose_side(tracks: HandTracks, side: str) -> str:
    """``"auto"`` picks the hand present in most frames; else checks ``side``."""
    if side == "auto":
        return max(SIDES, key=lambda s: int(tracks.hands[s].present.sum()))
    if side not in SIDES:
        raise InvalidInputError(f"unknown hand {side!r}; valid choices: 'auto', 'left', 'right'")
    return side


def retarget_tracks(
    tracks: HandTracks,
    robot: Robot,
    *,
    side: str = "auto",
    config: RetargetConfig | None = None,
    transform_camera_to_base: NDArray[np.float64] | None = None,
    egocentric: bool = False,
) -> RetargetedHand:
    """Retarget one hand of ``tracks`` onto ``robot``.

    Args:
        tracks: Extracted hand tracks.
        robot: A loaded robot.
        side: ``"left"``, ``"right"`` or ``"auto"`` (the hand present in most frames).
        config: Retargeting settings.
        transform_camera_to_base: Camera placement (4, 4); default
            :func:`pipeline.placement.default_camera_to_base`.
        egocentric: For the default placement: the camera is a head camera.
    """
    if side == "auto" and robot.description.side.value in SIDES:
        side = robot.description.side.value  # A dexterous hand takes its own side.
    side = choose_side(tracks, side)
    hand = tracks.hands[side]
    if transform_camera_to_base is None:
        transform_camera_to_base = default_camera_to_base(
            hand.transform_wrist_to_camera,
            hand.present,
            robot.transform_hand_to_ee,
            robot.description.nominal_ee_position,
            egocentric=egocentric,
        )
    wrist_to_base = transform_camera_to_base @ hand.transform_wrist_to_camera
    present = hand.present & np.isfinite(wrist_to_base).all(axis=(1, 2))
    # PnP error relative to the hand's size in the image: LIFT_UNCERTAIN's figure.
    size = np.full(tracks.num_frames, np.nan)
    size[present] = hand_sizes(hand.image_keypoints[present])
    retargeter = retarget.Retargeter(robot, config)
    result = retargeter.retarget_sequence(
        hand.world_keypoints,
        wrist_to_base,
        present=present,
        side=side,  # type: ignore[arg-type]
        timestamps=tracks.timestamps,
        score=hand.score,
        lift_error=hand.reprojection_error / size,
    )
    return RetargetedHand(side, result, transform_camera_to_base)
