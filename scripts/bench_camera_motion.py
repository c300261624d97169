"""Camera motion taken out of the hand motion (#21), on the shared real data.

    python scripts/bench_camera_motion.py

In one run:

- turning clips: ``kettle_pour_third_person.mp4`` and ``cups_shuffle_third_person.mp4`` seen by
  a camera turning by known rotations (``tests.media.turning_clip``: amplitudes 8, 4, 2.4 deg,
  period 4 s, CRF 18), and the same frames unturned: the estimate's rotation error against the
  truth, the unturned clip's estimated rotation (a static camera), and the world-frame wrists'
  distance from the unturned clip's, with the camera-frame wrists' for comparison; with the
  default lift and with the track's distance prior off (``ExtractConfig(distance_spread=None)``);
- ``stove_stir_egocentric.mp4`` (a real head camera): the head rotation the estimate finds, its
  standard deviation and inliers, and the Panda's feasible and ``VELOCITY_LIMIT`` frames with
  ``--egocentric`` placement, static camera against estimated;
- the estimator's cost per frame on the kettle clip's 1280x720 frames, one OpenCV thread
  (``prepare``, which the pipeline runs in the decoding thread, and ``add``), frames decoded
  beforehand;
- a head camera that moves as well as turns (``tests.media.moving_rgbd_clip``: a real ZED RGB-D
  frame re-rendered along a known path of 7 cm and 4 deg): the pose error without depth maps
  (rotation only) and with them (rotation and translation), the world-frame wrist against the
  one the true poses give, and the cost of ``add`` with depth (1280x720, one OpenCV thread, maps
  read when corners are added).
"""

from __future__ import annotations

import json
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
from pipeline.camera_geometry import rotation_angle_deg  # noqa: E402
from pipeline.camera_motion import CameraMotionConfig, CameraMotionEstimator  # noqa: E402
from pipeline.depth_maps import load_depth_map  # noqa: E402
from pipeline.extract_config import ExtractConfig  # noqa: E402
from pipeline.tracks import Intrinsics, hands_in_world  # noqa: E402
from retarget import Flag  # noqa: E402
from tests.media import moving_rgbd_clip, turning_clip  # noqa: E402

CLIPS = ("kettle_pour_third_person.mp4", "cups_shuffle_third_person.mp4")
STOVE = SHARED / "videos" / "stove_stir_egocentric.mp4"
FRAMES = 150
#: The monocular lift of releases before the track's distance prior, for the turning clips.
NO_PRIOR = ExtractConfig(distance_spread=None)


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
        swing = rotation_angle_deg(truth[:1], truth)
        for label, config in (("", ExtractConfig()), (", no track prior", NO_PRIOR)):
            turned = pipeline.extract_hands(turn, camera_motion="estimate", config=config)
            unturned = pipeline.extract_hands(still, camera_motion="estimate", config=config)
            error = rotation_angle_deg(truth, turned.transform_camera_to_world[:, :3, :3])
            static = rotation_angle_deg(np.eye(3), unturned.transform_camera_to_world[:, :3, :3])
            print(
                f"| {name}{label} | {len(truth)} | {swing.max():.1f} deg | "
                f"{np.nanmedian(error):.3f} / {np.nanmax(error):.3f} deg | "
                f"{np.nanmedian(static):.3f} / {np.nanmax(static):.3f} deg | "
                f"{_wrist_gap(turned, unturned, True)} | {_wrist_gap(turned, unturned, False)} |"
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


def moving(folder: Path) -> None:
    zed = SHARED / "frames" / "pour_water_egocentric_zed"
    stem = sorted(p.stem for p in zed.glob("*.png"))[7]
    matrix = np.array(json.loads((zed / "calibration.json").read_text())["intrinsic_left"][
        "intrinsic_matrix"])  # fmt: skip
    truth = moving_rgbd_clip(
        zed / f"{stem}.png", SHARED / "frames/pour_water_egocentric_zed_depth" / f"{stem}.png",
        matrix, folder,
    )  # fmt: skip
    config = pipeline.ExtractConfig(folder_fps=30.0)
    print(
        "\n| moving RGB-D clip | rotation error median / max | position error median / max | "
        "world wrist vs true poses (median) | std median |"
    )
    print("| --- | --- | --- | --- | --- |")
    for label, depth in (("rotation only", None), ("with depth maps", folder / "depth")):
        tracks = pipeline.extract_hands(
            folder / "rgb", depth=depth, camera_motion="estimate", config=config
        )
        poses = tracks.transform_camera_to_world
        rotation = rotation_angle_deg(truth[:, :3, :3], poses[:, :3, :3])
        position = np.linalg.norm(poses[:, :3, 3] - truth[:, :3, 3], axis=1) * 1000
        hand = tracks.hands["right"]
        seen = hand.present
        camera = hand.transform_wrist_to_camera[seen, :3, 3]
        world = hands_in_world(tracks, [hand])[0].transform_wrist_to_camera[seen, :3, 3]
        exact = np.einsum("tij,tj->ti", truth[seen, :3, :3], camera) + truth[seen, :3, 3]
        gap = np.median(np.linalg.norm(world - exact, axis=1)) * 100
        print(
            f"| {label} | {np.nanmedian(rotation):.3f} / {np.nanmax(rotation):.3f} deg | "
            f"{np.nanmedian(position):.1f} / {np.nanmax(position):.1f} mm | {gap:.1f} cm | "
            f"{np.nanmedian(tracks.camera_rotation_std):.3f} deg |"
        )
    cv2.setNumThreads(1)
    images = sorted((folder / "rgb").glob("*.png"))
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in images]
    maps = [load_depth_map(folder / "depth" / p.name, 1000.0) for p in images]
    height, width = frames[0].shape[:2]
    intrinsics = Intrinsics(matrix, np.zeros(5), width, height, "bench")
    work = [CameraMotionConfig().work_image(frame) for frame in frames]
    costs = {}
    for label, given in (("without depth", False), ("with depth", True)):
        estimator = CameraMotionEstimator(intrinsics)
        start = time.perf_counter()
        for image, depth_map in zip(work, maps, strict=True):
            estimator.add(image, (), (lambda m=depth_map: m) if given else None)
        costs[label] = (time.perf_counter() - start) / len(work) * 1000
    print(
        f"\nestimator cost on these {width}x{height} frames, one OpenCV thread, {len(work)} "
        "frames (maps decoded beforehand): add "
        + ", ".join(f"{label} {ms:.2f} ms/frame" for label, ms in costs.items())
    )


def main() -> None:
    machine = platform.processor() or platform.machine()
    versions = f"python {platform.python_version()}, opencv {cv2.__version__}"
    print(f"{date.today()}, {machine}, {versions}\n")
    with tempfile.TemporaryDirectory() as folder:
        turning(Path(folder))
    with tempfile.TemporaryDirectory() as folder:
        moving(Path(folder))
    stove()
    cost()


if __name__ == "__main__":
    main()
