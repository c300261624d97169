"""The options that several commands share, each group declared once, and their parsing.

A group is a template function whose parameters are the options (typer reads options from a
signature) and a builder that turns their values into the typed config the library takes.
:func:`with_options` puts a group's options in place of a command parameter of the same name,
so ``retarget`` and ``batch`` declare the retargeting and dataset options once, and the
command receives ``ExtractConfig``, :class:`ChainOptions` and ``DatasetConfig`` values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from inspect import Parameter, signature
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer

from pipeline.cli.app import interruptible
from pipeline.cli.solve_options import (
    AvoidOption,
    FingerRootsOption,
    OptimizeOption,
    ThresholdOption,
    retarget_config_option,
)
from pipeline.dataset import DatasetConfig
from pipeline.encoding import VideoConfig
from pipeline.extract import ExtractConfig
from pipeline.placement import PlacementConfig
from pipeline.retargeted import HandRequest
from retarget import RetargetConfig

ModelOption = Annotated[
    Path | None,
    typer.Option(help="Official hand_landmarker.task to use instead of the cached default."),
]
IntrinsicsOption = Annotated[
    Path | None,
    typer.Option(
        help="Intrinsics file: calibration.json layout, flat JSON (fx, fy, cx, cy, distortion) "
        "or a 3x3 K .npy. Default: a sidecar found beside the input, else --fov."
    ),
]
DepthOption = Annotated[
    Path | None,
    typer.Option(
        help="Folder of per-frame depth maps (16-bit PNG or .npy; matched by file stem to an "
        "image folder's frames, by order to a video's; 0/NaN/inf: no depth; any resolution of "
        "the same view). Each hand is moved to the depth seen at its keypoints."
    ),
]
DepthSidecarsOption = Annotated[
    bool,
    typer.Option(
        help="Lift each input with the depth maps found beside it: depth/ inside an image "
        "folder, or STEM_depth/ beside the input (as --depth does for one input); such folders "
        "are never inputs themselves.",
    ),
]
CameraMotionOption = Annotated[
    str | None,
    typer.Option(
        "--camera-motion",
        help="How the camera moved: static (it did not), estimate (each frame's rotation from "
        "the background, the world being the first frame's camera), or a trajectory file (TUM "
        "'timestamp tx ty tz qx qy qz qw' text, or .npy of (T, 4, 4) camera-to-world poses). "
        "Taken out of the hand motion before placement. Default: estimate with --egocentric, "
        "static otherwise.",
    ),
]


def camera_motion_choice(camera_motion: str | None, egocentric: bool) -> str:
    """``--camera-motion`` as given, else its default for the placement."""
    if camera_motion is not None:
        return camera_motion
    return "estimate" if egocentric else "static"


DepthScaleOption = Annotated[
    float,
    typer.Option(help="Raw depth units per metre (1000: millimetres, 1: metres)."),
]
FovOption = Annotated[
    float,
    typer.Option(
        "--fov",
        help="Field of view across the image's long side (display rotation does not change "
        "it) when no intrinsics are known [deg].",
    ),
]
HandsOption = Annotated[
    int, typer.Option(help="Hands to look for: 1 (about 2x faster on one-hand clips) or 2.")
]
SelfieOption = Annotated[bool, typer.Option(help="Input is mirrored (front camera).")]
StrideOption = Annotated[int, typer.Option(help="Keep every N-th input frame.")]
MaxFpsOption = Annotated[
    float | None,
    typer.Option(help="Resample faster inputs to this rate [Hz] (nearest frame per slot)."),
]
MaxSizeOption = Annotated[
    int | None, typer.Option(help="Downscale the model input to this longer side [px].")
]
FolderFpsOption = Annotated[
    float, typer.Option(help="Frame rate of an image folder whose names hold no times [Hz].")
]
SmoothingOption = Annotated[
    float, typer.Option(help="Zero-phase smoothing width [s]; 0 turns it off.")
]
MaxGapOption = Annotated[
    float, typer.Option(help="Interpolate gaps in a hand's track up to this long [s].")
]
OnePersonOption = Annotated[
    bool,
    typer.Option(help="Hands seen at the same time are one person's left and right hand."),
]
HandSizeOption = Annotated[
    float | None,
    typer.Option(
        "--hand-size",
        help="The person's hand length, wrist crease to middle fingertip [m], when known: it "
        "sets the metric depth of a monocular lift (default: the adult mean, 0.185 m, whose "
        "uncertainty then enters wrist_position_std). Recorded in the provenance.",
    ),
]

DistanceSpreadOption = Annotated[
    float,
    typer.Option(
        "--distance-spread",
        help="How far a hand's distance from the camera strays over a clip (standard "
        "deviation of log distance): a monocular lift draws the frames whose rulers disagree "
        "towards the track's median distance; 0 leaves every frame where its rulers put it.",
    ),
]


TaskOption = Annotated[
    str | None, typer.Option(help="Task string of the episodes. Default: the input's name.")
]
SplitGapOption = Annotated[
    float | None,
    typer.Option(
        help="Split into episodes at --split-on stretches at least this long [s], leaving them "
        "out. Default: keep the input whole, every frame flagged."
    ),
]
SplitOnOption = Annotated[
    str, typer.Option(help="What --split-gap cuts at: infeasible (any flag) or no_hand.")
]
VideoSizeOption = Annotated[
    int, typer.Option(help="Longer side of the stored video [px]; 0 keeps the source size.")
]
CodecOption = Annotated[
    str, typer.Option(help="Stored video codec: libx264 (fast) or libsvtav1 (AV1).")
]
CrfOption = Annotated[int, typer.Option(help="Stored video quality (lower: better, larger).")]
VideoPresetOption = Annotated[
    str | None,
    typer.Option(
        help="Encoder speed preset: libx264 ultrafast ... veryslow (default veryfast), "
        "libsvtav1 13 (fastest) ... 0 (default 10). ultrafast encodes 2-4x faster, larger."
    ),
]
NoVideoOption = Annotated[
    bool, typer.Option("--no-video", help="Write no video feature (states and flags only).")
]
CameraOption = Annotated[str, typer.Option(help="Video key: observation.images.<camera>.")]
DatasetFpsOption = Annotated[
    int | None,
    typer.Option(
        "--fps",
        min=1,
        help="The dataset's frame rate [Hz]: every faster input is resampled to it (the frame "
        "nearest each slot; true times kept). Default: an existing dataset's rate, else the "
        "slowest input's (batch) or the input's own (retarget). A slower input is refused: no "
        "frame is repeated.",
    ),
]
AllowDuplicateOption = Annotated[
    bool,
    typer.Option(
        "--allow-duplicate",
        help="Append an input the dataset already holds (same content, model, extraction "
        "settings and hand) again. Default: it is left out, and the command says so.",
    ),
]
HandOption = Annotated[
    str,
    typer.Option(
        help="auto (the hand with the most confident, certainly lifted frames; a dexterous "
        "hand takes its own), left, right, or both "
        "(one two-arm episode on a bimanual robot such as bimanual_panda; else one episode "
        "per hand, for robots that take either hand)."
    ),
]
CameraPoseOption = Annotated[
    str | None,
    typer.Option(
        help="Camera pose in the robot base frame: x,y,z [m],roll,pitch,yaw [rad] of the camera "
        "body (x forward, z up). Default: the third-person (or --egocentric) placement."
    ),
]
WorkspaceScaleOption = Annotated[
    float, typer.Option(help="Scale the wrist motion about its median (1 keeps it).")
]
FitPlacementOption = Annotated[
    bool | None,
    typer.Option(
        "--fit-placement/--no-fit-placement",
        help="Fit the default placement to where the arm reaches the most frames: turned "
        "about the vertical (30 deg steps), then its nominal point moved within +-10 cm (5 cm "
        "steps). Default: fitted for every arm at the default placement (not with "
        "--camera-pose, not for a free-floating hand); --no-fit-placement keeps the drawn "
        "convention.",
        show_default=False,
    ),
]
EgocentricOption = Annotated[
    bool, typer.Option(help="The camera is a head camera (default: third-person).")
]


def camera_pose_option(text: str | None) -> tuple[float, ...] | None:
    """``--camera-pose x,y,z,roll,pitch,yaw`` as six numbers (None when not given)."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 6:
        raise typer.BadParameter(
            f"--camera-pose takes six comma-separated numbers x,y,z,roll,pitch,yaw; got {text!r}"
        )
    return values


def dataset_config_option(
    camera: str,
    task: str | None,
    split_gap: float | None,
    split_on: str,
    no_video: bool,
    video_size: int,
    codec: str,
    crf: int,
    allow_duplicate: bool = False,
    fps: int | None = None,
    video_preset: str | None = None,
) -> DatasetConfig:
    """``DatasetConfig`` from the dataset options."""
    video = (
        None
        if no_video
        else VideoConfig(max_size=video_size or None, codec=codec, crf=crf, preset=video_preset)
    )
    return DatasetConfig(
        camera=camera,
        task=task,
        split_min_gap_s=split_gap,
        split_on=split_on,
        video=video,
        allow_duplicate=allow_duplicate,
        fps=fps,
    )


_EXTRACT = ExtractConfig()
_DATASET = DatasetConfig()
_VIDEO = VideoConfig()


class ChainOptions(NamedTuple):
    """The retargeting options of ``retarget`` and ``batch``, parsed."""

    side: HandRequest
    """``--hand``."""
    placement: PlacementConfig
    """``--egocentric``, ``--camera-pose``, ``--workspace-scale``, ``--fit-placement``."""
    retarget: RetargetConfig
    """``--threshold`` and the solver switches (:mod:`pipeline.cli.solve_options`)."""


def _extraction_options(
    fov: FovOption = _EXTRACT.horizontal_fov_deg,
    hands: HandsOption = _EXTRACT.num_hands,
    selfie: SelfieOption = _EXTRACT.selfie,
    stride: StrideOption = _EXTRACT.stride,
    max_fps: MaxFpsOption = _EXTRACT.max_fps,
    max_size: MaxSizeOption = _EXTRACT.max_size,
    folder_fps: FolderFpsOption = _EXTRACT.folder_fps,
    smoothing: SmoothingOption = _EXTRACT.smoothing_sigma_s,
    max_gap: MaxGapOption = _EXTRACT.interpolate_max_gap_s,
    one_person: OnePersonOption = _EXTRACT.one_person,
    hand_size: HandSizeOption = _EXTRACT.hand_size,
    distance_spread: DistanceSpreadOption = _EXTRACT.distance_spread or 0.0,
) -> None:
    """The extraction options shared by ``extract``, ``retarget`` and ``batch``."""


def _extract_config(
    fov: float,
    hands: int,
    selfie: bool,
    stride: int,
    max_fps: float | None,
    max_size: int | None,
    folder_fps: float,
    smoothing: float,
    max_gap: float,
    one_person: bool,
    hand_size: float | None,
    distance_spread: float,
) -> ExtractConfig:
    return ExtractConfig(
        num_hands=hands,
        horizontal_fov_deg=fov,
        selfie=selfie,
        stride=stride,
        max_fps=max_fps,
        max_size=max_size,
        folder_fps=folder_fps,
        smoothing_sigma_s=smoothing,
        interpolate_max_gap_s=max_gap,
        one_person=one_person,
        hand_size=hand_size,
        distance_spread=distance_spread or None,
    )


def _chain_options(
    hand: HandOption = "auto",
    egocentric: EgocentricOption = False,
    camera_pose: CameraPoseOption = None,
    workspace_scale: WorkspaceScaleOption = 1.0,
    fit_placement: FitPlacementOption = None,
    threshold: ThresholdOption = None,
    avoid_collisions: AvoidOption = True,
    optimize: OptimizeOption = None,
    finger_roots: FingerRootsOption = True,
) -> None:
    """The retargeting options shared by ``retarget`` and ``batch``."""


def _chain(
    hand: str,
    egocentric: bool,
    camera_pose: str | None,
    workspace_scale: float,
    fit_placement: bool | None,
    threshold: list[str] | None,
    avoid_collisions: bool,
    optimize: bool | None,
    finger_roots: bool,
) -> ChainOptions:
    placement = PlacementConfig(
        egocentric=egocentric,
        camera_pose=camera_pose_option(camera_pose),
        workspace_scale=workspace_scale,
        fit_yaw=fit_placement,
        fit_offset=fit_placement,
    )
    return ChainOptions(
        HandRequest.parse(hand),
        placement,
        retarget_config_option(threshold, avoid_collisions, optimize, finger_roots),
    )


def _dataset_options(
    task: TaskOption = None,
    split_gap: SplitGapOption = None,
    split_on: SplitOnOption = _DATASET.split_on,
    video_size: VideoSizeOption = _VIDEO.max_size or 0,
    codec: CodecOption = _VIDEO.codec,
    crf: CrfOption = _VIDEO.crf,
    video_preset: VideoPresetOption = None,
    no_video: NoVideoOption = False,
    camera: CameraOption = _DATASET.camera,
    allow_duplicate: AllowDuplicateOption = False,
    fps: DatasetFpsOption = None,
) -> None:
    """The dataset options shared by ``retarget --out`` and ``batch``."""


@dataclass(frozen=True)
class OptionGroup:
    """Options declared once (``template``'s parameters) and what they build."""

    template: Callable[..., None]
    """A function whose parameters are the options, with their defaults and help."""
    build: Callable[..., Any]
    """Takes the options' values by name; returns what the command receives."""

    @property
    def parameters(self) -> list[Parameter]:
        """The options, as typer reads them."""
        return list(signature(self.template, eval_str=True).parameters.values())


EXTRACTION_DEFAULT = _EXTRACT
"""What a command's ``config`` parameter (the extraction options' place) defaults to."""
CHAIN_DEFAULT = ChainOptions(HandRequest.AUTO, PlacementConfig(), RetargetConfig())
"""What a command's ``chain`` parameter (the retargeting options' place) defaults to."""
DATASET_DEFAULT = _DATASET
"""What a command's ``dataset`` parameter (the dataset options' place) defaults to."""

EXTRACTION = OptionGroup(_extraction_options, _extract_config)
"""``--fov``, ``--hands``, ... -> :class:`pipeline.ExtractConfig`."""
CHAIN = OptionGroup(_chain_options, _chain)
"""``--hand``, placement, thresholds -> :class:`ChainOptions`."""
DATASET = OptionGroup(_dataset_options, dataset_config_option)
"""``--task``, ``--split-gap``, video settings -> :class:`pipeline.DatasetConfig`."""


def with_options(**groups: OptionGroup) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Put each group's options in place of the command's parameter of the group's name.

    The command keeps its signature for typer, with ``name=group`` replaced by the group's
    options in order; it is called with ``name`` = the group's built value. Ctrl-C inside it
    says that nothing half-written is left (:func:`pipeline.cli.app.interruptible`).
    """

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = signature(command, eval_str=True)
        parameters: list[Parameter] = []
        for parameter in own.parameters.values():
            group = groups.get(parameter.name)
            parameters += group.parameters if group else [parameter]

        @functools.wraps(command)
        def wrapper(**values: Any) -> None:
            for name, group in groups.items():
                taken = {p.name: values.pop(p.name) for p in group.parameters}
                values[name] = group.build(**taken)
            with interruptible():
                command(**values)

        wrapper.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
        return wrapper

    return decorate


InputArgument = Annotated[
    Path,
    typer.Argument(
        metavar="INPUT", help="Video (mp4, mov, webm, avi, GIF), image folder, or image."
    ),
]
