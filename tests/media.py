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
