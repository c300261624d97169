"""One frame rate per dataset (#24 item 1): mixed-rate inputs go into one dataset, no option."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.batch import BatchConfig, run_batch
from pipeline.dataset import DatasetConfig, describe_dataset
from pipeline.dataset.rates import at_rate, dataset_rate
from pipeline.decoding import resamples
from pipeline.exceptions import DatasetError
from pipeline.extract import ExtractConfig
from tests.conftest import check_with_lerobot, needs_lerobot

CLIPS = {  # the shared clips of four rates
    "juggle_small_hands.mp4": 24.0,
    "armwrestling_lowres.mp4": 28.0,
    "kettle_pour_third_person.mp4": 29.97,
    "stove_stir_egocentric.mp4": 30.0,
}


def test_an_integer_rate_resamples_whatever_rounds_above_it() -> None:
    assert resamples(25.0, 1, 24.0)  # 25 -> 24: one frame a second left out
    assert resamples(30.0, 1, 24.0)
    assert not resamples(29.97, 1, 30.0)  # within rounding: every frame kept
    assert not resamples(24.0, 1, 30.0)  # slower: kept whole (and refused by the dataset)
    assert not resamples(12.9, 1, 12.5)  # a non-integer max_fps keeps the 5% margin
    assert not resamples(30.0, 1, None)


def test_the_rate_is_the_asked_the_held_or_the_slowest(shared_data: Path, tmp_path: Path) -> None:
    videos = [shared_data / "videos" / name for name in CLIPS]
    extract = ExtractConfig()
    assert dataset_rate(None, [tmp_path / "new"], videos, extract) == 24
    assert dataset_rate(30, [tmp_path / "new"], videos, extract) == 30
    assert dataset_rate(None, [tmp_path / "new"], [], extract) is None
    held = tmp_path / "held"
    (held / "meta").mkdir(parents=True)
    (held / "meta/info.json").write_text(json.dumps({"fps": 25}))
    assert dataset_rate(None, [held], videos, extract) == 25
    with pytest.raises(DatasetError, match="--fps 30: the dataset already has 25 fps"):
        dataset_rate(30, [held], videos, extract)
    assert at_rate(extract, 24).max_fps == 24.0
    with pytest.raises(DatasetError, match="--max-fps 10 is below the dataset's rate of 24"):
        at_rate(ExtractConfig(max_fps=10), 24)
    with pytest.raises(DatasetError, match="fps must be a positive integer"):
        DatasetConfig(fps=0)


@pytest.fixture(scope="module")
def mixed(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder of the four clips and an image folder (30 fps, no times in the names), batched
    with no option."""
    base = tmp_path_factory.mktemp("mixed")
    folder = base / "inputs"
    folder.mkdir()
    for name in CLIPS:
        shutil.copy(shared_data / "videos" / name, folder / name)
    frames = folder / "stove_frames"
    frames.mkdir()
    with av.open(str(shared_data / "videos/stove_stir_egocentric.mp4")) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index == 30:
                break
            cv2.imwrite(str(frames / f"frame_{index:03d}.jpg"), frame.to_ndarray(format="bgr24"))
    out = base / "dataset"
    report = run_batch([folder], out, BatchConfig(workers=1, cache=str(base / "cache")))
    assert report.status == "ok", report.errors
    return out, folder


def test_mixed_rates_go_into_one_dataset_with_no_option(mixed: tuple[Path, Path]) -> None:
    out, folder = mixed
    summary = describe_dataset(out)
    assert summary["fps"] == 24 and summary["total_episodes"] == 5
    info = json.loads((out / "meta/info.json").read_text())
    assert info["fps"] == 24
    table = pq.read_table(sorted(out.glob("data/*/*.parquet"))).to_pydict()
    episodes = np.array(table["episode_index"])
    stamps = np.array(table["source_timestamp"], dtype=np.float64)
    for episode in range(5):
        times = stamps[episodes == episode]
        # Every source was resampled to 24 fps: frame k is the source frame nearest the slot
        # t0 + k / 24 (within half a 24 fps period), none repeated.
        assert np.all(np.diff(times) > 0)
        slots = times[0] + np.arange(len(times)) / 24
        assert np.max(np.abs(times - slots)) <= 0.5 / 24 + 1e-4, episode
    sources = sorted(Path(e["source"]).name for e in summary["episodes"])
    assert sources == sorted([*CLIPS, "stove_frames"])


@needs_lerobot
def test_real_lerobot_loads_the_mixed_dataset_with_the_declared_types(
    mixed: tuple[Path, Path],
) -> None:
    out, _ = mixed
    assert check_with_lerobot(out)["episodes"] == 5
