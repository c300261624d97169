"""The README's Python example runs as written, on a shared real video."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.dataset import describe_dataset

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_example_runs_as_written(shared_data: Path, tmp_path: Path) -> None:
    section = README.read_text().split("\n## Python API\n", 1)[1]
    block = section.split("```python\n", 1)[1].split("\n```", 1)[0]
    assert block.count('"clip.mp4"') == 1  # the one stand-in, set once
    video = shared_data / "videos/stove_stir_egocentric.mp4"  # 60 frames, one hand
    code = block.replace('"clip.mp4"', repr(str(video)))
    # The last expression of the example, printed, to check what it says.
    code += "\nimport json; print(json.dumps([result.status, len(result.errors), side]))\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=os.environ | {"HAND2ROBOT_CACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    status, errors, side = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == "ok" and errors == 0
    # convert, then the three steps by hand: two inputs in the same dataset.
    pour = describe_dataset(tmp_path / "datasets/pour")
    assert pour["robot"] == "panda" and pour["inputs"] == 2
    for robot in ("panda", f"allegro_{side}"):
        summary = describe_dataset(tmp_path / "datasets/all" / robot)
        assert summary["total_frames"] == 60 and summary["surrogate"] is True


def test_readme_layout_names_every_module_and_only_modules_that_exist() -> None:
    import re

    section = README.read_text().split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        cell = row.split("|")[1]
        paths = re.findall(r"`([^`]+)`", cell)
        folder = paths[0].rsplit("/", 1)[0] if "/" in paths[0] else ""
        for path in paths:
            full = path if "/" in path else f"{folder}/{path}"
            assert (README.parent / full).exists(), f"README layout names {full}, not there"
            named.add(full.rstrip("/"))
    root = README.parent
    for package in ("pipeline", "retarget"):
        for module in sorted((root / package).rglob("*.py")):
            relative = module.relative_to(root).as_posix()
            if module.name.startswith("_") or relative in named:
                continue
            assert module.parent.relative_to(root).as_posix() in named, (
                f"{relative} is not in README's layout"
            )
