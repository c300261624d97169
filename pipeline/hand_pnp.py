"""The landmarker's 3D hand placed in the camera by PnP, near the landmarker's own view of it.

The landmarker sees a crop around the hand and gives its 3D hand W in axes aligned with that
view: W in the camera is about the smallest rotation that takes the optical axis onto the hand's
viewing ray (:func:`landmarker_orientation`; SQPnP's rotation lies a median 4-12 deg from it,
90th percentile 6-15 deg, by hand over the shared clips at 24 fps). A nearly flat hand also fits
its image turned over (PnP's mirror solution, the two fitting to a fraction of a pixel apart):
SQPnP then answers with whichever fits a little better, and the lifted hand jumped by about 90
deg between nearly identical frames (three frames of the arm-wrestlers' clasped hand, 46-69
deg from the view, both fits 2.8-3.3 px on a 66 px hand). Where SQPnP's
rotation is more than :data:`MAX_PNP_TURN_DEG` from the landmarker's view, PnP is started again
from that view (Levenberg-Marquardt), and its answer is kept when the image cannot tell the two
apart (:data:`PNP_TIE_SHARE`); where the view fits the image clearly worse, SQPnP's answer
stays.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from pipeline.camera_geometry import rotation_angle_deg
from pipeline.tracks import Intrinsics

MAX_PNP_TURN_DEG = 45.0
"""SQPnP's rotation of W further than this from the landmarker's view [deg] is checked against
PnP started from that view (:func:`transforms_world_to_camera`)."""
PNP_TIE_SHARE = 0.02
"""Two poses whose mean reprojection errors differ by less than this share of the hand's size
in the image (its keypoints' larger extent) are a tie for the image: the landmarker's keypoints
are off by 5-12% of it on well-detected frames (``FeasibilityConfig.max_lift_error``). On the
shared clips' mirror solutions the two differ by 0.1-0.5 px on a 66 px hand."""


def normalized_points(pixels: NDArray[np.float64], intrinsics: Intrinsics) -> NDArray[np.float64]:
    """Undistorted normalised image coordinates of ``pixels`` [px], shape (..., 2) -> (..., 2)."""
    flat = np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 2)
    undistorted = cv2.undistortPoints(flat, intrinsics.matrix, intrinsics.distortion)
    return np.asarray(undistorted, dtype=np.float64).reshape(np.shape(pixels))


def viewing_rays(pixels: NDArray[np.float64], intrinsics: Intrinsics) -> NDArray[np.float64]:
    """Unit viewing rays of ``pixels`` [px] in the camera frame, shape (..., 2) -> (..., 3)."""
    normalized = normalized_points(pixels, intrinsics)
    rays = np.concatenate([normalized, np.ones(normalized.shape[:-1] + (1,))], axis=-1)
    return np.asarray(rays / np.linalg.norm(rays, axis=-1, keepdims=True))


def landmarker_orientation(
    image_keypoints: NDArray[np.float64], intrinsics: Intrinsics
) -> NDArray[np.float64]:
    """W's orientation in the camera frame as the landmarker saw the hand, shape (N, 3, 3).

    The smallest rotation that takes the optical axis onto the viewing ray through the
    keypoints' centroid; ``image_keypoints`` shape (N, 21, 2) [px].
    """
    if len(image_keypoints) == 0:
        return np.zeros((0, 3, 3))
    centre = viewing_rays(np.asarray(image_keypoints).mean(axis=1), intrinsics)  # (N, 3)
    axis = np.cross([0.0, 0.0, 1.0], centre)
    sine = np.linalg.norm(axis, axis=1)
    angle = np.arctan2(sine, centre[:, 2])
    vectors = axis / np.where(sine > 0, sine, 1.0)[:, None] * angle[:, None]
    return np.asarray(Rotation.from_rotvec(vectors).as_matrix())


def transforms_world_to_camera(
    world_keypoints: NDArray[np.float64],
    image_keypoints: NDArray[np.float64],
    intrinsics: Intrinsics,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """PnP poses of the landmarker's metric frame W in the camera frame, and reprojection errors.

    SQPnP per frame, turned back towards the landmarker's view where the image cannot tell
    (the module's description).

    Args:
        world_keypoints: Shape (N, 21, 3) [m], the landmarker's hand-centred frame W.
        image_keypoints: Shape (N, 21, 2) [px], as observed (distorted).
        intrinsics: The camera.

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
    errors = reprojection_errors(world_keypoints, image_keypoints, intrinsics, transforms)
    views = landmarker_orientation(image_keypoints, intrinsics)
    with np.errstate(invalid="ignore"):
        far = rotation_angle_deg(transforms[:, :3, :3], views) > MAX_PNP_TURN_DEG
    for row in np.flatnonzero(far).tolist():
        world, image = world_keypoints[row], image_keypoints[row]
        near, error = _near_view(world, image, intrinsics, views[row])
        if error <= errors[row] + PNP_TIE_SHARE * float(np.ptp(image, axis=0).max()):
            transforms[row], errors[row] = near, error
    return transforms, errors


def reprojection_errors(
    world_keypoints: NDArray[np.float64],
    image_keypoints: NDArray[np.float64],
    intrinsics: Intrinsics,
    transforms: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Mean reprojection error [px] of each frame, shape (N,); NaN where its pose is NaN.

    The distance between the image keypoints (N, 21, 2) and the W keypoints (N, 21, 3) seen at
    ``transforms`` (N, 4, 4), the camera's distortion modelled.
    """
    points = (
        np.einsum("nij,nkj->nki", transforms[:, :3, :3], world_keypoints)
        + transforms[:, None, :3, 3]
    )
    errors = np.full(len(points), np.nan)
    solved = np.isfinite(points).all(axis=(1, 2))
    if solved.any():
        projected, _ = cv2.projectPoints(
            points[solved].reshape(-1, 3),
            np.zeros(3),
            np.zeros(3),
            intrinsics.matrix,
            intrinsics.distortion,
        )
        residuals = projected.reshape(-1, 21, 2) - image_keypoints[solved]
        errors[solved] = np.linalg.norm(residuals, axis=2).mean(axis=1)
    return errors


def _near_view(
    world: NDArray[np.float64],
    image: NDArray[np.float64],
    intrinsics: Intrinsics,
    view: NDArray[np.float64],
) -> tuple[NDArray[np.float64], float]:
    """The better fitting of two poses of W near ``view``: (4, 4) and its error [px].

    PnP started from ``view`` (where it stays within :data:`MAX_PNP_TURN_DEG` of it), and
    ``view`` itself with the translation that puts the keypoints nearest their rays.
    """
    rays = viewing_rays(image, intrinsics)  # (21, 3)
    # The translation t that puts every turned point on its ray: (view p + t) x ray = 0, linear.
    skew = np.zeros((len(rays), 3, 3))
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -rays[:, 2], rays[:, 1], -rays[:, 0]
    skew -= skew.transpose(0, 2, 1)
    offset = -np.einsum("nij,nj->ni", skew, world @ view.T).reshape(-1)
    translation = np.linalg.lstsq(skew.reshape(-1, 3), offset, rcond=None)[0]
    candidates = np.tile(np.eye(4), (2, 1, 1))
    candidates[0, :3, :3], candidates[0, :3, 3] = view, translation
    ok, rvec, tvec = cv2.solvePnP(
        world,
        image,
        intrinsics.matrix,
        intrinsics.distortion,
        cv2.Rodrigues(view)[0],
        translation.reshape(3, 1).copy(),
        useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    candidates[1, :3, :3], candidates[1, :3, 3] = cv2.Rodrigues(rvec)[0], tvec.ravel()
    if not ok or not rotation_angle_deg(candidates[1, :3, :3], view) <= MAX_PNP_TURN_DEG:
        candidates = candidates[:1]
    errors = reprojection_errors(
        np.repeat(world[None], len(candidates), axis=0),
        np.repeat(image[None], len(candidates), axis=0),
        intrinsics,
        candidates,
    )
    best = int(np.argmin(errors))
    return candidates[best], float(errors[best])
