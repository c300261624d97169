"""Load a hand2robot dataset with the real ``lerobot`` library and check every row.

Run with a Python that has lerobot (>= 0.4) installed, not hand2robot's environment (lerobot
needs torch; hand2robot does not). It needs only lerobot, torch, numpy, pyarrow and PyAV:

    python scripts/check_lerobot.py DATASET_DIR [--backend torchcodec|pyav]

Checks, for every row ``i`` of the dataset: ``dataset[i]`` loads; its index, episode, frame
index, timestamp, state, action, feasible and flags equal the Parquet row; every feature loads
with the dtype ``meta/info.json`` declares for it; its task is the task
string; and its video frame is the stored MP4 frame ``from_timestamp * fps + frame_index``
(decoded independently with PyAV), closer to it than to either neighbouring frame. Prints one
JSON line with the counts and the largest pixel error; exits 1 on the first failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq


def mp4_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--backend", default=None, help="lerobot video backend")
    args = parser.parse_args()

    import lerobot
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = args.root.resolve()
    dataset = LeRobotDataset("hand2robot/check", root=root, video_backend=args.backend)
    info = json.loads((root / "meta/info.json").read_text())
    fps = info["fps"]
    table = pq.read_table(sorted(root.glob("data/*/*.parquet")))
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    video_keys = [k for k, v in info["features"].items() if v["dtype"] == "video"]
    assert len(dataset) == table.num_rows == info["total_frames"], (len(dataset), table.num_rows)
    assert dataset.num_episodes == info["total_episodes"]
    cache: dict[Path, np.ndarray] = {}
    worst = 0.0
    declared = {k: v["dtype"] for k, v in info["features"].items() if v["dtype"] != "video"}
    for i in range(len(dataset)):
        item = dataset[i]
        if i == 0:  # the loaded types are the declared ones, for every feature
            loaded = {k: str(item[k].dtype).removeprefix("torch.") for k in declared}
            wrong = {k: (declared[k], loaded[k]) for k in declared if declared[k] != loaded[k]}
            assert not wrong, f"declared and loaded dtypes differ: {wrong}"
        row = {k: table.column(k)[i].as_py() for k in table.column_names}
        for key in ("index", "episode_index", "frame_index", "task_index"):
            assert int(item[key]) == row[key], (i, key, item[key], row[key])
        assert abs(float(item["timestamp"]) - row["timestamp"]) < 1e-6, i
        for key in ("observation.state", "action"):
            assert np.allclose(item[key].numpy(), row[key], atol=1e-6), (i, key)
        assert bool(item["feasible"]) == row["feasible"] and int(item["flags"]) == row["flags"]
        episode = episodes[row["episode_index"]]
        assert item["task"] == episode["tasks"][0], (item["task"], episode["tasks"])
        for key in video_keys:
            path = root / info["video_path"].format(
                video_key=key,
                chunk_index=episode[f"videos/{key}/chunk_index"],
                file_index=episode[f"videos/{key}/file_index"],
            )
            if path not in cache:
                cache[path] = mp4_frames(path).astype(np.float32) / 255.0
            frames = cache[path]
            k = round(episode[f"videos/{key}/from_timestamp"] * fps) + row["frame_index"]
            image = item[key].numpy().transpose(1, 2, 0)
            errors = {
                j: float(np.abs(frames[j] - image).mean())
                for j in (k - 1, k, k + 1)
                if 0 <= j < len(frames)
            }
            best = min(errors, key=errors.__getitem__)
            # A tie is no error: some sources hold the same picture twice in a row.
            assert errors[k] <= errors[best] + 1e-6, (
                f"row {i}: lerobot decoded frame {best}, expected {k}: {errors}"
            )
            worst = max(worst, errors[k])
    print(
        json.dumps(
            {
                "lerobot": lerobot.__version__,
                "rows": len(dataset),
                "episodes": dataset.num_episodes,
                "video_keys": video_keys,
                "max_mean_abs_pixel_error": round(worst, 5),
                "ok": True,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
