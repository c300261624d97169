"""Batch jobs on Ray (folders with bad files, several robots, resume after a kill) and URLs."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.batch import BatchConfig, BatchError, expand_inputs, run_batch
from pipeline.conversion import convert
from pipeline.dataset import describe_dataset
from pipeline.download import DownloadConfig, fetch
from pipeline.exceptions import InputMediaError
from pipeline.extract import ExtractConfig
from pipeline.tracks import read_tracks
from retarget import RetargetConfig

STOVE = "videos/stove_stir_egocentric.mp4"  # 30 fps, 60 frames
KETTLE = "videos/kettle_pour_third_person.mp4"  # 29.97 fps, 287 frames
CUPS = "videos/cups_shuffle_third_person.mp4"  # 29.97 fps, 300 frames


def provenance(root: Path) -> dict:
    return json.loads((root / "meta/hand2robot.json").read_text())


@pytest.fixture()
def mixed_folder(shared_data: Path, tmp_path: Path) -> Path:
    """Two real clips, a truncated (corrupt) video and a text file."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    shutil.copy(shared_data / STOVE, folder / "stove.mp4")
    shutil.copy(shared_data / KETTLE, folder / "kettle.mp4")
    (folder / "corrupt.mp4").write_bytes((shared_data / KETTLE).read_bytes()[:6000])
    (folder / "notes.md").write_text("not a video\n")
    return folder


def test_expand_inputs(mixed_folder: Path, shared_data: Path, tmp_path: Path) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text(f"# clips\n{shared_data / STOVE}\n\nhttp://example.invalid/a.mp4\n")
    frames = shared_data / "frames/pour_water_egocentric_zed"
    found = expand_inputs([mixed_folder, listed, str(mixed_folder / "*.mp4"), frames])
    names = [Path(f).name for f in found]
    assert names == [
        "corrupt.mp4",
        "kettle.mp4",
        "notes.md",
        "stove.mp4",
        "stove_stir_egocentric.mp4",
        "a.mp4",
        "pour_water_egocentric_zed",  # a folder of images is one input
    ]
    with pytest.raises(BatchError, match="no such file, folder, list or URL"):
        expand_inputs([tmp_path / "missing*.mp4"])


def test_batch_writes_good_inputs_and_reports_bad_ones(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    config = BatchConfig(
        robots=("panda",),
        workers=2,
        extract=ExtractConfig(num_hands=1),
        cache=str(tmp_path / "cache"),
    )
    # What a job that was killed left (its process is gone) is cleared by the next one.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = Path(tempfile.gettempdir()) / f"hand2robot-batch-{dead.pid}-0000/extract-x"
    stale.mkdir(parents=True)
    scratch = set(Path(tempfile.gettempdir()).glob("hand2robot-*")) - {stale.parent}
    report = run_batch([mixed_folder], out, config)
    assert set(Path(tempfile.gettempdir()).glob("hand2robot-*")) <= scratch  # none left behind
    assert not stale.parent.exists()
    assert report.status == "partial"
    written = sorted(Path(w.input).name for w in report.written)
    assert written == ["kettle.mp4", "stove.mp4"]
    errors = {Path(e.input).name: e for e in report.errors}
    assert set(errors) == {"corrupt.mp4", "notes.md"}
    assert errors["corrupt.mp4"].stage == "extract"
    assert "not a readable video" in errors["corrupt.mp4"].error
    assert "not a readable video" in errors["notes.md"].error
    on_disk = json.loads(out.with_name("dataset.report.json").read_text())
    assert on_disk["status"] == "partial" and len(on_disk["errors"]) == 2
    summary = describe_dataset(out)
    assert summary["total_episodes"] == 2 and summary["total_frames"] == 60 + 287
    sources = sorted(Path(e["source"]).name for e in summary["episodes"])
    assert sources == ["kettle.mp4", "stove.mp4"]
    assert not list(tmp_path.glob(".dataset.hand2robot-batch*"))  # temporary files removed
    # The stored size is the first listed input that decodes (kettle, 1280x720 -> 480x270),
    # fixed before extraction: the stove clip (384x288) is letterboxed into it by its actor.
    info = json.loads((out / "meta/info.json").read_text())
    assert info["features"]["observation.images.camera"]["shape"] == [270, 480, 3]
    boxed = {Path(w.input).name: w.letterboxed for w in report.written}
    assert boxed == {"kettle.mp4": False, "stove.mp4": True}  # 4:3 into 16:9: black bars

    # The same command again: nothing new, nothing duplicated.
    again = run_batch([mixed_folder], out, config)
    assert sorted(Path(s.input).name for s in again.skipped) == ["kettle.mp4", "stove.mp4"]
    assert not again.written and describe_dataset(out)["total_episodes"] == 2
    # Each run's report is kept: the latest in the report file, every one in the history.
    history = out.with_name("dataset.report.history.jsonl").read_text().splitlines()
    runs = [json.loads(line) for line in history]
    assert [len(r["written"]) for r in runs] == [2, 0] and runs[0]["errors"] == on_disk["errors"]
    assert all(r["finished"] and r["status"] == "partial" for r in runs)


def test_batch_several_robots_extracts_once(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "datasets"
    clip = tmp_path / "stove.mp4"
    shutil.copy(shared_data / STOVE, clip)
    cache = tmp_path / "cache"
    config = BatchConfig(
        robots=("panda", "allegro_right"),
        workers=1,
        extract=ExtractConfig(num_hands=1),
        cache=str(cache),
    )
    report = run_batch([clip], out, config)
    assert report.status == "ok", report.errors
    assert sorted(w.robot for w in report.written) == ["allegro_right", "panda"]
    # Each robot's retargeting is timed; one retargeting actor did both robots of the input.
    assert all(0 < w.retarget_s < 60 for w in report.written)
    assert len({w.retarget_actor for w in report.written}) == 1
    assert len(list(cache.glob("*.parquet"))) == 1  # one extraction for both robots
    for robot in ("panda", "allegro_right"):
        summary = describe_dataset(out / robot)
        assert summary["robot"] == robot and summary["total_frames"] == 60


def test_batch_optimises_the_inputs_of_a_retargeting_call_together(
    shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    shutil.copy(shared_data / STOVE, folder / "stove.mp4")
    shutil.copy(shared_data / KETTLE, folder / "kettle.mp4")
    base = BatchConfig(
        robots=("panda",),
        workers=1,
        extract=ExtractConfig(num_hands=1),
        retarget=RetargetConfig(optimize=False),
    )
    plain = run_batch([folder], tmp_path / "plain", base)
    config = dataclasses.replace(
        base, retarget=RetargetConfig(optimize=True), optimize_batch=2
    )  # the second job finds both inputs' tracks in the cache
    assert config.retarget_batch == 2 and base.retarget_batch == 1
    assert BatchConfig().retarget_batch == 1  # optimised by default, each input on its own
    optimised = run_batch([folder], tmp_path / "optimised", config)
    assert plain.status == optimised.status == "ok", optimised.errors
    before, after = describe_dataset(tmp_path / "plain"), describe_dataset(tmp_path / "optimised")
    for name, optimize in (("optimised", True), ("plain", False)):
        for record in provenance(tmp_path / name)["inputs"]:
            assert record["retarget_settings"]["optimize"] is optimize
            assert record["optimized"] is optimize
    assert before["total_frames"] == after["total_frames"] == 60 + 287
    assert before["flag_counts"]["VELOCITY_LIMIT"] > 0
    assert after["flag_counts"]["VELOCITY_LIMIT"] == 0
    # Both inputs went to one retargeting call: one actor, the time shared by frames.
    assert len({w.retarget_actor for w in optimised.written}) == 1


def test_batch_lifts_with_the_depth_maps_beside_an_input(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    shutil.copytree(shared_data / "frames/pour_water_egocentric_zed", folder / "zed")
    shutil.copytree(shared_data / "frames/pour_water_egocentric_zed_depth", folder / "zed_depth")
    # The depth folder is the sidecar of zed/, not an input (it holds PNG images).
    assert [Path(f).name for f in expand_inputs([folder])] == ["zed"]
    config = BatchConfig(robots=("panda",), workers=1, cache=str(tmp_path / "cache"))
    out = tmp_path / "dataset"
    report = run_batch([folder], out, config)
    assert report.status == "ok", report.errors
    (record,) = provenance(out)["inputs"]
    assert record["source"]["depth"] == str(folder / "zed_depth")
    assert record["source"]["depth_scale"] == "1000"
    (cached,) = (tmp_path / "cache").glob("*.parquet")
    hand = read_tracks(cached).hands["right"]
    assert hand.depth_residual is not None and np.isfinite(hand.depth_residual).sum() >= 5
    # Resume: the key of an input with depth maps includes them, so it is found again.
    again = run_batch([folder], out, config)
    assert [s.input for s in again.skipped] == [str(folder / "zed")] and not again.written
    # Without the sidecar, the same frames are another input (a monocular lift).
    monocular = dataclasses.replace(config, depth_sidecars=False)
    assert [w.input for w in run_batch([folder], out, monocular).written] == [str(folder / "zed")]


def test_batch_config_rejects_bad_settings_naming_them() -> None:
    for settings, message in (
        ({"robots": ()}, "give at least one robot"),
        ({"robots": ("panda", "panda")}, "robots repeat: panda, panda"),
        ({"workers": 0}, "workers must be >= 1, got 0"),
        ({"retarget_workers": 0}, "retarget_workers must be >= 1, got 0"),
        ({"max_retries": -1}, "max_retries must be >= 0, got -1"),
    ):
        with pytest.raises(BatchError, match=message):
            BatchConfig(**settings)  # type: ignore[arg-type]
    assert BatchConfig(workers=3).max_retarget_actors == 3
    assert BatchConfig(workers=3, retarget_workers=5).max_retarget_actors == 5


def _batch_command(inputs: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from pipeline.cli import main; main()",
        "batch",
        str(inputs),
        "--out",
        str(out),
        "--hands",
        "1",
        *extra,
    ]


def test_resume_after_killed_job_writes_every_input_once(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name in (STOVE, KETTLE, CUPS):
        shutil.copy(shared_data / name, folder / Path(name).name)
    out = tmp_path / "dataset"
    environment = os.environ | {"HAND2ROBOT_CACHE": str(tmp_path / "cache")}
    job = subprocess.Popen(
        _batch_command(folder, out, "--workers", "1"),
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and job.poll() is None:
            if (out / "meta/hand2robot.json").is_file() and provenance(out)["inputs"]:
                break
            time.sleep(0.2)
        assert job.poll() is None, "the job finished before it could be interrupted"
        os.killpg(job.pid, signal.SIGKILL)  # the driver and its Ray processes, at once
        job.wait(30)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    first = [Path(r["source"]["path"]).name for r in provenance(out)["inputs"]]
    assert 1 <= len(first) < 3
    describe_dataset(out)  # the interrupted dataset is whole
    done = subprocess.run(
        _batch_command(folder, out, "--workers", "1"),
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # Ray Data's INFO lines and its note on its own (disabled) progress bars stay in its log
    # files, off the console.
    assert " INFO " not in done.stderr and "Progress bars disabled" not in done.stderr
    assert "Token authentication" not in done.stderr  # Ray's note on choosing its default
    # What it does before the first result is said at once, with the count of inputs.
    held = len(first)
    assert "batch: 3 inputs, 30 fps; checking what the datasets hold" in done.stderr
    assert f"batch: {3 - held} to run ({held} already there); starting an embedded Ray" in (
        done.stderr
    )
    # The summary gives each robot's feasible share.
    assert "feasible, panda" in done.stdout
    names = sorted(Path(r["source"]["path"]).name for r in provenance(out)["inputs"])
    assert names == sorted(Path(n).name for n in (STOVE, KETTLE, CUPS))  # each exactly once
    report = json.loads(out.with_name("dataset.report.json").read_text())
    assert sorted(Path(s["input"]).name for s in report["skipped"]) == sorted(first)
    # The summary's time: the frames this run extracted, per second of the whole job.
    frames = sum({w["input"]: w["input_frames"] for w in report["written"]}.values())
    rate = re.search(r"(\d+) frames: (\d+) frames/s", done.stdout)
    assert rate is not None, done.stdout
    assert int(rate.group(1)) == frames
    assert abs(int(rate.group(2)) - frames / report["seconds"]) <= 1


def test_batch_exit_status_when_every_input_fails(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "corrupt.mp4").write_bytes((shared_data / KETTLE).read_bytes()[:6000])
    (folder / "notes.md").write_text("not a video\n")
    out = tmp_path / "dataset"
    done = subprocess.run(
        _batch_command(folder, out, "--workers", "1"),
        env=os.environ | {"HAND2ROBOT_CACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]  # failed
    report = json.loads(out.with_name("dataset.report.json").read_text())
    assert report["status"] == "failed" and not report["written"]
    assert sorted(Path(e["input"]).name for e in report["errors"]) == ["corrupt.mp4", "notes.md"]


# Loaded by every Python process of the job below (PYTHONPATH): a Ray worker dies, as on a
# crash in native code (SIGSEGV) or the kernel's OOM killer (SIGKILL), when it opens a chosen
# input; the driver, which also reads the inputs, is left alone.
_DYING_WORKERS = """
import os, signal, sys


def _die(event, args):
    if event != "open" or not sys.argv or not sys.argv[0].endswith("default_worker.py"):
        return
    if not isinstance(args[0], (str, os.PathLike)):
        return
    name = os.path.basename(os.fspath(args[0]))
    if name == os.environ["TEST_DIE_ALWAYS"]:
        os.kill(os.getpid(), signal.SIGSEGV)
    if name == os.environ["TEST_DIE_ONCE"]:
        try:
            os.close(os.open(os.environ["TEST_DIED_ONCE"], os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)


sys.addaudithook(_die)
"""


def _batch_with_dying_workers(
    site_code: str, folder: Path, out: Path, **environment: str
) -> subprocess.CompletedProcess[str]:
    """``hand2robot batch`` (2 workers, 1 retry) with ``site_code`` loaded by every process."""
    site = out.parent / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(site_code)
    return subprocess.run(
        _batch_command(folder, out, "--workers", "2", "--max-retries", "1", "--max-fps", "10"),
        env=os.environ
        | environment
        | {
            "HAND2ROBOT_CACHE": str(out.parent / "cache"),
            "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dead_workers_are_retried_then_reported(shared_data: Path, tmp_path: Path) -> None:
    """A worker killed once is replaced and its input retried; an input that kills its worker
    every time is an error record after ``--max-retries``, and the job goes on (exit 3)."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    shutil.copy(shared_data / STOVE, folder / "stove.mp4")
    shutil.copy(shared_data / "videos/armwrestling_lowres.mp4", folder / "killed_once.mp4")
    shutil.copy(shared_data / KETTLE, folder / "kills_always.mp4")
    died_once = tmp_path / "died_once"
    out = tmp_path / "dataset"
    done = _batch_with_dying_workers(
        _DYING_WORKERS,
        folder,
        out,
        TEST_DIE_ALWAYS="kills_always.mp4",
        TEST_DIE_ONCE="killed_once.mp4",
        TEST_DIED_ONCE=str(died_once),
    )
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-3000:]  # partial
    assert died_once.is_file()  # the first worker on killed_once.mp4 did die
    report = json.loads(out.with_name("dataset.report.json").read_text())
    assert report["status"] == "partial"
    assert sorted(Path(w["input"]).name for w in report["written"]) == [
        "killed_once.mp4",
        "stove.mp4",
    ]
    assert len(report["errors"]) == 1, report["errors"]
    error = report["errors"][0]
    assert Path(error["input"]).name == "kills_always.mp4"
    assert error["stage"] == "extract" and error["robot"] is None
    assert "worker process died on this input 2 times" in error["error"]  # first run, 1 retry
    summary = describe_dataset(out)
    assert sorted(Path(e["source"]).name for e in summary["episodes"]) == [
        "killed_once.mp4",
        "stove.mp4",
    ]


# Loaded by every Python process of the job below: a Ray worker dies (SIGKILL) whenever it
# starts retargeting the chosen input, by wrapping ``pipeline.retargeting.retarget_sides`` and
# ``retarget_many`` (what the retargeting stage calls for bimanual / other robots) on import.
_DYING_RETARGETERS = """
import importlib.abc, importlib.util, os, signal, sys


class _Wrap(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "pipeline.retargeting":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            retarget_sides, retarget_many = module.retarget_sides, module.retarget_many

            def die_on(tracks):
                name = os.path.basename(tracks.source["path"])
                if sys.argv[0].endswith("default_worker.py") and name == os.environ["TEST_DIE"]:
                    os.kill(os.getpid(), signal.SIGKILL)

            def dying(tracks, *args, **kwargs):
                die_on(tracks)
                return retarget_sides(tracks, *args, **kwargs)

            def dying_many(items, *args, **kwargs):
                for tracks, _ in items:
                    die_on(tracks)
                return retarget_many(items, *args, **kwargs)

            module.retarget_sides, module.retarget_many = dying, dying_many

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Wrap())
"""


def test_a_retargeting_worker_that_dies_is_retried_then_reported(
    shared_data: Path, tmp_path: Path
) -> None:
    """The input a retargeting actor dies on every time is an error record of the retarget
    stage after ``--max-retries``; the inputs queued on the same actor are not charged."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name in (STOVE, KETTLE, CUPS, "videos/armwrestling_lowres.mp4"):
        shutil.copy(shared_data / name, folder / Path(name).name)
    out = tmp_path / "dataset"
    done = _batch_with_dying_workers(_DYING_RETARGETERS, folder, out, TEST_DIE=Path(KETTLE).name)
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-3000:]  # partial
    report = json.loads(out.with_name("dataset.report.json").read_text())
    written = sorted(Path(w["input"]).name for w in report["written"])
    assert written == sorted(Path(n).name for n in (STOVE, CUPS, "armwrestling_lowres.mp4"))
    assert len(report["errors"]) == 1, report["errors"]
    error = report["errors"][0]
    assert Path(error["input"]).name == Path(KETTLE).name
    assert error["stage"] == "retarget" and error["robot"] == "panda"
    assert "worker process died on this input 2 times" in error["error"]


def test_interrupted_batch_keeps_what_it_wrote_and_says_so(
    shared_data: Path, tmp_path: Path
) -> None:
    """Ctrl-C (SIGINT to the job's process group) stops the job at once: exit 130, a report
    with status ``interrupted`` listing exactly what the dataset holds, and a message."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name in (STOVE, KETTLE, CUPS):
        shutil.copy(shared_data / name, folder / Path(name).name)
    out = tmp_path / "dataset"
    report_file = out.with_name("dataset.report.json")
    command = _batch_command(folder, out, "--workers", "1")
    # A child may inherit SIGINT ignored (as under a non-interactive shell): handle it as a
    # terminal's Python would.
    command[2] = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    command[2] += "from pipeline.cli import main; main()"
    job = subprocess.Popen(
        command,
        env=os.environ | {"HAND2ROBOT_CACHE": str(tmp_path / "cache")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and job.poll() is None:
            if report_file.is_file() and json.loads(report_file.read_text())["written"]:
                break
            time.sleep(0.2)
        assert job.poll() is None, "the job finished before it could be interrupted"
        os.killpg(job.pid, signal.SIGINT)
        stdout, stderr = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 130, stdout[-3000:] + stderr[-3000:]
    assert "run the same command again to resume" in " ".join(stdout.split())
    # One line says it, nothing else: no traceback, teardown report, native or raylet line.
    assert stdout.strip().count("\n") == 0, stdout[-3000:] + stderr[-3000:]
    for noise in ("Traceback", "Exception ignored", "terminate called", "(raylet)", "KeyboardInt"):
        assert noise not in stderr, stderr[-3000:]
    report = json.loads(report_file.read_text())
    assert report["status"] == "interrupted" and report["interrupted"] is True
    listed = sorted(Path(w["input"]).name for w in report["written"])
    assert 1 <= len(listed) < 3
    assert sorted(Path(r["source"]["path"]).name for r in provenance(out)["inputs"]) == listed
    describe_dataset(out)  # whole
    assert not list(tmp_path.glob(".dataset.hand2robot-batch*"))  # temporary files removed


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        """No request log on the test's stderr."""


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-transfer (the download size limit does) is no error."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture()
def http_server(shared_data: Path) -> Iterator[str]:
    """The shared media over HTTP on 127.0.0.1."""
    handler = functools.partial(_QuietHandler, directory=str(shared_data))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_input_is_downloaded_once_and_recorded(
    http_server: str, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    import retarget

    monkeypatch.setenv("HAND2ROBOT_CACHE", str(tmp_path / "cache"))
    url = f"{http_server}/{STOVE}"
    root = tmp_path / "dataset"
    convert(url, retarget.load_robot("panda"), root, extract=ExtractConfig(num_hands=1))
    record = provenance(root)["inputs"][0]
    assert record["source"]["url"] == url
    digest = hashlib.sha256((shared_data / STOVE).read_bytes()).hexdigest()
    assert record["source"]["sha256"] == digest
    downloads = list((tmp_path / "cache/downloads").iterdir())
    assert (
        len(downloads) == 1 and downloads[0].stat().st_size == (shared_data / STOVE).stat().st_size
    )
    assert fetch(url, tmp_path / "cache") == downloads[0]  # cached: no second download

    with pytest.raises(InputMediaError, match="HTTP 404"):
        fetch(f"{http_server}/videos/missing.mp4", tmp_path / "cache")
    with pytest.raises(InputMediaError, match="over the download limit of 1000 bytes"):
        fetch(f"{http_server}/{KETTLE}", tmp_path / "cache", DownloadConfig(max_bytes=1000))
    assert len(list((tmp_path / "cache/downloads").iterdir())) == 1  # nothing half-written
    with pytest.raises(InputMediaError, match="download failed"):
        fetch("http://127.0.0.1:9/clip.mp4", tmp_path / "cache", DownloadConfig(timeout_s=2))


def test_batch_joins_a_running_multi_node_cluster(shared_data: Path, tmp_path: Path) -> None:
    """``--address`` joins a running Ray cluster instead of starting an embedded Ray: a head and
    a second node as separate processes (Ray's own ``ray.cluster_utils.Cluster``, what ``ray
    start --head`` plus ``ray start --address`` give), and the driver in another process."""
    from ray.cluster_utils import Cluster

    folder = tmp_path / "inputs"
    folder.mkdir()
    for name in (STOVE, KETTLE):
        shutil.copy(shared_data / name, folder / Path(name).name)
    out = tmp_path / "dataset"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        node_ids = {node.node_id for node in cluster.list_all_nodes()}
        address = cluster.address
        done = subprocess.run(
            _batch_command(folder, out, "--address", address, "--workers", "2"),
            env=os.environ | {"HAND2ROBOT_CACHE": str(tmp_path / "cache")},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        cluster.shutdown()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.with_name("dataset.report.json").read_text())
    assert report["ray"] == {"mode": "cluster", "address": address, "nodes": 2, "cpus": 3}
    assert len(node_ids) == 2 and {w["node"] for w in report["written"]} <= node_ids
    summary = describe_dataset(out)
    assert summary["total_episodes"] == 2 and summary["total_frames"] == 60 + 287


def test_web_page_url_goes_through_yt_dlp(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page URL (HTML with a <video>, as video sites serve) is fetched by the yt-dlp extra:
    the video behind it is extracted and recorded with the page's URL; without yt-dlp the
    error says which extra to install."""
    import hashlib

    import retarget

    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(shared_data / STOVE, site / "clip.mp4")
    (site / "watch.html").write_text(
        "<!DOCTYPE html><html><head><title>Stirring a pot</title></head><body>"
        '<video controls><source src="clip.mp4" type="video/mp4"></video></body></html>\n'
    )
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = _QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/watch.html"
    monkeypatch.setenv("HAND2ROBOT_CACHE", str(tmp_path / "cache"))
    try:
        with monkeypatch.context() as without:
            without.setitem(sys.modules, "yt_dlp", None)  # import yt_dlp -> ImportError
            with pytest.raises(InputMediaError, match=r'pip install "hand2robot\[yt\]"'):
                fetch(url, tmp_path / "cache")
        root = tmp_path / "dataset"
        convert(url, retarget.load_robot("panda"), root, extract=ExtractConfig(num_hands=1))
    finally:
        server.shutdown()
    record = provenance(root)["inputs"][0]
    assert record["source"]["url"] == url
    digest = hashlib.sha256((shared_data / STOVE).read_bytes()).hexdigest()
    assert record["source"]["sha256"] == digest  # the very video behind the page
    assert describe_dataset(root)["total_frames"] == 60


def test_the_batch_layout_is_predictable_when_robots_are_added_later(tmp_path: Path) -> None:
    from pipeline.batch import dataset_roots

    out = tmp_path / "all"
    assert dataset_roots(out, ("panda",)) == {"panda": out}  # one robot: --out itself
    two = dataset_roots(out, ("panda", "so101"))
    assert two == {"panda": out / "panda", "so101": out / "so101"}
    (out / "panda/meta").mkdir(parents=True)
    (out / "panda/meta/hand2robot.json").write_text("{}")
    # A folder of per-robot datasets: one robot added later goes beside the others.
    assert dataset_roots(out, ("so101",)) == {"so101": out / "so101"}
    # One robot's dataset cannot also be the parent of several.
    single = tmp_path / "pour"
    (single / "meta").mkdir(parents=True)
    (single / "meta/hand2robot.json").write_text("{}")
    assert dataset_roots(single, ("panda",)) == {"panda": single}
    with pytest.raises(BatchError, match="is the dataset of one robot"):
        dataset_roots(single, ("panda", "so101"))


def test_an_out_that_cannot_take_the_job_is_refused_before_any_work(
    shared_data: Path, tmp_path: Path
) -> None:
    import retarget
    from pipeline.dataset import DatasetConfig
    from pipeline.exceptions import DatasetError
    from tests.conftest import SAMPLE_TRACKS

    clip = shared_data / STOVE
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("not a dataset")
    began = time.perf_counter()
    with pytest.raises(DatasetError, match="non-empty folder without meta/info.json"):
        run_batch([clip], notes, BatchConfig(robots=("panda",)))
    pour = tmp_path / "pour"
    convert(SAMPLE_TRACKS, retarget.load_robot("panda"), pour, dataset=DatasetConfig(video=None))
    with pytest.raises(BatchError, match="holds a dataset of 'panda', not 'so101'"):
        run_batch([clip], pour, BatchConfig(robots=("so101",)))
    assert time.perf_counter() - began < 30  # no Ray, no extraction
    assert not (tmp_path / "pour.report.json").exists()


def test_the_stored_size_follows_most_inputs_not_the_first(
    shared_data: Path, tmp_path: Path
) -> None:
    import av
    import numpy as np

    from pipeline.batch.sources import first_stored_size

    portrait = tmp_path / "portrait.mp4"
    with av.open(str(shared_data / STOVE)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][:10]
    with av.open(str(portrait), "w") as output:
        stream = output.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 288, 384, "yuv420p"
        for rgb in frames:
            turned = np.ascontiguousarray(np.rot90(rgb, -1))
            output.mux(stream.encode(av.VideoFrame.from_ndarray(turned, "rgb24")))
        output.mux(stream.encode())
    landscape = [str(shared_data / KETTLE), str(shared_data / STOVE)]
    # A portrait clip listed first no longer makes every landscape clip a letterboxed one.
    assert first_stored_size([str(portrait), *landscape], None) == (1280, 720)
    assert first_stored_size([str(portrait)], None) == (288, 384)
    assert first_stored_size([str(portrait), str(portrait), *landscape], None) == (1280, 720)
    assert first_stored_size([str(portrait)] * 3 + landscape, None) == (288, 384)
