"""hand2robot's provenance carried across edits made by LeRobot's own tools.

``lerobot-edit-dataset`` (``delete_episodes``, ``split``, ``merge``; checked with lerobot 0.4.4)
rewrites a dataset from its LeRobot metadata. The per-frame columns come through whole (state,
action, ``feasible``, ``flags``, ``residual.*``, ``observation.human.*``,
``observation.camera.*``, the source timestamps and frame indices), but ``meta/hand2robot.json``
(the provenance and its surrogate tag) and the dataset card ``README.md`` do not, and episodes
are renumbered; ``merge`` also turns the NaN of a figure that does not apply (``residual.*``
on a frame without a hand, say) into a null, which lerobot then loads as ``None``.
:func:`restore_provenance` writes the provenance and the card back: it finds where each episode
of the edited dataset came from among the hand2robot datasets it was made from, by its frames
(the source frame indices and joint states, bit for bit), and rebuilds the provenance from
those episodes' records and their inputs', renumbered. It turns such nulls back into NaN.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.dataset.card import dataset_card
from pipeline.dataset.layout import CARD_PATH, INFO_PATH, PROVENANCE_PATH
from pipeline.dataset.meta import feasible_fraction, package_version
from pipeline.dataset.reader import read_existing
from pipeline.dataset.storage import write_json
from pipeline.exceptions import DatasetError


def episode_fingerprints(root: Path) -> dict[int, str]:
    """Each episode's fingerprint: SHA-256 of its source frame indices and joint states."""
    files = sorted(root.glob("data/*/*.parquet"))
    if not files:
        raise DatasetError(f"{root}: no data/*/*.parquet files")
    table = pq.read_table(
        files, columns=["episode_index", "source_frame_index", "observation.state"]
    )
    prints = {}
    for episode in np.unique(table["episode_index"].to_numpy()):
        rows = table.filter(pc.equal(table["episode_index"], int(episode)))
        digest = hashlib.sha256()
        digest.update(rows["source_frame_index"].to_numpy().astype(np.int64).tobytes())
        state = rows["observation.state"].combine_chunks().flatten().to_numpy()
        digest.update(state.astype(np.float32).tobytes())
        prints[int(episode)] = digest.hexdigest()
    return prints


def restore_provenance(root: str | Path, sources: Sequence[str | Path]) -> dict[str, Any]:
    """Write ``meta/hand2robot.json`` and the card of a dataset edited by another tool.

    Args:
        root: The edited dataset (a LeRobot v3.0 dataset without hand2robot's provenance).
        sources: The hand2robot datasets it was made from (for a merge, each of them).

    Returns:
        The provenance written.

    Raises:
        DatasetError: ``root`` is not a LeRobot dataset or still has its provenance; a source
            is not a hand2robot dataset; the sources hold different robots; an episode of
            ``root`` matches no source episode (the message names it).
    """
    root = Path(root)
    try:
        info = json.loads((root / INFO_PATH).read_text())
    except (OSError, ValueError) as err:
        raise DatasetError(f"{root}: not a LeRobot dataset ({err})") from None
    if (root / PROVENANCE_PATH).exists():
        raise DatasetError(f"{root} already has {PROVENANCE_PATH}; nothing to restore")
    if not sources:
        raise DatasetError("give the hand2robot datasets the edited one was made from")
    # Fingerprint -> the source episodes with it, in order: a merge of datasets that hold the
    # same episode keeps them in the order of its sources, and so are they taken.
    known: dict[str, list[tuple[int, int]]] = {}
    provenances = []
    for s, source in enumerate(Path(p) for p in sources):
        existing = read_existing(source, writing=False)
        if existing is None:
            raise DatasetError(f"{source}: no dataset there")
        provenances.append(existing.provenance)
        for episode, fingerprint in episode_fingerprints(source).items():
            known.setdefault(fingerprint, []).append((s, episode))
    robots = {json.dumps(p["robot"], sort_keys=True) for p in provenances}
    if len(robots) > 1:
        names = sorted({p["robot"]["name"] for p in provenances})
        raise DatasetError(f"the sources hold different robots ({', '.join(names)}); give one's")
    provenance = copy.deepcopy(provenances[0])
    provenance["inputs"], provenance["episodes"] = [], []
    inputs: dict[tuple[int, int], dict[str, Any]] = {}
    for episode, fingerprint in sorted(episode_fingerprints(root).items()):
        if not known.get(fingerprint):
            raise DatasetError(
                f"{root}: episode {episode} matches no episode of "
                + ", ".join(str(p) for p in sources)
                + " (give every dataset it was made from)"
            )
        candidates = known[fingerprint]  # the last one stays: an episode may come back twice
        s, original = candidates.pop(0) if len(candidates) > 1 else candidates[0]
        record = copy.deepcopy(_episode_record(provenances[s], original))
        key = (s, int(record["input_index"]))
        if key not in inputs:
            source_input = copy.deepcopy(provenances[s]["inputs"][key[1]])
            source_input["input_index"] = len(inputs)
            source_input["episodes"] = []
            inputs[key] = source_input
            provenance["inputs"].append(source_input)
        inputs[key]["episodes"].append(episode)
        record["episode_index"] = episode
        record["input_index"] = inputs[key]["input_index"]
        provenance["episodes"].append(record)
    provenance["total_frames"] = int(info["total_frames"])
    provenance["feasible_fraction"] = feasible_fraction(provenance["episodes"])
    provenance["restored"] = {
        "from": [str(Path(p).resolve()) for p in sources],
        "by": f"hand2robot {package_version()}",
        "why": "the dataset was rewritten by a tool that keeps LeRobot's metadata only",
    }
    provenance["restored"]["nulls_made_nan"] = _nulls_to_nan(root)
    write_json(root / PROVENANCE_PATH, provenance)
    (root / CARD_PATH).write_text(dataset_card(info, provenance))
    return provenance


def _nulls_to_nan(root: Path) -> int:
    """Nulls in float columns of the data files made NaN again; their count.

    Each file changed is written beside itself, then moved into place.
    """
    filled = 0
    for path in sorted(root.glob("data/*/*.parquet")):
        table = pq.read_table(path)
        columns, changed = [], False
        for name in table.column_names:
            column = table[name]
            if pa.types.is_floating(column.type) and column.null_count:
                filled += column.null_count
                column = pc.fill_null(column, pa.scalar(float("nan"), column.type))
                changed = True
            columns.append(column)
        if changed:
            staged = path.with_suffix(".parquet.tmp")
            pq.write_table(pa.table(columns, schema=table.schema), staged)
            staged.replace(path)
    return filled


def _episode_record(provenance: dict[str, Any], episode: int) -> dict[str, Any]:
    for record in provenance["episodes"]:
        if int(record["episode_index"]) == episode:
            return dict(record)
    raise DatasetError(f"provenance has no record of episode {episode}")
