"""Many inputs, one or more robots, as a Ray Data job: the same steps as ``hand2robot retarget``.

Stages (Ray Data operators), each calling the functions the CLI calls:

1. the driver lists the inputs (:func:`~pipeline.batch.sources.expand_inputs`) and leaves out
   those every robot's dataset already holds (resume);
2. :class:`~pipeline.batch.stages.ExtractStage`, an actor pool (the model resolved once per
   actor):
   :func:`pipeline.extract_input` (URL download, extraction through the hand-track cache,
   stored video encoded in the same decoding pass);
3. :class:`~pipeline.batch.stages.RetargetStage`, an actor pool (robots loaded once per
   actor):
   :func:`pipeline.retarget_sides` for every robot;
4. the driver appends each result to its robot's dataset with
   :func:`pipeline.dataset.append_episodes` (atomic per input, so an interrupted job leaves only
   whole inputs behind, and running it again resumes).

A bad input becomes an error record (input, robot, stage, error) in the run report and the job
goes on. A worker process that dies on an input (a crash in native code, killed for memory, a
lost node) is restarted by Ray and the input run again, up to :attr:`BatchConfig.max_retries`
times (:class:`~pipeline.batch.stages.Attempts` counts, across restarts, the starts of each input
that never finished); after that the input is an error record. The inputs a retargeting worker
held together when it died are run again one at a time, so only the one that kills its worker
runs out of retries.

Modules: :mod:`~pipeline.batch.config` (settings, the report and its records),
:mod:`~pipeline.batch.sources` (inputs, dataset folders, resume keys),
:mod:`~pipeline.batch.stages` (the Ray actors and their payload),
:mod:`~pipeline.batch.cluster` (embedded Ray or a cluster), :mod:`~pipeline.batch.job`
(``run_batch``: plan, run, commit, report).
"""

from pipeline.batch.config import (
    BatchConfig,
    BatchError,
    BatchReport,
    ErrorRecord,
    SkippedRecord,
    WrittenRecord,
)
from pipeline.batch.job import run_batch
from pipeline.batch.sources import dataset_roots, expand_inputs

__all__ = [
    "BatchConfig",
    "BatchError",
    "BatchReport",
    "ErrorRecord",
    "SkippedRecord",
    "WrittenRecord",
    "dataset_roots",
    "expand_inputs",
    "run_batch",
]
