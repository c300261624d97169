"""Feature statistics of ``meta/stats.json``: per episode, merged over a dataset.

Each record holds LeRobot's ``min, max, mean, std, count`` and a private ``_finite`` count per
entry (the weights that let episodes be merged exactly without reading their rows again); the
private keys are kept in the provenance and left out of ``stats.json`` (:func:`public_stats`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from pipeline.exceptions import DatasetError

Stats = dict[str, list[Any]]
"""One feature's statistics record."""


def column_stats(values: NDArray[np.float64]) -> Stats:
    """min, max, mean, std, count of (T, n) values over finite entries (0 where none)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    safe = np.where(finite, values, 0.0)
    total = np.maximum(count, 1)
    mean = safe.sum(axis=0) / total
    square = (safe**2).sum(axis=0) / total
    lo = np.where(finite, values, np.inf).min(axis=0)
    hi = np.where(finite, values, -np.inf).max(axis=0)
    return stats_record(lo, hi, mean, square, len(values), count)


def stats_record(
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    mean: NDArray[np.float64],
    square: NDArray[np.float64],
    rows: int,
    finite: NDArray[np.integer] | NDArray[np.floating],
) -> Stats:
    """The stats entry from its moments (mean of values and of squares); 0 where none finite."""
    none = finite == 0
    lo, hi = lo.copy(), hi.copy()
    lo[none] = hi[none] = 0.0
    return {
        "min": lo.tolist(),
        "max": hi.tolist(),
        "mean": mean.tolist(),
        "std": np.sqrt(np.maximum(square - mean**2, 0.0)).tolist(),
        "count": [int(rows)],
        "_finite": np.asarray(finite).astype(int).tolist(),
    }


def merge_stats(parts: list[Stats]) -> Stats:
    """Combine per-episode :func:`column_stats` (weights = finite counts)."""
    finite = np.array([p["_finite"] for p in parts], dtype=np.float64)
    mean = np.array([p["mean"] for p in parts])
    std = np.array([p["std"] for p in parts])
    total = np.maximum(finite.sum(axis=0), 1)
    merged_mean = (finite * mean).sum(axis=0) / total
    square = (finite * (std**2 + mean**2)).sum(axis=0) / total
    has = finite > 0
    lo = np.where(has, np.array([p["min"] for p in parts]), np.inf).min(axis=0)
    hi = np.where(has, np.array([p["max"] for p in parts]), -np.inf).max(axis=0)
    rows = sum(p["count"][0] for p in parts)
    return stats_record(lo, hi, merged_mean, square, rows, finite.sum(axis=0))


def image_stats(channel_stats: NDArray[np.float64]) -> Stats:
    """LeRobot image statistics (per channel, shaped [[[v]]] x 3) from per-frame RGB figures.

    ``channel_stats``: shape (T, 4, 3), per frame the min, max, mean and mean square of each
    channel in [0, 1] (:attr:`pipeline.encoding.EpisodeVideo.channel_stats`).
    """
    mean = channel_stats[:, 2].mean(axis=0)
    square = channel_stats[:, 3].mean(axis=0)

    def nest(v: NDArray[np.float64]) -> list[Any]:
        return [[[float(x)]] for x in v]

    return {
        "min": nest(channel_stats[:, 0].min(axis=0)),
        "max": nest(channel_stats[:, 1].max(axis=0)),
        "mean": nest(mean),
        "std": nest(np.sqrt(np.maximum(square - mean**2, 0.0))),
        "count": [len(channel_stats)],
        "_finite": [len(channel_stats)] * 3,
    }


def merge_image_stats(parts: list[Stats]) -> Stats:
    """Combine per-episode :func:`image_stats`, keeping their nesting."""
    flat = [
        {key: np.ravel(part[key]).tolist() for key in ("min", "max", "mean", "std")}
        | {"count": part["count"], "_finite": part["_finite"]}
        for part in parts
    ]
    merged = merge_stats(flat)
    return {
        key: [[[v]] for v in merged[key]] if key in ("min", "max", "mean", "std") else merged[key]
        for key in merged
    }


def episode_stats(
    piece: pa.Table, features: dict[str, Any], video_stats: NDArray[np.float64] | None
) -> dict[str, Stats]:
    """Per-feature statistics of one episode's rows (video: from the encoder's figures)."""
    stats = {}
    for name, spec in features.items():
        if spec["dtype"] == "video":
            if video_stats is None:
                raise DatasetError(f"feature {name} has no video statistics")
            stats[name] = image_stats(video_stats)
            continue
        values = piece.column(name).combine_chunks()
        if isinstance(values.type, pa.FixedSizeListType):
            array = np.asarray(values.flatten().to_numpy(zero_copy_only=False))
        else:
            array = np.asarray(values.to_numpy(zero_copy_only=False))
        stats[name] = column_stats(array.reshape(piece.num_rows, -1).astype(np.float64))
    return stats


def dataset_stats(parts: dict[str, list[Stats]], features: dict[str, Any]) -> dict[str, Stats]:
    """Every feature's statistics over the dataset, from its episodes' records."""
    return {
        name: (
            merge_image_stats(records)
            if features[name]["dtype"] == "video"
            else merge_stats(records)
        )
        for name, records in parts.items()
    }


def public_stats(stats: dict[str, Stats]) -> dict[str, Stats]:
    """``stats`` without the private ``_``-keys: what ``meta/stats.json`` holds."""
    return {
        name: {key: value for key, value in s.items() if not key.startswith("_")}
        for name, s in stats.items()
    }
