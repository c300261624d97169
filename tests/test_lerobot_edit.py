"""Datasets edited with lerobot-edit-dataset (delete, split, merge) and adopted back."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import pipeline
import retarget
from pipeline.dataset import DatasetConfig, describe_dataset, frame_columns
from pipeline.dataset.adopt import restore_provenance
from pipeline.exceptions import DatasetError
from tests.conftest import LEROBOT_PYTHON, REPO, check_with_lerobot, needs_lerobot

pytestmark = needs_lerobot


def _edit(home: Path, *arguments: str) -> None:
    """``lerobot-edit-dataset`` of the lerobot environment, datasets under ``home``, offline."""
    assert LEROBOT_PYTHON is not None
    tool = Path(LEROBOT_PYTHON).parent / "lerobot-edit-dataset"
    environment = os.environ | {"HF_LEROBOT_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [str(tool), *arguments], capture_output=True, text=True, timeout=600, env=environment
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def _rows(root: Path) -> dict[str, np.ndarray]:
    return frame_columns(pq.read_table(sorted(root.glob("data/*/*.parquet"))))


@pytest.fixture(scope="module")
def home(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two hand2robot datasets under one LeRobot home: the stove clip's two hands (two
    episodes) and the kettle sample's hand tracks (one), Panda, 30 fps, without video."""
    base = tmp_path_factory.mktemp("edit")
    panda = retarget.load_robot("panda")
    settings = DatasetConfig(video=None)
    pipeline.convert(
        shared_data / "videos/stove_stir_egocentric.mp4", panda, base / "h/stove",
        side="both", dataset=settings, placement=pipeline.PlacementConfig(egocentric=True),
        cache=base / "cache",
    )  # fmt: skip
    pipeline.convert(
        REPO / "data/kettle_pour.tracks.parquet", panda, base / "h/kettle", dataset=settings
    )
    return base


def test_deleting_an_episode_keeps_the_frames_and_adopt_restores_the_provenance(home) -> None:
    _edit(
        home, "--repo_id", "h/stove", "--new_repo_id", "h/stove_del",
        "--operation.type", "delete_episodes", "--operation.episode_indices", "[0]",
    )  # fmt: skip
    edited, original = home / "h/stove_del", home / "h/stove"
    # What the tool drops: the provenance (with the surrogate tag) and the card.
    assert not (edited / "meta/hand2robot.json").exists() and not (edited / "README.md").exists()
    with pytest.raises(DatasetError, match="did not write"):
        describe_dataset(edited)
    # What it keeps: every per-frame column of the episode left, bit for bit.
    before, after = _rows(original), _rows(edited)
    kept = before["episode_index"] == 1
    assert set(after) == set(before) and len(after["index"]) == kept.sum()
    for name in ("flags", "feasible", "residual.position", "observation.human.keypoints"):
        np.testing.assert_array_equal(after[name], before[name][kept])
    provenance = restore_provenance(edited, [original])
    assert provenance["surrogate"] is True and provenance["restored"]["nulls_made_nan"] == 0
    summary = describe_dataset(edited)
    assert summary["total_episodes"] == 1 and summary["surrogate"]
    source = json.loads((original / "meta/hand2robot.json").read_text())
    assert (
        summary["episodes"][0]["hand"]
        == source["inputs"][source["episodes"][1]["input_index"]]["hand"]
    )
    assert (edited / "README.md").read_text().count("surrogate") >= 1
    check_with_lerobot(edited)
    with pytest.raises(DatasetError, match="already has"):
        restore_provenance(edited, [original])


def test_split_and_merge_are_adopted_back(home) -> None:
    _edit(
        home, "--repo_id", "h/stove", "--operation.type", "split",
        "--operation.splits", '{"a": [0], "b": [1]}',
    )  # fmt: skip
    for part, episode in (("a", 0), ("b", 1)):
        restored = restore_provenance(home / f"h/stove_{part}", [home / "h/stove"])
        source = json.loads((home / "h/stove/meta/hand2robot.json").read_text())
        record = dict(restored["episodes"][0], episode_index=episode, input_index=0)
        original = dict(source["episodes"][episode], input_index=0)
        assert record == original
    _edit(
        home, "--repo_id", "h/merged", "--operation.type", "merge",
        "--operation.repo_ids", "['h/stove', 'h/kettle']",
    )  # fmt: skip
    merged = home / "h/merged"
    with pytest.raises(DatasetError, match="matches no episode"):
        restore_provenance(merged, [home / "h/stove"])  # the kettle's episode has no source
    provenance = restore_provenance(merged, [home / "h/stove", home / "h/kettle"])
    stove = json.loads((home / "h/stove/meta/hand2robot.json").read_text())
    kettle = json.loads((home / "h/kettle/meta/hand2robot.json").read_text())
    expected = [stove["inputs"][0], stove["inputs"][1], kettle["inputs"][0]]
    assert len(provenance["episodes"]) == 3
    for episode, source in zip(provenance["episodes"], expected, strict=True):
        restored_input = provenance["inputs"][episode["input_index"]]
        assert restored_input["tracks_key"] == source["tracks_key"]
        assert restored_input["hand"] == source["hand"]
    # The merge made the NaN of figures that do not apply nulls; adopt makes them NaN again.
    assert provenance["restored"]["nulls_made_nan"] > 0
    rows, parts = _rows(merged), [_rows(home / "h/stove"), _rows(home / "h/kettle")]
    for name in ("residual.fingertip", "residual.position", "flags"):
        np.testing.assert_array_equal(rows[name], np.concatenate([p[name] for p in parts]))
    assert describe_dataset(merged)["total_episodes"] == 3
    check_with_lerobot(merged)
