"""The ``hand2robot`` command line.

Exit codes: 0 success; 2 bad input or usage (the message says what and lists valid choices);
1 an unexpected internal error.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import robots
from pipeline.tracks import HandTracks
from robots import Hand2RobotError

app = typer.Typer(
    help="Turn videos of human hands into surrogate-tagged robot episodes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()


@app.command("robots")
def list_robots(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List the built-in robots (name, kind, DoF, source).

    Example: hand2robot robots --json
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
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="hand2robot robots (default: panda)")
    for column in ("name", "kind", "side", "DoF", "source"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[key]) for key in ("name", "kind", "side", "dof", "source")))
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


def _extract(
    input_path: Path, model: Path | None, fov: float, hands: int, selfie: bool
) -> HandTracks:
    from pipeline.extract import ExtractConfig, extract_hands

    config = ExtractConfig(num_hands=hands, horizontal_fov_deg=fov, selfie=selfie)
    start = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"extract {input_path.name}", total=None, rate="")

        def update(done: int) -> None:
            rate = done / max(time.perf_counter() - start, 1e-9)
            progress.update(task, completed=done, rate=f"{rate:.1f} frames/s")

        return extract_hands(input_path, config=config, model=model, progress=update)


ModelOption = Annotated[
    Path | None,
    typer.Option(help="Official hand_landmarker.task to use instead of the cached default."),
]
FovOption = Annotated[
    float,
    typer.Option("--fov", help="Horizontal field of view when no intrinsics are given [deg]."),
]
HandsOption = Annotated[int, typer.Option(help="Hands to look for: 1 (faster) or 2.")]
SelfieOption = Annotated[bool, typer.Option(help="Input is mirrored (front camera).")]


@app.command()
def extract(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Video file.")],
    output: Annotated[Path, typer.Option("--out", help="Hand-track file to write (.parquet).")],
    model: ModelOption = None,
    fov: FovOption = 60.0,
    hands: HandsOption = 2,
    selfie: SelfieOption = False,
) -> None:
    """Extract per-frame 3D hand poses from a video into a hand-track file.

    Example: hand2robot extract clip.mp4 --out clip.tracks.parquet
    """
    from pipeline.tracks import write_tracks

    tracks = _extract(input_path, model, fov, hands, selfie)
    write_tracks(tracks, output)
    present = {s: f"{h.present.mean():.0%}" for s, h in tracks.hands.items()}
    out.print(f"{tracks.num_frames} frames, hands present {present} -> {output}")


@app.command("retarget")
def retarget_command(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="Video file or hand-track file (.parquet).")
    ],
    robot: Annotated[
        str, typer.Option(help="Registry name or robot config (.toml).")
    ] = robots.DEFAULT_ROBOT,
    hand: Annotated[str, typer.Option(help="auto, left or right.")] = "auto",
    model: ModelOption = None,
    fov: FovOption = 60.0,
    hands: HandsOption = 2,
    selfie: SelfieOption = False,
) -> None:
    """Retarget one input onto a robot and print a summary.

    Example: hand2robot retarget data/kettle_pour.tracks.parquet --robot panda
    """
    from pipeline.run import retarget_tracks
    from pipeline.tracks import read_tracks
    from retarget import Flag, load_robot

    loaded = load_robot(robot)
    if input_path.suffix == ".parquet":
        tracks = read_tracks(input_path)
    else:
        tracks = _extract(input_path, model, fov, hands, selfie)
    start = time.perf_counter()
    done = retarget_tracks(tracks, loaded, side=hand)
    elapsed = time.perf_counter() - start
    res = done.result
    present = ~(res.flags & Flag.NO_HAND).astype(bool)
    table = Table(title=f"{input_path.name} -> {loaded.name} ({done.side} hand)", show_header=False)
    table.add_row("frames", f"{len(res.q)} ({present.sum()} with a hand)")
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
    table.add_row("joints", ", ".join(res.joint_names))
    out.print(table)


def main() -> None:
    """Console entry point: run the app, turning input errors into exit code 2."""
    try:
        app(standalone_mode=False)
    except Hand2RobotError as err:
        console.print(f"[red]error:[/red] {err}")
        sys.exit(2)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(1)
    except Exception as err:  # click usage errors carry their own exit code
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise
