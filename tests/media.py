"""Media made from the shared real clips, for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray


def reencode(source: Path, target: Path, crf: int) -> Path:
    """``source`` re-encoded by libx264 at ``crf``, every frame's timestamp kept."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = inp.streams.video[0]
        encoded = out.add_stream("libx264", rate=stream.average_rate)
        encoded.width, encoded.height, encoded.pix_fmt = stream.width, stream.height, "yuv420p"
        encoded.time_base = stream.time_base
        encoded.options = {"crf": str(crf)}
        for frame in inp.decode(stream):
            image = frame.reformat(format="yuv420p")
            image.pts, image.time_base = frame.pts, stream.time_base
            out.mux(encoded.encode(image))
        out.mux(encoded.encode())
    return target


def turning_rotations(
    timestamps: NDArray[np.float64], amplitude_deg: tuple[float, float, float], period_s: float
) -> NDArray[np.float64]:
    """A smooth head turn: ``rotation_camera_to_world`` (T, 3, 3), the identity at time 0.

    Yaw (about camera y), pitch (about camera x) and roll (about camera z) follow sines of
    ``amplitude_deg`` with periods ``period_s``, ``0.7 period_s`` and ``1.3 period_s``.
    """
    from scipy.spatial.transform import Rotation

    phase = 2 * np.pi * np.asarray(timestamps) / period_s
    yaw, pitch, roll = (
        np.radians(amplitude) * np.sin(phase / factor)
        for amplitude, factor in zip(amplitude_deg, (1.0, 0.7, 1.3), strict=True)
    )
    return Rotation.from_euler("YXZ", np.stack([yaw, pitch, roll], axis=1)).as_matrix()


def turning_clip(
    source: Path,
    target: Path,
    matrix: NDArray[np.float64],
    amplitude_deg: tuple[float, float, float] = (8.0, 4.0, 2.4),
    period_s: float = 4.0,
    max_frames: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``source`` as seen by a camera turning about its centre: every frame re-projected.

    Each frame is warped by the exact homography ``K R_t^T K^-1`` of a pure rotation (black
    borders where the turned camera sees beyond the original frame), encoded at CRF 18.

    Args:
        matrix: The camera matrix K (3, 3) [px] both cameras share.
        amplitude_deg: Yaw, pitch and roll amplitudes [deg] (:func:`turning_rotations`).

    Returns:
        The timestamps (T,) [s] and the true ``rotation_camera_to_world`` (T, 3, 3), the world
        being the source's (fixed) camera.
    """
    import cv2

    stamps: list[float] = []
    rotations: list[NDArray[np.float64]] = []
    inverse = np.linalg.inv(matrix)
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = inp.streams.video[0]
        encoded = out.add_stream("libx264", rate=stream.average_rate)
        encoded.width, encoded.height, encoded.pix_fmt = stream.width, stream.height, "yuv420p"
        encoded.time_base = stream.time_base
        encoded.options = {"crf": "18"}
        for frame in inp.decode(stream):
            if max_frames is not None and len(stamps) == max_frames:
                break
            assert frame.pts is not None and stream.time_base is not None
            stamp = float(frame.pts * stream.time_base)
            since = stamp - (stamps[0] if stamps else stamp)
            rotation = turning_rotations(np.array([since]), amplitude_deg, period_s)[0]
            image = frame.to_ndarray(format="rgb24")
            warped = np.asarray(
                cv2.warpPerspective(
                    image, matrix @ rotation.T @ inverse, (image.shape[1], image.shape[0])
                ),
                dtype=np.uint8,
            )
            turned = av.VideoFrame.from_ndarray(warped, format="rgb24").reformat(format="yuv420p")
            turned.pts, turned.time_base = frame.pts, stream.time_base
            out.mux(encoded.encode(turned))
            stamps.append(stamp)
            rotations.append(rotation)
        out.mux(encoded.encode())
    return np.asarray(stamps), np.asarray(rotations)


def moving_rgbd_clip(
    image: Path,
    depth: Path,
    matrix: NDArray[np.float64],
    target: Path,
    frames: int = 40,
) -> NDArray[np.float64]:
    """One real RGB-D frame seen by a head camera that moves and turns along a known path.

    Every pixel with depth is a point of a static scene; each frame is that scene rendered
    from the moved camera (a z-buffer: the nearest point wins a pixel; a pixel no point lands on
    takes its neighbours' colour when they have one, else stays black, and has no depth). The
    camera's centre moves up to 6 cm sideways, 3 cm up and down and 5 cm forward while it
    turns by up to 4 deg (yaw), 2 deg (pitch) and 1 deg (roll). Lens distortion is left out:
    the frames are pinhole images of ``matrix``.

    Args:
        image: The colour frame (any format OpenCV reads).
        depth: Its depth map, 16-bit PNG in millimetres (0: none), aligned with it.
        matrix: The camera matrix K (3, 3) [px] of both.
        target: A folder; ``rgb/NNNN.png`` (with ``rgb/intrinsics.json``) and
            ``depth/NNNN.png`` (millimetres) are written there.
        frames: Frames in the clip.

    Returns:
        The true ``transform_camera_to_world`` (T, 4, 4), the world being the first frame's
        camera.
    """
    import json

    import cv2
    from scipy.spatial.transform import Rotation

    colour = cv2.imread(str(image))
    z = cv2.imread(str(depth), cv2.IMREAD_UNCHANGED).astype(np.float64) / 1000.0
    height, width = z.shape
    v, u = np.mgrid[0:height, 0:width]
    seen = z > 0
    depths = z[seen]
    points = np.stack(
        [
            (u[seen] - matrix[0, 2]) / matrix[0, 0] * depths,
            (v[seen] - matrix[1, 2]) / matrix[1, 1] * depths,
            depths,
        ],
        axis=1,
    )
    colours = colour[seen]
    (target / "rgb").mkdir(parents=True, exist_ok=True)
    (target / "depth").mkdir(exist_ok=True)
    poses = []
    for index in range(frames):
        phase = 2 * np.pi * index / (frames - 1)
        pose = np.eye(4)
        pose[:3, :3] = Rotation.from_euler(
            "yxz", [4 * np.sin(phase), 2 * np.sin(phase + 1), np.sin(phase)], degrees=True
        ).as_matrix()
        pose[:3, 3] = (0.06 * np.sin(phase), 0.03 * np.sin(2 * phase), 0.05 * index / frames)
        poses.append(pose)
        camera = (points - pose[:3, 3]) @ pose[:3, :3]  # R^T (X - c), row by row
        front = camera[:, 2] > 0.05
        column = np.round(matrix[0, 0] * camera[:, 0] / camera[:, 2] + matrix[0, 2])
        row = np.round(matrix[1, 1] * camera[:, 1] / camera[:, 2] + matrix[1, 2])
        inside = front & (column >= 0) & (column < width) & (row >= 0) & (row < height)
        pixel = (row[inside] * width + column[inside]).astype(np.int64)
        nearest = np.full(height * width, np.inf)
        np.minimum.at(nearest, pixel, camera[inside, 2])
        wins = camera[inside, 2] <= nearest[pixel]
        rendered = np.zeros((height * width, 3), dtype=np.uint8)
        rendered[pixel[wins]] = colours[inside][wins]
        hole = ~np.isfinite(nearest).reshape(height, width)
        frame = rendered.reshape(height, width, 3)
        grown = cv2.dilate(frame, np.ones((3, 3), np.uint8))
        frame = np.where(hole[..., None], grown, frame)
        rendered_depth = np.where(np.isfinite(nearest), nearest, 0.0).reshape(height, width)
        cv2.imwrite(str(target / "rgb" / f"{index:04d}.png"), frame)
        millimetres = np.round(rendered_depth * 1000).astype(np.uint16)
        cv2.imwrite(str(target / "depth" / f"{index:04d}.png"), millimetres)
    (target / "rgb" / "intrinsics.json").write_text(
        json.dumps(
            {"fx": matrix[0, 0], "fy": matrix[1, 1], "cx": matrix[0, 2], "cy": matrix[1, 2],
             "width": width, "height": height}
        )
    )  # fmt: skip
    truth = np.asarray(poses)
    return np.asarray(np.linalg.inv(truth[0]) @ truth)


def open_close(
    closure: NDArray[np.float64], window: int = 15, span: float = 0.25
) -> NDArray[np.bool_]:
    """Frames of the open-and-close stretches, shape (T,) bool.

    Every frame of a ``window``-frame stretch over which ``closure`` (:func:`hand_closure`, one
    value per frame) spans ``span`` or more: the hand opens or closes within it.
    """
    chosen = np.zeros(len(closure), dtype=bool)
    for start in range(max(1, len(closure) - window + 1)):
        part = closure[start : start + window]
        if part.max() - part.min() >= span:
            chosen[start : start + window] = True
    return chosen


def hand_closure(world_keypoints: NDArray[np.float64]) -> NDArray[np.float64]:
    """How open a hand is: the mean wrist-to-fingertip distance of the thumb, index, middle and
    ring fingers over the wrist-to-middle-knuckle length, shape (T,) from (T, 21, 3)."""
    tips = np.linalg.norm(world_keypoints[:, [4, 8, 12, 16]] - world_keypoints[:, :1], axis=-1)
    palm = np.linalg.norm(world_keypoints[:, 9] - world_keypoints[:, 0], axis=-1)
    return np.asarray(tips.mean(axis=1) / palm)


def open_close_stretches(
    world_keypoints: NDArray[np.float64], present: NDArray[np.bool_], window: int = 15
) -> list[NDArray[np.int64]]:
    """Runs of consecutive frames with a hand in :func:`open_close` stretches, at least
    ``window`` frames each: frame indices."""
    closure = hand_closure(np.where(present[:, None, None], world_keypoints, np.nan))
    chosen = np.flatnonzero(open_close(np.nan_to_num(closure), window) & present)
    runs = np.split(chosen, np.flatnonzero(np.diff(chosen) > 1) + 1)
    return [run for run in runs if len(run) >= window]


def turn_from_medoid_deg(rotations: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each rotation's angle from the stretch's medoid (the rotation with the smallest median
    angle to the others) [deg], shape (N,) from (N, 3, 3)."""
    from pipeline.camera_geometry import rotation_angle_deg

    angles = rotation_angle_deg(rotations[:, None], rotations[None])
    return np.asarray(angles[int(np.argmin(np.median(angles, axis=1)))])


def still_wrist_clip(
    source: Path,
    target: Path,
    timestamps: NDArray[np.float64],
    image_keypoints: NDArray[np.float64],
    size: int = 480,
    palm_fraction: float = 0.22,
) -> Path:
    """The frames of ``source`` at ``timestamps``, moved so that the hand's wrist stands still.

    Each frame is turned, scaled and shifted (one similarity per frame, from the wrist and
    middle knuckle smoothed over 50 ms) so that the wrist stays at the centre of a ``size``
    square and the wrist-to-middle-knuckle line keeps the stretch's median direction; the scale
    is one for the whole clip, the palm ``palm_fraction`` of the frame on the median frame (with
    the default field of view a hand about 0.35 m from the camera). What the fingers do is
    left as it was. Written as PNG frames named by their time (``0.041667.png`` [s]): lossless,
    so the same every time (a re-encode's bytes, and so the landmarker's answers, varied from
    run to run).

    Args:
        source: A video.
        target: The folder to write (created).
        timestamps: Shape (N,) [s] from the first frame, the source frames to take.
        image_keypoints: Shape (N, 21, 2) [px], the hand in those frames (no NaN). Taken at
            the precision a hand-track file keeps them (float32), so that a track fresh from
            the landmarker and the same track read from the cache make the same clip: the
            landmarker's answers on the made clip change with differences of 1e-5 px.
    """
    import cv2

    from pipeline.hand_identity import smooth

    image_keypoints = np.asarray(image_keypoints, dtype=np.float32).astype(np.float64)
    wrist, knuckle = image_keypoints[:, 0], image_keypoints[:, 9]
    direction = np.unwrap(np.arctan2(*(knuckle - wrist).T[::-1]))
    valid = np.ones(len(timestamps), dtype=bool)
    path = smooth(timestamps, valid, np.column_stack([wrist, direction]), 0.05)
    median = float(np.median(direction))
    scale = palm_fraction * size / float(np.median(np.linalg.norm(knuckle - wrist, axis=1)))
    centre = np.array([size / 2, size / 2])
    target.mkdir(parents=True, exist_ok=True)
    taken = 0
    with av.open(str(source)) as inp:
        stream = inp.streams.video[0]
        half = 0.5 / float(stream.average_rate or 30)
        first = None
        for frame in inp.decode(stream):
            assert frame.pts is not None and stream.time_base is not None
            stamp = float(frame.pts * stream.time_base)
            first = stamp if first is None else first
            if taken == len(timestamps):
                break
            if abs(stamp - first - timestamps[taken]) >= half:
                continue  # not one of the wanted frames
            x, y, angle = path[taken]
            turn = median - angle
            linear = scale * np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
            affine = np.column_stack([linear, centre - linear @ (x, y)])
            image = cv2.warpAffine(frame.to_ndarray(format="bgr24"), affine, (size, size))
            cv2.imwrite(str(target / f"{stamp - first:.6f}.png"), image)
            taken += 1
    assert taken == len(timestamps), f"{source}: {taken} of {len(timestamps)} frames found"
    return target
