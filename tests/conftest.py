"""Shared fixtures: robots loaded once per session, the shared real media folder."""

from __future__ import annotations

from pathlib import Path

import pytest

import retarget

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_TRACKS = REPO / "data" / "kettle_pour.tracks.parquet"


@pytest.fixture(scope="session")
def robots_loaded() -> dict[str, retarget.Robot]:
    import robots

    return {name: retarget.load_robot(name) for name in robots.names()}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real media not found at {SHARED_DATA} (checked: folder absent)")
    return SHARED_DATA
