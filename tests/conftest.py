"""Shared fixtures: robots loaded once per session, the shared real media folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline
import retarget

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_TRACKS = REPO / "data" / "kettle_pour.tracks.parquet"


def run_cli(
    *args: object, cache: Path | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """``hand2robot ARGS...`` in a fresh process (as the console script runs it), output kept.

    ``cache``: the hand-track cache to use (``HAND2ROBOT_CACHE``); default the user's.
    """
    command = [sys.executable, "-c", "from pipeline.cli import main; main()", *map(str, args)]
    environment = os.environ | ({"HAND2ROBOT_CACHE": str(cache)} if cache else {})
    return subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def robots_loaded() -> dict[str, retarget.Robot]:
    import robots

    return {name: retarget.load_robot(name) for name in robots.names()}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        found = f"shared real media not found at {SHARED_DATA} (checked: folder absent)"
        if os.environ.get("CI"):  # CI has ../shared beside the checkout: its tests must run
            pytest.fail(found)
        pytest.skip(found)
    return SHARED_DATA


@pytest.fixture(scope="session")
def armwrestling_24fps(shared_data: Path) -> pipeline.HandTracks:
    """``armwrestling_lowres.mp4`` extracted at 24 fps (a mixed-rate dataset's default rate):
    two people's clasped right hands, the main one named right on most frames."""
    return pipeline.extract_hands(
        shared_data / "videos/armwrestling_lowres.mp4",
        config=pipeline.ExtractConfig(max_fps=24.0),
    )


LEROBOT_PYTHONS = tuple(
    p for p in os.environ.get("HAND2ROBOT_LEROBOT_PYTHON", "").split(os.pathsep) if p
)
"""Pythons with the real lerobot, one per release checked (``bash scripts/lerobot_env.sh``;
CI builds lerobot 0.4.4 and 0.6.1): ``HAND2ROBOT_LEROBOT_PYTHON``, separated by ``:``."""
LEROBOT_RELEASES_IN_CI = ("0.4.4", "0.6.1")
"""The lerobot releases CI checks: the last for Python 3.11 and the newest."""

needs_lerobot = pytest.mark.skipif(
    not LEROBOT_PYTHONS and not os.environ.get("CI"),  # in CI it must run: .ci/run builds it
    reason="HAND2ROBOT_LEROBOT_PYTHON is not set: it names a Python with the real lerobot, "
    "which hand2robot does not depend on (build one with bash scripts/lerobot_env.sh; CI does)",
)


def check_with_lerobot(root: Path) -> dict:
    """``scripts/check_lerobot.py`` on the dataset at ``root`` in every real lerobot: the first
    one's report (each must pass and count the same rows, episodes and videos)."""
    import json

    script = REPO / "scripts" / "check_lerobot.py"
    assert LEROBOT_PYTHONS and sys.executable not in LEROBOT_PYTHONS
    reports = []
    for python in LEROBOT_PYTHONS:
        done = subprocess.run(
            [python, str(script), str(root)], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, python + done.stdout[-2000:] + done.stderr[-4000:]
        report: dict = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["ok"]
        reports.append(report)
    counts = {(r["rows"], r["episodes"], tuple(r["video_keys"])) for r in reports}
    assert len(counts) == 1, reports
    return reports[0]
