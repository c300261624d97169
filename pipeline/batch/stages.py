"""The batch job's Ray actors: extraction, retargeting, and the count of attempts per input.

Each stage is a callable class that loads its models once in ``__init__`` and calls the
library's functions in ``__call__`` on a batch (Ray Data's idiom); a failure becomes an error
string in the batch, never a raise, so one bad input does not stop the job.
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
import time
import traceback
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.batch.config import BatchConfig
from pipeline.encoding import EpisodeVideo
from pipeline.inputs import depth_sidecar, extract_input
from pipeline.model import ensure_model
from pipeline.retargeted import RetargetedHand
from pipeline.retargeting import retarget_many, retarget_sides
from pipeline.tracks import HandTracks
from retarget import BimanualRobot, Hand2RobotError, Robot, load_any_robot


@dataclass(frozen=True)
class Extracted:
    """What travels from an extraction actor through a retargeting actor to the driver.

    Everything the driver needs is in it (the encoded video as bytes, not as a path), so an
    actor on another node needs no filesystem shared with the driver.
    """

    tracks: HandTracks
    """The input's hand tracks."""
    video: EpisodeVideo | None
    """The stored video's description (its ``path`` is the actor's, gone by now)."""
    video_bytes: bytes
    """The encoded video (about 0.1 MB per second), empty without one."""
    node: str
    """The Ray node that extracted it."""
    fps: int
    """The dataset frame rate of the kept frames."""
    url: str | None
    """The URL it was downloaded from, if it was."""
    extract_s: float
    """Seconds the extraction took [s]."""
    retargeted: dict[str, list[RetargetedHand] | str] = field(default_factory=dict)
    """Per robot: its trajectories (one per hand), or the error that stopped it."""
    retarget_s: dict[str, float] = field(default_factory=dict)
    """Per robot: seconds its retargeting took [s]."""
    retarget_actor: str = ""
    """The retargeting actor."""

    @property
    def frames(self) -> int:
        """Frames of the input."""
        return self.tracks.num_frames


class Attempts:
    """Ray actor: each (stage, input)'s starts and finishes, across restarts of its workers.

    Ray Data restarts a dead actor and runs its task again without end. A worker that dies
    leaves unfinished the starts of the inputs it was working on, and only those: the stages
    ask here first (:func:`died_on`), answer an error instead of running an input whose workers
    already died on it more than ``max_retries`` times, and start again one at a time the inputs
    a worker died on while it held several (so that one input that kills its worker does not take
    the others of its batch down with it).
    """

    def __init__(self) -> None:
        self.started: dict[tuple[str, str], int] = {}
        self.finished: dict[tuple[str, str], int] = {}

    def crashes(self, stage: str, items: list[str]) -> list[int]:
        """Per item, its starts in ``stage`` that never finished: the workers that died on it."""
        return [
            self.started.get((stage, item), 0) - self.finished.get((stage, item), 0)
            for item in items
        ]

    def begin(self, stage: str, items: list[str]) -> None:
        """Count one more start of each item in ``stage``."""
        for item in items:
            self.started[(stage, item)] = self.started.get((stage, item), 0) + 1

    def end(self, stage: str, items: list[str]) -> None:
        """Count one more finish of each item in ``stage`` (it did not kill its worker)."""
        for item in items:
            self.finished[(stage, item)] = self.finished.get((stage, item), 0) + 1


def died_on(crashes: int, stage: str, max_retries: int) -> str:
    """The error for an input its ``stage`` workers died on ``crashes`` times, if too often."""
    if crashes <= max_retries:
        return ""
    return (
        f"WorkerDied: the {stage} worker process died on this input {crashes} times (a "
        "crash in native code, killed for memory, or a lost node); Ray's worker logs "
        "(/tmp/ray/session_latest/logs on the node) say more"
    )


class ExtractStage:
    """Ray actor: input path/URL -> hand tracks and the stored video's bytes.

    Everything the driver needs travels in the returned payload (the encoded video as bytes,
    not as a path), so an actor on another node of a cluster needs no filesystem shared with the
    driver; only local input paths must be readable where the actor runs.
    """

    def __init__(
        self,
        config: BatchConfig,
        frame_size: tuple[int, int] | None,
        attempts: Any,
        scratch: str,
        driver_node: str,
    ) -> None:
        import ray

        self.config = config
        self.attempts = attempts
        self.scratch = Path(scratch)
        self.driver_node = driver_node
        self._temp_dir: Path | None = None
        self.node = ray.get_runtime_context().get_node_id()
        self.frame_size = frame_size
        self.model = ensure_model(config.model)  # fetched and verified once per actor
        if config.cache is not None:
            Path(config.cache).mkdir(parents=True, exist_ok=True)  # a folder, not a file name

    @property
    def temp_dir(self) -> Path:
        """This actor's folder for temporary videos, made when first needed.

        Node-local, inside the job's scratch folder, which the driver removes when the job
        ends (Ray ends actors without running their finalizers). Made on first use, so an actor
        that Ray restarts after the job's last input leaves nothing behind; on the driver's
        node the scratch folder is the driver's, never made again once it is gone (the job
        was interrupted), so nothing is left there either.
        """
        if self._temp_dir is None:
            if str(self.node) != self.driver_node:
                self.scratch.mkdir(parents=True, exist_ok=True)
            self._temp_dir = Path(tempfile.mkdtemp(prefix="extract-", dir=self.scratch))
            weakref.finalize(self, shutil.rmtree, self._temp_dir, ignore_errors=True)
        return self._temp_dir

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Extract each input of the batch; a failure is an ``error`` string, not a raise."""
        out: dict[str, list[Any]] = {"input": [], "payload": [], "error": []}
        import ray

        for item in batch["input"]:
            item = str(item)
            began = time.perf_counter()
            (crashes,) = ray.get(self.attempts.crashes.remote("extract", [item]))
            died = died_on(crashes, "extract", self.config.max_retries)
            if died:
                out["input"].append(item)
                out["payload"].append(b"")
                out["error"].append(died)
                continue
            ray.get(self.attempts.begin.remote("extract", [item]))
            try:
                done = extract_input(
                    item,
                    depth=depth_sidecar(item) if self.config.depth_sidecars else None,
                    depth_scale=self.config.depth_scale,
                    camera_motion=self.config.camera_motion,
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
                    Extracted(
                        tracks=done.tracks,  # arrays, about 1 KB per frame and hand
                        video=done.video,
                        video_bytes=video_bytes,
                        node=self.node,
                        fps=done.fps,
                        url=done.source_url,
                        extract_s=round(time.perf_counter() - began, 3),
                    )
                )
                out["payload"].append(payload)
                out["error"].append("")
            except Exception as err:  # noqa: BLE001 - every failure becomes a report record
                out["payload"].append(b"")
                out["error"].append(describe(err))
            self.attempts.end.remote("extract", [item])  # the process lives on: not waited for
            out["input"].append(item)
        return {key: np.asarray(value, dtype=object) for key, value in out.items()}


class RetargetStage:
    """Ray actor: hand tracks -> one retargeted trajectory per robot."""

    def __init__(self, config: BatchConfig, attempts: Any) -> None:
        import ray

        self.config = config
        self.attempts = attempts
        self.robots = {name: load_any_robot(name) for name in config.robots}
        self.actor = str(ray.get_runtime_context().get_actor_id())

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Retarget each extracted input onto every robot (a failure becomes a string).

        The inputs of one batch are retargeted together, robot by robot: their trajectories
        go to one optimiser call per robot. An input a worker died on before (it held it, alone
        or in a batch) is retargeted on its own, so that only the input that kills its worker
        runs out of retries.
        """
        import ray

        rows = list(zip(batch["input"], batch["payload"], batch["error"], strict=True))
        loaded: dict[int, Extracted] = {
            row: pickle.loads(payload) for row, (_, payload, error) in enumerate(rows) if not error
        }
        items = [str(rows[row][0]) for row in loaded]
        counts = ray.get(self.attempts.crashes.remote("retarget", items))
        crashes = dict(zip(loaded, counts, strict=True))
        together: list[int] = []
        alone: list[int] = []
        for row, extracted in loaded.items():
            died = died_on(crashes[row], "retarget", self.config.max_retries)
            if died:
                answer = replace(extracted, retargeted=dict.fromkeys(self.robots, died))
                rows[row] = (rows[row][0], pickle.dumps(answer), rows[row][2])
            else:
                (alone if crashes[row] else together).append(row)
        for group in [together] + [[row] for row in alone]:
            if not group:
                continue
            names = [str(rows[row][0]) for row in group]
            ray.get(self.attempts.begin.remote("retarget", names))
            for row, done in zip(group, self._retarget([loaded[r] for r in group]), strict=True):
                rows[row] = (rows[row][0], pickle.dumps(done), rows[row][2])
            ray.get(self.attempts.end.remote("retarget", names))
        out: dict[str, list[Any]] = {"input": [], "payload": [], "error": []}
        for item, payload, error in rows:
            out["input"].append(item)
            out["payload"].append(payload)
            out["error"].append(error)
        return {key: np.asarray(value, dtype=object) for key, value in out.items()}

    def _retarget(self, inputs: list[Extracted]) -> list[Extracted]:
        """``inputs`` with their trajectories onto every robot, and the seconds each took.

        An input's seconds for a robot are its share (by frames) of the batch's time.
        """
        results: list[dict[str, list[RetargetedHand] | str]] = [{} for _ in inputs]
        seconds: list[dict[str, float]] = [{} for _ in inputs]
        frames = np.array([max(1, extracted.frames) for extracted in inputs], dtype=np.float64)
        for name, robot in self.robots.items():
            began = time.perf_counter()
            done = self._one_robot(robot, inputs)
            took = time.perf_counter() - began
            for k, answer in enumerate(done):
                results[k][name] = answer
                seconds[k][name] = round(took * frames[k] / frames.sum(), 3)
        return [
            replace(extracted, retargeted=r, retarget_s=s, retarget_actor=self.actor)
            for extracted, r, s in zip(inputs, results, seconds, strict=True)
        ]

    def _one_robot(
        self, robot: Robot | BimanualRobot, inputs: list[Extracted]
    ) -> list[list[RetargetedHand] | str]:
        """Every input retargeted onto ``robot``: trajectories, or the error as a string."""
        config, placement, side = self.config.retarget, self.config.placement, self.config.side
        if isinstance(robot, BimanualRobot):
            answers: list[list[RetargetedHand] | str] = []
            for extracted in inputs:
                try:
                    answers.append(
                        retarget_sides(
                            extracted.tracks, robot, side=side, config=config, placement=placement
                        )
                    )
                except Exception as err:  # noqa: BLE001 - a report record per robot
                    answers.append(describe(err))
            return answers
        try:
            many = retarget_many(
                [(extracted.tracks, side) for extracted in inputs],
                robot,
                config=config,
                placement=placement,
            )
        except Exception as err:  # noqa: BLE001 - a report record per robot
            if len(inputs) == 1:
                return [describe(err)]
            # One input broke the batch: each on its own, to say which.
            return [
                answer for extracted in inputs for answer in self._one_robot(robot, [extracted])
            ]
        return [describe(a) if isinstance(a, Exception) else a for a in many]


def describe(err: BaseException) -> str:
    """An error as a report record says it: type and message, and where for unexpected ones."""
    if isinstance(err, Hand2RobotError):
        return f"{type(err).__name__}: {err}"
    # An unexpected error: keep where it happened.
    return f"{type(err).__name__}: {err}\n" + "".join(traceback.format_tb(err.__traceback__))
