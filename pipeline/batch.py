"""Many inputs, one or more robots, as a Ray Data job: the same steps as ``hand2robot retarget``.

Stages (Ray Data operators), each calling the functions the CLI calls:

1. the driver lists the inputs (:func:`expand_inputs`) and leaves out those every robot's
   dataset already holds (resume);
2. :class:`ExtractStage`, an actor pool (the model resolved once per actor):
   :func:`pipeline.run.extract_input` (URL download, extraction through the hand-track cache,
   stored video encoded in the same decoding pass);
3. :class:`RetargetStage`, an actor pool (robots loaded once per actor):
   :func:`pipeline.run.retarget_tracks` for every robot;
4. the driver appends each result to its robot's dataset with
   :func:`pipeline.dataset.append_episodes` (atomic per input, so an interrupted job leaves only
   whole inputs behind, and running it again resumes).

A bad input becomes an error record (input, robot, stage, error) in the run report and the job
goes on. A worker process that dies on an input (a crash in native code, killed for memory, a
lost node) is restarted by Ray and the input run again, up to :attr:`BatchConfig.max_retries`
times (:class:`Attempts` counts them across restarts); after that the input is an error record.
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import pickle
import shutil
import tempfile
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.dataset import DatasetConfig, append_episodes, stored_video_size
from pipeline.download import DownloadConfig, is_url
from pipeline.exceptions import InputMediaError, PipelineError
from pipeline.extract import ExtractConfig, cache_key
from pipeline.media import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    content_sha256,
    iter_frames,
    open_media,
)
from pipeline.video import refit_video, stored_size
from retarget import RetargetConfig

REPORT_FORMAT = 1


class BatchError(PipelineError):
    """A batch job cannot start (no inputs, bad robot list, unreachable cluster)."""


@dataclass(frozen=True)
class BatchConfig:
    """How a batch job runs; the per-input settings are those of ``hand2robot retarget``."""

    robots: tuple[str, ...] = ("panda",)
    """Robots to retarget onto; with more than one, each gets ``<out>/<robot>/``."""
    workers: int = 2
    """Extraction actors (one CPU each)."""
    retarget_workers: int | None = None
    """Most retargeting actors (half a CPU each); None: as many as ``workers``. The pool starts
    with one and grows while inputs wait for it (retargeting a dexterous hand or a 5-DoF arm
    can take as long as extracting)."""
    max_retries: int = 2
    """Times an input is run again after its worker process died on it (a crash in native
    code, killed for memory, a lost node); then it is an error record."""
    address: str | None = None
    """Ray cluster to join (``ray://...`` or ``host:port``); None reads ``RAY_ADDRESS``, else
    starts an embedded local Ray."""
    side: str = "auto"
    """Hand to retarget: ``auto``, ``left``, ``right``, or ``both`` (one episode per hand)."""
    egocentric: bool = False
    """Default placement for head cameras."""
    camera_pose: tuple[float, ...] | None = None
    """Camera pose in the robot base frame (x, y, z [m], roll, pitch, yaw [rad]) for every
    input; None uses the default placement."""
    workspace_scale: float = 1.0
    """Scale of the wrist motion about its median."""
    fit_yaw: bool = False
    """Turn each input's default placement to where the arm reaches most (single-arm robots;
    see ``pipeline.retarget_tracks``)."""
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    """Extraction settings."""
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    """Episode and video settings."""
    retarget: RetargetConfig = field(default_factory=RetargetConfig)
    """Retargeting settings."""
    download: DownloadConfig = field(default_factory=DownloadConfig)
    """URL download limits."""
    model: str | None = None
    """An official ``hand_landmarker.task``; default the cached one."""
    cache: str | None = None
    """Hand-track cache folder; default ``<cache dir>/tracks``."""

    @property
    def max_retarget_actors(self) -> int:
        """``retarget_workers``, else ``workers``."""
        return self.retarget_workers or self.workers

    def __post_init__(self) -> None:
        if not self.robots:
            raise BatchError("give at least one robot")
        if len(set(self.robots)) != len(self.robots):
            raise BatchError(f"robots repeat: {', '.join(self.robots)}")
        if self.workers < 1:
            raise BatchError(f"workers must be >= 1, got {self.workers}")
        if self.retarget_workers is not None and self.retarget_workers < 1:
            raise BatchError(f"retarget_workers must be >= 1, got {self.retarget_workers}")
        if self.max_retries < 0:
            raise BatchError(f"max_retries must be >= 0, got {self.max_retries}")


@dataclass
class BatchReport:
    """What a batch job did; written as JSON beside the output.

    Attributes:
        inputs: Every input, as listed.
        written: One record per (input, robot) appended: episodes, frames, feasible fraction.
        skipped: (input, robot) already in the dataset (resume).
        errors: One record per failure: input, robot (None for extraction), stage, error.
        seconds: Wall time of the job [s].
        ray: Where it ran: ``mode`` (``embedded`` or ``cluster``), ``address`` (None when
            embedded), alive ``nodes`` and their ``cpus``; empty when nothing needed Ray.
        interrupted: The job was stopped (Ctrl-C) before every input was run; what it lists
            is in the datasets, and the same command again resumes.
    """

    inputs: list[str]
    written: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    ray: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def status(self) -> str:
        """``ok``, ``partial`` (some failed), ``failed`` (all failed) or ``interrupted``."""
        if self.interrupted:
            return "interrupted"
        if not self.errors:
            return "ok"
        return "partial" if (self.written or self.skipped) else "failed"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {"report_format": REPORT_FORMAT, "status": self.status} | asdict(self)


def dataset_roots(out: str | Path, robots: Sequence[str]) -> dict[str, Path]:
    """Dataset folder per robot: ``out`` itself for one robot, ``out/<robot>`` for several."""
    out = Path(out)
    if len(robots) == 1:
        return {robots[0]: out}
    return {robot: out / robot for robot in robots}


def _is_media_folder(folder: Path) -> bool:
    """An image sequence: images (and sidecar files such as calibration.json), no videos."""
    suffixes = [p.suffix.lower() for p in folder.iterdir() if p.is_file()]
    has_images = any(suffix in IMAGE_SUFFIXES for suffix in suffixes)
    return has_images and not any(suffix in VIDEO_SUFFIXES for suffix in suffixes)


def expand_inputs(specs: Sequence[str | Path]) -> list[str]:
    """The inputs named by files, folders, globs, text files of paths/URLs, and URLs.

    - a URL is one input;
    - a ``.txt`` file lists inputs, one per line (``#`` comments and blank lines skipped; paths
      relative to the file);
    - a folder that holds images and no videos is one image-sequence input (sidecars such as
      ``calibration.json`` may sit beside them); any other folder gives each visible file and
      image-sequence subfolder inside as an input (so a corrupt or non-video file becomes an
      error record, not a silent skip);
    - a glob gives every match.

    Order is kept; repeats are dropped.

    Raises:
        BatchError: A name that matches nothing.
    """
    found: list[str] = []
    for spec in specs:
        text = str(spec)
        if is_url(text):
            found.append(text)
            continue
        path = Path(text)
        if path.suffix == ".txt" and path.is_file():
            lines = [line.strip() for line in path.read_text().splitlines()]
            listed = [line for line in lines if line and not line.startswith("#")]
            found.extend(
                entry if is_url(entry) else str((path.parent / entry).resolve()) for entry in listed
            )
        elif path.is_dir():
            if _is_media_folder(path):
                found.append(str(path))
            else:
                for child in sorted(path.iterdir()):
                    if child.name.startswith("."):
                        continue
                    if child.is_file() or (child.is_dir() and _is_media_folder(child)):
                        found.append(str(child))
        elif path.exists():
            found.append(str(path))
        else:
            matches = sorted(glob.glob(text))
            if not matches:
                raise BatchError(f"{text}: no such file, folder, list or URL, and no glob match")
            found.extend(matches)
    unique = list(dict.fromkeys(found))
    if not unique:
        raise BatchError("no inputs found in " + ", ".join(map(str, specs)))
    return unique


def _done_keys(root: Path) -> set[tuple[str, str]]:
    """(tracks key, requested hand) of every input a dataset already holds."""
    path = root / "meta" / "hand2robot.json"
    if not path.is_file():
        return set()
    provenance = json.loads(path.read_text())
    return {
        (str(record.get("tracks_key")), str(record.get("hand_requested", record.get("hand"))))
        for record in provenance.get("inputs", [])
    }


def _local_key(item: str, config: BatchConfig, model_sha256: str) -> str | None:
    """The hand-track key of a local media input (None for URLs, track files, bad inputs)."""
    if is_url(item) or item.endswith(".parquet"):
        return None
    try:
        media = open_media(item)
        return cache_key(media, None, config.extract, model_sha256, content_sha256(media))
    except (InputMediaError, OSError):
        return None


class Attempts:
    """Ray actor: how often each (stage, input) has started, across restarts of its workers.

    Ray Data restarts a dead actor and runs its task again without end; the stages ask here
    first, and answer an error instead of running an input whose workers already died on it
    ``max_retries + 1`` times.
    """

    def __init__(self) -> None:
        self.started: dict[tuple[str, str], int] = {}

    def begin(self, stage: str, item: str) -> int:
        """Count one more start of ``item`` in ``stage``; returns the count, 1 the first time."""
        key = (stage, item)
        self.started[key] = self.started.get(key, 0) + 1
        return self.started[key]


def _died_on(attempts: Any, stage: str, item: str, max_retries: int) -> str:
    """The error for ``item`` if its workers in ``stage`` died on it too often, else ``""``."""
    import ray

    started = ray.get(attempts.begin.remote(stage, item))
    if started <= max_retries + 1:
        return ""
    return (
        f"WorkerDied: the {stage} worker process died on this input {started - 1} times (a "
        "crash in native code, killed for memory, or a lost node); Ray's worker logs "
        "(/tmp/ray/session_latest/logs on the node) say more"
    )


class ExtractStage:
    """Ray actor: input path/URL -> hand tracks and the stored video's bytes.

    Everything the driver needs travels in the returned payload (the encoded video as bytes,
    not as a path), so an actor on another node of a cluster needs no filesystem shared with the
    driver; only local input paths must be readable where the actor runs.
    """

    def __init__(self, config: BatchConfig, frame_size: tuple[int, int] | None, attempts: Any):
        import ray

        from pipeline.model import ensure_model

        self.config = config
        self.attempts = attempts
        self.temp_dir = Path(tempfile.mkdtemp(prefix="hand2robot-extract-"))  # node-local
        weakref.finalize(self, shutil.rmtree, self.temp_dir, ignore_errors=True)
        self.node = ray.get_runtime_context().get_node_id()
        self.frame_size = frame_size
        self.model = ensure_model(config.model)  # fetched and verified once per actor
        if config.cache is not None:
            Path(config.cache).mkdir(parents=True, exist_ok=True)  # a folder, not a file name

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Extract each input of the batch; a failure is an ``error`` string, not a raise."""
        from pipeline.run import extract_input

        out: dict[str, list[Any]] = {"input": [], "payload": [], "error": []}
        for item in batch["input"]:
            item = str(item)
            began = time.perf_counter()
            died = _died_on(self.attempts, "extract", item, self.config.max_retries)
            if died:
                out["input"].append(item)
                out["payload"].append(b"")
                out["error"].append(died)
                continue
            try:
                done = extract_input(
                    item,
                    extract=self.config.extract,
                    video=self.config.dataset.video,
                    temp_dir=self.temp_dir,
                    frame_size=self.frame_size,
                    model=self.model.path,
                    cache=self.config.cache,
                    download=self.config.download,
                )
                video_bytes = b""
                if done.video is not None:
                    video_bytes = done.video.path.read_bytes()  # about 0.1 MB per second
                    done.video.path.unlink()
                payload = pickle.dumps(
                    {
                        "tracks": done.tracks,  # arrays, about 1 KB per frame and hand
                        "video": done.video,
                        "video_bytes": video_bytes,
                        "node": self.node,
                        "fps": done.fps,
                        "url": done.source_url,
                        "extract_s": round(time.perf_counter() - began, 3),
                        "frames": done.tracks.num_frames,
                    }
                )
                out["payload"].append(payload)
                out["error"].append("")
            except Exception as err:  # noqa: BLE001 - every failure becomes a report record
                out["payload"].append(b"")
                out["error"].append(_describe(err))
            out["input"].append(item)
        return {key: np.asarray(value, dtype=object) for key, value in out.items()}


class RetargetStage:
    """Ray actor: hand tracks -> one retargeted trajectory per robot."""

    def __init__(self, config: BatchConfig, attempts: Any) -> None:
        import ray

        from pipeline.run import load_any_robot

        self.config = config
        self.attempts = attempts
        self.robots = {name: load_any_robot(name) for name in config.robots}
        self.actor = ray.get_runtime_context().get_actor_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Retarget each extracted input onto every robot (a failure becomes a string)."""
        from pipeline.run import retarget_sides

        out: dict[str, list[Any]] = {"input": [], "payload": [], "error": []}
        for item, payload, error in zip(
            batch["input"], batch["payload"], batch["error"], strict=True
        ):
            results: dict[str, Any] = {}
            retries = self.config.max_retries
            died = "" if error else _died_on(self.attempts, "retarget", str(item), retries)
            if died:
                extracted = pickle.loads(payload)
                extracted["retargeted"] = dict.fromkeys(self.robots, died)
                payload = pickle.dumps(extracted)
            elif not error:
                extracted = pickle.loads(payload)
                tracks = extracted["tracks"]
                seconds = {}
                for name, robot in self.robots.items():
                    began = time.perf_counter()
                    try:
                        results[name] = retarget_sides(
                            tracks,
                            robot,
                            side=self.config.side,
                            config=self.config.retarget,
                            egocentric=self.config.egocentric,
                            camera_pose=self.config.camera_pose,
                            workspace_scale=self.config.workspace_scale,
                            fit_yaw=self.config.fit_yaw,
                        )
                    except Exception as err:  # noqa: BLE001 - a report record per robot
                        results[name] = _describe(err)
                    seconds[name] = round(time.perf_counter() - began, 3)
                extracted["retargeted"] = results
                extracted["retarget_s"] = seconds
                extracted["retarget_actor"] = self.actor
                payload = pickle.dumps(extracted)
            out["input"].append(item)
            out["payload"].append(payload)
            out["error"].append(error)
        return {key: np.asarray(value, dtype=object) for key, value in out.items()}


def _describe(err: BaseException) -> str:
    from robots import Hand2RobotError

    if isinstance(err, Hand2RobotError):
        return f"{type(err).__name__}: {err}"
    # An unexpected error: keep where it happened.
    return f"{type(err).__name__}: {err}\n" + "".join(traceback.format_tb(err.__traceback__))


def _check_reachable(address: str) -> None:
    """Fail fast on a ``host:port`` nobody listens on (Ray itself retries for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if address == "auto" or address.startswith("ray://") or not port.isdigit():
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5.0):
            pass
    except OSError as err:
        raise BatchError(
            f"cannot join the Ray cluster at {address!r}: nothing answers there ({err}); start "
            "one with `ray start --head` (then --address auto), or leave out --address and "
            "RAY_ADDRESS for an embedded local Ray"
        ) from None


def _init_ray(config: BatchConfig) -> dict[str, Any]:
    """Join the cluster named by the config or ``RAY_ADDRESS``, or start an embedded Ray.

    Returns:
        Where the job runs (the report's ``ray`` record).
    """
    import ray

    address = config.address or os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        _start_ray(config, address)
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    return {
        "mode": "cluster" if address else "embedded",
        "address": address or None,
        "nodes": len(nodes),
        "cpus": sum(node.get("Resources", {}).get("CPU", 0.0) for node in nodes),
    }


class _RayConsoleFilter(logging.Filter):
    """Ray Data's console on the driver: warnings and errors only.

    Its note that its own progress bars are off is left out too (``hand2robot batch`` shows
    one of its own). Its log files in the Ray session folder keep everything.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        return not record.getMessage().startswith("Progress bars disabled")


def _quiet_ray_data_console() -> None:
    """Put ``_RayConsoleFilter`` on the console handler of the ``ray.data`` logger (once)."""
    for handler in logging.getLogger("ray.data").handlers:
        if handler.name == "console" and not any(
            isinstance(f, _RayConsoleFilter) for f in handler.filters
        ):
            handler.addFilter(_RayConsoleFilter())


def _start_ray(config: BatchConfig, address: str | None) -> None:
    import ray

    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise BatchError(
                f"cannot join the Ray cluster at {address!r} ({err}); start one with "
                "`ray start --head` (then --address auto), or leave out --address and "
                "RAY_ADDRESS for an embedded local Ray"
            ) from None
    else:
        # Logical CPUs: one per extraction actor, half per retargeting actor.
        ray.init(num_cpus=config.workers + math.ceil(config.max_retarget_actors / 2), **options)


def run_batch(
    specs: Sequence[str | Path],
    out: str | Path,
    config: BatchConfig | None = None,
    *,
    report_path: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> BatchReport:
    """Run the chain on many inputs with Ray Data; append every result to its robot's dataset.

    Args:
        specs: Files, folders, globs, ``.txt`` lists, URLs (see :func:`expand_inputs`).
        out: Dataset folder (one robot) or parent of one folder per robot.
        config: Robots, workers, cluster and per-input settings.
        report_path: Run report (JSON); default ``<out>.report.json`` beside ``out``.
        progress: Called with (inputs finished, inputs to run, last input) as results arrive.

    Returns:
        The run report (also written to ``report_path``).

    Raises:
        BatchError: No inputs, or Ray cannot start or join the cluster.
    """
    import ray.data

    from pipeline.model import ensure_model
    from pipeline.run import load_any_robot

    config = config or BatchConfig()
    start = time.perf_counter()
    inputs = expand_inputs(specs)
    roots = dataset_roots(out, config.robots)
    report = BatchReport(inputs=inputs)
    out = Path(out)
    report_file = Path(report_path) if report_path else out.with_name(out.name + ".report.json")

    # Resume: leave out local inputs that every robot's dataset already holds.
    model_sha256 = ensure_model(config.model).sha256
    done_keys = {robot: _done_keys(root) for robot, root in roots.items()}
    todo = []
    for item in inputs:
        key = _local_key(item, config, model_sha256)
        if key is not None and all((key, config.side) in done_keys[r] for r in roots):
            report.skipped.extend(
                {"input": item, "robot": robot, "reason": "already in the dataset"}
                for robot in roots
            )
        else:
            todo.append(item)

    temp_dir = out.parent / f".{out.name}.hand2robot-batch"
    temp_dir.mkdir(parents=True, exist_ok=True)
    frame_size = next(
        (s for s in (stored_video_size(r, config.dataset.camera) for r in roots.values()) if s),
        None,
    )
    if frame_size is None and config.dataset.video is not None:
        frame_size = _first_stored_size(todo, config.dataset.video.max_size)
    robots = {name: load_any_robot(name) for name in config.robots}
    try:
        if todo:
            report.ray = _init_ray(config)
            _quiet_ray_data_console()
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False
            context.execution_options.preserve_order = False
            # Ray Data restarts a dead actor and runs its task again (max_restarts=-1,
            # max_task_retries=-1 for actor pools); Attempts bounds how often.
            attempts = ray.remote(num_cpus=0)(Attempts).remote()
            # One block per input, so that the extraction actors share the inputs evenly; one
            # input at a time per actor, so that no input waits behind a long one while another
            # actor is free. (Attempts are counted when an input starts, so an input queued
            # behind one that kills its worker is not charged; see the retargeting pool.)
            dataset = ray.data.from_items(
                [{"input": item} for item in todo], override_num_blocks=len(todo)
            ).map_batches(
                ExtractStage,
                fn_constructor_args=(config, frame_size, attempts),
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(
                    size=min(config.workers, len(todo)), max_tasks_in_flight_per_actor=1
                ),
                num_cpus=1,
            )
            # Retargeting: one actor to start with, more while inputs queue for it. Ray Data
            # adds an actor when the pool's tasks in flight reach 1.75 per actor, so each actor
            # takes a second input while it works on one (that input has not started, so a
            # crash of the actor charges it no attempt).
            dataset = dataset.map_batches(
                RetargetStage,
                fn_constructor_args=(config, attempts),
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(
                    min_size=1,
                    max_size=max(1, min(config.max_retarget_actors, len(todo))),
                    max_tasks_in_flight_per_actor=2,
                ),
                num_cpus=0.5,
            )
            finished = 0
            for row in dataset.iter_rows():
                item = str(row["input"])
                _commit_row(item, row, roots, robots, config, report, done_keys, temp_dir)
                finished += 1
                if progress is not None:
                    progress(finished, len(todo), item)
                _write_report(report, report_file, start)
    except KeyboardInterrupt:
        report.interrupted = True  # every append is atomic: what is listed is whole
        _write_report(report, report_file, start)
        raise
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    _write_report(report, report_file, start)
    return report


def _first_stored_size(inputs: Sequence[str], max_size: int | None) -> tuple[int, int] | None:
    """The stored video size a new dataset takes: that of the first local input that decodes.

    Fixed before extraction so that every actor encodes (and letterboxes) at that size at once,
    instead of the driver re-encoding the videos of other sizes one by one at commit; and the
    size does not depend on which input happens to finish first.
    """
    for item in inputs:
        if is_url(item) or item.endswith(".parquet"):
            continue
        try:
            frames = iter_frames(open_media(item), prefetch=0)
            try:
                first = next(frames)
            finally:
                getattr(frames, "close", lambda: None)()  # closes the container now
        except (InputMediaError, OSError, StopIteration):
            continue
        return stored_size(first.width, first.height, max_size)
    return None


def _commit_row(
    item: str,
    row: dict[str, Any],
    roots: dict[str, Path],
    robots: dict[str, Any],
    config: BatchConfig,
    report: BatchReport,
    done_keys: dict[str, set[tuple[str, str]]],
    temp_dir: Path,
) -> None:
    """Append one input's results to every robot's dataset (the driver's commit)."""
    if row["error"]:
        report.errors.append(
            {"input": item, "robot": None, "stage": "extract", "error": row["error"]}
        )
        return
    extracted = pickle.loads(row["payload"])
    video = extracted["video"]
    if video is not None:  # the actor's file, possibly on another node: written here
        handle, name = tempfile.mkstemp(prefix=".hand2robot-", suffix=".mp4", dir=temp_dir)
        with os.fdopen(handle, "wb") as file:
            file.write(extracted["video_bytes"])
        video = replace(video, path=Path(name))
    try:
        tracks = extracted["tracks"]
        for name, result in extracted["retargeted"].items():
            if isinstance(result, str):
                report.errors.append(
                    {"input": item, "robot": name, "stage": "retarget", "error": result}
                )
                continue
            if (str(tracks.key), config.side) in done_keys[name]:
                report.skipped.append(
                    {"input": item, "robot": name, "reason": "already in the dataset"}
                )
                continue
            began = time.perf_counter()
            try:
                size = stored_video_size(roots[name], config.dataset.camera)
                shape = (video.info["video.width"], video.info["video.height"]) if video else None
                if video is not None and size is not None and size != shape:
                    assert config.dataset.video is not None
                    refitted = refit_video(video, size, config.dataset.video)
                    video.path.unlink(missing_ok=True)
                    video = refitted
                written = [
                    append_episodes(
                        roots[name],
                        tracks,
                        hand,
                        robots[name],
                        video=video,
                        fps=extracted["fps"],
                        config=config.dataset,
                        retarget_config=config.retarget,
                        source_url=extracted["url"],
                        hand_requested=config.side,
                    )
                    for hand in result
                ]
            except Exception as err:  # noqa: BLE001 - a report record, the job goes on
                report.errors.append(
                    {"input": item, "robot": name, "stage": "write", "error": _describe(err)}
                )
                continue
            done_keys[name].add((str(tracks.key), config.side))
            report.written.append(
                {
                    "input": item,
                    "robot": name,
                    "dataset": str(roots[name]),
                    "episodes": [e for w in written for e in w.episodes],
                    "frames": [f for w in written for f in w.frames],
                    "feasible_fraction": [f for w in written for f in w.feasible_fraction],
                    "input_frames": extracted["frames"],
                    "extract_s": extracted["extract_s"],
                    "node": extracted["node"],
                    "retarget_s": extracted["retarget_s"][name],
                    "retarget_actor": extracted["retarget_actor"],
                    "write_s": round(time.perf_counter() - began, 3),
                }
            )
    finally:
        if video is not None:
            video.path.unlink(missing_ok=True)


def _write_report(report: BatchReport, path: Path, start: float) -> None:
    report.seconds = round(time.perf_counter() - start, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".part")
    temp.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    os.replace(temp, path)
