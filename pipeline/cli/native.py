"""Native libraries' console lines kept out of the user's console, in a log file.

MediaPipe's C++ core (LiteRT, XNNPACK) prints about 14 lines per extraction to the process's
standard error (``INFO: [environment.cc:36] Creating LiteRT environment``, ``W0000 ... Input
tensor memory is not aligned``), and the C++ runtime adds its own on Ctrl-C ("terminate called
without an active exception"). None of it is for the user. The CLI points file descriptor 2 at
``<cache dir>/logs/native.log`` (rewritten by each command) and keeps Python's ``sys.stderr``,
which the progress bars, messages, warnings and tracebacks use, on the console. ``--verbose``
(or ``HAND2ROBOT_NATIVE_STDERR=show``) leaves the native lines on the console.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from pipeline.model import cache_dir

SHOW_ENV = "HAND2ROBOT_NATIVE_STDERR"
"""Set to ``show`` to keep native libraries' lines on the console."""

_saved: int | None = None


def native_log() -> Path:
    """Where the native lines of the last command went."""
    return cache_dir() / "logs" / "native.log"


def route_native_stderr() -> Path | None:
    """Point file descriptor 2 at :func:`native_log`, ``sys.stderr`` staying on the console.

    Returns the log's path, or None where it is left alone (``HAND2ROBOT_NATIVE_STDERR=show``,
    or the cache folder cannot be written: then the lines show, nothing is lost).
    """
    global _saved
    if _saved is not None or os.environ.get(SHOW_ENV) == "show":
        return None
    path = native_log()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError:
        return None
    sys.stderr.flush()
    _saved = os.dup(2)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stderr = os.fdopen(
        os.dup(_saved), "w", buffering=1, encoding=encoding, errors="backslashreplace"
    )
    os.dup2(log, 2)
    os.close(log)
    return path


def quiet_shutdown() -> None:
    """After Ctrl-C: what the interpreter's teardown reports goes to the native log.

    Objects torn down half-way (a landmarker's ``__del__`` once its module is gone, an atexit
    callback the interrupt cut short) report "Exception ignored in ..." through
    ``sys.unraisablehook``; after the one line that says what survived, that is noise.
    """

    def to_log(unraisable: sys.UnraisableHookArgs) -> None:
        message = f"{unraisable.err_msg or 'Exception ignored in'}: {unraisable.object!r}: "
        os.write(2, f"{message}{unraisable.exc_type.__name__}: {unraisable.exc_value}\n".encode())

    if _saved is not None:  # native lines go to the log: these can too
        sys.unraisablehook = to_log


@contextlib.contextmanager
def ray_lines_to_log() -> Iterator[None]:
    """Ray's own driver-side lines go to the native log for the block.

    Ray's threads print ``(raylet) Task ... failed`` on ``sys.stdout`` while a job's actors are
    torn down. After Ctrl-C, Ray is shut down inside the block, so that nothing it prints
    while stopping reaches the console. Nothing changes with ``--verbose``.
    """
    if _saved is None:
        yield
        return
    stream = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    try:
        with contextlib.redirect_stdout(stream):
            try:
                yield
            except KeyboardInterrupt:
                import ray

                if ray.is_initialized():
                    ray.shutdown()
                raise
    finally:
        stream.close()


def show_native_stderr() -> None:
    """Undo :func:`route_native_stderr`: native lines on the console again (``--verbose``)."""
    global _saved
    if _saved is None:
        return
    sys.stderr.flush()
    os.dup2(_saved, 2)
    os.close(_saved)
    _saved = None
