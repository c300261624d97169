"""The dataset card (``README.md``) written beside the data: what it is, how to filter it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.dataset.layout import PROVENANCE_PATH


def dataset_card(info: dict[str, Any], provenance: dict[str, Any]) -> str:
    """The README.md written beside the data."""
    lines = [
        "---",
        "tags: [LeRobot, hand2robot, surrogate-data, human-video]",
        "---",
        "",
        f"# Surrogate {info['robot_type']} episodes from human video",
        "",
        "**This is surrogate data.** Every episode was retargeted by hand2robot from a video of "
        "human hands onto the robot below; no robot performed it. Use it as auxiliary data beside "
        "real robot experience, never as a replacement. The provenance of every episode is in "
        f"`{PROVENANCE_PATH}` (`surrogate: true`).",
        "",
        f"- robot: `{info['robot_type']}` (URDF SHA-256 `{provenance['robot']['urdf_sha256']}`)",
        f"- episodes: {info['total_episodes']}, frames: {info['total_frames']}, fps: {info['fps']}",
        f"- feasible frames: {provenance['feasible_fraction']:.1%}",
        f"- hand2robot {provenance['hand2robot_version']}",
        "",
        "## Filtering on feasibility",
        "",
        "Each frame has `feasible` (no flag set) and `flags`, a bitmask of the reasons a frame "
        "is not something the robot could do: "
        + ", ".join(
            f"`{name}`={value}" for name, value in provenance["conventions"]["flags"].items()
        )
        + ". Keep only feasible frames when training:",
        "",
        "```python",
        "from lerobot.datasets.lerobot_dataset import LeRobotDataset",
        "",
        "dataset = LeRobotDataset(repo_id, root=path)",
        "feasible = [i for i, ok in enumerate(dataset.hf_dataset['feasible']) if ok]",
        "```",
        "",
        "`action` is the next frame's `observation.state` (the last frame of an episode holds "
        "its state). Frames without a hand hold the last valid state and carry `NO_HAND`.",
        "",
        "## Inputs",
        "",
        "| input | source | SHA-256 | frames | episodes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for record in provenance["inputs"]:
        source = record["source"]
        lines.append(
            f"| {record['input_index']} | `{Path(str(source.get('path', ''))).name}` "
            f"{source.get('url', '')} | `{str(source.get('sha256', ''))[:16]}...` | "
            f"{record['frames_written']} / {record['frames']} | "
            f"{', '.join(map(str, record['episodes']))} |"
        )
    return "\n".join(lines) + "\n"
