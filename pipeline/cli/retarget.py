"""``hand2robot retarget``: one input onto a robot, into a summary or a dataset."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

import robots
from pipeline.cli.app import Command, app, say
from pipeline.cli.extract import expected_frames, extract_with_progress
from pipeline.cli.options import (
    CHAIN,
    CHAIN_DEFAULT,
    DATASET,
    DATASET_DEFAULT,
    EXTRACTION,
    EXTRACTION_DEFAULT,
    CameraMotionOption,
    ChainOptions,
    DepthOption,
    DepthScaleOption,
    IntrinsicsOption,
    ModelOption,
    camera_motion_choice,
    with_options,
)
from pipeline.cli.render import (
    counted,
    ensure_model_shown,
    flag_hints,
    frame_progress,
    print_table,
    summary,
)
from pipeline.conversion import convert
from pipeline.dataset import PROVENANCE_PATH, DatasetConfig
from pipeline.extract import ExtractConfig
from pipeline.retargeted import RetargetedHand
from pipeline.retargeting import retarget_sides
from pipeline.tracks import read_tracks
from retarget import BimanualRobot, Flag, Robot, load_any_robot


@app.command("retarget", cls=Command)
@with_options(chain=CHAIN, dataset=DATASET, config=EXTRACTION)
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
    chain: ChainOptions = CHAIN_DEFAULT,
    model: ModelOption = None,
    intrinsics: IntrinsicsOption = None,
    depth: DepthOption = None,
    depth_scale: DepthScaleOption = 1000.0,
    camera_motion: CameraMotionOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="LeRobot v3.0 dataset folder to create or append to (surrogate-tagged). "
            "Without it, only a summary is printed.",
        ),
    ] = None,
    dataset: DatasetConfig = DATASET_DEFAULT,
    config: ExtractConfig = EXTRACTION_DEFAULT,
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
      hand2robot retarget head_cam.mp4 --egocentric --out ego
    """
    loaded = load_any_robot(robot)
    motion = camera_motion_choice(camera_motion, chain.placement.egocentric)
    if output is not None:
        depth_maps = (depth, depth_scale, motion)
        _append_to_dataset(
            input_path, loaded, output, chain, dataset, config, intrinsics, model, depth_maps
        )
        return
    if input_path.suffix == ".parquet":
        tracks = read_tracks(input_path)
    else:
        tracks = extract_with_progress(
            input_path,
            model,
            config,
            intrinsics,
            depth=depth,
            depth_scale=depth_scale,
            camera_motion=motion,
        )
    start = time.perf_counter()
    hands_done = retarget_sides(
        tracks, loaded, side=chain.side, config=chain.retarget, placement=chain.placement
    )
    elapsed = (time.perf_counter() - start) / len(hands_done)
    for done in hands_done:
        _print_summary(input_path, loaded, done, elapsed)


def _print_summary(
    input_path: Path, robot: Robot | BimanualRobot, done: RetargetedHand, elapsed: float
) -> None:
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
    # The whole step (loading the optimiser, fitting the placement): a short clip's per-frame
    # figure carries those once-only costs, so the total is shown first.
    per_frame = elapsed / len(res.q) * 1000
    table.add_row("retargeting time", f"{elapsed:.2f} s ({per_frame:.3f} ms/frame)")
    table.add_row("camera placement", done.placement)
    table.add_row("joints", ", ".join(res.joint_names))
    counts = {flag.name: int(((res.flags & flag) != 0).sum()) for flag in Flag if flag.name}
    fitted = "(fitted)" in done.placement
    for hint in flag_hints(counts, len(res.q), _arm_joints(robot), fitted):
        table.add_row("hint", hint)
    print_table(table)


def _append_to_dataset(
    input_path: Path,
    robot: Robot | BimanualRobot,
    output: Path,
    chain: ChainOptions,
    dataset: DatasetConfig,
    config: ExtractConfig,
    intrinsics: Path | None,
    model: Path | None,
    depth_maps: tuple[Path | None, float, str],
) -> None:
    start = time.perf_counter()
    ensure_model_shown(model)
    with frame_progress(input_path.name, expected_frames(input_path, config)) as update:
        report = convert(
            input_path,
            robot,
            output,
            extract=config,
            dataset=dataset,
            retarget=chain.retarget,
            side=chain.side,
            placement=chain.placement,
            intrinsics=intrinsics,
            model=model,
            progress=update,
            depth=depth_maps[0],
            depth_scale=depth_maps[1],
            camera_motion=depth_maps[2],
        )
    if report.already_there:
        say(
            f"{input_path.name}: already in the dataset {output} (same content, model, "
            f"extraction settings and hand), {counted(report.total_episodes, 'episode')}; "
            "nothing appended (--allow-duplicate appends it again)"
        )
        return
    rows = [
        (f"episode {episode}", f"{counted(frames, 'frame')}, {fraction:.1%} feasible")
        for episode, frames, fraction in zip(
            report.episodes, report.frames, report.feasible_fraction, strict=True
        )
    ]
    if report.dropped_frames:
        rows.append(("left out by --split-gap", counted(report.dropped_frames, "frame")))
    rows += _appended_rows(output, report.episodes, robot)
    total = f"{counted(report.total_episodes, 'episode')}, {counted(report.total_frames, 'frame')}"
    rows.append(("dataset now", total))
    rows.append(("time", f"{time.perf_counter() - start:.1f} s"))
    summary(f"{input_path.name} -> {output} ({robot.name})", rows)


def _appended_rows(
    output: Path, episodes: list[int], robot: Robot | BimanualRobot
) -> list[tuple[str, str]]:
    """What the summary without --out says too: hand, placement, flags, and hints."""
    provenance = json.loads((output / PROVENANCE_PATH).read_text())
    new = [e for e in provenance["episodes"] if e["episode_index"] in set(episodes)]
    record = provenance["inputs"][-1]
    counts: Counter[str] = Counter()
    for episode in new:
        counts.update(episode.get("flag_counts", {}))
    frames = sum(e["frames"] for e in new)
    rows = [
        ("hand", f"{record['hand']} (asked: {record.get('hand_requested', 'auto')})"),
        ("camera placement", str(record.get("camera_placement", ""))),
    ]
    rows += [(f"flag {name}", str(count)) for name, count in counts.items() if count]
    fitted = "(fitted)" in str(record.get("camera_placement", ""))
    hints = flag_hints(dict(counts), frames, _arm_joints(robot), fitted)
    rows += [("hint", hint) for hint in hints]
    return rows


def _arm_joints(robot: Robot | BimanualRobot) -> int:
    """Joints of the (each) arm; 0 for a free hand."""
    one = robot.left if isinstance(robot, BimanualRobot) else robot
    return len(one.arm_joints)
