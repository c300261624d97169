"""Camera trajectories given as files: TUM text or a NumPy array of poses, matched to frames.

Two formats:

* TUM (``.txt``, ``.tum``): one pose per line, ``timestamp tx ty tz qx qy qz qw``: the time [s]
  on the clip's clock, the camera's position [m] and orientation (a unit quaternion, scalar last)
  in the world frame; ``#`` starts a comment. This is what ORB-SLAM, DROID-SLAM, COLMAP exports
  and most head-camera rigs write.
* NumPy (``.npy``): an array of shape (T, 4, 4), ``transform_camera_to_world`` per frame, one per
  decoded frame, in order.

TUM poses are matched to the frames' timestamps: the rotation is interpolated spherically
(slerp) and the position linearly between the two poses around each frame. A file that is not
what it should be (a garbled line, too few poses, a quaternion that is not of unit length,
timestamps that do not cover the clip) is an :class:`~pipeline.exceptions.InputMediaError`
naming the file and, where there is one, the line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation, Slerp

from pipeline.camera_motion import CameraMotion
from pipeline.exceptions import InputMediaError

#: File suffixes read as TUM text and as NumPy arrays.
TUM_SUFFIXES = (".txt", ".tum")
NUMPY_SUFFIXES = (".npy",)
#: A quaternion whose norm is further than this from 1 is an error, not a rounding.
_UNIT_TOLERANCE = 1e-3
#: Frame timestamps may lie this far outside the trajectory's span [s] (half a 30 fps frame).
_COVER_TOLERANCE_S = 1.0 / 60.0


def read_tum(path: Path) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Read a TUM trajectory file.

    Args:
        path: The file.

    Returns:
        Timestamps (N,) [s], increasing, and ``transform_camera_to_world`` (N, 4, 4) [m].

    Raises:
        InputMediaError: The file cannot be read, a line is not 8 numbers, a quaternion is not
            of unit length, timestamps do not increase, or it holds fewer than 2 poses.
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise InputMediaError(f"{path}: cannot read the camera trajectory: {error}") from error
    rows: list[list[float]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        try:
            values = [float(value) for value in content.replace(",", " ").split()]
        except ValueError:
            values = []
        if len(values) != 8 or not np.isfinite(values).all():
            raise InputMediaError(
                f"{path}:{number}: expected 8 numbers 'timestamp tx ty tz qx qy qz qw' "
                f"(TUM format), got {content[:80]!r}"
            )
        norm = float(np.linalg.norm(values[4:]))
        if abs(norm - 1.0) > _UNIT_TOLERANCE:
            raise InputMediaError(
                f"{path}:{number}: the quaternion (qx qy qz qw) has norm {norm:.4f}, not 1"
            )
        if rows and values[0] <= rows[-1][0]:
            raise InputMediaError(
                f"{path}:{number}: timestamp {values[0]} does not come after {rows[-1][0]}"
            )
        rows.append(values)
    if len(rows) < 2:
        raise InputMediaError(
            f"{path}: a camera trajectory needs at least 2 poses to match frames to, "
            f"it holds {len(rows)}"
        )
    table = np.asarray(rows)
    transforms = np.tile(np.eye(4), (len(table), 1, 1))
    transforms[:, :3, :3] = Rotation.from_quat(table[:, 4:]).as_matrix()
    transforms[:, :3, 3] = table[:, 1:4]
    return table[:, 0], transforms


def interpolate_poses(
    stamps: NDArray[np.float64],
    transform_camera_to_world: NDArray[np.float64],
    timestamps: NDArray[np.float64],
    source: str,
) -> NDArray[np.float64]:
    """Poses at ``timestamps``: slerp of the rotations, linear in the positions.

    Args:
        stamps: Shape (N,) [s], increasing: when the poses were taken.
        transform_camera_to_world: Shape (N, 4, 4) [m].
        timestamps: Shape (T,) [s]: the frames'.
        source: The trajectory's name for error messages.

    Returns:
        Shape (T, 4, 4) [m].

    Raises:
        InputMediaError: The frames' timestamps reach outside the trajectory's span.
    """
    times = np.asarray(timestamps, dtype=np.float64)
    low, high = float(stamps[0]), float(stamps[-1])
    if len(times) and (
        times.min() < low - _COVER_TOLERANCE_S or times.max() > high + _COVER_TOLERANCE_S
    ):
        raise InputMediaError(
            f"{source}: the trajectory covers {low:.3f}-{high:.3f} s, the clip's frames "
            f"{times.min():.3f}-{times.max():.3f} s; give poses for the whole clip"
        )
    times = np.clip(times, low, high)
    slerp = Slerp(stamps, Rotation.from_matrix(transform_camera_to_world[:, :3, :3]))
    poses = np.tile(np.eye(4), (len(times), 1, 1))
    poses[:, :3, :3] = slerp(times).as_matrix()
    for axis in range(3):
        poses[:, axis, 3] = np.interp(times, stamps, transform_camera_to_world[:, axis, 3])
    return poses


def read_numpy_poses(path: Path, frames: int) -> NDArray[np.float64]:
    """Read ``transform_camera_to_world`` (T, 4, 4) [m] from a ``.npy`` file, one per frame.

    Raises:
        InputMediaError: The file cannot be read, is not (frames, 4, 4), holds non-finite
            values, or its rotations are not rotations.
    """
    try:
        poses = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InputMediaError(f"{path}: cannot read the camera poses: {error}") from error
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) != frames:
        raise InputMediaError(
            f"{path}: expected camera poses of shape ({frames}, 4, 4), one per frame of the "
            f"clip, got {poses.shape}"
        )
    poses = np.asarray(poses, dtype=np.float64)
    if not np.isfinite(poses).all():
        raise InputMediaError(f"{path}: the camera poses hold NaN or inf")
    rotations = poses[:, :3, :3]
    orthogonality = np.einsum("tji,tjk->tik", rotations, rotations) - np.eye(3)
    bad = np.flatnonzero(
        (np.abs(orthogonality).max(axis=(1, 2)) > _UNIT_TOLERANCE) | (np.linalg.det(rotations) < 0)
    )
    if len(bad):
        raise InputMediaError(
            f"{path}: pose {int(bad[0])} (of {frames}) has no rotation in its upper-left 3x3"
        )
    return poses


def read_trajectory(path: Path, timestamps: NDArray[np.float64]) -> NDArray[np.float64]:
    """The clip's ``transform_camera_to_world`` (T, 4, 4) [m] from a trajectory file.

    Args:
        path: A TUM text file (:data:`TUM_SUFFIXES`) or a ``.npy`` array (:data:`NUMPY_SUFFIXES`).
        timestamps: Shape (T,) [s]: the decoded frames' timestamps.

    Raises:
        InputMediaError: The file is missing, of an unknown kind, or not valid.
    """
    path = Path(path)
    if not path.is_file():
        raise InputMediaError(f"{path}: no such camera trajectory file")
    suffix = path.suffix.lower()
    if suffix in TUM_SUFFIXES:
        stamps, poses = read_tum(path)
        return interpolate_poses(stamps, poses, timestamps, str(path))
    if suffix in NUMPY_SUFFIXES:
        return read_numpy_poses(path, len(timestamps))
    raise InputMediaError(
        f"{path}: unknown camera trajectory kind {suffix!r}; valid: "
        f"{', '.join(TUM_SUFFIXES + NUMPY_SUFFIXES)}"
    )


CAMERA_MOTIONS = ("static", "estimate")
"""The ``camera_motion`` choices besides a trajectory file's path."""


def camera_motion_kind(camera_motion: str | Path) -> str:
    """``"static"``, ``"estimate"``, or the trajectory file's path (checked to exist).

    Raises:
        InputMediaError: Neither a choice nor an existing file (the message lists the choices).
    """
    if isinstance(camera_motion, str) and camera_motion in CAMERA_MOTIONS:
        return camera_motion
    if not Path(camera_motion).is_file():
        raise InputMediaError(
            f"camera motion {str(camera_motion)!r} is neither {' nor '.join(CAMERA_MOTIONS)} nor "
            "a camera trajectory file (TUM .txt/.tum or .npy of (T, 4, 4)) that exists"
        )
    return str(camera_motion)


def given_motion(camera_motion: str, timestamps: NDArray[np.float64]) -> CameraMotion:
    """The clip's :class:`CameraMotion` for ``"static"`` or a trajectory file's path.

    Raises:
        InputMediaError: ``"estimate"`` (the estimator makes its own), or a bad file.
    """
    if camera_motion == "static":
        return CameraMotion.static(len(timestamps))
    if camera_motion == "estimate":
        raise InputMediaError("an estimated camera motion comes from CameraMotionEstimator")
    poses = read_trajectory(Path(camera_motion), timestamps)
    return CameraMotion(poses, np.zeros(len(poses)), np.full(len(poses), -1), camera_motion)
