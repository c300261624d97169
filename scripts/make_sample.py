"""Regenerate the bundled sample hand-track file from a shared real video.

    python scripts/make_sample.py [--video ../shared/data/videos/kettle_pour_third_person.mp4]

The source clip is facebookresearch/sam2's demo/data/gallery/04_coffee.mp4 (Apache-2.0), as
listed in ../shared/data/MANIFEST.tsv; the sample holds only the extracted keypoints and poses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.extract import extract_hands
from pipeline.tracks import write_tracks

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--video",
        type=Path,
        default=ROOT.parent / "shared/data/videos/kettle_pour_third_person.mp4",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "data/kettle_pour.tracks.parquet")
    args = parser.parse_args()
    tracks = extract_hands(args.video)
    # Record the source by its public origin, not this machine's path.
    source = {
        "path": "facebookresearch/sam2@2b90b9f:demo/data/gallery/04_coffee.mp4",
        "sha256": tracks.source["sha256"],
        "licence": "Apache-2.0",
    }
    write_tracks(type(tracks)(**{**tracks.__dict__, "source": source}), args.out)
    print(f"wrote {args.out}: {tracks.num_frames} frames")


if __name__ == "__main__":
    main()
