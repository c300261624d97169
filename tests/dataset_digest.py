"""Content digests of the datasets the writer makes from real inputs (the refactor guard).

``build_datasets`` writes a fixed set of datasets from the bundled sample tracks and shared real
media through ``pipeline.convert`` (the path ``retarget --out`` runs); ``digest_tree`` reduces a
dataset folder to one digest per file that ignores only what may differ between two machines or
two releases without the writer changing: version fields, absolute paths, the Parquet writer's
``created_by`` string and the pandas version in ``meta/tasks.parquet``. Everything else (every
row of every column, every JSON value, the dataset card, the stored video bytes) is compared.

``tests/data/dataset_digests.json`` holds the digests made before the writer was split into a
package; ``scripts/write_dataset_digests.py`` regenerates it (only do so for a deliberate change
of the output, and say so in the commit).

The hand landmarks MediaPipe finds in the shared video differ between CPUs too (measured on
2026-12-07: the same code, an AMD EPYC with AVX-512 and the machine the digests were made on;
every dataset from the bundled tracks the same, the video's extraction not, and neither numpy's
AVX-512 paths nor OpenBLAS behind it): :func:`landmark_digests` records what the extraction
found, and the video dataset's files made from those numbers are compared only where the
landmarks are the same (as the MP4 bytes are only where the video libraries are).

The arm's inverse kinematics goes through OpenBLAS, whose kernels are chosen for the CPU at run
time and round differently in the last bits (measured: the Panda datasets from OpenBLAS's
Haswell kernels, which an AMD EPYC gets, and its SkylakeX kernels, which an AVX-512 Intel gets,
differ; every other dataset is the same). So the digests are made, and checked, in a process
with the kernels pinned (:data:`PINNED_BLAS`): the same bytes on any x86-64 CPU with AVX2 and
FMA.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow.parquet as pq

import retarget
from pipeline.conversion import convert
from pipeline.dataset import DatasetConfig
from pipeline.extract import ExtractConfig
from pipeline.placement import PlacementConfig
from pipeline.tracks import read_tracks
from retarget import load_any_robot

DIGESTS = Path(__file__).parent / "data" / "dataset_digests.json"
SAMPLE_TRACKS = Path(__file__).parents[1] / "data" / "kettle_pour.tracks.parquet"
STOVE = "videos/stove_stir_egocentric.mp4"
STILL = "images/sign_language_two_people.jpg"
#: The environment the digests are made in: OpenBLAS's Haswell kernels (AVX2, FMA), one thread.
PINNED_BLAS = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "1"}
#: JSON keys whose values name a version of hand2robot or of a library.
VERSION_KEYS = {"hand2robot_version"}
#: A given camera pose: x, y, z [m], roll, pitch, yaw [rad].
POSE = (1.0, 0.1, 0.5, 0.0, 0.3, 3.14159)
SCALED = PlacementConfig(workspace_scale=0.8)
#: The one dataset made from a video (extraction included); the others from the sample tracks.
VIDEO_DATASET = "stove_panda_video"


def build_datasets(base: Path, shared_data: Path) -> dict[str, Path]:
    """Write the guarded datasets under ``base``; returns name -> dataset folder."""
    cache = base / "cache"  # a folder: one file per extraction, named by its key
    cache.mkdir(parents=True, exist_ok=True)
    no_video = DatasetConfig(video=None)
    roots = {}
    for name, robot, options, placement in (
        ("sample_panda", "panda", {}, {}),
        ("sample_allegro_split", "allegro_right", {"split_min_gap_s": 0.2}, {}),
        (
            "sample_bimanual",
            "bimanual_panda",
            {},
            {"placement": PlacementConfig(workspace_scale=0.8)},
        ),
        (
            "sample_so101_fitted",
            "so101",
            {},
            {"placement": PlacementConfig(fit_yaw=True, fit_offset=False)},
        ),
        (
            "sample_panda_both_posed",
            "panda",
            {},
            {"side": "both", "placement": PlacementConfig(camera_pose=POSE)},
        ),
    ):
        root = base / name
        dataset = DatasetConfig(video=None, **options) if options else no_video
        robot_loaded = load_any_robot(robot)
        convert(SAMPLE_TRACKS, robot_loaded, root, dataset=dataset, cache=cache, **placement)
        roots[name] = root
    # Real video through the extraction and encoding path, then a still appended to it.
    root = base / VIDEO_DATASET
    panda = retarget.load_robot("panda")
    convert(
        shared_data / STOVE,
        panda,
        root,
        extract=ExtractConfig(num_hands=1),
        placement=PlacementConfig(egocentric=True),
        cache=cache,
    )
    convert(shared_data / STILL, panda, root, side="right", cache=cache)
    roots[VIDEO_DATASET] = root
    return roots


def _normalise(value: Any) -> Any:
    """JSON with version fields blanked and absolute paths reduced to their file name."""
    if isinstance(value, dict):
        return {
            key: ("<version>" if key in VERSION_KEYS else _normalise(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    if isinstance(value, str) and value.startswith("/"):
        return Path(value).name
    return value


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _parquet_digest(path: Path) -> str:
    table = pq.read_table(path)
    metadata = {
        key.decode(): json.loads(value) if key == b"pandas" else value.decode()
        for key, value in (table.schema.metadata or {}).items()
    }
    if "pandas" in metadata:
        metadata["pandas"].pop("pandas_version", None)
        metadata["pandas"].pop("creator", None)
    schema = [(field.name, str(field.type)) for field in table.schema]
    rows = table.to_pylist()
    text = json.dumps({"schema": schema, "metadata": metadata, "rows": rows}, sort_keys=True)
    return _sha(text.encode())


def _text_digest(path: Path) -> str:
    text = re.sub(r"hand2robot \d+\.\d+\.\d+\S*", "hand2robot <version>", path.read_text())
    return _sha(text.encode())


def digest_tree(root: Path) -> dict[str, str]:
    """One digest per file of a dataset folder, keyed by its path inside it."""
    digests = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        if path.suffix == ".parquet":
            digests[key] = _parquet_digest(path)
        elif path.suffix == ".json":
            data = _normalise(json.loads(path.read_text()))
            digests[key] = _sha(json.dumps(data, sort_keys=True).encode())
        elif path.suffix == ".md":
            digests[key] = _text_digest(path)
        else:
            digests[key] = _sha(path.read_bytes())
    return digests


#: The video dataset's files made from the landmarks' numbers (the rest holds none).
FROM_LANDMARKS = ("data/", "meta/stats.json", "meta/hand2robot.json")


def landmark_digests(base: Path) -> dict[str, str]:
    """One digest per hand-track file the extractions of :func:`build_datasets` cached under
    ``base`` (named by their content key): every hand's image keypoints, world keypoints and
    scores, as MediaPipe gave them."""
    digests = {}
    for path in sorted((base / "cache").glob("*.parquet")):
        tracks = read_tracks(path)
        arrays = [
            array
            for _, hand in sorted(tracks.hands.items())
            for array in (hand.image_keypoints, hand.world_keypoints, hand.score)
        ]
        digests[path.stem] = _sha(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays))
    return digests


def codec_versions() -> dict[str, str]:
    """The video libraries whose builds decide the stored MP4's bytes."""
    return {"av": av.__version__, "libavcodec": str(av.library_versions["libavcodec"])}


def runs_pinned_blas() -> str:
    """Why this machine cannot run :data:`PINNED_BLAS`'s kernels, or ``""`` where it can."""
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        return f"a {platform.machine()} CPU, and OpenBLAS's Haswell kernels are x86-64 code"
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0].split()
    except (OSError, IndexError):
        return "no /proc/cpuinfo to check the CPU for AVX2 and FMA"
    missing = {"avx2", "fma"} - set(flags)
    return f"a CPU without {', '.join(sorted(missing))}" if missing else ""
