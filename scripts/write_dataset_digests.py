"""Regenerate ``tests/data/dataset_digests.json`` from the writer as it is now.

Run only for a deliberate change of what the writer outputs (and say so in the commit); the
test ``tests/test_dataset_identity.py`` holds every later change to these digests::

    python scripts/write_dataset_digests.py            (writes the file)
    python scripts/write_dataset_digests.py --print    (prints the record, for the test)

It runs itself again with OpenBLAS's kernels pinned (``tests.dataset_digest.PINNED_BLAS``), so
the digests do not depend on the CPU it runs on.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import SHARED_DATA  # noqa: E402
from tests.dataset_digest import (  # noqa: E402
    DIGESTS,
    PINNED_BLAS,
    build_datasets,
    codec_versions,
    digest_tree,
    landmark_digests,
)


def main() -> None:
    if any(os.environ.get(key) != value for key, value in PINNED_BLAS.items()):
        # Before numpy is imported: OpenBLAS reads these when it loads.
        os.execve(sys.executable, [sys.executable, *sys.argv], os.environ | PINNED_BLAS)
    with tempfile.TemporaryDirectory() as base:
        roots = build_datasets(Path(base), SHARED_DATA)
        record = {
            "codec_versions": codec_versions(),
            "landmarks": landmark_digests(Path(base)),
            "datasets": {name: digest_tree(root) for name, root in roots.items()},
        }
    if sys.argv[1:] == ["--print"]:
        print(json.dumps(record))
        return
    DIGESTS.parent.mkdir(parents=True, exist_ok=True)
    DIGESTS.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {DIGESTS}: {sum(len(d) for d in record['datasets'].values())} files")


if __name__ == "__main__":
    main()
