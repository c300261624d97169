"""Hand tracks -> robot trajectory: choose the hand, place the camera, retarget, flag.

The step the CLI, the Python API and the batch stages share between extraction
(:mod:`pipeline.inputs`) and the dataset writer (:mod:`pipeline.dataset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

import retarget
from pipeline.hand_identity import hand_sizes
from pipeline.lifting import frame_std, size_prior
from pipeline.placement import (
    FittedPlacement,
    PlacementConfig,
    fit_bimanual_placement,
    fit_placement,
    place_hands,
)
from pipeline.retargeted import HandRequest, RetargetedHand
from pipeline.tracks import SIDES, HandTrack, HandTracks, hands_in_world
from retarget import BimanualRobot, Flag, HandSide, RetargetConfig, Robot
from retarget.evaluate import input_flags
from retarget.exceptions import InvalidInputError


def choose_side(
    tracks: HandTracks,
    side: HandRequest | str,
    feasibility: retarget.FeasibilityConfig | None = None,
) -> HandSide:
    """``auto`` picks the hand with the most trusted frames; else checks ``side``.

    A trusted frame has the hand, a detector score of at least ``feasibility.min_score`` and a
    certain lift (its figure within ``max_wrist_std``, or ``max_lift_error`` for track files of
    earlier releases): the frames that ``LOW_CONFIDENCE`` and ``LIFT_UNCERTAIN`` leave alone.
    On a tie, the hand seen in more frames; then the left. A hand half hidden behind what it
    holds is seen as often as the other but lifted with much less certainty (measured on
    ``cups_shuffle_third_person.mp4``: left 237 frames, 38 trusted; right 231, 95 trusted).

    Raises:
        InvalidInputError: Not a hand request, or ``both``.
    """
    request = HandRequest.parse(side)
    if request is HandRequest.AUTO:
        feasibility = feasibility or retarget.FeasibilityConfig()
        left, right = (_trusted_and_seen(tracks, name, feasibility) for name in SIDES)
        return "left" if left >= right else "right"
    if request is HandRequest.BOTH:
        raise InvalidInputError("one hand is asked for here: 'auto', 'left' or 'right'")
    return "left" if request is HandRequest.LEFT else "right"


def _trusted_and_seen(
    tracks: HandTracks, side: str, feasibility: retarget.FeasibilityConfig
) -> tuple[int, int]:
    """Frames of one hand without an input flag of its own, and frames with the hand at all.

    The flags are ``LOW_CONFIDENCE`` and ``LIFT_UNCERTAIN``, by their own rule
    (:func:`retarget.evaluate.input_flags`).
    """
    hand = tracks.hands[side]
    seen = np.asarray(hand.present, dtype=bool)
    figures = retarget.Targets(
        present=seen,
        transform_ee_to_base=None,  # only the input's figures are judged here
        vectors=None,
        gripper=None,
        score=hand.score,
        **_lift_figure(hand, seen, size_prior(tracks)),
    )
    doubt = input_flags(seen, figures, feasibility) & (Flag.LOW_CONFIDENCE | Flag.LIFT_UNCERTAIN)
    return int((seen & (doubt == 0)).sum()), int(seen.sum())


def retarget_sides(
    tracks: HandTracks,
    robot: Robot | BimanualRobot,
    *,
    side: HandRequest | str = HandRequest.AUTO,
    config: RetargetConfig | None = None,
    placement: PlacementConfig | None = None,
) -> list[RetargetedHand]:
    """:func:`retarget_tracks` for one hand, or with ``side="both"`` for both hands.

    ``both`` gives one two-hand trajectory on a bimanual robot (:func:`retarget_bimanual`), or
    one trajectory (one episode) per hand seen on a single-arm robot. A bimanual robot takes
    only ``both`` (``auto`` means ``both`` there).

    Raises:
        InvalidInputError: ``both`` for a dexterous hand of one side, one hand for a bimanual
            robot, a fitted yaw for a bimanual robot, or no hand at all.
    """
    request = HandRequest.parse(side)
    placement = placement or PlacementConfig()
    if isinstance(robot, BimanualRobot):
        if request not in (HandRequest.BOTH, HandRequest.AUTO):
            raise InvalidInputError(
                f"robot {robot.name!r} is bimanual (one arm per hand): it takes --hand both, "
                f"not {request.value!r}; for one hand choose a single-arm robot such as "
                f"{robot.left.name!r}"
            )
        return [retarget_bimanual(tracks, robot, config=config, placement=placement)]
    done = retarget_many([(tracks, request)], robot, config=config, placement=placement)[0]
    if isinstance(done, InvalidInputError):
        raise done
    return done


def _input_name(tracks: HandTracks) -> str:
    return Path(tracks.source.get("path", "")).name or "the input"


def _frames(tracks: HandTracks) -> str:
    count = tracks.num_frames
    return "its only frame" if count == 1 else f"any of its {count} frames"


def _no_hand_seen(tracks: HandTracks) -> str:
    return f"no hand detected in {_frames(tracks)}, so nothing to retarget"


def _check_seen(tracks: HandTracks, side: str, robot: Robot) -> None:
    """Raise if ``side`` is in no frame, saying which hand is there instead."""
    if tracks.hands[side].present.any():
        return
    other = next(s for s in SIDES if s != side)
    seen = int(tracks.hands[other].present.sum())
    if not seen:
        raise InvalidInputError(f"{_input_name(tracks)}: {_no_hand_seen(tracks)}")
    hint = (
        f"{robot.name!r} is a {side} hand; choose a {other} one"
        if robot.description.side.value == side
        else f"choose --hand {other} or auto"
    )
    where = "it" if tracks.num_frames == 1 else f"{seen} of them"
    raise InvalidInputError(
        f"{_input_name(tracks)}: no {side} hand in {_frames(tracks)} (the {other} hand is in "
        f"{where}); {hint}"
    )


def retarget_tracks(
    tracks: HandTracks,
    robot: Robot,
    *,
    side: HandRequest | str = HandRequest.AUTO,
    config: RetargetConfig | None = None,
    placement: PlacementConfig | None = None,
    transform_camera_to_base: NDArray[np.float64] | None = None,
) -> RetargetedHand:
    """Retarget one hand of ``tracks`` onto ``robot``.

    Args:
        tracks: Extracted hand tracks.
        robot: A loaded robot.
        side: ``left``, ``right`` or ``auto`` (the hand with the most frames free of input
            flags, :func:`choose_side`; a dexterous hand takes its own side).
        config: Retargeting settings.
        placement: Camera placement and workspace scale (default: third-person, scale 1).
        transform_camera_to_base: A given camera placement (4, 4); replaces the placement's
            default and camera pose.

    Raises:
        InvalidInputError: The hand is in no frame (the message names the input and says
            which hand is there instead); a fitted yaw with a given placement, or for a robot
            without an arm.
    """
    retargeter = retarget.Retargeter(robot, config)
    prepared = _prepare(retargeter, tracks, side, placement, transform_camera_to_base)
    return prepared.done(retargeter.retarget_targets([prepared.targets])[0])


def retarget_many(
    items: Sequence[tuple[HandTracks, HandRequest | str]],
    robot: Robot,
    *,
    config: RetargetConfig | None = None,
    placement: PlacementConfig | None = None,
) -> list[list[RetargetedHand] | InvalidInputError]:
    """:func:`retarget_sides` of many inputs onto one single-arm robot or hand, batched.

    One retargeter serves every input; with ``config.optimize`` every trajectory goes to one
    call of the trajectory optimiser (:meth:`retarget.Retargeter.retarget_targets`).

    Args:
        items: Per input, its tracks and the hand asked for (``both``: one trajectory per
            hand seen).
        robot: A loaded robot with one arm or one hand (bimanual robots:
            :func:`retarget_bimanual`, per input).
        config: Retargeting settings.
        placement: Camera placement and workspace scale, the same for every input.

    Returns:
        Per input, its trajectories, or the error that input alone raised.
    """
    retargeter = retarget.Retargeter(robot, config)
    prepared: list[list[_Prepared] | InvalidInputError] = []
    for tracks, side in items:
        try:
            sides = _sides(tracks, robot, side)
            prepared.append([_prepare(retargeter, tracks, s, placement, None) for s in sides])
        except InvalidInputError as error:
            prepared.append(error)
    clips = [p.targets for group in prepared if isinstance(group, list) for p in group]
    results = iter(retargeter.retarget_targets(clips))
    return [
        group if isinstance(group, InvalidInputError) else [p.done(next(results)) for p in group]
        for group in prepared
    ]


def _sides(tracks: HandTracks, robot: Robot, side: HandRequest | str) -> list[HandRequest | str]:
    """The hands :func:`retarget_sides` retargets for ``side`` on a single-arm robot or hand."""
    request = HandRequest.parse(side)
    if request is not HandRequest.BOTH:
        return [request]
    if robot.description.side.value in SIDES:
        raise InvalidInputError(
            f"robot {robot.name!r} is a {robot.description.side.value} hand: --hand both needs "
            "a robot that takes either hand (an arm with a gripper), or choose left or right"
        )
    seen = [s for s in SIDES if tracks.hands[s].present.any()]
    if not seen:
        raise InvalidInputError(f"{_input_name(tracks)}: {_no_hand_seen(tracks)}")
    return list(seen)


class _Prepared(NamedTuple):
    """One hand of one input, ready to retarget: its targets and how to wrap the result."""

    targets: retarget.Targets
    side: HandSide
    transform_camera_to_base: NDArray[np.float64]
    label: str

    def done(self, result: retarget.RetargetResult) -> RetargetedHand:
        return RetargetedHand(self.side, result, self.transform_camera_to_base, self.label)


def _prepare(
    retargeter: retarget.Retargeter,
    tracks: HandTracks,
    side: HandRequest | str,
    placement: PlacementConfig | None,
    transform_camera_to_base: NDArray[np.float64] | None,
) -> _Prepared:
    """Choose the hand, place it (fitting the yaw if asked) and make its targets."""
    robot = retargeter.robot
    placement = placement or PlacementConfig()
    if HandRequest.parse(side) is HandRequest.AUTO and robot.description.side.value in SIDES:
        side = robot.description.side.value  # A dexterous hand takes its own side.
    chosen = choose_side(tracks, side, retargeter.config.feasibility)
    _check_seen(tracks, chosen, robot)
    # The camera's own motion out first: the placement sees the hand in the world frame.
    hand = hands_in_world(tracks, [tracks.hands[chosen]])[0]
    fitted = FittedPlacement()
    placement = placement.resolved(_default_placed(placement, transform_camera_to_base, robot))
    if placement.fits:
        _check_fit(transform_camera_to_base)
        if not robot.arm_joints:
            raise InvalidInputError(
                f"robot {robot.name!r} has no arm, so no placement suits it better than another; "
                "fitting the placement is for arms (such as so101)"
            )
        fitted = fit_placement(retargeter, hand, tracks.timestamps, chosen, placement)
    placed = place_hands(
        [hand],
        robot.transform_hand_to_ee,
        robot.description.nominal_ee_position,
        placement,
        transform_camera_to_base=transform_camera_to_base,
        **fitted.place(),
    )
    seen = placed.seen[0]
    targets = retargeter.targets(
        hand.world_keypoints,
        placed.transform_wrist_to_base[0],
        present=seen,
        side=chosen,
        timestamps=tracks.timestamps,
        score=hand.score,
        camera_std=tracks.camera_rotation_std,
        **_lift_figure(hand, seen, size_prior(tracks)),
    )
    return _Prepared(targets, chosen, placed.transform_camera_to_base, placed.label)


def retarget_bimanual(
    tracks: HandTracks,
    robot: BimanualRobot,
    *,
    config: RetargetConfig | None = None,
    placement: PlacementConfig | None = None,
    transform_camera_to_base: NDArray[np.float64] | None = None,
) -> RetargetedHand:
    """Retarget both hands of ``tracks`` onto a bimanual robot, each onto its own arm.

    The placement is one camera pose in the robot's shared base frame. Its default maps the
    median end-effector point of both hands together to the midpoint of the two arms' nominal
    points (the single-arm rule, applied to the pair), with the same camera axes.

    Args:
        tracks: Extracted hand tracks; frames without both hands are flagged ``NO_HAND``.
        robot: A loaded bimanual robot.
        config: Retargeting settings (both arms).
        placement: Camera placement in the shared base frame, workspace scale about both
            wrists' common median.
        transform_camera_to_base: A given camera placement in the shared base frame (4, 4).

    Raises:
        InvalidInputError: No frame has a hand (the message names the input), or a fitted
            placement with a given camera pose.
    """
    placement = placement or PlacementConfig()
    hands = hands_in_world(tracks, [tracks.hands[side] for side in SIDES])
    if not any(hand.present.any() for hand in hands):
        raise InvalidInputError(f"{_input_name(tracks)}: {_no_hand_seen(tracks)}")
    middle = (robot.nominal_ee_position("left") + robot.nominal_ee_position("right")) / 2
    nominal = (float(middle[0]), float(middle[1]), float(middle[2]))
    retargeter = retarget.BimanualRetargeter(robot, config)
    fitted = FittedPlacement()
    placement = placement.resolved(_default_placed(placement, transform_camera_to_base, robot))
    if placement.fits:
        _check_fit(transform_camera_to_base)
        fitted = fit_bimanual_placement(retargeter, hands, tracks.timestamps, nominal, placement)
    placed = place_hands(
        hands,
        robot.left.transform_hand_to_ee,
        nominal,
        placement,
        transform_camera_to_base=transform_camera_to_base,
        **fitted.place(),
    )
    result = retargeter.retarget_sequence(
        dict(zip(SIDES, (hand.world_keypoints for hand in hands), strict=True)),
        dict(zip(SIDES, placed.transform_wrist_to_base, strict=True)),
        present=dict(zip(SIDES, placed.seen, strict=True)),
        timestamps=tracks.timestamps,
        score=dict(zip(SIDES, (hand.score for hand in hands), strict=True)),
        camera_std=tracks.camera_rotation_std,
        **_both_lift_figures(hands, placed.seen, size_prior(tracks)),
    )
    return RetargetedHand("both", result, placed.transform_camera_to_base, placed.label)


def _default_placed(
    placement: PlacementConfig,
    transform_camera_to_base: NDArray[np.float64] | None,
    robot: retarget.Robot | BimanualRobot,
) -> bool:
    """Whether the default placement places an arm: where fits left to the default are made."""
    has_arm = bool(robot.left.arm_joints if isinstance(robot, BimanualRobot) else robot.arm_joints)
    return has_arm and placement.camera_pose is None and transform_camera_to_base is None


def _check_fit(transform_camera_to_base: NDArray[np.float64] | None) -> None:
    """A fitted placement is a default one: refused beside a given camera placement."""
    if transform_camera_to_base is not None:
        raise InvalidInputError(
            "fitting the placement needs the default placement, not a given camera pose"
        )


def _lift_figure(
    hand: HandTrack, present: NDArray[np.bool_], prior: float
) -> dict[str, NDArray[np.float64]]:
    """LIFT_UNCERTAIN's figure: the wrist's frame-to-frame standard deviation [m].

    The hand-size part of ``wrist_position_std`` (``prior`` of the depth) is one scale for the
    whole track: it scales the motion the robot copies about its placement, it does not make
    one frame worse than another, so the flag leaves it out (:func:`pipeline.lifting.frame_std`).
    Track files of earlier releases have no std: the PnP error over the hand's image size.
    """
    if hand.wrist_position_std is not None:
        return {"wrist_std": frame_std(hand, prior)}
    return {"lift_error": _lift_error(hand, present)}


def _both_lift_figures(
    hands: Sequence[HandTrack], seen: Sequence[NDArray[np.bool_]], prior: float
) -> dict[str, dict[str, NDArray[np.float64]]]:
    """:func:`_lift_figure` of both hands, keyed as :class:`retarget.BimanualRetargeter` takes."""
    # Both hands come from one track file: both have the std, or neither.
    figures = [_lift_figure(hand, mine, prior) for hand, mine in zip(hands, seen, strict=True)]
    (name,) = figures[0]
    return {name: {side: figure[name] for side, figure in zip(SIDES, figures, strict=True)}}


def _lift_error(hand: HandTrack, present: NDArray[np.bool_]) -> NDArray[np.float64]:
    """PnP error relative to the hand's size in the image: LIFT_UNCERTAIN's figure, (T,)."""
    size = np.full(len(present), np.nan)
    size[present] = hand_sizes(hand.image_keypoints[present])
    return np.asarray(hand.reprojection_error / size)
