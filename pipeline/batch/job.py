"""The batch job itself: plan (resume), run the Ray Data stages, commit each result, report."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.batch.cluster import init_ray, quiet_ray_data_console
from pipeline.batch.config import (
    BatchConfig,
    BatchError,
    BatchReport,
    ErrorRecord,
    SkippedRecord,
    WrittenRecord,
)
from pipeline.batch.sources import dataset_roots, expand_inputs, first_stored_size
from pipeline.batch.stages import Attempts, Extracted, ExtractStage, RetargetStage, describe
from pipeline.dataset import WriteReport, append_episodes, held_inputs, stored_video_size
from pipeline.dataset.rates import at_rate, dataset_rate
from pipeline.dataset.reader import read_existing, stored_robot
from pipeline.encoding import EpisodeVideo, refit_video
from pipeline.inputs import depth_sidecar, input_key
from pipeline.model import ensure_model
from pipeline.retargeted import RetargetedHand
from retarget import BimanualRobot, Robot, load_any_robot

ALREADY_THERE = "already in the dataset"


@dataclass
class _Job:
    """A running job: where each robot's dataset is, what they hold, what was done."""

    config: BatchConfig
    roots: dict[str, Path]
    robots: dict[str, Robot | BimanualRobot]
    done: dict[str, set[tuple[str, str]]]
    """Per robot: (tracks key, requested hand) of every input its dataset holds."""
    report: BatchReport
    temp_dir: Path

    def holds(self, robot: str, key: str) -> bool:
        """Whether ``robot``'s dataset holds the input of hand-track key ``key``.

        Never with ``DatasetConfig.allow_duplicate``: then every input is appended again.
        """
        if self.config.dataset.allow_duplicate:
            return False
        return (key, self.config.side) in self.done[robot]


def run_batch(
    specs: Sequence[str | Path],
    out: str | Path,
    config: BatchConfig | None = None,
    *,
    report_path: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    status: Callable[[str, int | None], None] | None = None,
) -> BatchReport:
    """Run the chain on many inputs with Ray Data; append every result to its robot's dataset.

    Args:
        specs: Files, folders, globs, ``.txt`` lists, URLs (see :func:`expand_inputs`).
        out: Dataset folder (one robot) or parent of one folder per robot.
        config: Robots, workers, cluster and per-input settings.
        report_path: Run report (JSON); default ``<out>.report.json`` beside ``out``.
        progress: Called with (inputs finished, inputs to run, last input) as results arrive.
        status: Called with what the job is doing, and the inputs to run once known, at each
            step before the first result (inputs found, already there, starting Ray).

    Returns:
        The run report (also written to ``report_path``).

    Raises:
        BatchError: No inputs, or Ray cannot start or join the cluster.
    """
    config = config or BatchConfig()
    start = time.perf_counter()
    out = Path(out)
    report_file = Path(report_path) if report_path else out.with_name(out.name + ".report.json")
    say = status or (lambda text, total: None)
    job = _open_job(expand_inputs(specs), out, config)
    config = job.config  # with the dataset rate chosen
    rate = f", {config.dataset.fps} fps" if config.dataset.fps else ""
    count = len(job.report.inputs)
    say(f"{count} input{'s' * (count != 1)}{rate}; checking what the datasets hold", None)
    todo = _to_run(job)
    scratch = _scratch_folder()
    try:
        if todo:
            held = len(job.report.inputs) - len(todo)
            address = config.address or os.environ.get("RAY_ADDRESS")
            where = f"joining Ray at {address}" if address else "starting an embedded Ray"
            say(f"{len(todo)} to run ({held} already there); {where}", len(todo))
            job.report.ray = init_ray(config)
            say(f"Ray up ({job.report.ray.get('cpus', '?'):g} CPUs); extracting", len(todo))
            scratch.mkdir()
            finished = 0
            for item, row in _results(todo, _frame_size(job, todo), config, scratch):
                _commit_row(job, item, row)
                finished += 1
                if progress is not None:
                    progress(finished, len(todo), item)
                _write_report(job.report, report_file, start)
    except KeyboardInterrupt:
        job.report.interrupted = True  # every append is atomic: what is listed is whole
        _write_report(job.report, report_file, start, final=True)
        raise
    finally:
        shutil.rmtree(job.temp_dir, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    _write_report(job.report, report_file, start, final=True)
    return job.report


def _scratch_folder() -> Path:
    """Where the extraction actors keep their temporary files: removed with the job.

    Named after this process, so that the next job removes what a job that was killed (no
    cleanup ran) left. On a cluster, the other nodes keep an empty folder of this name.
    """
    base = Path(tempfile.gettempdir())
    for stale in base.glob("hand2robot-batch-*-*"):
        pid = stale.name.split("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return base / f"hand2robot-batch-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _open_job(inputs: list[str], out: Path, config: BatchConfig) -> _Job:
    """The job's datasets, robots and temporary folder (beside ``out``)."""
    roots = dataset_roots(out, config.robots)
    for name, root in roots.items():  # what can be refused before any work is, now
        read_existing(root)  # not a dataset hand2robot wrote: refused with the reason
        held = stored_robot(root)
        if held is not None and held != name:
            raise BatchError(
                f"{root} holds a dataset of {held!r}, not {name!r}: give another --out, or "
                f"--robot {held}"
            )
    # One rate for every dataset of the job, chosen now: --fps, the datasets', else the slowest
    # input's; every input is extracted at it (pipeline.dataset.rates).
    fps = dataset_rate(config.dataset.fps, roots.values(), inputs, config.extract)
    config = dataclasses.replace(
        config,
        extract=at_rate(config.extract, fps),
        dataset=dataclasses.replace(config.dataset, fps=fps),
    )
    temp_dir = out.parent / f".{out.name}.hand2robot-batch"
    temp_dir.mkdir(parents=True, exist_ok=True)
    return _Job(
        config,
        roots,
        {name: load_any_robot(name) for name in config.robots},
        {robot: held_inputs(root) for robot, root in roots.items()},
        BatchReport(inputs=inputs),
        temp_dir,
    )


def _to_run(job: _Job) -> list[str]:
    """Resume: the inputs left once local inputs that every robot's dataset holds are out."""
    model_sha256 = ensure_model(job.config.model).sha256
    todo = []
    for item in job.report.inputs:
        config = job.config
        depth = depth_sidecar(item) if config.depth_sidecars else None
        key = (
            None
            if item.endswith(".parquet")
            else input_key(
                item, config.extract, model_sha256, depth, config.depth_scale, config.camera_motion
            )
        )
        if key is not None and all(job.holds(robot, key) for robot in job.roots):
            job.report.skipped.extend(SkippedRecord(item, r, ALREADY_THERE) for r in job.roots)
        else:
            todo.append(item)
    return todo


def _frame_size(job: _Job, todo: list[str]) -> tuple[int, int] | None:
    """The stored video size: an existing dataset's, else the first input's (new datasets)."""
    camera = job.config.dataset.camera
    size = next((s for s in (stored_video_size(r, camera) for r in job.roots.values()) if s), None)
    if size is None and job.config.dataset.video is not None:
        size = first_stored_size(todo, job.config.dataset.video.max_size)
    return size


def _results(
    todo: list[str], frame_size: tuple[int, int] | None, config: BatchConfig, scratch: Path
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(input, row) for each input as the Ray Data stages finish it, in any order."""
    import ray
    import ray.data

    quiet_ray_data_console()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = False
    # Ray Data restarts a dead actor and runs its task again (max_restarts=-1,
    # max_task_retries=-1 for actor pools); Attempts bounds how often.
    attempts = ray.remote(num_cpus=0)(Attempts).remote()
    # One block per input, so that the extraction actors share the inputs evenly; one input at
    # a time per actor, so that no input waits behind a long one while another actor is free.
    # (Attempts count the starts that never finished, so an input queued behind one that kills
    # its worker is not charged; see the retargeting pool.)
    dataset = ray.data.from_items(
        [{"input": item} for item in todo], override_num_blocks=len(todo)
    ).map_batches(
        ExtractStage,
        fn_constructor_args=(config, frame_size, attempts, str(scratch), _node()),
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(
            size=min(config.workers, len(todo)), max_tasks_in_flight_per_actor=1
        ),
        num_cpus=1,
    )
    # Retargeting: one actor to start with, more while inputs queue for it. Ray Data adds an
    # actor when the pool's tasks in flight reach 1.75 per actor, so each actor takes a second
    # input while it works on one (that input has not started, so a crash of the actor charges
    # it no attempt). The inputs of one call share the optimiser; after a crash they are run
    # one at a time (RetargetStage).
    dataset = dataset.map_batches(
        RetargetStage,
        fn_constructor_args=(config, attempts),
        batch_size=config.retarget_batch,
        compute=ray.data.ActorPoolStrategy(
            min_size=1,
            max_size=max(1, min(config.max_retarget_actors, len(todo))),
            max_tasks_in_flight_per_actor=2,
        ),
        num_cpus=0.5,
    )
    for row in dataset.iter_rows():
        yield str(row["input"]), row


def _node() -> str:
    """The Ray node this process runs on."""
    import ray

    return str(ray.get_runtime_context().get_node_id())


def _commit_row(job: _Job, item: str, row: dict[str, Any]) -> None:
    """Append one input's results to every robot's dataset (the driver's commit)."""
    report = job.report
    if row["error"]:
        report.errors.append(ErrorRecord(item, None, "extract", row["error"]))
        return
    extracted: Extracted = pickle.loads(row["payload"])
    video = _video_here(extracted, job.temp_dir)
    try:
        key = str(extracted.tracks.key)
        for name, result in extracted.retargeted.items():
            if isinstance(result, str):
                report.errors.append(ErrorRecord(item, name, "retarget", result))
            elif job.holds(name, key):
                report.skipped.append(SkippedRecord(item, name, ALREADY_THERE))
            else:
                video = _commit_robot(job, item, name, extracted, result, video)
    finally:
        if video is not None:
            video.path.unlink(missing_ok=True)


def _video_here(extracted: Extracted, temp_dir: Path) -> EpisodeVideo | None:
    """The stored video written to a file of the driver (the actor's may be on another node)."""
    if extracted.video is None:
        return None
    handle, name = tempfile.mkstemp(prefix=".hand2robot-", suffix=".mp4", dir=temp_dir)
    with os.fdopen(handle, "wb") as file:
        file.write(extracted.video_bytes)
    return replace(extracted.video, path=Path(name))


def _commit_robot(
    job: _Job,
    item: str,
    name: str,
    extracted: Extracted,
    hands: list[RetargetedHand],
    video: EpisodeVideo | None,
) -> EpisodeVideo | None:
    """Append one input to one robot's dataset and record it; returns the video still held.

    The video is refitted first when this dataset stores another size (that of another
    robot's existing dataset, say); the refitted one is what the next robot gets.
    """
    config = job.config
    began = time.perf_counter()
    try:
        video = _fitted(video, job.roots[name], config)
        written = [
            append_episodes(
                job.roots[name],
                extracted.tracks,
                hand,
                job.robots[name],
                video=video,
                fps=extracted.fps,
                config=config.dataset,
                retarget_config=config.retarget,
                source_url=extracted.url,
                hand_requested=config.side.value,
            )
            for hand in hands
        ]
    except Exception as err:  # noqa: BLE001 - a report record, the job goes on
        job.report.errors.append(ErrorRecord(item, name, "write", describe(err)))
        return video
    job.done[name].add((str(extracted.tracks.key), config.side))
    job.report.written.append(
        _written(item, name, job.roots[name], extracted, written, time.perf_counter() - began)
    )
    return video


def _fitted(video: EpisodeVideo | None, root: Path, config: BatchConfig) -> EpisodeVideo | None:
    """``video``, re-encoded to the size ``root`` already stores where that differs."""
    size = stored_video_size(root, config.dataset.camera)
    if video is None or size is None:
        return video
    if size == (video.info["video.width"], video.info["video.height"]):
        return video
    assert config.dataset.video is not None  # a video exactly when the config stores one
    refitted = refit_video(video, size, config.dataset.video)
    video.path.unlink(missing_ok=True)
    return refitted


def _written(
    item: str,
    name: str,
    root: Path,
    extracted: Extracted,
    written: list[WriteReport],
    seconds: float,
) -> WrittenRecord:
    return WrittenRecord(
        input=item,
        robot=name,
        dataset=str(root),
        episodes=[e for w in written for e in w.episodes],
        frames=[f for w in written for f in w.frames],
        feasible_fraction=[f for w in written for f in w.feasible_fraction],
        input_frames=extracted.frames,
        extract_s=extracted.extract_s,
        node=extracted.node,
        retarget_s=extracted.retarget_s[name],
        retarget_actor=extracted.retarget_actor,
        write_s=round(seconds, 3),
        letterboxed=_letterboxed(extracted, root),
    )


def _letterboxed(extracted: Extracted, root: Path) -> bool:
    """Whether the input's frames took black bars to fit the dataset's stored video."""
    info = extracted.video.info if extracted.video is not None else None
    if info is None:
        return False
    frame = extracted.tracks.intrinsics
    stored = info["video.width"] / info["video.height"]
    return abs(frame.width / frame.height / stored - 1.0) > 0.02


def history_path(report_file: Path) -> Path:
    """Where every finished run's report is kept, one JSON line each, oldest first."""
    return report_file.with_name(report_file.name.removesuffix(".json") + ".history.jsonl")


def _write_report(report: BatchReport, path: Path, start: float, final: bool = False) -> None:
    """The report as it stands (replaced whole); a finished run's also goes into the history.

    The history keeps every run, so a later failed run never erases an earlier success.
    """
    report.seconds = round(time.perf_counter() - start, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".part")
    record = report.to_json()
    temp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temp, path)
    if final:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with open(history_path(path), "a") as history:
            history.write(json.dumps({"finished": stamp} | record) + "\n")
            history.flush()
            os.fsync(history.fileno())
