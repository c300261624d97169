"""One input through the chain: hand tracks -> robot trajectory. Shared by the CLI and the API."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import retarget
from pipeline.dataset import DatasetConfig, WriteReport, append_episodes, stored_video_size
from pipeline.download import DownloadConfig
from pipeline.exceptions import DatasetError
from pipeline.extract import ExtractConfig
from pipeline.media import iter_frames, open_media
from pipeline.placement import (
    camera_pose_to_base,
    default_camera_to_base,
    scale_workspace,
    turn_about_vertical,
)
from pipeline.retargeted import RetargetedHand
from pipeline.tracking import hand_sizes
from pipeline.tracks import SIDES, HandTrack, HandTracks
from pipeline.video import EpisodeVideo, VideoConfig, VideoEncoder, nominal_fps
from retarget import BimanualRobot, RetargetConfig, Robot
from retarget.exceptions import InvalidInputError


def choose_side(tracks: HandTracks, side: str) -> str:
    """``"auto"`` picks the hand present in most frames; else checks ``side``."""
    if side == "auto":
        return max(SIDES, key=lambda s: int(tracks.hands[s].present.sum()))
    if side not in SIDES:
        raise InvalidInputError(
            f"unknown hand {side!r}; valid choices: 'auto', 'left', 'right', 'both'"
        )
    return side


def load_any_robot(name: str | Path) -> Robot | BimanualRobot:
    """A registry robot, a robot config file, or a bimanual robot, by name."""
    import robots

    if str(name) in robots.bimanual_names():
        return retarget.load_bimanual(str(name))
    return retarget.load_robot(name)


def retarget_sides(
    tracks: HandTracks, robot: Robot | BimanualRobot, *, side: str = "auto", **options: Any
) -> list[RetargetedHand]:
    """:func:`retarget_tracks` for one hand, or with ``side="both"`` for both hands.

    ``both`` gives one two-hand trajectory on a bimanual robot (:func:`retarget_bimanual`), or
    one trajectory (one episode) per hand seen on a single-arm robot. A bimanual robot takes
    only ``both`` (``auto`` means ``both`` there).

    Raises:
        InvalidInputError: ``both`` for a dexterous hand of one side, one hand for a bimanual
            robot, or no hand at all.
    """
    if isinstance(robot, BimanualRobot):
        if options.pop("fit_yaw", False):
            raise InvalidInputError(
                f"robot {robot.name!r} is bimanual; fitting the placement's yaw is for "
                "single-arm robots (such as so101)"
            )
        if side not in ("both", "auto"):
            raise InvalidInputError(
                f"robot {robot.name!r} is bimanual (one arm per hand): it takes --hand both, "
                f"not {side!r}; for one hand choose a single-arm robot such as "
                f"{robot.left.name!r}"
            )
        return [retarget_bimanual(tracks, robot, **options)]
    if side != "both":
        return [retarget_tracks(tracks, robot, side=side, **options)]
    if robot.description.side.value in SIDES:
        raise InvalidInputError(
            f"robot {robot.name!r} is a {robot.description.side.value} hand: --hand both needs "
            "a robot that takes either hand (an arm with a gripper), or choose left or right"
        )
    seen = [s for s in SIDES if tracks.hands[s].present.any()]
    if not seen:
        raise InvalidInputError(f"{_input_name(tracks)}: {_no_hand_seen(tracks)}")
    return [retarget_tracks(tracks, robot, side=s, **options) for s in seen]


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
    raise InvalidInputError(
        f"{_input_name(tracks)}: no {side} hand in {_frames(tracks)} (the {other} hand is in "
        f"{seen}); {hint}"
    )


def retarget_tracks(
    tracks: HandTracks,
    robot: Robot,
    *,
    side: str = "auto",
    config: RetargetConfig | None = None,
    transform_camera_to_base: NDArray[np.float64] | None = None,
    egocentric: bool = False,
    camera_pose: tuple[float, ...] | None = None,
    workspace_scale: float = 1.0,
    fit_yaw: bool = False,
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
        camera_pose: Camera pose in the base frame, ``x, y, z`` [m], ``roll, pitch, yaw``
            [rad] (:func:`pipeline.placement.camera_pose_to_base`); replaces the default.
        workspace_scale: Scale the wrist motion about its median (1 keeps it).
        fit_yaw: Turn the default placement about the vertical through the nominal point, in
            steps of 30 deg, to where the arm reaches the most frames (see :func:`_fit_yaw`);
            for arms that cannot take every orientation, such as the 5-joint SO-101.

    Raises:
        InvalidInputError: The hand is in no frame (the message names the input and says
            which hand is there instead); ``fit_yaw`` with a given placement, or for a robot
            without an arm.
    """
    if side == "auto" and robot.description.side.value in SIDES:
        side = robot.description.side.value  # A dexterous hand takes its own side.
    side = choose_side(tracks, side)
    _check_seen(tracks, side, robot)
    hand = tracks.hands[side]
    retargeter = retarget.Retargeter(robot, config)
    yaw = None
    if fit_yaw:
        if transform_camera_to_base is not None or camera_pose is not None:
            raise InvalidInputError(
                "fitting the placement's yaw needs the default placement, not a given camera pose"
            )
        if not robot.arm_joints:
            raise InvalidInputError(
                f"robot {robot.name!r} has no arm, so no placement suits it better than another; "
                "fitting the placement's yaw is for arms (such as so101)"
            )
        yaw = _fit_yaw(retargeter, tracks, hand, side, egocentric, workspace_scale)
    transform_camera_to_base, placement, wrists, seen = _place(
        [hand],
        robot.transform_hand_to_ee,
        robot.description.nominal_ee_position,
        transform_camera_to_base=transform_camera_to_base,
        egocentric=egocentric,
        camera_pose=camera_pose,
        workspace_scale=workspace_scale,
        fitted_yaw_deg=yaw,
    )
    result = retargeter.retarget_sequence(
        hand.world_keypoints,
        wrists[0],
        present=seen[0],
        side=side,  # type: ignore[arg-type]
        timestamps=tracks.timestamps,
        score=hand.score,
        lift_error=_lift_error(hand, seen[0]),
    )
    return RetargetedHand(side, result, transform_camera_to_base, placement)


def retarget_bimanual(
    tracks: HandTracks,
    robot: BimanualRobot,
    *,
    config: RetargetConfig | None = None,
    transform_camera_to_base: NDArray[np.float64] | None = None,
    egocentric: bool = False,
    camera_pose: tuple[float, ...] | None = None,
    workspace_scale: float = 1.0,
) -> RetargetedHand:
    """Retarget both hands of ``tracks`` onto a bimanual robot, each onto its own arm.

    The placement is one camera pose in the robot's shared base frame. Its default maps the
    median end-effector point of both hands together to the midpoint of the two arms' nominal
    points (the single-arm rule, applied to the pair), with the same camera axes.

    Args:
        tracks: Extracted hand tracks; frames without both hands are flagged ``NO_HAND``.
        robot: A loaded bimanual robot.
        config: Retargeting settings (both arms).
        transform_camera_to_base: Camera placement in the shared base frame (4, 4).
        egocentric: For the default placement: the camera is a head camera.
        camera_pose: Camera pose in the shared base frame (see :func:`retarget_tracks`).
        workspace_scale: Scale both wrists' motion about their common median.

    Raises:
        InvalidInputError: No frame has a hand (the message names the input).
    """
    hands = [tracks.hands[side] for side in SIDES]
    if not any(hand.present.any() for hand in hands):
        raise InvalidInputError(f"{_input_name(tracks)}: {_no_hand_seen(tracks)}")
    middle = (robot.nominal_ee_position("left") + robot.nominal_ee_position("right")) / 2
    transform_camera_to_base, placement, wrists, seen = _place(
        hands,
        robot.left.transform_hand_to_ee,
        (float(middle[0]), float(middle[1]), float(middle[2])),
        transform_camera_to_base=transform_camera_to_base,
        egocentric=egocentric,
        camera_pose=camera_pose,
        workspace_scale=workspace_scale,
    )
    result = retarget.BimanualRetargeter(robot, config).retarget_sequence(
        dict(zip(SIDES, (hand.world_keypoints for hand in hands), strict=True)),
        dict(zip(SIDES, wrists, strict=True)),
        present=dict(zip(SIDES, seen, strict=True)),
        timestamps=tracks.timestamps,
        score=dict(zip(SIDES, (hand.score for hand in hands), strict=True)),
        lift_error={
            side: _lift_error(hand, mine)
            for side, hand, mine in zip(SIDES, hands, seen, strict=True)
        },
    )
    return RetargetedHand("both", result, transform_camera_to_base, placement)


def _place(
    hands: list[HandTrack],
    transform_hand_to_ee: NDArray[np.float64],
    nominal_ee_position: tuple[float, float, float],
    *,
    transform_camera_to_base: NDArray[np.float64] | None,
    egocentric: bool,
    camera_pose: tuple[float, ...] | None,
    workspace_scale: float,
    fitted_yaw_deg: float | None = None,
) -> tuple[NDArray[np.float64], str, list[NDArray[np.float64]], list[NDArray[np.bool_]]]:
    """The camera placement, its description, and each hand's wrist poses in the base frame.

    The hands are pooled: the default placement maps their joint median end-effector point to
    ``nominal_ee_position``, and the workspace scale acts about their joint median (so the
    spacing of two hands scales too). ``fitted_yaw_deg`` turns the default placement about the
    vertical through that point (:func:`_fit_yaw`'s answer). Returns the placement (4, 4), its
    label, and per hand the (T, 4, 4) wrist poses and the (T,) frames where the hand is present
    with a finite pose.
    """
    if transform_camera_to_base is not None:
        placement = "given"
    elif camera_pose is not None:
        transform_camera_to_base = camera_pose_to_base(camera_pose)
        placement = "camera pose " + ",".join(f"{v:g}" for v in camera_pose)
    else:
        placement = "default egocentric" if egocentric else "default third-person"
        transform_camera_to_base = default_camera_to_base(
            np.concatenate([hand.transform_wrist_to_camera for hand in hands]),
            np.concatenate([hand.present for hand in hands]),
            transform_hand_to_ee,
            nominal_ee_position,
            egocentric=egocentric,
        )
        if fitted_yaw_deg is not None:
            transform_camera_to_base = turn_about_vertical(
                transform_camera_to_base,
                np.asarray(nominal_ee_position),
                np.radians(fitted_yaw_deg),
            )
            placement += f", turned {fitted_yaw_deg:g} deg about the vertical (fitted)"
    wrists = [transform_camera_to_base @ hand.transform_wrist_to_camera for hand in hands]
    seen = [
        hand.present & np.isfinite(wrist).all(axis=(1, 2))
        for hand, wrist in zip(hands, wrists, strict=True)
    ]
    if workspace_scale != 1.0:
        scaled = scale_workspace(np.concatenate(wrists), np.concatenate(seen), workspace_scale)
        wrists = list(np.split(scaled, len(hands)))
        placement += f", workspace scale {workspace_scale:g}"
    return transform_camera_to_base, placement, wrists, seen


#: Yaws tried by ``fit_yaw`` [deg], nearest to the drawn convention first (ties keep it).
FIT_YAWS_DEG = (0, 30, -30, 60, -60, 90, -90, 120, -120, 150, -150, 180)
#: Frames of the hand (evenly spread) retargeted for each yaw tried.
FIT_FRAMES = 48


def _fit_yaw(
    retargeter: retarget.Retargeter,
    tracks: HandTracks,
    hand: HandTrack,
    side: str,
    egocentric: bool,
    workspace_scale: float,
) -> float:
    """The yaw [deg] of ``FIT_YAWS_DEG`` at which the arm reaches the most frames.

    Each yaw places the hand as the final placement will (:func:`_place` with that yaw, then
    the workspace scale) and retargets ``FIT_FRAMES`` of the hand's frames, spread evenly over
    the clip; a frame is missed when flagged UNREACHABLE or JOINT_LIMIT. The first yaw with the
    fewest misses wins.
    """
    robot = retargeter.robot
    missed = int(retarget.Flag.UNREACHABLE | retarget.Flag.JOINT_LIMIT)
    best, fewest = 0.0, FIT_FRAMES + 1
    for yaw in FIT_YAWS_DEG:
        _, _, wrists, seen = _place(
            [hand],
            robot.transform_hand_to_ee,
            robot.description.nominal_ee_position,
            transform_camera_to_base=None,
            egocentric=egocentric,
            camera_pose=None,
            workspace_scale=workspace_scale,
            fitted_yaw_deg=float(yaw),
        )
        frames = np.flatnonzero(seen[0])
        frames = frames[np.linspace(0, len(frames) - 1, min(FIT_FRAMES, len(frames))).astype(int)]
        result = retargeter.retarget_sequence(
            hand.world_keypoints[frames],
            wrists[0][frames],
            side=side,  # type: ignore[arg-type]
            timestamps=tracks.timestamps[frames],
        )
        misses = int(np.count_nonzero(result.flags & missed))
        if misses < fewest:
            best, fewest = float(yaw), misses
    return best


def _lift_error(hand: HandTrack, present: NDArray[np.bool_]) -> NDArray[np.float64]:
    """PnP error relative to the hand's size in the image: LIFT_UNCERTAIN's figure, (T,)."""
    size = np.full(len(present), np.nan)
    size[present] = hand_sizes(hand.image_keypoints[present])
    return np.asarray(hand.reprojection_error / size)


@dataclass(frozen=True)
class ExtractedInput:
    """One input, extracted and ready to retarget and write.

    Attributes:
        tracks: The hand tracks (one row per kept frame).
        video: The kept frames encoded for a dataset (a temporary file the caller removes), or
            None when no video is stored.
        fps: The dataset frame rate of the kept frames (:func:`pipeline.video.nominal_fps`).
        source_url: The URL the input was downloaded from, if it was.
        cache_hit: The tracks came from the hand-track cache.
    """

    tracks: HandTracks
    video: EpisodeVideo | None
    fps: int
    source_url: str | None = None
    cache_hit: bool = False

    def discard(self) -> None:
        """Remove the temporary video file."""
        if self.video is not None:
            self.video.path.unlink(missing_ok=True)


def record_video(
    media_path: str | Path,
    temp_dir: Path,
    fps: int,
    extract: ExtractConfig,
    config: VideoConfig,
    frames: int,
    frame_size: tuple[int, int] | None = None,
) -> EpisodeVideo:
    """Decode the input's kept frames again and encode them (for tracks read from a cache).

    Raises:
        DatasetError: The input now yields another number of frames than its tracks.
    """
    media = open_media(media_path)
    encoder = _temp_encoder(temp_dir, fps, config, frame_size)
    with encoder:
        for frame in iter_frames(
            media, stride=extract.stride, max_fps=extract.max_fps, folder_fps=extract.folder_fps
        ):
            encoder.add(frame.rgb)
    if encoder.frames != frames:
        encoder.path.unlink(missing_ok=True)
        raise DatasetError(
            f"{media_path} now yields {encoder.frames} frames, its hand tracks {frames}: the "
            "input changed since extraction"
        )
    return encoder.result()


def _temp_encoder(
    temp_dir: Path, fps: int, config: VideoConfig, frame_size: tuple[int, int] | None
) -> VideoEncoder:
    temp_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".hand2robot-", suffix=".mp4", dir=temp_dir)
    os.close(handle)
    return VideoEncoder(name, fps, config, frame_size=frame_size)


def extract_input(
    input_path: str | Path,
    *,
    extract: ExtractConfig | None = None,
    video: VideoConfig | None = None,
    temp_dir: str | Path,
    frame_size: tuple[int, int] | None = None,
    intrinsics: str | Path | None = None,
    model: str | Path | None = None,
    cache: str | Path | None = None,
    download: DownloadConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExtractedInput:
    """Step 1 of the chain, shared by the CLI, the API and the batch stages.

    Extraction goes through the hand-track cache; on a miss the stored video is encoded in the
    same decoding pass (in the decoding thread), on a hit (or for a hand-track file, whose
    source media must still exist) the kept frames are decoded again.

    Args:
        input_path: Video, GIF, image folder, image, hand-track file (``.parquet``), or an
            http(s) URL of one (downloaded into ``<cache dir>/downloads``).
        extract: Extraction settings (a hand-track file keeps its own).
        video: Stored video settings; None stores none.
        temp_dir: Where the temporary video is written (beside the dataset, same filesystem).
        frame_size: Stored (width, height) to fit frames into (an existing dataset's).
        intrinsics: Intrinsics file (see :func:`pipeline.extract_hands`).
        model: An official ``hand_landmarker.task``.
        cache: Hand-track cache (see :func:`pipeline.extract_cached`).
        download: URL download limits.
        progress: Called with frames extracted so far.

    Raises:
        Hand2RobotError: Bad input, model, URL or video (see the subclasses).
    """
    from pipeline.download import fetch, is_url
    from pipeline.extract import extract_cached
    from pipeline.model import cache_dir
    from pipeline.tracks import read_tracks

    temp_dir = Path(temp_dir)
    source_url = None
    if is_url(input_path):
        source_url = str(input_path)
        input_path = fetch(source_url, cache_dir(), download)
    input_path = Path(input_path)
    encoder: VideoEncoder | None = None
    episode_video: EpisodeVideo | None = None
    hit = True
    try:
        if input_path.suffix == ".parquet":
            tracks = read_tracks(input_path)
            media_path = Path(str(tracks.source.get("path", "")))
            extract = _settings(tracks.settings)
            if not media_path.exists() and video is not None:
                raise DatasetError(
                    f"{input_path}: its source {media_path} is not there to take the video "
                    "frames from; put it back or pass --no-video"
                )
            fps = (
                _media_fps(media_path, extract)
                if media_path.exists()
                else _fps_from_timestamps(tracks.timestamps)
            )
        else:
            extract = extract or ExtractConfig()
            media_path = input_path
            fps = _media_fps(media_path, extract)
            if video is not None:
                encoder = _temp_encoder(temp_dir, fps, video, frame_size)
            tracks, _, hit = extract_cached(
                media_path,
                intrinsics,
                config=extract,
                model=model,
                cache=cache,
                progress=progress,
                sink=encoder.add if encoder is not None else None,
            )
            if encoder is not None and not hit:
                encoder.close()
                episode_video = encoder.result()
                encoder = None
        if video is not None and episode_video is None:
            episode_video = record_video(
                media_path, temp_dir, fps, extract, video, tracks.num_frames, frame_size
            )
        return ExtractedInput(tracks, episode_video, fps, source_url, hit)
    except BaseException:
        if episode_video is not None:
            episode_video.path.unlink(missing_ok=True)
        raise
    finally:
        if encoder is not None:
            encoder.abort()


def convert(
    input_path: str | Path,
    robot: Robot | BimanualRobot,
    root: str | Path,
    *,
    extract: ExtractConfig | None = None,
    dataset: DatasetConfig | None = None,
    retarget: RetargetConfig | None = None,
    side: str = "auto",
    egocentric: bool = False,
    camera_pose: tuple[float, ...] | None = None,
    workspace_scale: float = 1.0,
    fit_yaw: bool = False,
    intrinsics: str | Path | None = None,
    model: str | Path | None = None,
    cache: str | Path | None = None,
    download: DownloadConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> WriteReport:
    """One input -> episodes appended to a dataset (what ``hand2robot retarget --out`` runs).

    :func:`extract_input`, then :func:`retarget_tracks`, then
    :func:`pipeline.dataset.append_episodes`: the same steps the batch stages run.

    Args:
        input_path: Video, GIF, image folder, image, hand-track file, or http(s) URL.
        robot: The robot to retarget onto.
        root: The dataset folder (see :func:`pipeline.dataset.append_episodes`).
        extract: Extraction settings (ignored for a hand-track file, which has its own).
        dataset: Episode cutting and video settings.
        retarget: Retargeting settings.
        side: ``"left"``, ``"right"``, ``"auto"``, or ``"both"`` (one two-arm episode on a
            bimanual robot, else one episode per hand; see :func:`retarget_sides`).
        egocentric: Default placement for a head camera.
        camera_pose: Explicit camera pose (see :func:`retarget_tracks`).
        workspace_scale: Scale of the wrist motion about its median.
        fit_yaw: Turn the default placement to where the arm reaches most (see
            :func:`retarget_tracks`).
        intrinsics: Intrinsics file (see :func:`pipeline.extract_hands`).
        model: An official ``hand_landmarker.task``.
        cache: Hand-track cache (see :func:`pipeline.extract_cached`).
        download: URL download limits.
        progress: Called with frames extracted so far.

    Raises:
        Hand2RobotError: Bad input, model, or dataset (see the subclasses).
    """
    dataset = dataset or DatasetConfig()
    root = Path(root)
    done = extract_input(
        input_path,
        extract=extract,
        video=dataset.video,
        temp_dir=root.parent,
        frame_size=stored_video_size(root, dataset.camera),
        intrinsics=intrinsics,
        model=model,
        cache=cache,
        download=download,
        progress=progress,
    )
    try:
        hands = retarget_sides(
            done.tracks,
            robot,
            side=side,
            config=retarget,
            egocentric=egocentric,
            camera_pose=camera_pose,
            workspace_scale=workspace_scale,
            fit_yaw=fit_yaw,
        )
        reports = [
            append_episodes(
                root,
                done.tracks,
                retargeted,
                robot,
                video=done.video,
                fps=done.fps,
                config=dataset,
                retarget_config=retarget,
                source_url=done.source_url,
                hand_requested=side,
            )
            for retargeted in hands
        ]
        return _merge_reports(reports)
    finally:
        done.discard()


def _merge_reports(reports: list[WriteReport]) -> WriteReport:
    """One report for the appends of one input (one per hand with ``side="both"``)."""
    last = reports[-1]
    return WriteReport(
        root=last.root,
        episodes=[e for r in reports for e in r.episodes],
        frames=[f for r in reports for f in r.frames],
        feasible_fraction=[f for r in reports for f in r.feasible_fraction],
        dropped_frames=sum(r.dropped_frames for r in reports),
        total_episodes=last.total_episodes,
        total_frames=last.total_frames,
    )


def _settings(recorded: dict[str, Any]) -> ExtractConfig:
    """The extraction settings a hand-track file records (fields of other versions dropped)."""
    known = {f.name for f in dataclasses.fields(ExtractConfig)}
    return ExtractConfig(**{k: v for k, v in recorded.items() if k in known})


def _media_fps(media_path: Path, extract: ExtractConfig) -> int:
    return nominal_fps(
        open_media(media_path),
        stride=extract.stride,
        max_fps=extract.max_fps,
        folder_fps=extract.folder_fps,
    )


def _fps_from_timestamps(timestamps: NDArray[np.float64]) -> int:
    steps = np.diff(timestamps)
    return max(1, round(1.0 / float(np.median(steps)))) if len(steps) else 1
