"""The ``hand2robot`` command line.

Exit codes: 0 success; 2 bad input or usage (the message says what and lists valid choices);
3 and 4 ``batch`` partial and failed; 130 interrupted (Ctrl-C); 1 an unexpected internal error.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import sys
import time
from collections.abc import Callable, Iterator
from inspect import cleandoc, signature
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import robots
from pipeline.dataset import DatasetConfig
from pipeline.exceptions import TrackFileError
from pipeline.extract import ExtractConfig, package_version
from pipeline.tracks import HandTracks
from pipeline.video import VideoConfig
from robots import Hand2RobotError

if TYPE_CHECKING:
    from pipeline.retargeted import RetargetedHand
    from retarget import BimanualRobot, RetargetConfig, Robot


def _plain_help(text: str) -> str:
    """A command's docstring as click should format it: examples kept, prose rewrapped.

    The help is plain text (no Rich markup, which would swallow units such as ``[m]``), and
    click rewraps each paragraph to the terminal; a paragraph with indented lines (examples)
    is marked to keep its lines as they are.
    """
    paragraphs = cleandoc(text).split("\n\n")
    return "\n\n".join(
        f"\b\n{p}" if any(line.startswith(" ") for line in p.splitlines()) else p
        for p in paragraphs
    )


class _ExamplesKept:
    """Mixin: the command's help goes through ``_plain_help``."""

    help: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help:
            self.help = _plain_help(self.help)


class _Command(_ExamplesKept, typer.core.TyperCommand):
    """A ``hand2robot`` command."""


class _Group(_ExamplesKept, typer.core.TyperGroup):
    """The ``hand2robot`` group of commands."""


# Plain help (click's): on an 80-column terminal, Rich's option table truncates long words.
app = typer.Typer(
    cls=_Group,
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console(markup=False)  # what goes to stdout holds paths and names, which may hold "[...]"


def _say(text: str, to: Console = out) -> None:
    """Print one line as it is.

    No Rich markup (paths may hold brackets), no colours guessed, no wrapping: a pipe or a log
    gets the line whole, and a terminal wraps it itself.
    """
    to.print(text, markup=False, highlight=False, soft_wrap=True)


def _show_version(value: bool) -> None:
    if value:
        _say(f"hand2robot {package_version()}")
        raise typer.Exit()


@app.callback()
def _hand2robot(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Turn videos of human hands into surrogate-tagged robot episodes.

    Each frame gets quality flags (what the robot could not do, and why); every dataset is
    marked as surrogate data from human video, never to be mistaken for robot experience.

    Examples:
      hand2robot retarget clip.mp4 --robot panda --out datasets/pour
      hand2robot batch videos/ --robot panda,allegro_right --out datasets/all
      hand2robot inspect datasets/pour
    """


@app.command("robots", cls=_Command)
def list_robots(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List the built-in robots (name, kind, DoF, source).

    Any of these names goes to --robot; so does the path of a robot config (.toml).

    Examples:
      hand2robot robots
      hand2robot robots --json
    """
    from retarget import load_robot

    rows = []
    for description in robots.REGISTRY:
        robot = load_robot(description)
        source = str(description.urdf)
        if description.attach is not None:
            source += f" + {description.attach.urdf} @ {description.attach.parent_frame}"
        rows.append(
            {
                "name": description.name,
                "kind": description.kind.value,
                "side": description.side.value,
                "dof": robot.nq,
                "joints": {
                    "arm": len(robot.arm_joints),
                    "hand": len(robot.hand_joints),
                    "gripper": int(robot.gripper_joint is not None),
                },
                "source": source,
                "summary": description.summary,
            }
        )
    from retarget import load_bimanual

    for bimanual in robots.BIMANUAL_REGISTRY:
        pair = load_bimanual(bimanual)
        rows.append(
            {
                "name": bimanual.name,
                "kind": pair.kind,
                "side": "both",
                "dof": pair.nq,
                "joints": {"left": pair.left.nq, "right": pair.right.nq},
                "source": f"{bimanual.left} (left hand) + {bimanual.right} (right hand)",
                "summary": bimanual.summary,
            }
        )
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"hand2robot robots (default: {robots.DEFAULT_ROBOT})")
    for column in ("name", "kind", "side", "DoF", "source"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[key]) for key in ("name", "kind", "side", "dof", "source")))
    _print_table(table)


def _print_table(table: Table) -> None:
    """Print ``table`` on stdout; a narrow terminal wraps long cells instead of cutting them."""
    for column in table.columns:
        column.overflow = "fold"
    out.print(table)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C: say that nothing half-written is left, exit 130 (``batch`` says more itself)."""
    try:
        yield
    except KeyboardInterrupt:
        _say(
            "interrupted: nothing half-written is visible (files are renamed into place, "
            "dataset appends swap in whole); run the same command again to redo it",
            console,
        )
        raise typer.Exit(130) from None


def _extract(
    input_path: Path,
    model: Path | None,
    config: ExtractConfig,
    intrinsics: Path | None,
    cache: Path | None = None,
) -> HandTracks:
    from pipeline.extract import extract_cached
    from pipeline.media import estimate_frame_count, open_media

    total = estimate_frame_count(open_media(input_path))
    if total is not None and config.max_fps is None:
        total = -(-total // config.stride)
    else:
        total = None
    start = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"extract {input_path.name}", total=total, rate="")

        def update(done: int) -> None:
            rate = done / max(time.perf_counter() - start, 1e-9)
            progress.update(task, completed=done, rate=f"{rate:.1f} frames/s")

        tracks, path, hit = extract_cached(
            input_path, intrinsics, config=config, model=model, cache=cache, progress=update
        )
    if hit:
        _say(f"hand tracks: cache hit, {path}", console)
    return tracks


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
FovOption = Annotated[
    float,
    typer.Option("--fov", help="Horizontal field of view when no intrinsics are known [deg]."),
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
NoVideoOption = Annotated[
    bool, typer.Option("--no-video", help="Write no video feature (states and flags only).")
]
CameraOption = Annotated[str, typer.Option(help="Video key: observation.images.<camera>.")]
HandOption = Annotated[
    str,
    typer.Option(
        help="auto (the hand seen most; a dexterous hand takes its own), left, right, or both "
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
    bool,
    typer.Option(
        "--fit-placement",
        help="Turn the default placement about the vertical (30 deg steps) to where the arm "
        "reaches the most frames: for arms that cannot take every orientation, such as so101.",
    ),
]
ThresholdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        help="Flag threshold KEY=VALUE, repeatable (retarget.FeasibilityConfig), e.g. "
        "max_position_error=0.02 or check_self_collision=false.",
    ),
]
AvoidOption = Annotated[
    bool,
    typer.Option(
        "--avoid-collisions/--no-avoid-collisions",
        help="Keep a dexterous hand's fingers from passing through each other while solving "
        "(no effect on grippers). Off: the raw vector mapping, faster, with SELF_COLLISION "
        "flags wherever the fingers meet.",
    ),
]


def _camera_pose(text: str | None) -> tuple[float, ...] | None:
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


def _retarget_config(thresholds: list[str] | None, avoid: bool = True) -> RetargetConfig:
    """``RetargetConfig`` from ``--threshold KEY=VALUE`` and ``--[no-]avoid-collisions``."""
    import dataclasses

    from retarget import FeasibilityConfig, RetargetConfig

    fields = {f.name: f for f in dataclasses.fields(FeasibilityConfig)}
    values: dict[str, object] = {}
    for item in thresholds or []:
        key, _, text = item.partition("=")
        if key not in fields or not text:
            raise typer.BadParameter(
                f"--threshold {item!r}: give KEY=VALUE with KEY one of {', '.join(fields)}"
            )
        kind = type(getattr(FeasibilityConfig(), key))
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise typer.BadParameter(f"--threshold {item!r}: {key} takes true or false")
            values[key] = text.lower() in ("true", "1")
        else:
            try:
                values[key] = kind(text)
            except ValueError:
                raise typer.BadParameter(f"--threshold {item!r}: {key} takes a number") from None
    return RetargetConfig(
        feasibility=FeasibilityConfig(**values),  # type: ignore[arg-type]
        avoid_self_collision=avoid,
    )


EgocentricOption = Annotated[
    bool, typer.Option(help="The camera is a head camera (default: third-person).")
]


def _dataset_config(
    camera: str,
    task: str | None,
    split_gap: float | None,
    split_on: str,
    no_video: bool,
    video_size: int,
    codec: str,
    crf: int,
) -> DatasetConfig:
    video = None if no_video else VideoConfig(max_size=video_size or None, codec=codec, crf=crf)
    return DatasetConfig(
        camera=camera, task=task, split_min_gap_s=split_gap, split_on=split_on, video=video
    )


_DEFAULTS = ExtractConfig()
_DATASET = DatasetConfig()
_VIDEO = VideoConfig()


def _extraction_options_template(
    fov: FovOption = _DEFAULTS.horizontal_fov_deg,
    hands: HandsOption = _DEFAULTS.num_hands,
    selfie: SelfieOption = _DEFAULTS.selfie,
    stride: StrideOption = _DEFAULTS.stride,
    max_fps: MaxFpsOption = _DEFAULTS.max_fps,
    max_size: MaxSizeOption = _DEFAULTS.max_size,
    folder_fps: FolderFpsOption = _DEFAULTS.folder_fps,
    smoothing: SmoothingOption = _DEFAULTS.smoothing_sigma_s,
    max_gap: MaxGapOption = _DEFAULTS.interpolate_max_gap_s,
    one_person: OnePersonOption = _DEFAULTS.one_person,
) -> None:
    """The extraction options shared by ``extract``, ``retarget`` and ``batch``."""


_EXTRACTION_OPTIONS = tuple(
    signature(_extraction_options_template, eval_str=True).parameters.values()
)


def _with_extraction_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the shared extraction options (as ``config``) and the Ctrl-C message.

    Typer reads a command's options from its signature, so the wrapper's signature is the
    command's own (less ``config``) followed by :data:`_EXTRACTION_OPTIONS`.
    """
    own = signature(command, eval_str=True)
    parameters = [p for p in own.parameters.values() if p.name != "config"]
    parameters += _EXTRACTION_OPTIONS

    @functools.wraps(command)
    def wrapper(**values: Any) -> None:
        shared = {p.name: values.pop(p.name) for p in _EXTRACTION_OPTIONS}
        config = ExtractConfig(
            num_hands=shared["hands"],
            horizontal_fov_deg=shared["fov"],
            selfie=shared["selfie"],
            stride=shared["stride"],
            max_fps=shared["max_fps"],
            max_size=shared["max_size"],
            folder_fps=shared["folder_fps"],
            smoothing_sigma_s=shared["smoothing"],
            interpolate_max_gap_s=shared["max_gap"],
            one_person=shared["one_person"],
        )
        with _interruptible():
            command(config=config, **values)

    wrapper.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return wrapper


InputArgument = Annotated[
    Path,
    typer.Argument(
        metavar="INPUT", help="Video (mp4, mov, webm, avi, GIF), image folder, or image."
    ),
]


@app.command(cls=_Command)
@_with_extraction_options
def extract(
    input_path: InputArgument,
    output: Annotated[Path, typer.Option("--out", help="Hand-track file to write (.parquet).")],
    model: ModelOption = None,
    intrinsics: IntrinsicsOption = None,
    config: ExtractConfig = _DEFAULTS,
) -> None:
    """Extract per-frame 3D hand poses into a hand-track file.

    A second run with the same input content, model, settings and intrinsics finds the file
    up to date and does not extract again.

    Examples:
      hand2robot extract clip.mp4 --out clip.tracks.parquet
      hand2robot extract frames/ --intrinsics calib.json --out frames.parquet
      hand2robot extract long.mp4 --max-fps 15 --hands 1 --out long.parquet
    """
    if output.is_dir():
        raise TrackFileError(f"--out {output} is a folder; give a file name such as x.parquet")
    tracks = _extract(input_path, model, config, intrinsics, cache=output)
    present = {s: f"{h.present.mean():.0%}" for s, h in tracks.hands.items()}
    extra = f", {len(tracks.extra)} extra hand track(s)" if tracks.extra else ""
    _say(
        f"{tracks.num_frames} frames, hands present {present}{extra}, intrinsics "
        f"{tracks.intrinsics.source} -> {output}"
    )


@app.command("retarget", cls=_Command)
@_with_extraction_options
def retarget_command(
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="Video, GIF, image folder, image, or hand-track file (.parquet).",
        ),
    ],
    robot: Annotated[
        str, typer.Option(help="Registry name or robot config (.toml).")
    ] = robots.DEFAULT_ROBOT,
    hand: HandOption = "auto",
    egocentric: EgocentricOption = False,
    camera_pose: CameraPoseOption = None,
    workspace_scale: WorkspaceScaleOption = 1.0,
    fit_placement: FitPlacementOption = False,
    threshold: ThresholdOption = None,
    avoid_collisions: AvoidOption = True,
    model: ModelOption = None,
    intrinsics: IntrinsicsOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="LeRobot v3.0 dataset folder to create or append to (surrogate-tagged). "
            "Without it, only a summary is printed.",
        ),
    ] = None,
    task: TaskOption = None,
    split_gap: SplitGapOption = None,
    split_on: SplitOnOption = _DATASET.split_on,
    video_size: VideoSizeOption = _VIDEO.max_size or 0,
    codec: CodecOption = _VIDEO.codec,
    crf: CrfOption = _VIDEO.crf,
    no_video: NoVideoOption = False,
    camera: CameraOption = _DATASET.camera,
    config: ExtractConfig = _DEFAULTS,
) -> None:
    """Retarget one input onto a robot, into a summary or a dataset.

    Hand tracks of a media input are cached (by content, model and settings), so retargeting
    the same video onto several robots extracts it once. With --out, the episodes go into a
    LeRobot v3.0 dataset (created if missing; appends are atomic) with per-frame feasibility
    flags and a provenance file marking them as surrogate data from human video.

    Examples:
      hand2robot retarget data/kettle_pour.tracks.parquet --robot panda
      hand2robot retarget clip.mp4 --robot allegro_right --hand right
      hand2robot retarget clip.mp4 --out datasets/pour --task "pour water"
      hand2robot retarget clip.mp4 --robot bimanual_panda --hand both --out two
    """
    from pipeline.run import load_any_robot, retarget_sides
    from pipeline.tracks import read_tracks

    loaded = load_any_robot(robot)
    pose = _camera_pose(camera_pose)
    retarget_config = _retarget_config(threshold, avoid_collisions)
    if output is not None:
        dataset = _dataset_config(
            camera, task, split_gap, split_on, no_video, video_size, codec, crf
        )
        _write(
            input_path,
            loaded,
            output,
            config,
            dataset,
            intrinsics,
            model,
            side=hand,
            egocentric=egocentric,
            camera_pose=pose,
            workspace_scale=workspace_scale,
            fit_yaw=fit_placement,
            retarget=retarget_config,
        )
        return
    if input_path.suffix == ".parquet":
        tracks = read_tracks(input_path)
    else:
        tracks = _extract(input_path, model, config, intrinsics)
    start = time.perf_counter()
    hands_done = retarget_sides(
        tracks,
        loaded,
        side=hand,
        config=retarget_config,
        egocentric=egocentric,
        camera_pose=pose,
        workspace_scale=workspace_scale,
        fit_yaw=fit_placement,
    )
    elapsed = (time.perf_counter() - start) / len(hands_done)
    for done in hands_done:
        _print_summary(input_path, loaded, done, elapsed)


def _print_summary(
    input_path: Path, robot: Robot | BimanualRobot, done: RetargetedHand, elapsed: float
) -> None:
    from retarget import Flag

    res = done.result
    present = ~(res.flags & Flag.NO_HAND).astype(bool)
    hands = "both hands" if done.side == "both" else f"{done.side} hand"
    table = Table(title=f"{input_path.name} -> {robot.name} ({hands})", show_header=False)
    with_hand = "both hands" if done.side == "both" else "a hand"
    table.add_row("frames", f"{len(res.q)} ({present.sum()} with {with_hand})")
    table.add_row("feasible", f"{res.feasible.sum()} ({res.feasible.mean():.1%})")
    for flag in Flag:
        count = int(((res.flags & flag) != 0).sum())
        if count:
            table.add_row(f"flag {flag.name}", str(count))
    for name, values, unit in (
        ("position error", res.residual.position, "mm"),
        ("orientation error", res.residual.orientation, "deg"),
        ("fingertip error", res.residual.fingertip, "mm"),
    ):
        finite = values[np.isfinite(values)]
        if finite.size:
            scale = 1000.0 if unit == "mm" else np.degrees(1.0)
            table.add_row(
                f"{name} median / p95",
                f"{np.median(finite) * scale:.1f} / {np.percentile(finite, 95) * scale:.1f} {unit}",
            )
    table.add_row("retargeting time", f"{elapsed / len(res.q) * 1000:.3f} ms/frame")
    table.add_row("camera placement", done.placement)
    table.add_row("joints", ", ".join(res.joint_names))
    _print_table(table)


@app.command(cls=_Command)
@_with_extraction_options
def batch(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUTS...",
            help="Files, folders, globs, .txt lists of paths/URLs, http(s) URLs.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Dataset folder (one robot), or the parent of one folder per robot.",
        ),
    ],
    robot: Annotated[
        str, typer.Option(help="Robot(s), comma-separated: each gets its own dataset.")
    ] = robots.DEFAULT_ROBOT,
    workers: Annotated[
        int,
        typer.Option(
            help="Extraction actors (one logical CPU each). One extraction keeps about 1.5 "
            "cores busy: on one machine, about cores / 1.5 is enough."
        ),
    ] = 2,
    retarget_workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Most retargeting actors (half a logical CPU each). The pool starts with one "
            "and grows while inputs wait for it. Default: as many as --workers.",
        ),
    ] = None,
    max_retries: Annotated[
        int,
        typer.Option(
            min=0,
            help="Times an input is run again after its worker process died on it (a crash, "
            "killed for memory, a lost node); then it is an error in the report.",
        ),
    ] = 2,
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join (also RAY_ADDRESS). Default: embedded local Ray."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Run report (JSON). Default: <out>.report.json.")
    ] = None,
    hand: HandOption = "auto",
    egocentric: EgocentricOption = False,
    camera_pose: CameraPoseOption = None,
    workspace_scale: WorkspaceScaleOption = 1.0,
    fit_placement: FitPlacementOption = False,
    threshold: ThresholdOption = None,
    avoid_collisions: AvoidOption = True,
    model: ModelOption = None,
    task: TaskOption = None,
    split_gap: SplitGapOption = None,
    split_on: SplitOnOption = _DATASET.split_on,
    video_size: VideoSizeOption = _VIDEO.max_size or 0,
    codec: CodecOption = _VIDEO.codec,
    crf: CrfOption = _VIDEO.crf,
    no_video: NoVideoOption = False,
    camera: CameraOption = _DATASET.camera,
    config: ExtractConfig = _DEFAULTS,
) -> None:
    """Retarget many inputs onto one or more robots as a Ray Data job.

    Each input is extracted once, whatever the number of robots; one run report lists what
    was done and what failed.

    Bad inputs become records in the run report and the job goes on, as does an input whose
    worker process dies on it every time (see --max-retries). Running the same command again
    resumes: inputs already in every robot's dataset are skipped, nothing is duplicated.

    Exit code: 0 every input done, 3 some inputs failed (partial), 4 every input failed, 130
    interrupted (Ctrl-C; what was written stays, the same command resumes).

    Examples:
      hand2robot batch videos/ --robot panda --out datasets/pour
      hand2robot batch list.txt "more/*.mp4" --robot panda,allegro_right --out all
      hand2robot batch videos/ --out pour --address ray://head:10001 --workers 16
    """
    from pipeline.batch import BatchConfig, run_batch

    names = tuple(name.strip() for name in robot.split(",") if name.strip())
    for name in names:
        if name not in robots.bimanual_names():
            robots.get_description(name)  # an unknown name fails here, listing the valid ones
    job = BatchConfig(
        robots=names,
        workers=workers,
        retarget_workers=retarget_workers,
        max_retries=max_retries,
        address=address,
        side=hand,
        egocentric=egocentric,
        camera_pose=_camera_pose(camera_pose),
        workspace_scale=workspace_scale,
        fit_yaw=fit_placement,
        retarget=_retarget_config(threshold, avoid_collisions),
        extract=config,
        dataset=_dataset_config(
            camera, task, split_gap, split_on, no_video, video_size, codec, crf
        ),
        model=str(model) if model else None,
    )
    start = time.perf_counter()
    report_file = report or output.with_name(output.name + ".report.json")
    try:
        with _progress() as progress:
            bar = progress.add_task("batch", total=None, rate="")

            def update(done: int, total: int, item: str) -> None:
                rate = done / max(time.perf_counter() - start, 1e-9) * 60
                progress.update(bar, completed=done, total=total, rate=f"{rate:.1f} inputs/min")

            result = run_batch(inputs, output, job, report_path=report, progress=update)
    except KeyboardInterrupt:
        _say(
            f"interrupted: the inputs listed in {report_file} are in the dataset, whole; run "
            "the same command again to resume"
        )
        raise typer.Exit(130) from None
    table = Table(title=f"batch -> {output} ({result.status})", show_header=False)
    table.add_row("inputs", str(len(result.inputs)))
    table.add_row("written (input x robot)", str(len(result.written)))
    table.add_row("skipped, already there", str(len(result.skipped)))
    table.add_row("errors", str(len(result.errors)))
    for error in result.errors[:10]:
        where = f"{Path(error['input']).name} [{error['stage']}"
        where += f", {error['robot']}]" if error["robot"] else "]"
        table.add_row(where, error["error"].splitlines()[0][:120])
    table.add_row("time", f"{result.seconds:.1f} s")
    table.add_row("report", str(report_file))
    _print_table(table)
    if result.status != "ok":
        raise typer.Exit(3 if result.status == "partial" else 4)


@app.command(cls=_Command)
def viz(
    dataset: Annotated[Path, typer.Argument(metavar="DATASET_DIR", help="A hand2robot dataset.")],
    episode: Annotated[int, typer.Option(help="Episode index.")] = 0,
    output: Annotated[
        Path | None,
        typer.Option("--out", help="Overlay video (.mp4): the source with hand and robot drawn."),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Plot (.png): joints against their limits, flags over time, residuals."),
    ] = None,
    rerun: Annotated[
        Path | None,
        typer.Option(help='Rerun recording (.rrd) in 3D; needs pip install "hand2robot[rerun]".'),
    ] = None,
) -> None:
    """Draw an episode: over its source video, as a plot, or in 3D.

    --out draws the lifted hand and the robot (seen from the same camera) and each frame's
    flags over the source video; --plot draws the joints against their
    limits, the flags over time and the residuals; --rerun records the episode in 3D.

    Examples:
      hand2robot viz datasets/pour --episode 0 --out ep0.mp4 --plot ep0.png
      hand2robot viz datasets/pour --episode 0 --rerun ep0.rrd
    """
    from pipeline.viz import plot_episode, record_rerun, render_episode

    if output is None and plot is None and rerun is None:
        raise typer.BadParameter("give --out FILE.mp4, --plot FILE.png or --rerun FILE.rrd")
    if output is not None:
        frames = render_episode(dataset, episode, output)
        _say(f"{frames} frames -> {output}")
    if plot is not None:
        plot_episode(dataset, episode, plot)
        _say(f"plot -> {plot}")
    if rerun is not None:
        frames = record_rerun(dataset, episode, rerun)
        _say(f"{frames} frames -> {rerun} (open with: rerun {rerun})")


@app.command(cls=_Command)
def inspect(
    dataset: Annotated[Path, typer.Argument(metavar="DATASET_DIR", help="A hand2robot dataset.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Show a dataset: episodes, feasible frames, flags, provenance.

    Frames and the feasible fraction per episode, flag counts by reason, and the provenance
    record. Without --json, a table for people; with it, one JSON object for scripts.

    Examples:
      hand2robot inspect datasets/pour
      hand2robot inspect datasets/pour --json | jq .flag_counts
    """
    from pipeline.dataset import describe_dataset

    summary = describe_dataset(dataset)
    if as_json:
        out.print_json(json.dumps(summary))
        return
    head = Table(
        title=f"{dataset} (surrogate data from {summary['data_source']})", show_header=False
    )
    head.add_row("robot", summary["robot"])
    head.add_row(
        "episodes / frames / fps",
        f"{summary['total_episodes']} / {summary['total_frames']} / {summary['fps']}",
    )
    head.add_row("feasible frames", f"{summary['feasible_fraction']:.1%}")
    head.add_row("inputs", str(summary["inputs"]))
    for key, video in summary["video"].items():
        head.add_row(key, f"{video['shape'][1]}x{video['shape'][0]} {video['codec']}")
    flags = ", ".join(f"{name} {count}" for name, count in summary["flag_counts"].items() if count)
    head.add_row("flags (frames)", flags or "none")
    head.add_row("hand2robot", summary["hand2robot_version"])
    _print_table(head)
    table = Table(title="episodes")
    for column in ("episode", "frames", "feasible", "task", "source", "frames in source"):
        table.add_column(column)
    for episode in summary["episodes"]:
        start, stop = episode["source_frame_range"]
        table.add_row(
            str(episode["episode_index"]),
            str(episode["frames"]),
            f"{episode['feasible_fraction']:.1%}",
            episode["task"],
            Path(str(episode["source"])).name,
            f"{start}-{stop}",
        )
    _print_table(table)


def _write(
    input_path: Path,
    robot: Robot | BimanualRobot,
    output: Path,
    config: ExtractConfig,
    dataset: DatasetConfig,
    intrinsics: Path | None,
    model: Path | None,
    **chain: Any,
) -> None:
    from pipeline.media import estimate_frame_count, open_media
    from pipeline.run import convert

    total = None
    if input_path.suffix != ".parquet":
        total = estimate_frame_count(open_media(input_path))
        total = -(-total // config.stride) if total and config.max_fps is None else None
    start = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"extract {input_path.name}", total=total, rate="")

        def update(done: int) -> None:
            rate = done / max(time.perf_counter() - start, 1e-9)
            progress.update(task, completed=done, rate=f"{rate:.1f} frames/s")

        report = convert(
            input_path,
            robot,
            output,
            extract=config,
            dataset=dataset,
            intrinsics=intrinsics,
            model=model,
            progress=update,
            **chain,
        )
    table = Table(title=f"{input_path.name} -> {output} ({robot.name})", show_header=False)
    for episode, frames, fraction in zip(
        report.episodes, report.frames, report.feasible_fraction, strict=True
    ):
        table.add_row(f"episode {episode}", f"{frames} frames, {fraction:.1%} feasible")
    if report.dropped_frames:
        table.add_row("left out by --split-gap", f"{report.dropped_frames} frames")
    table.add_row("dataset now", f"{report.total_episodes} episodes, {report.total_frames} frames")
    table.add_row("time", f"{time.perf_counter() - start:.1f} s")
    _print_table(table)


def main() -> None:
    """Console entry point: run the app, turning input errors into exit code 2."""
    try:
        _run_app()
    finally:
        # The command is done and its files are closed (every write is explicit and atomic).
        # Freezing the heap spares the interpreter's final garbage collections over every
        # imported library's objects: 0.2 s of the process's exit, measured.
        gc.freeze()


def _run_app() -> None:
    try:
        # Outside standalone mode, typer returns the code of a ``typer.Exit`` (batch: 3, 4) and
        # 130 for Ctrl-C, instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except Hand2RobotError as err:
        console.print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True, highlight=False)
        sys.exit(2)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except typer.Abort:
        _say("aborted", console)
        sys.exit(1)
    except Exception as err:
        # Usage errors (click's, or the click that newer typer releases vendor) show themselves
        # and carry their exit code (2).
        show, code = getattr(err, "show", None), getattr(err, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
