"""The datasets written today match, file by file, those written before the writer was split.

Digests ignore only version fields, absolute paths and library version strings
(``tests/dataset_digest.py``). The stored MP4 bytes depend on the video libraries' builds: they
are compared when PyAV and libavcodec are those the digests were made with, and otherwise only
their presence is (the rest of every dataset, video statistics included, is still compared).
The datasets are written in a process with OpenBLAS's kernels pinned, so that the digests do not
depend on the CPU (see ``tests/dataset_digest.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.dataset_digest import (
    DIGESTS,
    FROM_LANDMARKS,
    PINNED_BLAS,
    VIDEO_DATASET,
    runs_pinned_blas,
)

CANNOT = runs_pinned_blas()


@pytest.fixture(scope="module")
def written(shared_data: Path) -> dict:
    """The digest record of the datasets written now, in a process with the BLAS kernels
    pinned (``scripts/write_dataset_digests.py --print``)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts/write_dataset_digests.py"), "--print"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    record: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return record


@pytest.mark.skipif(
    bool(CANNOT), reason=f"the digests are made with {PINNED_BLAS}, which needs an x86-64 "
    f"CPU with AVX2 and FMA; this machine has {CANNOT}",
)  # fmt: skip
def test_datasets_match_the_recorded_digests_file_by_file(written: dict) -> None:
    recorded = json.loads(DIGESTS.read_text())
    same_codecs = recorded["codec_versions"] == written["codec_versions"]
    if not same_codecs:  # said, not silent: the rest of every dataset is still compared
        warnings.warn(
            f"video libraries {written['codec_versions']} differ from the recorded "
            f"{recorded['codec_versions']}: stored MP4 bytes not compared",
            stacklevel=1,
        )
    # One landmark digest per cached extraction: the same extractions on every machine.
    assert sorted(written["landmarks"]) == sorted(recorded["landmarks"])
    same_landmarks = written["landmarks"] == recorded["landmarks"]
    if not same_landmarks:  # said, not silent: every other file is still compared
        warnings.warn(
            "MediaPipe's landmarks on this CPU differ from those the digests were made with: "
            f"{', '.join(FROM_LANDMARKS)} of {VIDEO_DATASET} not compared",
            stacklevel=1,
        )

    def compared(name: str, path: str) -> bool:
        """Whether a file's digest is held on this machine (see the warnings above)."""
        if path.endswith(".mp4") and not same_codecs:
            return False
        return same_landmarks or name != VIDEO_DATASET or not path.startswith(FROM_LANDMARKS)

    assert set(written["datasets"]) == set(recorded["datasets"])
    for name, digests in written["datasets"].items():
        expected = recorded["datasets"][name]
        assert sorted(digests) == sorted(expected), f"{name}: other files"
        differ = [
            path
            for path, digest in digests.items()
            if digest != expected[path] and compared(name, path)
        ]
        assert not differ, f"{name}: these files differ from the recorded dataset: {differ}"
