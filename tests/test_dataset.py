"""LeRobot v3.0 dataset writer: real clips written, read back row by row, appended, crashed."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import pipeline
import retarget
from pipeline.conversion import convert
from pipeline.dataset import DatasetConfig, describe_dataset, held_inputs, split_segments, storage
from pipeline.decoding import iter_frames, open_media
from pipeline.encoding import VideoConfig, nominal_fps, stored_size
from pipeline.exceptions import DatasetError
from pipeline.extract import ExtractConfig
from pipeline.inputs import input_key
from pipeline.placement import PlacementConfig
from tests.conftest import check_with_lerobot, needs_lerobot, run_cli

EGOCENTRIC = PlacementConfig(egocentric=True)
AGAIN = DatasetConfig(allow_duplicate=True)  # append an input the dataset holds already
STOVE = "videos/stove_stir_egocentric.mp4"  # 384x288, 30 fps, 60 frames, one hand
SAMPLE_TRACKS = Path(__file__).parents[1] / "data/kettle_pour.tracks.parquet"
KETTLE = "videos/kettle_pour_third_person.mp4"  # 1280x720, 29.97 fps, 287 frames


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_rows(root: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(sorted(root.glob("data/*/*.parquet")))
    columns = {}
    for name in table.column_names:
        values = table.column(name).to_pylist()
        columns[name] = np.asarray(values)
    return columns


def decode_all(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def copy_of(dataset: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the module's stove dataset at ``tmp_path/dataset``, and its cache."""
    original, cache = dataset
    root = tmp_path / "dataset"
    shutil.copytree(original, root)
    return root, cache


@pytest.fixture(scope="module")
def panda(robots_loaded: dict[str, retarget.Robot]) -> retarget.Robot:
    return robots_loaded["panda"]


@pytest.fixture(scope="module")
def stove_dataset(
    shared_data: Path, panda: retarget.Robot, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The stove clip written once through the cache miss path (video encoded while extracting)."""
    base = tmp_path_factory.mktemp("stove")
    root = base / "dataset"
    convert(
        shared_data / STOVE,
        panda,
        root,
        extract=ExtractConfig(num_hands=1),
        placement=EGOCENTRIC,
        cache=base / "cache",
    )
    return root, base / "cache"


def test_written_dataset_reads_back_row_by_row(
    stove_dataset: tuple[Path, Path], shared_data: Path, panda: retarget.Robot
) -> None:
    root, cache = stove_dataset
    info = json.loads((root / "meta/info.json").read_text())
    rows = read_rows(root)
    frames = 60
    assert info["codebase_version"] == "v3.0"
    assert info["fps"] == 30 and info["total_frames"] == frames and info["total_episodes"] == 1
    # Exactly one column per non-video feature, and nothing else.
    declared = {k for k, v in info["features"].items() if v["dtype"] != "video"}
    assert set(rows) == declared
    np.testing.assert_array_equal(rows["index"], np.arange(frames))
    np.testing.assert_array_equal(rows["frame_index"], np.arange(frames))
    np.testing.assert_array_equal(rows["episode_index"], np.zeros(frames))
    np.testing.assert_allclose(rows["timestamp"], np.arange(frames) / 30, atol=1e-6)

    # State and action are the retargeted trajectory, action = next state, never NaN.
    # Extracted at the dataset's rate (the clip's own, 30 fps: every frame).
    tracks, _, hit = pipeline.extract_cached(
        shared_data / STOVE, config=ExtractConfig(num_hands=1, max_fps=30.0), cache=cache
    )
    assert hit
    done = pipeline.retarget_tracks(tracks, panda, placement=EGOCENTRIC)
    np.testing.assert_allclose(rows["observation.state"], done.result.q, atol=1e-6)
    np.testing.assert_allclose(rows["action"][:-1], done.result.q[1:], atol=1e-6)
    np.testing.assert_allclose(rows["action"][-1], done.result.q[-1], atol=1e-6)
    assert np.isfinite(rows["observation.state"]).all() and np.isfinite(rows["action"]).all()
    np.testing.assert_array_equal(rows["flags"], done.result.flags)
    np.testing.assert_array_equal(rows["feasible"], done.result.feasible)
    # float32, as lerobot loads it: within 1 us over this 10 s clip.
    np.testing.assert_allclose(rows["source_timestamp"], tracks.timestamps, atol=1e-6)
    np.testing.assert_allclose(
        rows["residual.position"], done.result.residual.position, atol=1e-6, equal_nan=True
    )
    names = info["features"]["observation.state"]["names"]
    assert names == list(panda.joint_names)

    # Every row's video frame is the source frame it came from (within codec tolerance) and
    # closer to it than to the neighbouring source frames.
    episode = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()[0]
    key = "observation.images.camera"
    assert (episode["dataset_from_index"], episode["dataset_to_index"]) == (0, frames)
    stored = decode_all(root / f"videos/{key}/chunk-000/file-000.mp4").astype(np.float32)
    assert len(stored) == frames
    size = stored_size(384, 288, 480)
    assert info["features"][key]["shape"] == [size[1], size[0], 3]
    source = np.stack([f.rgb for f in iter_frames(open_media(shared_data / STOVE))])
    source = source.astype(np.float32)
    start = round(episode[f"videos/{key}/from_timestamp"] * 30)
    for row in range(frames):
        k = start + int(rows["frame_index"][row])
        errors = {
            j: np.abs(stored[k] - source[j]).mean()
            for j in (row - 1, row, row + 1)
            if 0 <= j < frames
        }
        assert min(errors, key=errors.__getitem__) == rows["source_frame_index"][row] == row
        assert errors[row] < 4.0, (row, errors)  # mean absolute error in 0-255 levels


def test_meta_tasks_stats_and_provenance(
    stove_dataset: tuple[Path, Path], shared_data: Path, panda: retarget.Robot
) -> None:
    root, _ = stove_dataset
    rows = read_rows(root)
    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    assert list(tasks.index) == ["stove stir egocentric"] and tasks.index.name == "task"
    assert tasks["task_index"].tolist() == [0]

    stats = json.loads((root / "meta/stats.json").read_text())
    state = rows["observation.state"]
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(0), atol=1e-5)
    np.testing.assert_allclose(stats["observation.state"]["std"], state.std(0), atol=1e-5)
    np.testing.assert_allclose(stats["observation.state"]["min"], state.min(0), atol=1e-6)
    assert stats["observation.state"]["count"] == [60]
    image = stats["observation.images.camera"]
    assert np.shape(image["mean"]) == (3, 1, 1)
    assert 0.0 <= np.min(image["min"]) <= np.max(image["max"]) <= 1.0

    provenance = json.loads((root / "meta/hand2robot.json").read_text())
    assert provenance["surrogate"] is True and provenance["data_source"] == "human video"
    record = provenance["inputs"][0]
    digest = hashlib.sha256((shared_data / STOVE).read_bytes()).hexdigest()
    assert record["source"]["sha256"] == digest
    assert record["hand_model"]["sha256"] and record["intrinsics"]["source"].startswith("fov:")
    assert provenance["robot"]["urdf_sha256"] == panda.urdf_sha256
    assert record["camera_placement"].startswith("default egocentric")
    episode = provenance["episodes"][0]
    assert episode["feasible_fraction"] == pytest.approx(rows["feasible"].mean())
    assert episode["flag_counts"]["NO_HAND"] == int((rows["flags"] & 1).sum())
    card = (root / "README.md").read_text()
    assert "surrogate data" in card and "feasible" in card


def test_an_input_the_dataset_holds_is_known_before_extracting_it(
    stove_dataset: tuple[Path, Path], shared_data: Path, panda: retarget.Robot
) -> None:
    root, cache = stove_dataset
    model = pipeline.ensure_model(None).sha256
    # The key of the input as the dataset took it: at its rate.
    key = input_key(shared_data / STOVE, ExtractConfig(num_hands=1, max_fps=30.0), model)
    assert held_inputs(root) == {(key, "auto")}
    # Other settings are another input; the same again is left out, nothing written.
    assert input_key(shared_data / STOVE, ExtractConfig(), model) != key
    before = tree_digest(root)
    again = convert(shared_data / STOVE, panda, root, extract=ExtractConfig(num_hands=1))
    assert again.already_there and again.episodes == [] and again.total_episodes == 1
    assert tree_digest(root) == before


def test_append_continues_indices_and_keeps_old_files(
    stove_dataset: tuple[Path, Path], shared_data: Path, panda: retarget.Robot, tmp_path: Path
) -> None:
    root, cache = copy_of(stove_dataset, tmp_path)
    before = tree_digest(root)
    # Same clip again: a cache hit, so the stored video comes from a second decoding pass.
    report = convert(
        shared_data / STOVE,
        panda,
        root,
        extract=ExtractConfig(num_hands=1),
        placement=EGOCENTRIC,
        cache=cache,
        dataset=DatasetConfig(task="stir the pot", allow_duplicate=True),
    )
    assert report.episodes == [1] and report.total_frames == 120
    after = tree_digest(root)
    for path in ("data/chunk-000/file-000.parquet",):
        assert after[path] == before[path]
    rows = read_rows(root)
    np.testing.assert_array_equal(rows["index"], np.arange(120))
    np.testing.assert_array_equal(rows["episode_index"], np.repeat([0, 1], 60))
    np.testing.assert_array_equal(rows["frame_index"], np.tile(np.arange(60), 2))
    np.testing.assert_array_equal(rows["task_index"], np.repeat([0, 1], 60))
    np.testing.assert_allclose(
        rows["observation.state"][60:], rows["observation.state"][:60], atol=1e-6
    )
    key = "observation.images.camera"
    first = decode_all(root / f"videos/{key}/chunk-000/file-000.mp4").astype(np.float32)
    second = decode_all(root / f"videos/{key}/chunk-000/file-001.mp4").astype(np.float32)
    assert np.abs(first - second).mean() < 0.5  # same frames, same encoder settings
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["dataset_from_index"] for e in episodes] == [0, 60]
    assert [e[f"videos/{key}/file_index"] for e in episodes] == [0, 1]
    assert list(pd.read_parquet(root / "meta/tasks.parquet").index) == [
        "stove stir egocentric",
        "stir the pot",
    ]
    stats = json.loads((root / "meta/stats.json").read_text())
    state = rows["observation.state"]
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(0), atol=1e-5)
    np.testing.assert_allclose(stats["observation.state"]["std"], state.std(0), atol=1e-5)
    assert stats["observation.state"]["count"] == [120]
    assert not list(tmp_path.glob(".dataset.hand2robot-staging*"))
    assert not list(tmp_path.glob(".hand2robot-*.mp4"))  # temporary videos removed

    # Another aspect ratio is letterboxed into the dataset's stored size.
    convert(
        shared_data / KETTLE,
        panda,
        root,
        extract=ExtractConfig(num_hands=1),
        cache=cache,
        dataset=DatasetConfig(split_min_gap_s=0.5),
    )
    info = json.loads((root / "meta/info.json").read_text())
    provenance = json.loads((root / "meta/hand2robot.json").read_text())
    assert provenance["inputs"][2]["video"]["letterboxed"] is True
    kettle = decode_all(root / f"videos/{key}/chunk-000/file-002.mp4")
    assert kettle.shape[1:] == tuple(info["features"][key]["shape"])
    assert kettle[:, :20].mean() < 3 and kettle[:, 40:-40].mean() > 30  # black bars, then image
    rows = read_rows(root)
    assert len(rows["index"]) == info["total_frames"]
    np.testing.assert_array_equal(rows["index"], np.arange(info["total_frames"]))


def test_split_segments_known_answers() -> None:
    bad = np.zeros(20, dtype=bool)
    bad[3:5] = True  # 2 frames: kept
    bad[8:13] = True  # 5 frames: cut
    bad[17:] = True  # 3 frames at the end: cut
    assert split_segments(bad, None, 1) == [(0, 20)]
    assert split_segments(bad, 3, 1) == [(0, 8), (13, 17)]
    assert split_segments(bad, 3, 5) == [(0, 8)]
    assert split_segments(bad, 6, 1) == [(0, 20)]
    assert split_segments(np.ones(5, dtype=bool), 2, 1) == []
    # Kept whole, an input is one episode however short: a single image is one frame.
    assert split_segments(np.ones(1, dtype=bool), None, 2) == [(0, 1)]
    assert split_segments(np.zeros(0, dtype=bool), None, 1) == []


def test_split_episodes_have_no_long_unusable_stretch(
    shared_data: Path, panda: retarget.Robot, tmp_path: Path
) -> None:
    root = tmp_path / "split"
    config = DatasetConfig(split_min_gap_s=0.2, split_on="infeasible", video=None)
    # A strict lifting threshold (the sample's per-frame wrist sigma is 19-26 mm median) makes
    # stretches of LIFT_UNCERTAIN frames to cut.
    strict = retarget.RetargetConfig(feasibility=retarget.FeasibilityConfig(max_wrist_std=0.026))
    report = convert(SAMPLE_TRACKS, panda, root, dataset=config, retarget=strict)
    rows = read_rows(root)
    gap = 6  # 0.2 s at 30 fps
    done = pipeline.retarget_tracks(pipeline.read_tracks(SAMPLE_TRACKS), panda, config=strict)
    expected = split_segments(~done.result.feasible, gap, 2)
    assert report.frames == [b - a for a, b in expected if done.result.feasible[a:b].any()]
    assert report.dropped_frames == 287 - sum(report.frames) > 0
    for episode in report.episodes:
        feasible = rows["feasible"][rows["episode_index"] == episode]
        run = longest = 0
        for ok in feasible:
            run = 0 if ok else run + 1
            longest = max(longest, run)
        assert longest < gap
        frames = rows["frame_index"][rows["episode_index"] == episode]
        np.testing.assert_array_equal(frames, np.arange(len(frames)))
    info = json.loads((root / "meta/info.json").read_text())
    assert info["video_path"] is None
    assert not any(v["dtype"] == "video" for v in info["features"].values())


def test_bad_appends_are_refused_with_reasons(
    stove_dataset: tuple[Path, Path], shared_data: Path, robots_loaded: dict, tmp_path: Path
) -> None:
    root, cache = stove_dataset
    before = tree_digest(root)
    sample = Path(__file__).parents[1] / "data/kettle_pour.tracks.parquet"
    with pytest.raises(DatasetError, match="robot 'panda', this input 'so101'"):
        convert(sample, robots_loaded["so101"], root, dataset=DatasetConfig(video=None))
    with pytest.raises(DatasetError, match="not there to take the video frames"):
        convert(sample, robots_loaded["panda"], root)
    with pytest.raises(
        DatasetError, match="30 fps, this input 10 fps: it is slower, and hand2robot repeats"
    ):
        convert(shared_data / "videos/cutting_loaf.gif", robots_loaded["panda"], root, cache=cache)
    assert tree_digest(root) == before
    foreign = tmp_path / "foreign"
    (foreign / "meta").mkdir(parents=True)
    (foreign / "meta/info.json").write_text("{}")
    with pytest.raises(DatasetError, match="hand2robot did not write"):
        convert(sample, robots_loaded["panda"], foreign, dataset=DatasetConfig(video=None))
    with pytest.raises(DatasetError, match="valid choices: infeasible, no_hand"):
        DatasetConfig(split_on="sometimes")
    with pytest.raises(DatasetError, match="valid choices: libx264, libsvtav1"):
        VideoConfig(codec="mpeg2")
    # Each codec's own presets: the default follows the codec; another codec's is refused.
    assert VideoConfig().preset == "veryfast" and VideoConfig(codec="libsvtav1").preset == "10"
    with pytest.raises(DatasetError, match="libsvtav1 preset 'veryfast'; valid choices: 13, 12"):
        VideoConfig(codec="libsvtav1", preset="veryfast")
    with pytest.raises(DatasetError, match="valid choices: ultrafast, superfast, veryfast"):
        VideoConfig(preset="10")
    gloves = shared_data / "images/gloved_hands_pruning.jpg"  # the detector finds no hand
    message = "gloved_hands_pruning.jpg: no hand detected in its only frame, so nothing to"
    with pytest.raises(retarget.Hand2RobotError, match=message):
        convert(gloves, robots_loaded["panda"], tmp_path / "empty", cache=cache)
    assert not (tmp_path / "empty").exists()
    backs = shared_data / "images/two_left_hands_back.jpg"  # left hands only
    message = "no right hand in its only frame \\(the left hand is in it\\); 'allegro_right' is"
    with pytest.raises(retarget.Hand2RobotError, match=message):
        convert(backs, robots_loaded["allegro_right"], tmp_path / "empty", cache=cache)
    assert not (tmp_path / "empty").exists()


def test_crash_before_commit_leaves_previous_dataset(
    stove_dataset: tuple[Path, Path],
    shared_data: Path,
    panda: retarget.Robot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, cache = copy_of(stove_dataset, tmp_path)
    before = tree_digest(root)

    def crash(*_: object) -> None:
        raise RuntimeError("injected crash")

    monkeypatch.setattr(storage, "commit", crash)
    with pytest.raises(RuntimeError, match="injected"):
        convert(
            shared_data / STOVE,
            panda,
            root,
            placement=EGOCENTRIC,
            cache=cache,
            extract=ExtractConfig(num_hands=1),
            dataset=AGAIN,  # the same clip again, on purpose
        )
    assert tree_digest(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]  # no lock file left


def _append_and_die(root: str, cache: str, shared: str) -> None:
    """Child process: append, and exit hard (no cleanup) right after writing the new data file."""
    import pyarrow.parquet as pq_child

    real = pq_child.write_table

    def write_then_die(table: object, where: object, *args: object, **kwargs: object) -> None:
        real(table, where, *args, **kwargs)
        if "/data/" in str(where):
            os._exit(3)

    pq_child.write_table = write_then_die
    robot = retarget.load_robot("panda")
    convert(
        Path(shared) / STOVE,
        robot,
        root,
        placement=EGOCENTRIC,
        cache=cache,
        extract=ExtractConfig(num_hands=1),
        dataset=AGAIN,  # the same clip again, on purpose
    )


def test_hard_kill_mid_write_leaves_previous_dataset_then_recovers(
    stove_dataset: tuple[Path, Path], shared_data: Path, panda: retarget.Robot, tmp_path: Path
) -> None:
    root, cache = copy_of(stove_dataset, tmp_path)
    before = tree_digest(root)
    child = multiprocessing.get_context("spawn").Process(
        target=_append_and_die, args=(str(root), str(cache), str(shared_data))
    )
    child.start()
    child.join(120)
    assert child.exitcode == 3
    assert tree_digest(root) == before  # the dataset itself was never touched
    assert (tmp_path / ".dataset.hand2robot-staging").is_dir()  # the crash's leftovers
    report = convert(
        shared_data / STOVE,
        panda,
        root,
        placement=EGOCENTRIC,
        cache=cache,
        extract=ExtractConfig(num_hands=1),
        dataset=AGAIN,  # the same clip again, on purpose
    )
    assert report.total_episodes == 2
    assert not (tmp_path / ".dataset.hand2robot-staging").exists()


def test_commit_without_atomic_exchange_falls_back_to_renames(
    stove_dataset: tuple[Path, Path],
    shared_data: Path,
    panda: retarget.Robot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, cache = copy_of(stove_dataset, tmp_path)

    def no_exchange(*_: object) -> None:
        raise OSError(38, "renameat2 is not available")

    monkeypatch.setattr(storage, "exchange", no_exchange)
    report = convert(
        shared_data / STOVE,
        panda,
        root,
        placement=EGOCENTRIC,
        cache=cache,
        extract=ExtractConfig(num_hands=1),
        dataset=AGAIN,  # the same clip again, on purpose
    )
    assert report.total_frames == 120
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]  # no lock file left


IMAGE = "images/two_left_hands_back.jpg"  # one left hand (MANIFEST), 1 frame


def test_a_single_image_is_a_one_frame_episode_at_the_dataset_rate(
    shared_data: Path, panda: retarget.Robot, tmp_path: Path
) -> None:
    root = tmp_path / "dataset"
    cache = tmp_path / "cache"
    report = convert(shared_data / IMAGE, panda, root, cache=cache)
    assert report.frames == [1] and report.episodes == [0]
    info = json.loads((root / "meta/info.json").read_text())
    assert info["fps"] == 1 and info["total_frames"] == 1  # alone, an image sets its own rate
    # Appended to a 30 fps dataset, the image takes that rate (one frame has none of its own).
    other = tmp_path / "stove"
    convert(shared_data / STOVE, panda, other, placement=EGOCENTRIC, cache=cache)
    report = convert(shared_data / IMAGE, panda, other, cache=cache)
    assert report.frames == [1] and report.episodes == [1]
    summary = describe_dataset(other)
    assert summary["total_frames"] == 61 and [e["frames"] for e in summary["episodes"]] == [60, 1]
    row = pq.read_table(other / "data/chunk-000/file-001.parquet").to_pylist()
    assert len(row) == 1 and row[0]["timestamp"] == 0.0 and row[0]["episode_index"] == 1
    np.testing.assert_array_equal(row[0]["action"], row[0]["observation.state"])


def test_nominal_fps(shared_data: Path) -> None:
    kettle = open_media(shared_data / KETTLE)  # 29.97 fps
    assert nominal_fps(kettle) == 30
    assert nominal_fps(kettle, stride=2) == 15
    assert nominal_fps(kettle, max_fps=10) == 10
    assert nominal_fps(open_media(shared_data / "videos/juggle_small_hands.mp4")) == 24


@needs_lerobot
@pytest.mark.parametrize("codec", ["libx264", "libsvtav1"])
def test_real_lerobot_loads_every_row(
    codec: str, shared_data: Path, panda: retarget.Robot, tmp_path: Path
) -> None:

    root = tmp_path / "dataset"
    video = VideoConfig(codec=codec, preset="veryfast" if codec == "libx264" else "10")
    for split in (None, 0.1):  # the split episodes start inside a shared video file
        convert(
            shared_data / STOVE,
            panda,
            root,
            extract=ExtractConfig(num_hands=1),
            placement=EGOCENTRIC,
            cache=tmp_path / "cache",
            dataset=DatasetConfig(video=video, split_min_gap_s=split, allow_duplicate=True),
        )
    # A single image: a one-frame episode in the 30 fps dataset.
    convert(
        shared_data / IMAGE,
        panda,
        root,
        cache=tmp_path / "cache",
        dataset=DatasetConfig(video=video),
    )
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert len(episodes) >= 3 and episodes[-1]["length"] == 1
    # The split cut the clip's start (no hand, then an uncertain lift): its episode begins
    # inside the input.
    rows = read_rows(root)
    assert rows["source_frame_index"][rows["episode_index"] == 1].min() > 0
    assert max(e["videos/observation.images.camera/from_timestamp"] for e in episodes) > 0
    report = check_with_lerobot(root)
    info = json.loads((root / "meta/info.json").read_text())
    assert report["rows"] == info["total_frames"]
    assert report["episodes"] == len(episodes)


def test_cli_writes_and_appends_a_dataset(shared_data: Path, tmp_path: Path) -> None:
    import subprocess

    root = tmp_path / "cli dataset"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cache=tmp_path / "cache")

    clip = str(shared_data / STOVE)
    done = cli(
        "retarget",
        clip,
        "--egocentric",
        "--hands",
        "1",
        "--out",
        str(root),
        "--task",
        "stir",
        "--video-size",
        "256",
        "--crf",
        "30",
    )
    assert done.returncode == 0, done.stderr
    assert "episode 0" in done.stdout and "60 frames" in done.stdout
    # What the summary without --out says too: the hand, the placement, the flags.
    assert "left (asked: auto)" in done.stdout and "default egocentric" in done.stdout
    assert "flag NO_HAND" in done.stdout
    info = json.loads((root / "meta/info.json").read_text())
    assert info["features"]["observation.images.camera"]["shape"] == [192, 256, 3]
    done = cli(
        "retarget", clip, "--egocentric", "--hands", "1", "--out", str(root), "--robot", "so101"
    )
    assert done.returncode == 2 and "robot 'panda', this input 'so101'" in done.stderr
    done = cli("retarget", clip, "--out", str(root), "--split-on", "never")
    assert done.returncode == 2 and "valid choices: infeasible, no_hand" in done.stderr
    done = cli(
        "retarget", clip, "--egocentric", "--hands", "1", "--out", str(root), "--split-gap", "0.1",
        "--allow-duplicate",  # the same frames again, cut otherwise: asked for
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((root / "meta/info.json").read_text())["total_episodes"] >= 2
