"""Atomic replacement of a dataset folder: a lock, a staging folder, one exchange, recovery.

An append builds the new version of a dataset in a staging folder beside it (the files it does
not rewrite hard-linked, not copied) and swaps it in with one ``renameat2(RENAME_EXCHANGE)``, so
a crash at any point leaves the previous dataset as it was; the next writer clears what a crash
left (:func:`recover`). Nothing here knows what a dataset holds: any folder can be replaced so.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pipeline.exceptions import DatasetError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> None:
    """Swap two folders atomically (Linux ``renameat2(RENAME_EXCHANGE)``).

    Raises:
        OSError: The system has no atomic exchange (the caller falls back to two renames).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def fsync_tree(root: Path) -> None:
    """Flush every file below ``root`` to disk."""
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())


def commit(staging: Path, root: Path) -> None:
    """Make ``staging`` the folder at ``root``; the old version is deleted after the swap."""
    fsync_tree(staging)
    if not root.exists():
        staging.rename(root)
        return
    try:
        exchange(staging, root)
    except OSError:
        # No atomic exchange: two renames; a crash between them leaves the old version at
        # the backup path, which the next append restores (see recover).
        backup = backup_path(root)
        root.rename(backup)
        staging.rename(root)
        shutil.rmtree(backup, ignore_errors=True)
        return
    shutil.rmtree(staging, ignore_errors=True)  # now the old version


def staging_path(root: Path) -> Path:
    """Where the next version of ``root`` is built."""
    return root.parent / f".{root.name}.hand2robot-staging"


def backup_path(root: Path) -> Path:
    """Where the old version of ``root`` waits while two plain renames replace it."""
    return root.parent / f".{root.name}.hand2robot-previous"


def lock_path(root: Path) -> Path:
    """The file whose ``flock`` says that ``root`` is being written."""
    return root.parent / f".{root.name}.hand2robot-lock"


def recover(root: Path) -> None:
    """Clear what a crashed writer left beside ``root`` (caller holds the lock)."""
    backup = backup_path(root)
    if backup.exists():
        if root.exists():
            shutil.rmtree(backup)
        else:
            backup.rename(root)
    staging = staging_path(root)
    if staging.exists():
        shutil.rmtree(staging)


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the writer's lock of ``root`` for the block; the lock file is gone afterwards.

    The lock file is removed while still locked, so no lock file stays beside a dataset. A
    writer that opened it just before that would lock a file no longer there; so after taking
    the lock each writer checks that the path still names the file it locked, and opens it
    again if not.

    Raises:
        DatasetError: Another process holds it.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(root)
    handle = _take_lock(path, root)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # still locked: see above
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def _take_lock(path: Path, root: Path) -> IO[str]:
    for _ in range(100):
        handle = open(path, "a")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DatasetError(f"{root} is being written by another process") from None
        try:
            locked, named = os.fstat(handle.fileno()), os.stat(path)
            if (locked.st_dev, locked.st_ino) == (named.st_dev, named.st_ino):
                return handle
        except FileNotFoundError:
            pass  # removed by the writer before us: open the path again
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()
    raise DatasetError(f"{root}: could not take the writer's lock (its lock file keeps changing)")


def link_tree(source: Path, target: Path, skip: frozenset[str] | set[str]) -> None:
    """Hard-link every file of ``source`` into ``target`` (copy where links fail).

    ``skip``: paths relative to ``source`` (POSIX form) left out.
    """
    for folder, _, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        for name in files:
            path = (relative / name).as_posix()
            if path in skip:
                continue
            destination = target / relative / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(Path(folder) / name, destination)
            except OSError:
                shutil.copy2(Path(folder) / name, destination)


@contextlib.contextmanager
def replacing(root: Path, rewritten: frozenset[str] | set[str]) -> Iterator[Path]:
    """The staging folder of ``root``'s next version; committed when the block ends normally.

    The staging folder starts with every file of the current version except ``rewritten``
    (hard links: they share their data with the current version, so the block must replace,
    never write into, any of them; what it rewrites belongs in ``rewritten``). If the block
    raises, it is removed and ``root`` stays as it was. The caller holds :func:`locked` and
    has called :func:`recover`.
    """
    staging = staging_path(root)
    staging.mkdir(parents=True)
    try:
        if root.exists():
            link_tree(root, staging, rewritten)
        yield staging
        commit(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON (NaN refused), its folder made as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
