"""Camera geometry from image correspondences: viewing rays, rotations, poses from 3D points.

Pure functions on arrays (OpenCV for PnP), used by :mod:`pipeline.camera_motion`: the rotation
between two sets of unit viewing rays (Kabsch), the angles between rays, the distance along a
ray that a depth map gives, and a camera's pose fitted to world points seen at pixels.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.tracks import Intrinsics

#: A ray that has agreed with the fitted rotation for this many frames weighs the most.
TRUSTED_AGE = 30.0
#: A corner whose 3x3 depth window spans more than this fraction of its depth sits on an
#: occlusion edge: its depth is not used.
EDGE_DEPTH_SPREAD = 0.05


def fit_rotation(
    rays_from: NDArray[np.float64], rays_to: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Least-squares rotation M with ``rays_to ~ rays_from @ M.T`` (Kabsch), batched.

    Args:
        rays_from: Shape (..., N, 3) unit vectors.
        rays_to: Shape (..., N, 3) unit vectors.

    Returns:
        Shape (..., 3, 3), proper rotations.
    """
    covariance = np.einsum("...ni,...nj->...ij", rays_to, rays_from)
    u, _, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(u @ vt))
    u[..., :, 2] *= sign[..., None]
    return np.asarray(u @ vt)


def ray_cosines(
    rotation: NDArray[np.float64], rays_from: NDArray[np.float64], rays_to: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Cosines of the angles between ``rays_to`` and the rotated ``rays_from``, shape (..., N).

    Args:
        rotation: Shape (..., 3, 3).
        rays_from: Shape (N, 3) unit vectors.
        rays_to: Shape (N, 3) unit vectors.
    """
    predicted = np.matmul(rays_from, np.swapaxes(rotation, -1, -2))  # (..., N, 3)
    return np.asarray((predicted * rays_to).sum(axis=-1))


def ray_angles(
    rotation: NDArray[np.float64], rays_from: NDArray[np.float64], rays_to: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Angles between ``rays_to`` and the rotated ``rays_from`` [rad], shape (..., N)."""
    return np.asarray(np.arccos(np.clip(ray_cosines(rotation, rays_from, rays_to), -1.0, 1.0)))


def angular_spread(rays: NDArray[np.float64]) -> float:
    """RMS angle of unit rays (N, 3) from their mean direction [rad]."""
    if not len(rays):
        return 0.0
    mean = rays.mean(axis=0)
    mean /= np.linalg.norm(mean)
    return float(np.sqrt(np.mean(np.arccos(np.clip(rays @ mean, -1.0, 1.0)) ** 2)))


def rotation_angle_deg(
    rotation_a: NDArray[np.float64], rotation_b: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Angle of ``rotation_a^T rotation_b`` [deg], batched over (..., 3, 3)."""
    relative = np.einsum("...ji,...jk->...ik", rotation_a, rotation_b)
    cosine = np.clip((np.trace(relative, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    return np.asarray(np.degrees(np.arccos(cosine)))


def fit_rotation_ransac(
    rays_from: NDArray[np.float64],
    rays_to: NDArray[np.float64],
    pairs: NDArray[np.int64],
    cells: NDArray[np.float64],
    age: NDArray[np.float64],
    threshold: float,
) -> tuple[NDArray[np.float64], float, NDArray[np.bool_]]:
    """The rotation that turns most of the image's rays, scored by coverage, then refined.

    Args:
        rays_from: Shape (N, 3), unit rays in the world frame.
        rays_to: Shape (N, 3), the same corners' unit rays in the camera frame.
        pairs: Shape (H, 2), the index pairs of the two-ray hypotheses.
        cells: Shape (N, C), each ray's one-hot cell of a grid over the image.
        age: Shape (N,), frames each ray has agreed with the fitted rotations.
        threshold: A ray is an inlier within this angle [rad].

    Returns:
        The world-to-camera rotation (3, 3), its standard error [deg] (the inliers' residual
        over the square root of their number, divided by their angular spread) and the
        inlier mask (N,).
    """
    hypotheses = fit_rotation(rays_from[pairs], rays_to[pairs])
    cosine = np.cos(threshold)  # angle < threshold, without an arccos per ray
    agree = ray_cosines(hypotheses, rays_from, rays_to) > cosine
    # Coverage first: the background spans the image, a moving body or object a part of it.
    covered = (agree.astype(np.float64) @ cells > 0).sum(axis=1)
    score = covered * (len(rays_from) + 1) + agree.sum(axis=1)
    rotation = hypotheses[int(np.argmax(score))]
    # Each cell weighs the same (a densely textured patch does not outvote the rest), and a
    # ray by how long it has agreed: a new one may sit on something that moves slowly.
    weight = 1.0 / np.maximum(cells.sum(axis=0), 1.0)[np.argmax(cells, axis=1)]
    weight *= np.minimum(age, TRUSTED_AGE) + 1.0
    for _ in range(2):
        inliers = ray_cosines(rotation, rays_from, rays_to) > cosine
        if inliers.sum() < 3:
            return rotation, np.nan, inliers
        rotation = fit_rotation(rays_from[inliers] * weight[inliers, None], rays_to[inliers])
    inliers = ray_cosines(rotation, rays_from, rays_to) > cosine
    residual = ray_angles(rotation, rays_from[inliers], rays_to[inliers])
    spread = angular_spread(rays_to[inliers])
    error = np.sqrt(np.mean(residual**2) / max(int(inliers.sum()), 1)) / max(spread, 0.05)
    return rotation, float(np.degrees(error)), inliers


def ranges_from_depth(
    depth: NDArray[np.float64],
    pixels: NDArray[np.float64],
    rays: NDArray[np.float64],
    image_size: tuple[int, int],
) -> NDArray[np.float64]:
    """Distances [m] along viewing rays to what a depth map (of z [m]) sees at their pixels.

    Args:
        depth: Shape (h, w) [m], NaN where none; any resolution of the colour frame's view.
        pixels: Shape (N, 2) [px] in the colour frame.
        rays: Shape (N, 3), the pixels' unit viewing rays in the camera frame.
        image_size: The colour frame's (width, height) [px].

    Returns:
        Shape (N,) [m]; NaN where the 3x3 window around the map pixel has no depth, or depths
        more than :data:`EDGE_DEPTH_SPREAD` apart (an occlusion edge: the pixel may be on either
        side of it).
    """
    height, width = depth.shape
    column = np.round(pixels[:, 0] * width / image_size[0]).astype(int)
    row = np.round(pixels[:, 1] * height / image_size[1]).astype(int)
    windows = np.full((len(pixels), 9), np.nan)
    for k, (dy, dx) in enumerate((a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)):
        y, x = row + dy, column + dx
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        windows[inside, k] = depth[y[inside], x[inside]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: NaN, as meant
        low, high = np.nanmin(windows, axis=1), np.nanmax(windows, axis=1)
        z = np.nanmedian(windows, axis=1)
    z[~(high - low <= EDGE_DEPTH_SPREAD * z)] = np.nan
    return np.asarray(z / rays[:, 2])


class PoseFit(NamedTuple):
    """A camera pose fitted to world points seen at pixels (:func:`fit_pose_to_points`)."""

    world_to_camera: NDArray[np.float64]
    """Shape (3, 3): the rotation from the world frame to the camera frame."""
    centre: NDArray[np.float64]
    """Shape (3,) [m]: the camera's position in the world."""
    inliers: NDArray[np.bool_]
    """Shape (N,): the points within the threshold of their pixels."""
    residual: NDArray[np.float64]
    """Shape (N,) [px]: each point's reprojection error."""


def fit_pose_to_points(
    world_points: NDArray[np.float64],
    pixels: NDArray[np.float64],
    intrinsics: Intrinsics,
    guess: tuple[NDArray[np.float64], NDArray[np.float64]],
    threshold_px: float,
    iterations: int,
) -> PoseFit | None:
    """RANSAC over OpenCV's PnP from a guess, then Levenberg-Marquardt on the inliers.

    Args:
        world_points: Shape (N, 3) [m], N >= 4.
        pixels: Shape (N, 2) [px], where the camera sees them (distorted, as observed).
        intrinsics: The camera.
        guess: ``rotation_camera_to_world`` (3, 3) and the camera's position (3,) [m].
        threshold_px: A point is an inlier within this reprojection error [px].
        iterations: RANSAC iterations.

    Returns:
        The pose, or None where RANSAC finds no pose with four inliers.
    """
    rotation, centre = guess
    start_rvec = np.asarray(cv2.Rodrigues(rotation.T)[0], dtype=np.float64)
    start_tvec = -rotation.T @ centre
    matrix, distortion = intrinsics.matrix, intrinsics.distortion
    found, rvec, tvec, chosen = cv2.solvePnPRansac(
        world_points, pixels, matrix, distortion, start_rvec, start_tvec.copy(),
        useExtrinsicGuess=True, iterationsCount=iterations, reprojectionError=threshold_px,
        confidence=0.999, flags=cv2.SOLVEPNP_ITERATIVE,
    )  # fmt: skip
    if not found or chosen is None or len(chosen) < 4:
        return None
    inliers = np.zeros(len(pixels), dtype=bool)
    inliers[chosen.ravel()] = True
    rvec, tvec = cv2.solvePnPRefineLM(
        world_points[inliers], pixels[inliers], matrix, distortion, rvec, tvec
    )
    projected, _ = cv2.projectPoints(world_points, rvec, tvec, matrix, distortion)
    residual = np.linalg.norm(projected.reshape(-1, 2) - pixels, axis=1)
    world_to_camera = np.asarray(cv2.Rodrigues(rvec)[0], dtype=np.float64)
    return PoseFit(
        world_to_camera,
        np.asarray(-world_to_camera.T @ tvec.ravel(), dtype=np.float64),
        np.asarray(residual < threshold_px),
        np.asarray(residual, dtype=np.float64),
    )
