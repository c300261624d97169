"""The Python API end to end on a shared real video (the README's example, runnable).

    python scripts/example_api.py [OUT_DIR]

Extracts the hands of ``stove_stir_egocentric.mp4``, retargets them onto the Panda, writes a
surrogate LeRobot dataset, then prints what ``hand2robot inspect`` would show.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pipeline
import retarget

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def main(out: Path) -> dict[str, object]:
    clip = SHARED / "stove_stir_egocentric.mp4"
    arm = retarget.load_robot("panda")
    dataset = out / "stove"

    # 1. Extract (hand tracks through the cache, the stored video in the same pass).
    video = pipeline.VideoConfig(max_size=320)
    done = pipeline.extract_input(
        clip, extract=pipeline.ExtractConfig(num_hands=1), video=video, temp_dir=out
    )
    try:
        # 2. Retarget (egocentric default placement, wrist motion scaled to 80%).
        hand = pipeline.retarget_tracks(
            done.tracks,
            arm,
            placement=pipeline.PlacementConfig(egocentric=True, workspace_scale=0.8),
        )
        print(f"{hand.side} hand: {hand.result.feasible.mean():.0%} of frames feasible")
        # 3. Write the episode (atomic append; provenance marks it as surrogate data).
        config = pipeline.DatasetConfig(task="stir the pot", video=video)
        report = pipeline.append_episodes(
            dataset, done.tracks, hand, arm, video=done.video, fps=done.fps, config=config
        )
    finally:
        done.discard()
    print(f"wrote episodes {report.episodes} ({report.frames} frames) to {dataset}")
    summary = pipeline.describe_dataset(dataset)
    print(json.dumps({k: summary[k] for k in ("robot", "total_frames", "flag_counts")}))
    return summary


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
