"""Looking at things: ``hand2robot robots``, ``inspect`` (a dataset) and ``viz`` (an episode)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

import robots
from pipeline.cli.app import Command, app, out, say
from pipeline.cli.render import print_table
from pipeline.dataset import describe_dataset
from pipeline.viz import plot_episode, record_rerun, render_episode
from retarget import load_bimanual, load_robot


@app.command("robots", cls=Command)
def list_robots(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List the built-in robots (name, kind, DoF, source).

    Any of these names goes to --robot; so does the path of a robot config (.toml).

    Examples:
      hand2robot robots
      hand2robot robots --json
    """
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
    print_table(table)


@app.command(cls=Command)
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
    skeleton: Annotated[
        bool,
        typer.Option(help="Draw the robot as its joint chain, not its URDF meshes (faster)."),
    ] = False,
) -> None:
    """Draw an episode: over its source video, as a plot, or in 3D.

    --out draws the lifted hand and the robot's meshes (seen from the same camera;
    links in contact red on a SELF_COLLISION frame), the flags, a legend and a frame
    counter over the source video, beside a panel of the robot alone (a hand that an
    arm carries enlarged in an inset); --plot draws the joints (a hand's grouped by
    finger) against their limits, the flags over time and the residuals; --rerun
    records the episode in 3D, meshes included.

    Examples:
      hand2robot viz datasets/pour --episode 0 --out ep0.mp4 --plot ep0.png
      hand2robot viz datasets/pour --episode 0 --rerun ep0.rrd
    """
    if output is None and plot is None and rerun is None:
        raise typer.BadParameter("give --out FILE.mp4, --plot FILE.png or --rerun FILE.rrd")
    if output is not None:
        frames = render_episode(dataset, episode, output, skeleton=skeleton)
        say(f"{frames} frames -> {output}")
    if plot is not None:
        plot_episode(dataset, episode, plot)
        say(f"plot -> {plot}")
    if rerun is not None:
        frames = record_rerun(dataset, episode, rerun, skeleton=skeleton)
        say(f"{frames} frames -> {rerun} (open with: rerun {rerun})")


@app.command(cls=Command)
def inspect(
    dataset: Annotated[Path, typer.Argument(metavar="DATASET_DIR", help="A hand2robot dataset.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Show a dataset: episodes, feasible frames, flags, provenance.

    Frames and the feasible fraction per episode, flag counts by reason, each input's hand
    and camera placement, and the provenance record. Without --json, a table for people;
    with it, one JSON object for scripts.

    Examples:
      hand2robot inspect datasets/pour
      hand2robot inspect datasets/pour --json | jq .flag_counts
    """
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
    print_table(head)
    inputs = Table(title="inputs")
    for column in ("input", "source", "hand (asked)", "camera placement"):
        inputs.add_column(column)
    for record in summary["input_settings"]:
        inputs.add_row(
            str(record["input_index"]),
            Path(str(record["source"])).name,
            f"{record['hand']} ({record['hand_requested']})",
            str(record["camera_placement"]),
        )
    print_table(inputs)
    table = Table(title="episodes")
    # source_frame_range is half-open, over the input's kept frames (at the dataset's rate;
    # the source's own frame numbers are the per-frame source_frame_index column).
    for column in ("episode", "frames", "feasible", "task", "source", "kept frames"):
        table.add_column(column)
    for episode in summary["episodes"]:
        start, stop = episode["source_frame_range"]
        table.add_row(
            str(episode["episode_index"]),
            str(episode["frames"]),
            f"{episode['feasible_fraction']:.1%}",
            episode["task"],
            Path(str(episode["source"])).name,
            f"{start}-{stop - 1}",
        )
    print_table(table)
