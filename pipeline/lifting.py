"""Lifting a detected hand to metric 3D: the wrist pose in the camera frame, by PnP.

The landmarker gives 21 keypoints in a hand-centred metric frame W (its world landmarks) and
the same keypoints in the image; SQPnP (OpenCV) against the camera intrinsics places W in the
camera frame, and :func:`retarget.hand_frame_from_keypoints` turns that into the pose of the hand
frame H. The mean reprojection error is the lifting's own quality figure (``LIFT_UNCERTAIN``).
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.tracks import HandTrack, Intrinsics
from retarget import hand_frame_from_keypoints
from retarget.exceptions import InvalidInputError


def _transforms_world_to_camera(
    world_keypoints: NDArray[np.float64],
    image_keypoints: NDArray[np.float64],
    intrinsics: Intrinsics,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """SQPnP poses of the landmarker's metric frame W in the camera frame, and reprojection errors.

    Returns:
        ``transform_world_to_camera`` (N, 4, 4) and mean reprojection errors (N,) [px]; NaN
        where PnP fails.
    """
    count = len(world_keypoints)
    transforms = np.full((count, 4, 4), np.nan)
    for index in range(count):
        ok, rvec, tvec = cv2.solvePnP(
            world_keypoints[index],
            image_keypoints[index],
            intrinsics.matrix,
            intrinsics.distortion,
            flags=cv2.SOLVEPNP_SQPNP,
        )
        if ok:
            transforms[index, :3, :3] = cv2.Rodrigues(rvec)[0]
            transforms[index, :3, 3] = tvec.ravel()
            transforms[index, 3] = (0.0, 0.0, 0.0, 1.0)
    # Every frame's keypoints in the camera frame, projected (with distortion) in one call.
    points_camera = (
        np.einsum("nij,nkj->nki", transforms[:, :3, :3], world_keypoints)
        + transforms[:, None, :3, 3]
    )
    errors = np.full(count, np.nan)
    solved = np.isfinite(points_camera).all(axis=(1, 2))
    if solved.any():
        projected, _ = cv2.projectPoints(
            points_camera[solved].reshape(-1, 3),
            np.zeros(3),
            np.zeros(3),
            intrinsics.matrix,
            intrinsics.distortion,
        )
        residuals = projected.reshape(-1, 21, 2) - image_keypoints[solved]
        errors[solved] = np.linalg.norm(residuals, axis=2).mean(axis=1)
    return transforms, errors


def lift_wrist_poses(
    world_keypoints: NDArray[np.float64],
    image_keypoints: NDArray[np.float64],
    intrinsics: Intrinsics,
    side: str,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Metric poses of the hand frame H in the camera frame, by PnP, for many frames.

    Args:
        world_keypoints: Shape (N, 21, 3) [m], the landmarker's hand-centred metric frame W.
        image_keypoints: Shape (N, 21, 2) [px], as observed (distorted) in the image.
        intrinsics: Camera matrix and distortion (SQPnP works on the undistorted points).
        side: ``"left"`` or ``"right"`` (sets the sign of H's palm normal).

    Returns:
        ``transform_wrist_to_camera`` (N, 4, 4) and the mean reprojection errors (N,) [px]; NaN
        for a frame where PnP fails or the hand is degenerate (wrist and MCPs collinear).
    """
    count = len(world_keypoints)
    poses, errors = _transforms_world_to_camera(world_keypoints, image_keypoints, intrinsics)
    try:
        frames = hand_frame_from_keypoints(world_keypoints, side)  # type: ignore[arg-type]
    except InvalidInputError:
        frames = np.full((count, 4, 4), np.nan)
        for index in range(count):
            try:
                one = world_keypoints[index : index + 1]
                frames[index] = hand_frame_from_keypoints(one, side)  # type: ignore[arg-type]
            except InvalidInputError:
                errors[index] = np.nan
    poses = poses @ frames
    errors[~np.isfinite(poses).all(axis=(1, 2))] = np.nan
    return poses, errors


def solve_wrist_pose(
    world_keypoints: NDArray[np.float64],
    image_keypoints: NDArray[np.float64],
    intrinsics: Intrinsics,
    side: str,
) -> tuple[NDArray[np.float64], float]:
    """One frame of :func:`lift_wrist_poses`: shapes (21, 3) and (21, 2) in, (4, 4) and [px] out."""
    poses, errors = lift_wrist_poses(world_keypoints[None], image_keypoints[None], intrinsics, side)
    return poses[0], float(errors[0])


def lifted_in_camera(hand: HandTrack) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A track's lifted keypoints in the camera frame, and the pose of its landmarker frame W.

    Returns:
        Keypoints, shape (T, 21, 3) [m], and ``transform_world_to_camera``, shape (T, 4, 4);
        NaN where the hand is absent or has no lift.
    """
    frames = len(hand.present)
    points, world_to_camera = np.full((frames, 21, 3), np.nan), np.full((frames, 4, 4), np.nan)
    rows = np.flatnonzero(
        hand.present & np.isfinite(hand.transform_wrist_to_camera).all(axis=(1, 2))
    )
    if rows.size:
        world = hand.world_keypoints[rows]
        hand_to_world = hand_frame_from_keypoints(world, hand.side)  # type: ignore[arg-type]
        world_to_camera[rows] = hand.transform_wrist_to_camera[rows] @ np.linalg.inv(hand_to_world)
        points[rows] = (
            np.einsum("nij,nkj->nki", world_to_camera[rows, :3, :3], world)
            + world_to_camera[rows, None, :3, 3]
        )
    return points, world_to_camera
