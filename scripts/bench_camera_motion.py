"""Camera motion taken out of the hand motion (#21), on the shared real data.

    python scripts/bench_camera_motion.py

In one run:

- turning clips: ``kettle_pour_third_person.mp4`` and ``cups_shuffle_third_person.mp4`` seen by
  a camera turning by known rotations (``tests.media.turning_clip``: amplitudes 8, 4, 2.4 deg,
  period 4 s, CRF 18), and the same frames unturned: the estimate's rotation error against the
  truth, the unturned clip's estimated rotation (a static camera), and the world-frame wrists'
  distance from the unturned clip's, with the camera-frame wrists' for comparison;
- ``stove_stir_egocentric.mp4`` (a real head camera): the head rotation the estimate finds, its
  standard deviation and inliers, and the Panda's feasible and ``VELOCITY_LIMIT`` frames with
  ``--egocentric`` placement, static camera against estimated;
- the estimator's cost per frame on the kettle clip's 1280x720 frames, one OpenCV thread
  (``prepare``, which the pipeline runs in the decoding thread, and ``add``), frames decoded
  beforehand.
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

import pipeline  # noqa: E402
import retarget  # noqa: E402
from pipeline.camera_motion import CameraMotionEstimator, rotation_angle_deg  # noqa: E402
from pipeline.tracks import Intrinsics, hands_in_world  # noqa: E402
from retarget import Flag  # noqa: E402
from tests.media import turning_clip  # noqa: E402

CLIPS = ("kettle_pour_third_person.mp4", "cups_shuffle_third_person.mp4")
STOVE = SHARED / "videos" / "stove_stir_egocentric.mp4"
FRAMES = 150


def _matrix(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return Intrinsics.from_fov(stream.width, stream.height, 60.0).matrix


def _wrist_gap(tracks: pipeline.HandTracks, reference: pipeline.HandTracks, world: bool) -> str:
    gaps = []
    for side in ("left", "right"):
        a, b = tracks.hands[side], reference.hands[side]
        if world:
            a, b = hands_in_world(tracks, [a])[0], hands_in_world(reference, [b])[0]
        both = a.present & b.present
        if both.sum() >= 10:
            distance = (
                a.transform_wrist_to_camera[both, :3, 3] - b.transform_wrist_to_camera[both, :3, 3]
            )
            gaps.append(f"{side} {np.median(np.linalg.norm(distance, axis=1)) * 100:.1f}")
    return ", ".join(gaps) + " cm"


def turning(folder: Path) -> None:
    print(
        "| clip | frames | swing max | rotation error median / max | static clip's rotation "
        "median / max | world wrists vs unturned (median) | camera-frame wrists |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in CLIPS:
        source = SHARED / "videos" / name
        matrix = _matrix(source)
        turn, still = folder / f"turn_{name}", folder / f"still_{name}"
        _, truth = turning_clip(source, turn, matrix, max_frames=FRAMES)
        turning_clip(source, still, matrix, amplitude_deg=(0, 0, 0), max_frames=FRAMES)
        turned = pipeline.extract_hands(turn, camera_motion="estimate")
        unturned = pipeline.extract_hands(still, camera_motion="estimate")
        error = rotation_angle_deg(truth, turned.transform_camera_to_world[:, :3, :3])
        static = rotation_angle_deg(np.eye(3), unturned.transform_camera_to_world[:, :3, :3])
        swing = rotation_angle_deg(truth[:1], truth)
        print(
            f"| {name} | {len(truth)} | {swing.max():.1f} deg | {np.nanmedian(error):.3f} / "
            f"{np.nanmax(error):.3f} deg | {np.nanmedian(static):.3f} / {np.nanmax(static):.3f} "
            f"deg | {_wrist_gap(turned, unturned, True)} | {_wrist_gap(turned, unturned, False)} |"
        )


def stove() -> None:
    estimated = pipeline.extract_hands(STOVE, camera_motion="estimate")
    static = pipeline.extract_hands(STOVE, camera_motion="static")
    rotation = rotation_angle_deg(np.eye(3), estimated.transform_camera_to_world[:, :3, :3])
    std = estimated.camera_rotation_std
    print(
        f"\nstove_stir_egocentric.mp4, {estimated.num_frames} frames: head rotation from the first "
        f"frame median {np.nanmedian(rotation):.1f}, max {np.nanmax(rotation):.1f} deg; rotation "
        f"std median {np.nanmedian(std):.3f} deg, unknown poses {int(np.isnan(std).sum())}"
    )
    robot = retarget.load_robot("panda")
    placement = pipeline.PlacementConfig(egocentric=True)
    print("\n| camera motion | hand | feasible | VELOCITY_LIMIT | UNREACHABLE | CAMERA_UNCERTAIN |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, tracks in (("static", static), ("estimate", estimated)):
        for side in ("left", "right"):
            if not tracks.hands[side].present.any():
                continue
            done = pipeline.retarget_tracks(tracks, robot, side=side, placement=placement)
            flags = done.result.flags
            counts = [
                int(((flags & flag) != 0).sum())
                for flag in (Flag.VELOCITY_LIMIT, Flag.UNREACHABLE, Flag.CAMERA_UNCERTAIN)
            ]
            print(
                f"| {label} | {done.side} | {int(done.result.feasible.sum())} of {len(flags)} | "
                + " | ".join(map(str, counts))
                + " |"
            )


def cost() -> None:
    cv2.setNumThreads(1)
    source = SHARED / "videos" / CLIPS[0]
    with av.open(str(source)) as container:
        frames = [
            f.to_ndarray(format="rgb24")
            for _, f in zip(range(FRAMES), container.decode(video=0), strict=False)
        ]
    height, width = frames[0].shape[:2]
    estimator = CameraMotionEstimator(Intrinsics.from_fov(width, height, 60.0))
    start = time.perf_counter()
    images = [estimator.config.work_image(frame) for frame in frames]
    prepare = (time.perf_counter() - start) / len(frames) * 1000
    start = time.perf_counter()
    for image in images:
        estimator.add(image)
    add = (time.perf_counter() - start) / len(frames) * 1000
    print(
        f"\nestimator cost at {width}x{height}, one OpenCV thread, {len(frames)} frames: "
        f"prepare {prepare:.2f} ms/frame (decoding thread), add {add:.2f} ms/frame"
    )


def main() -> None:
    machine = platform.processor() or platform.machine()
    versions = f"python {platform.python_version()}, opencv {cv2.__version__}"
    print(f"{date.today()}, {machine}, {versions}\n")
    with tempfile.TemporaryDirectory() as folder:
        turning(Path(folder))
    stove()
    cost()


if __name__ == "__main__":
    main()
