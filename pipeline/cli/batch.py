"""``hand2robot batch``: many inputs onto one or more robots as a Ray Data job."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, NamedTuple

import typer

import robots
from pipeline.batch import BatchConfig, BatchReport, run_batch
from pipeline.cli.app import Command, app, console, progress, say
from pipeline.cli.native import ray_lines_to_log
from pipeline.cli.options import (
    CHAIN,
    CHAIN_DEFAULT,
    DATASET,
    DATASET_DEFAULT,
    EXTRACTION,
    EXTRACTION_DEFAULT,
    CameraMotionOption,
    ChainOptions,
    DepthScaleOption,
    DepthSidecarsOption,
    ModelOption,
    OptionGroup,
    camera_motion_choice,
    with_options,
)
from pipeline.cli.render import ensure_model_shown, summary
from pipeline.dataset import DatasetConfig
from pipeline.extract import ExtractConfig


class RayOptions(NamedTuple):
    """How the job runs on Ray (``--workers``, ``--retarget-workers``, and so on)."""

    workers: int
    retarget_workers: int | None
    max_retries: int
    address: str | None
    optimize_batch: int


_DEFAULT = BatchConfig()
RAY_DEFAULT = RayOptions(
    _DEFAULT.workers,
    _DEFAULT.retarget_workers,
    _DEFAULT.max_retries,
    _DEFAULT.address,
    _DEFAULT.optimize_batch,
)
"""What ``batch``'s ``ray`` parameter (the Ray options' place) defaults to: BatchConfig's."""


def _ray_options(
    workers: Annotated[
        int,
        typer.Option(
            help="Extraction actors (one logical CPU each). One extraction keeps about 1.5 "
            "cores busy: on one machine, about cores / 1.5 is enough."
        ),
    ] = RAY_DEFAULT.workers,
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
    optimize_batch: Annotated[
        int,
        typer.Option(
            min=1,
            help="With --optimize (the default): inputs a retargeting actor takes at once, "
            "their trajectories optimised in one call per robot (e.g. 16 on a GPU); 1 writes "
            "each input as soon as it is done.",
        ),
    ] = RAY_DEFAULT.optimize_batch,
) -> None:
    """The options of where and how the job runs."""


RAY = OptionGroup(_ray_options, RayOptions)


@app.command(cls=Command)
@with_options(ray=RAY, chain=CHAIN, dataset=DATASET, config=EXTRACTION)
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
    ray: RayOptions = RAY_DEFAULT,
    report: Annotated[
        Path | None, typer.Option(help="Run report (JSON). Default: <out>.report.json.")
    ] = None,
    chain: ChainOptions = CHAIN_DEFAULT,
    model: ModelOption = None,
    depth_sidecars: DepthSidecarsOption = True,
    depth_scale: DepthScaleOption = 1000.0,
    camera_motion: CameraMotionOption = None,
    dataset: DatasetConfig = DATASET_DEFAULT,
    config: ExtractConfig = EXTRACTION_DEFAULT,
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
    names = tuple(name.strip() for name in robot.split(",") if name.strip())
    for name in names:
        if name not in robots.bimanual_names():
            robots.get_description(name)  # an unknown name fails here, listing the valid ones
    job = BatchConfig(
        robots=names,
        workers=ray.workers,
        retarget_workers=ray.retarget_workers,
        max_retries=ray.max_retries,
        address=ray.address,
        optimize_batch=ray.optimize_batch,
        side=chain.side,
        placement=chain.placement,
        retarget=chain.retarget,
        extract=config,
        dataset=dataset,
        model=str(model) if model else None,
        depth_sidecars=depth_sidecars,
        depth_scale=depth_scale,
        camera_motion=camera_motion_choice(camera_motion, chain.placement.egocentric),
    )
    ensure_model_shown(model)
    report_file = report or output.with_name(output.name + ".report.json")
    try:
        result = _run_shown(inputs, output, job, report)
    except KeyboardInterrupt:
        say(
            f"interrupted: the inputs listed in {report_file} are in the dataset, whole; run "
            "the same command again to resume"
        )
        raise typer.Exit(130) from None
    _print_report(result, output, report_file)
    if result.status != "ok":
        raise typer.Exit(3 if result.status == "partial" else 4)


def _run_shown(
    inputs: list[str], output: Path, job: BatchConfig, report: Path | None
) -> BatchReport:
    """:func:`pipeline.batch.run_batch` with a progress bar and a line for each step."""
    start = time.perf_counter()
    with progress() as bars:
        bar = bars.add_task("batch", total=None, rate="")

        def update(done: int, total: int, item: str) -> None:
            rate = done / max(time.perf_counter() - start, 1e-9) * 60
            bars.update(bar, completed=done, total=total, rate=f"{rate:.1f} inputs/min")

        def stage(text: str, total: int | None) -> None:
            bars.update(bar, description=f"batch: {text}", total=total)
            say(f"batch: {text}", console)  # a log or a pipe gets it too

        with ray_lines_to_log():
            return run_batch(inputs, output, job, report_path=report, progress=update, status=stage)


def _print_report(result: BatchReport, output: Path, report_file: Path) -> None:
    """The job's summary: counts, the first errors, time, where the report is."""
    rows = [
        ("inputs", str(len(result.inputs))),
        ("written (input x robot)", str(len(result.written))),
        ("skipped, already there", str(len(result.skipped))),
        ("errors", str(len(result.errors))),
    ]
    per_robot: dict[str, list[tuple[int, float]]] = {}
    for written in result.written:
        parts = zip(written.frames, written.feasible_fraction, strict=True)
        per_robot.setdefault(written.robot, []).extend(parts)
    for robot, pieces in per_robot.items():
        frames = sum(n for n, _ in pieces)
        feasible = sum(n * f for n, f in pieces) / max(frames, 1)
        rows.append((f"feasible, {robot}", f"{feasible:.1%} of {frames} frames written"))
    boxed = sorted({Path(w.input).name for w in result.written if w.letterboxed})
    if boxed:
        names = ", ".join(boxed[:5]) + (f" and {len(boxed) - 5} more" if len(boxed) > 5 else "")
        rows.append(("letterboxed (other aspect)", f"{len(boxed)}: {names}"))
    for error in result.errors[:10]:
        where = f"{Path(error.input).name} [{error.stage}"
        where += f", {error.robot}]" if error.robot else "]"
        rows.append((where, error.error.splitlines()[0][:120]))
    rows += [("time", _time(result)), ("report", str(report_file))]
    summary(f"batch -> {output} ({result.status})", rows)


def _time(result: BatchReport) -> str:
    """The job's wall time, and the frames it extracted per second of it (start-up included)."""
    frames = sum({w.input: w.input_frames for w in result.written}.values())
    if not frames or result.seconds <= 0:
        return f"{result.seconds:.1f} s"
    return f"{result.seconds:.1f} s, {frames} frames: {frames / result.seconds:.0f} frames/s"
