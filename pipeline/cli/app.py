"""The ``hand2robot`` application: help formatting, consoles, progress, exit codes."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from inspect import cleandoc
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.cli.native import quiet_shutdown, route_native_stderr, show_native_stderr
from pipeline.extract import package_version
from robots import Hand2RobotError


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


class Command(_ExamplesKept, typer.core.TyperCommand):
    """A ``hand2robot`` command (``@app.command(cls=Command)``)."""


#: The order ``hand2robot --help`` lists the commands in: the chain's order, whatever the order
#: their modules register them in.
COMMAND_ORDER = ("robots", "extract", "retarget", "batch", "viz", "inspect", "adopt")


class Group(_ExamplesKept, typer.core.TyperGroup):
    """The ``hand2robot`` group of commands."""

    def list_commands(self, ctx: Any) -> list[str]:
        """The commands, in :data:`COMMAND_ORDER` (any others after them)."""
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))


# Plain help (click's): on an 80-column terminal, Rich's option table truncates long words.
app = typer.Typer(
    cls=Group,
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console(markup=False)  # what goes to stdout holds paths and names, which may hold "[...]"


def say(text: str, to: Console = out) -> None:
    """Print one line as it is.

    No Rich markup (paths may hold brackets), no colours guessed, no wrapping: a pipe or a log
    gets the line whole, and a terminal wraps it itself.
    """
    to.print(text, markup=False, highlight=False, soft_wrap=True)


def _show_version(value: bool) -> None:
    if value:
        say(f"hand2robot {package_version()}")
        raise typer.Exit()


@app.callback()
def _hand2robot(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="Also show the native libraries' console lines (MediaPipe's LiteRT INFO and "
            "warning lines), which otherwise go to <cache>/logs/native.log.",
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
    if verbose:
        show_native_stderr()


def progress() -> Progress:
    """A progress display on stderr (shown on a terminal only)."""
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
def interruptible() -> Iterator[None]:
    """Ctrl-C: say that nothing half-written is left, exit 130 (``batch`` says more itself)."""
    try:
        yield
    except KeyboardInterrupt:
        say(
            "interrupted: nothing half-written is visible (files are renamed into place, "
            "dataset appends swap in whole); run the same command again to redo it",
            console,
        )
        raise typer.Exit(130) from None


def main() -> None:
    """Console entry point: run the app, turning input errors into exit code 2.

    Native libraries' console lines go to a log file (:mod:`pipeline.cli.native`).
    """
    route_native_stderr()
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
            if code == 130:
                quiet_shutdown()
            sys.exit(code)
    except Hand2RobotError as err:
        console.print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True, highlight=False)
        sys.exit(2)
    except typer.Exit as exit_:
        if exit_.exit_code == 130:
            quiet_shutdown()
        sys.exit(exit_.exit_code)
    except typer.Abort:
        say("aborted", console)
        sys.exit(1)
    except Exception as err:
        # Usage errors (click's, or the click that newer typer releases vendor) show themselves
        # and carry their exit code (2).
        show, code = getattr(err, "show", None), getattr(err, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
