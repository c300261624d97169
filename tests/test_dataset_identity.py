"""The datasets written today match, file by file, those written before the writer was split.

Digests ignore only version fields, absolute paths and library version strings
(``tests/dataset_digest.py``). The stored MP4 bytes depend on the video libraries' builds: they
are compared when PyAV and libavcodec are those the digests were made with, and otherwise only
their presence is (the rest of every dataset, video statistics included, is still compared).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from tests.dataset_digest import DIGESTS, build_datasets, codec_versions, digest_tree


@pytest.fixture(scope="module")
def written(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_datasets(tmp_path_factory.mktemp("identity"), shared_data)


def test_datasets_match_the_recorded_digests_file_by_file(written: dict[str, Path]) -> None:
    recorded = json.loads(DIGESTS.read_text())
    same_codecs = recorded["codec_versions"] == codec_versions()
    if not same_codecs:  # said, not silent: the rest of every dataset is still compared
        warnings.warn(
            f"video libraries {codec_versions()} differ from the recorded "
            f"{recorded['codec_versions']}: stored MP4 bytes not compared",
            stacklevel=1,
        )
    assert set(written) == set(recorded["datasets"])
    for name, root in written.items():
        expected = recorded["datasets"][name]
        digests = digest_tree(root)
        assert sorted(digests) == sorted(expected), f"{name}: other files"
        differ = [
            path
            for path, digest in digests.items()
            if digest != expected[path] and (same_codecs or not path.endswith(".mp4"))
        ]
        assert not differ, f"{name}: these files differ from the recorded dataset: {differ}"
