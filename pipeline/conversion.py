"""One input to episodes in a dataset: extract, retarget, append (``retarget --out``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.dataset import (
    DatasetConfig,
    WriteReport,
    append_episodes,
    describe_dataset,
    held_inputs,
    stored_robot,
    stored_video_size,
)
from pipeline.dataset.rates import extract_for
from pipeline.download import DownloadConfig
from pipeline.extract import ExtractConfig
from pipeline.inputs import extract_input, input_key
from pipeline.model import ensure_model
from pipeline.placement import PlacementConfig
from pipeline.retargeted import HandRequest
from pipeline.retargeting import retarget_sides
from pipeline.trajectory import camera_motion_kind
from retarget import BimanualRobot, RetargetConfig, Robot


def convert(
    input_path: str | Path,
    robot: Robot | BimanualRobot,
    root: str | Path,
    *,
    extract: ExtractConfig | None = None,
    dataset: DatasetConfig | None = None,
    retarget: RetargetConfig | None = None,
    side: HandRequest | str = HandRequest.AUTO,
    placement: PlacementConfig | None = None,
    intrinsics: str | Path | None = None,
    model: str | Path | None = None,
    cache: str | Path | None = None,
    download: DownloadConfig | None = None,
    progress: Callable[[int], None] | None = None,
    depth: str | Path | None = None,
    depth_scale: float = 1000.0,
    camera_motion: str | Path = "static",
) -> WriteReport:
    """One input -> episodes appended to a dataset (what ``hand2robot retarget --out`` runs).

    :func:`pipeline.extract_input`, :func:`pipeline.retarget_sides`, :func:`append_episodes`.

    Args:
        input_path: Video, GIF, image folder, image, hand-track file, or http(s) URL.
        robot: The robot to retarget onto.
        root: The dataset folder (see :func:`pipeline.append_episodes`).
        extract: Extraction settings (ignored for a hand-track file, which has its own).
        dataset: Episode cutting and video settings.
        retarget: Retargeting settings.
        side: ``left``, ``right``, ``auto`` or ``both`` (see :func:`pipeline.retarget_sides`).
        placement: Camera placement and workspace scale (:class:`pipeline.PlacementConfig`).
        intrinsics: Intrinsics file (see :func:`pipeline.extract_hands`).
        model: An official ``hand_landmarker.task``.
        cache: Hand-track cache (see :func:`pipeline.extract_cached`).
        download: URL download limits.
        progress: Called with frames extracted so far.
        depth: Depth-map folder (:func:`pipeline.extract_hands`); None: monocular.
        depth_scale: Raw depth units per metre.
        camera_motion: ``static``, ``estimate`` or a trajectory (:func:`pipeline.extract_hands`).

    Returns:
        What was appended; ``already_there`` if it holds this input, settings and hand already.

    Raises:
        Hand2RobotError: Bad input, model, or dataset (see the subclasses).
    """
    dataset = dataset or DatasetConfig()
    request, root = HandRequest.parse(side), Path(root)
    extract = extract_for(root, dataset, extract, input_path)  # at the dataset's rate
    inputs = (input_path, extract, model, depth, depth_scale, camera_motion)
    if not dataset.allow_duplicate and _holds(root, robot, request, *inputs):
        return _already_there(root)
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
        depth=depth,
        depth_scale=depth_scale,
        camera_motion=camera_motion,
    )
    try:
        hands = retarget_sides(
            done.tracks, robot, side=request, config=retarget, placement=placement
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
                hand_requested=request.value,
            )
            for retargeted in hands
        ]
        return merge_reports(reports)
    finally:
        done.discard()


def _holds(
    root: Path,
    robot: Robot | BimanualRobot,
    request: HandRequest,
    input_path: str | Path,
    extract: ExtractConfig | None,
    model: str | Path | None,
    depth: str | Path | None,
    depth_scale: float,
    camera_motion: str | Path,
) -> bool:
    """Whether the dataset at ``root`` holds this input with these settings and hand.

    Only a dataset of the same robot can: onto another, the append is refused with the reason.
    """
    held = held_inputs(root)
    if not held or stored_robot(root) != robot.name:
        return False
    key = input_key(
        input_path,
        extract or ExtractConfig(),
        ensure_model(model).sha256,
        depth,
        depth_scale,
        camera_motion_kind(camera_motion),
    )
    return key is not None and (key, request.value) in held


def _already_there(root: Path) -> WriteReport:
    info = describe_dataset(root)
    return WriteReport(
        root, [], [], [], 0, info["total_episodes"], info["total_frames"], already_there=True
    )


def merge_reports(reports: list[WriteReport]) -> WriteReport:
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
