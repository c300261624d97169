"""Overlay video cost: the robot drawn from its URDF meshes against the joint chain, per frame.

    python scripts/bench_viz.py [--rounds 3] [--robots panda ur5_allegro]

For each shared clip below, each robot is retargeted once into a fresh dataset, then
``pipeline.viz.render_episode`` writes its overlay video with ``skeleton=True`` (the drawing of
earlier releases) and with the meshes (the default), interleaved, ``--rounds`` times each;
the median wall time per frame of each and their ratio are reported (goal, issue #25: meshes
at most 2x the joint chain at 720p). Each round includes decoding the source again, the
forward kinematics and the H.264 encode of the source-size frame plus its panel; the meshes'
one-off load (simplification, numba's compiled code from its disk cache) is timed apart.
Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

CLIPS = {
    "kettle_pour_third_person.mp4 (1280x720)": ("videos/kettle_pour_third_person.mp4", False),
    "pour_water_egocentric_zed (ZED frames)": ("frames/pour_water_egocentric_zed", True),
    "stove_stir_egocentric.mp4 (384x288)": ("videos/stove_stir_egocentric.mp4", True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--robots", nargs="+", default=["panda", "ur5_allegro"])
    args = parser.parse_args()

    import pipeline
    import retarget
    from pipeline.viz import meshes as mesh_module
    from pipeline.viz import render_episode

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        for label, (path, egocentric) in CLIPS.items():
            for name in args.robots:
                robot = retarget.load_robot(name)
                root = base / f"{name}-{Path(path).stem}"
                pipeline.convert(
                    SHARED / path,
                    robot,
                    root,
                    placement=pipeline.PlacementConfig(egocentric=egocentric),
                    cache=base / "cache",
                )
                mesh_module._LOADED.clear()  # the one-off load, timed apart: cold each time
                start = time.perf_counter()
                mesh_module.robot_meshes(robot)
                load = time.perf_counter() - start
                times: dict[str, list[float]] = {"joint chain": [], "meshes": []}
                frames = 0
                for _ in range(args.rounds):
                    for kind, skeleton in (("joint chain", True), ("meshes", False)):
                        start = time.perf_counter()
                        frames = render_episode(root, 0, base / "out.mp4", skeleton=skeleton)
                        times[kind].append((time.perf_counter() - start) / frames * 1e3)
                chain = statistics.median(times["joint chain"])
                meshes = statistics.median(times["meshes"])
                rows.append(
                    {
                        "clip": label,
                        "robot": name,
                        "frames": frames,
                        "joint_chain_ms": round(chain, 2),
                        "meshes_ms": round(meshes, 2),
                        "ratio": round(meshes / chain, 2),
                        "mesh_load_s": round(load, 2),
                    }
                )
    machine = f"{platform.machine()}, Python {platform.python_version()}"
    print(f"machine: {machine}, rounds {args.rounds}")
    print("| clip | robot | frames | joint chain ms/frame | meshes ms/frame | ratio | load s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['clip']} | {row['robot']} | {row['frames']} | {row['joint_chain_ms']} | "
            f"{row['meshes_ms']} | {row['ratio']} | {row['mesh_load_s']} |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
