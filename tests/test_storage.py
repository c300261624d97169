"""The atomic folder replacement under the dataset writer, on plain folders."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from pipeline.dataset import storage
from pipeline.exceptions import DatasetError


def make(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def contents(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def test_replacing_keeps_unlisted_files_as_links_and_swaps_in_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "set"
    make(root, {"keep/a.txt": "a", "meta.json": "old"})
    with storage.locked(root):
        storage.recover(root)
        with storage.replacing(root, {"meta.json"}) as staging:
            assert contents(staging) == {"keep/a.txt": "a"}
            assert (staging / "keep/a.txt").stat().st_ino == (root / "keep/a.txt").stat().st_ino
            make(staging, {"meta.json": "new", "b.txt": "b"})
            assert contents(root) == {"keep/a.txt": "a", "meta.json": "old"}
    assert contents(root) == {"keep/a.txt": "a", "meta.json": "new", "b.txt": "b"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no lock file left


def test_an_error_inside_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    root = tmp_path / "set"
    make(root, {"meta.json": "old"})
    with pytest.raises(KeyError), storage.replacing(root, {"meta.json"}) as staging:
        make(staging, {"meta.json": "half"})
        raise KeyError("injected")
    assert contents(root) == {"meta.json": "old"}
    assert not storage.staging_path(root).exists()


def test_a_new_folder_is_renamed_into_place(tmp_path: Path) -> None:
    root = tmp_path / "new"
    with storage.replacing(root, set()) as staging:
        make(staging, {"x": "1"})
    assert contents(root) == {"x": "1"}


def test_without_exchange_two_renames_replace_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_exchange(*_: object) -> None:
        raise OSError(38, "renameat2 is not available")

    monkeypatch.setattr(storage, "exchange", no_exchange)
    root = tmp_path / "set"
    make(root, {"meta.json": "old"})
    with storage.replacing(root, {"meta.json"}) as staging:
        make(staging, {"meta.json": "new"})
    assert contents(root) == {"meta.json": "new"}
    assert not storage.backup_path(root).exists()


def test_recover_puts_back_a_version_left_between_two_renames(tmp_path: Path) -> None:
    root = tmp_path / "set"
    make(storage.backup_path(root), {"meta.json": "old"})  # crashed after the first rename
    make(storage.staging_path(root), {"meta.json": "new"})
    storage.recover(root)
    assert contents(root) == {"meta.json": "old"}
    assert not storage.staging_path(root).exists() and not storage.backup_path(root).exists()


def _hold_lock(root: str, ready: object, release: object) -> None:
    with storage.locked(Path(root)):
        ready.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    root = tmp_path / "set"
    holder = context.Process(target=_hold_lock, args=(str(root), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(DatasetError, match="being written by another process"):
            with storage.locked(root):
                pass
    finally:
        release.set()
        holder.join(30)
    with storage.locked(root):  # free again
        pass


def test_a_lock_file_left_by_a_crashed_writer_neither_blocks_nor_stays(tmp_path: Path) -> None:
    root = tmp_path / "set"
    storage.lock_path(root).write_text("")  # the writer died; the kernel released its lock
    with storage.locked(root):
        assert storage.lock_path(root).exists()
    assert not storage.lock_path(root).exists()


def test_a_lock_on_a_removed_lock_file_is_taken_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the removal opens: a writer that opened the lock file just before the one
    holding it removed it must not count the lock on that gone file as the lock."""
    root = tmp_path / "set"
    real_open, opened = open, []

    def open_then_lose_the_race(path: object, *args: object, **kwargs: object) -> object:
        handle = real_open(path, *args, **kwargs)  # type: ignore[call-overload]
        if path == storage.lock_path(root) and not opened:
            Path(str(path)).unlink()  # the previous writer finished right now
        opened.append(path)
        return handle

    monkeypatch.setattr("builtins.open", open_then_lose_the_race)
    with storage.locked(root):
        assert len(opened) == 2 and storage.lock_path(root).exists()
    assert not storage.lock_path(root).exists()
