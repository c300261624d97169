"""Camera motion estimated from the video itself: each frame's camera pose in a world frame.

The world frame is the first frame's camera frame (OpenCV axes: x right, y down, z forward).
Without depth maps the pose is a rotation (head cameras and phones mostly turn, against a
background a metre or more away; a translation's size cannot be seen in one camera's images
without a metric reference: give a trajectory, :mod:`pipeline.trajectory`, or depth maps where
the head moves near a scene, whose parallax pulls the rotation off unflagged: 3 deg at a
claimed 0.09 on a known 7 cm path, README "Camera motion"). With depth maps (``--depth``) it
is the whole pose, rotation and translation (0.02 deg and 0.4 mm median on that path).

Per frame: the frame is downscaled to ``CameraMotionConfig.work_width`` (in the decoding thread).
Background corners (Shi-Tomasi), away from the hands and what they hold (each hand's keypoint
box, grown by ``hand_margin`` of its size on every side), are tracked frame to frame (pyramidal
Lucas-Kanade, forward-backward checked). Each corner keeps the viewing ray in the world frame it
was given when it was found (with depth maps, its point: its pixel's depth along that ray; not
at occlusion edges), a map rather than a chain of keyframes, so a frame's pose is fitted
straight to the world. Rays: RANSAC over two-ray hypotheses, scored by how much of the image
their inliers cover (the background spans the image, a moving body or object a part of it),
then weighted least squares (Kabsch), each grid cell weighing the same and each corner by how
long it has agreed with the fitted rotations (a new corner may sit on something that moves
slowly). Points: RANSAC over OpenCV's PnP, then Levenberg-Marquardt on the inliers
(:mod:`pipeline.camera_geometry`). Corners that disagree are dropped for good. Every
``revive_every`` frames the first frame's lost corners are looked for again where the pose puts
them, matched against the first frame itself: whenever the view comes back, so does a
drift-free reference. When fewer than ``min_features`` corners remain, new ones are found (off
black borders) at the current pose.

Each frame's quality: the inlier count and ``rotation_std_deg``, the standard error of the
rotation (the inliers' angular residual, of the rays or of the points' reprojection, over the
square root of their number, divided by their angular spread, which limits the roll about the
optical axis), combined with the mean standard deviation of the poses its corners were found at.
A frame with fewer than ``min_inliers`` inliers has no pose (NaN); after ``max_lost_frames`` such
frames the map restarts from the last pose with ``LOST_STD_DEG`` added to the standard deviation,
so every later frame is flagged, never silently guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.camera_geometry import (
    angular_spread,
    fit_pose_to_points,
    fit_rotation_ransac,
    ranges_from_depth,
)
from pipeline.exceptions import InputMediaError
from pipeline.tracks import Intrinsics

#: Standard deviation added when the chain restarts after losing the background [deg].
LOST_STD_DEG = 5.0
#: Lucas-Kanade window [px] and pyramid levels: a frame-to-frame motion of up to ~25 px at
#: work size (a head turning 60 deg/s at 30 fps).
_WINDOW = (15, 15)
_LEVELS = 2
#: The first frame's corners: its image, the corners [px, work], their world rays, their world
#: points (NaN without depth maps), pose std.
_Anchor = tuple[
    NDArray[np.uint8], NDArray[np.float32], NDArray[np.float64], NDArray[np.float64], float
]
#: A frame's depth map, loaded on demand (z [m], NaN where none), or None without depth maps.
DepthSource = Callable[[], NDArray[np.float64]] | None


@dataclass(frozen=True)
class CameraMotionConfig:
    """Settings of :class:`CameraMotionEstimator`."""

    work_width: int = 480
    """Frames wider than this are downscaled to it for tracking [px]."""
    max_features: int = 200
    """Corners found on a keyframe."""
    min_features: int = 50
    """Fewer tracked corners than this: new corners are found on the frame (up to
    ``max_features``)."""
    min_inliers: int = 20
    """A frame whose rotation fit keeps fewer corners than this has no pose."""
    inlier_threshold_px: float = 1.0
    """A corner is an inlier within this of the fitted rotation's prediction [px, work size]."""
    hand_margin: float = 0.6
    """Each hand's keypoint box is grown by this fraction of its size on every side and masked
    out (the hand and what it holds)."""
    max_lost_frames: int = 15
    """After this many frames without a pose the chain restarts (:data:`LOST_STD_DEG`)."""
    hypotheses: int = 64
    """RANSAC hypotheses per frame."""
    revive_every: int = 5
    """Every this many frames, the first frame's lost corners are looked for again where the
    pose puts them (drift-free; 0: never)."""

    def work_image(self, rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """The frame as the estimator tracks it: grey, at most ``work_width`` wide.

        Cheap, for any thread; the frame may be downscaled already (the aspect is kept).
        """
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if grey.shape[1] > self.work_width:
            height = max(1, round(grey.shape[0] * self.work_width / grey.shape[1]))
            grey = cv2.resize(grey, (self.work_width, height), interpolation=cv2.INTER_AREA)
        return np.asarray(grey, dtype=np.uint8)

    def __post_init__(self) -> None:
        if self.work_width < 64 or self.max_features < 8 or self.min_inliers < 3:
            raise InputMediaError(
                "invalid camera-motion settings: work_width >= 64, max_features >= 8 and "
                f"min_inliers >= 3 are needed, got {self.work_width}, {self.max_features}, "
                f"{self.min_inliers}"
            )


@dataclass(frozen=True)
class CameraMotion:
    """Each frame's camera pose in the world frame, and how sure it is.

    Attributes:
        transform_camera_to_world: Shape (T, 4, 4) [m]: pose of each frame's camera in the
            world frame; NaN where unknown.
        rotation_std_deg: Shape (T,) [deg]: standard deviation of the camera's rotation (0
            for a given trajectory and for ``static``); NaN where unknown.
        inliers: Shape (T,): background corners that agree with the rotation (-1 where not
            estimated).
        source: ``"static"``, ``"estimate"`` (rotation only), ``"estimate with depth"``
            (rotation and translation, from depth maps) or the trajectory file's path.
    """

    transform_camera_to_world: NDArray[np.float64]
    rotation_std_deg: NDArray[np.float64]
    inliers: NDArray[np.int64]
    source: str

    @staticmethod
    def static(frames: int) -> CameraMotion:
        """A camera that does not move: identity poses."""
        return CameraMotion(
            np.tile(np.eye(4), (frames, 1, 1)),
            np.zeros(frames),
            np.full(frames, -1, dtype=np.int64),
            "static",
        )


class CameraMotionEstimator:
    """Feed frames in order (:meth:`add`), then read the :meth:`result`.

    Args:
        intrinsics: The camera of the frames given to :meth:`add` (their size).
        config: Settings.
    """

    def __init__(self, intrinsics: Intrinsics, config: CameraMotionConfig | None = None) -> None:
        self.intrinsics = intrinsics
        self.config = config or CameraMotionConfig()
        self.scale = min(1.0, self.config.work_width / intrinsics.width)
        self.size = (
            max(1, round(intrinsics.width * self.scale)),
            max(1, round(intrinsics.height * self.scale)),
        )
        focal = float(intrinsics.matrix[0, 0]) * self.scale
        self.threshold = self.config.inlier_threshold_px / focal
        self.rng = np.random.default_rng(0)
        self.poses: list[NDArray[np.float64]] = []
        self.stds: list[float] = []
        self.counts: list[int] = []
        self.previous: NDArray[np.uint8] | None = None
        self.points = np.zeros((0, 2), dtype=np.float32)  # in the previous image [px, work]
        self.world_rays = np.zeros((0, 3))  # the same corners' viewing rays in the world frame
        self.world_points = np.zeros((0, 3))  # with depth maps: the corners in the world [m]
        self.depth_mode = False  # depth maps given: each frame's pose from 3D points (PnP)
        self.origin_std = np.zeros(0)  # the rotation std of the frame each corner was added on
        self.age = np.zeros(0)  # frames each corner has agreed with the fitted rotation
        self.ids = np.zeros(0, dtype=np.int64)  # index into the anchor's corners, -1 for later ones
        self.anchor: _Anchor | None = None
        self.last = (np.eye(3), 0.0)  # last known rotation_camera_to_world and its std [deg]
        self.centre = np.zeros(3)  # last known camera position in the world [m] (depth maps)
        self.lost = 0

    def _at_work_size(self, grey: NDArray[np.uint8]) -> NDArray[np.uint8]:
        if (grey.shape[1], grey.shape[0]) == self.size:
            return grey
        return np.asarray(cv2.resize(grey, self.size, interpolation=cv2.INTER_AREA), np.uint8)

    def _rays(self, points: NDArray[np.float32]) -> NDArray[np.float64]:
        """Unit viewing rays (N, 3) of work-size pixels, lens distortion removed."""
        if not len(points):
            return np.zeros((0, 3))
        full = (points / self.scale).reshape(-1, 1, 2).astype(np.float64)
        normal = cv2.undistortPoints(full, self.intrinsics.matrix, self.intrinsics.distortion)
        rays = np.concatenate([normal.reshape(-1, 2), np.ones((len(points), 1))], axis=1)
        return np.asarray(rays / np.linalg.norm(rays, axis=1, keepdims=True))

    def _mask(self, hands: Sequence[NDArray[np.float64]]) -> NDArray[np.uint8]:
        """Where corners may be: inside the image, off the hands (work size)."""
        width, height = self.size
        mask = np.zeros((height, width), dtype=np.uint8)
        border = 4
        mask[border:-border, border:-border] = 255
        for keypoints in hands:
            box = np.asarray(keypoints, dtype=np.float64) * self.scale
            if not np.isfinite(box).all():
                continue
            low, high = box.min(axis=0), box.max(axis=0)
            grow = self.config.hand_margin * (high - low).max()
            x0, y0 = np.floor(low - grow).astype(int)
            x1, y1 = np.ceil(high + grow).astype(int)
            mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = 0
        return mask

    def _top_up(
        self, image: NDArray[np.uint8], mask: NDArray[np.uint8], depth: DepthSource = None
    ) -> None:
        """Add corners away from those tracked, up to ``max_features``, at the last pose.

        With depth, only corners whose depth is known and not at an occlusion edge are added,
        each with its point in the world.
        """
        room = self.config.max_features - len(self.points)
        spacing = 12
        # Black borders (letterboxing, a re-projected frame): their corners are not the scene's.
        black = cv2.dilate((image < 8).astype(np.uint8), np.ones((9, 9), np.uint8))
        mask = np.where(black > 0, 0, mask).astype(np.uint8)
        for x, y in self.points.astype(int):
            cv2.circle(mask, (int(x), int(y)), spacing, 0, -1)
        corners = cv2.goodFeaturesToTrack(
            image, room, qualityLevel=0.001, minDistance=spacing, mask=mask
        )
        if corners is None:
            return
        found = corners.reshape(-1, 2).astype(np.float32)
        rotation, std = self.last
        camera_rays = self._rays(found)
        points = np.full((len(found), 3), np.nan)
        if depth is not None:
            size = (self.intrinsics.width, self.intrinsics.height)
            full = (found / self.scale).astype(np.float64)
            distance = ranges_from_depth(depth(), full, camera_rays, size)
            kept = np.isfinite(distance)
            found, camera_rays, distance = found[kept], camera_rays[kept], distance[kept]
            points = (camera_rays * distance[:, None]) @ rotation.T + self.centre
        rays = camera_rays @ rotation.T
        ids = np.full(len(found), -1, dtype=np.int64)
        if self.anchor is None:
            self.anchor = (image, found, rays, points, std)
            ids = np.arange(len(found))
        self._append(found, rays, points, np.full(len(found), std), np.zeros(len(found)), ids)

    def add(
        self,
        image: NDArray[np.uint8],
        hands: Sequence[NDArray[np.float64]] = (),
        depth: DepthSource = None,
    ) -> None:
        """Estimate the next frame's pose.

        Args:
            image: The frame from :meth:`CameraMotionConfig.work_image` (another size is
                resized to the work size).
            hands: Image keypoints of the hands seen in it, each (21, 2) [px, frame size].
            depth: With depth maps: a function that loads this frame's map (z [m], NaN where
                none; any resolution of the same view), called only when corners are added.
                The pose is then fitted to the corners' 3D points (rotation and translation);
                without, to their viewing rays (rotation only).
        """
        image = self._at_work_size(image)
        mask = self._mask(hands)
        if self.previous is None:
            self.depth_mode = depth is not None
            self._record(np.eye(3), 0.0, -1)
            self._top_up(image, mask, depth)
            self.previous = image
            return
        tracked, keep = self._track(image, mask)
        fit = None
        if self.depth_mode and keep.sum() >= 4:
            fit = self._fit_pose(self.world_points[keep], tracked)
        elif not self.depth_mode and keep.sum() >= 3:
            rotation, error, inliers = self._fit(
                self.world_rays[keep], self._rays(tracked), tracked, self.age[keep]
            )
            fit = (rotation, error, inliers, self.centre)
        if fit is None or fit[2].sum() < self.config.min_inliers:
            self._record(None, np.nan, 0 if fit is None else int(fit[2].sum()))
            self.lost += 1
            if self.lost > self.config.max_lost_frames:  # start again from the last pose
                self.last = (self.last[0], self.last[1] + LOST_STD_DEG)
                self._keep(np.zeros(0, dtype=np.int64), self.points[:0])
                self.anchor = None
                self._top_up(image, mask, depth)
                self.previous, self.lost = image, 0
            return
        world_to_camera, error, inliers, self.centre = fit
        rows = np.flatnonzero(keep)[inliers]
        std = float(np.hypot(np.mean(self.origin_std[rows]), error))
        self._record(world_to_camera.T, std, int(inliers.sum()))
        self.last, self.lost = (world_to_camera.T, std), 0
        self._keep(rows, tracked[inliers])
        self.age = self.age + 1
        self.previous = image
        every = self.config.revive_every
        if every and len(self.poses) % every == 0:
            self._revive(image, mask, world_to_camera)
        if len(self.points) < self.config.min_features:
            self._top_up(image, mask, depth)

    def _append(
        self,
        points: NDArray[np.float32],
        world_rays: NDArray[np.float64],
        world_points: NDArray[np.float64],
        origin_std: NDArray[np.float64],
        age: NDArray[np.float64],
        ids: NDArray[np.int64],
    ) -> None:
        """Add corners: pixels [px, work], world rays and points, pose std, age, anchor ids."""
        self.points = np.concatenate([self.points, points])
        self.world_rays = np.concatenate([self.world_rays, world_rays])
        self.world_points = np.concatenate([self.world_points, world_points])
        self.origin_std = np.concatenate([self.origin_std, origin_std])
        self.age = np.concatenate([self.age, age])
        self.ids = np.concatenate([self.ids, ids])

    def _keep(self, rows: NDArray[np.int64], points: NDArray[np.float32]) -> None:
        """Keep the corners ``rows``, now at ``points`` [px, work]; the others are dropped."""
        self.points = points
        self.world_rays, self.world_points = self.world_rays[rows], self.world_points[rows]
        self.origin_std, self.ids, self.age = self.origin_std[rows], self.ids[rows], self.age[rows]

    def _fit_pose(
        self, world_points: NDArray[np.float64], points: NDArray[np.float32]
    ) -> tuple[NDArray[np.float64], float, NDArray[np.bool_], NDArray[np.float64]] | None:
        """The pose fitted to the corners' world points (depth maps given).

        Returns the world-to-camera rotation, its std [deg] (as for rays: the inliers' angular
        residual over their count and angular spread), the inlier mask and the camera's
        position in the world [m]; None where no pose is found.
        """
        pose = fit_pose_to_points(
            world_points,
            (points / self.scale).astype(np.float64),
            self.intrinsics,
            (self.last[0], self.centre),
            self.config.inlier_threshold_px / self.scale,  # [px, full size]
            self.config.hypotheses,
        )
        if pose is None:
            return None
        count = int(pose.inliers.sum())
        error = np.nan
        if count > 1:
            angles = pose.residual[pose.inliers] / float(self.intrinsics.matrix[0, 0])
            spread = angular_spread(self._rays(points[pose.inliers]))
            error = float(np.degrees(np.sqrt(np.mean(angles**2) / count) / max(spread, 0.05)))
        return pose.world_to_camera, error, pose.inliers, pose.centre

    def _revive(
        self,
        image: NDArray[np.uint8],
        mask: NDArray[np.uint8],
        world_to_camera: NDArray[np.float64],
    ) -> None:
        """Find the anchor's lost corners again where the pose puts them: no drift from them."""
        if self.anchor is None:
            return
        anchor_image, anchor_points, anchor_rays, anchor_world, anchor_std = self.anchor
        lost = np.ones(len(anchor_points), dtype=bool)
        lost[self.ids[self.ids >= 0]] = False
        camera_rays = self._seen_rays(world_to_camera, anchor_rays[lost], anchor_world[lost])
        ahead = camera_rays[:, 2] > 0.1
        if ahead.sum() < 8:
            return
        rows = np.flatnonzero(lost)[ahead]
        predicted, _ = cv2.projectPoints(
            camera_rays[ahead],
            np.zeros(3),
            np.zeros(3),
            self.intrinsics.matrix,
            self.intrinsics.distortion,
        )
        predicted = (predicted.reshape(-1, 2) * self.scale).astype(np.float32)
        width, height = self.size
        inside = (predicted[:, 0] > 4) & (predicted[:, 0] < width - 4)
        inside &= (predicted[:, 1] > 4) & (predicted[:, 1] < height - 4)
        rows, predicted = rows[inside], predicted[inside]
        if len(rows) < 8:
            return
        found, status, _ = cv2.calcOpticalFlowPyrLK(
            anchor_image,
            image,
            anchor_points[rows].reshape(-1, 1, 2),
            predicted.reshape(-1, 1, 2),
            winSize=_WINDOW,
            maxLevel=1,
            flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
        )
        found = np.asarray(found, dtype=np.float32).reshape(-1, 2)
        good = status.ravel() == 1
        seen = self._seen_rays(world_to_camera, anchor_rays[rows], anchor_world[rows])
        good &= np.einsum("ni,ni->n", seen, self._rays(found)) > np.cos(self.threshold)
        column = np.clip(np.round(found[:, 0]).astype(int), 0, width - 1)
        row = np.clip(np.round(found[:, 1]).astype(int), 0, height - 1)
        good &= mask[row, column] > 0
        rows = rows[good]
        self._append(
            found[good].astype(np.float32),
            anchor_rays[rows],
            anchor_world[rows],
            np.full(len(rows), anchor_std),
            np.full(len(rows), float(len(self.poses))),
            rows,
        )

    def _seen_rays(
        self,
        world_to_camera: NDArray[np.float64],
        world_rays: NDArray[np.float64],
        world_points: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """Unit rays (N, 3) in the camera frame to corners: their points (depth maps), else rays."""
        if not self.depth_mode:
            return np.asarray(world_rays @ world_to_camera.T)
        rays = (world_points - self.centre) @ world_to_camera.T
        return np.asarray(rays / np.linalg.norm(rays, axis=1, keepdims=True))

    def _track(
        self, image: NDArray[np.uint8], mask: NDArray[np.uint8]
    ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """The corners followed into ``image``, and which of them held (forward-backward)."""
        keep = np.zeros(len(self.points), dtype=bool)
        if not len(self.points):
            return self.points, keep
        assert self.previous is not None
        start = self.points.reshape(-1, 1, 2)
        ahead, found, _ = cv2.calcOpticalFlowPyrLK(
            self.previous, image, start, None, winSize=_WINDOW, maxLevel=_LEVELS
        )
        back, found_back, _ = cv2.calcOpticalFlowPyrLK(
            image, self.previous, ahead, None, winSize=_WINDOW, maxLevel=_LEVELS
        )
        ahead, back = ahead.reshape(-1, 2), back.reshape(-1, 2)
        keep = (found.ravel() == 1) & (found_back.ravel() == 1)
        keep &= np.linalg.norm(back - self.points, axis=1) < 0.5
        column = np.clip(np.round(ahead[:, 0]).astype(int), 0, self.size[0] - 1)
        row = np.clip(np.round(ahead[:, 1]).astype(int), 0, self.size[1] - 1)
        keep &= mask[row, column] > 0
        return ahead[keep].astype(np.float32), keep

    def _cells(self, points: NDArray[np.float32]) -> NDArray[np.float64]:
        """One-hot grid cell (N, 48) of work-size pixels: an 8 x 6 grid over the image."""
        width, height = self.size
        column = np.clip((points[:, 0] * 8 / width).astype(int), 0, 7)
        row = np.clip((points[:, 1] * 6 / height).astype(int), 0, 5)
        return _CELLS[row * 8 + column]

    def _fit(
        self,
        rays_from: NDArray[np.float64],
        rays_to: NDArray[np.float64],
        points: NDArray[np.float32],
        age: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], float, NDArray[np.bool_]]:
        """RANSAC rotation from key rays to current rays: rotation, std [deg], inlier mask."""
        pairs = self.rng.integers(0, len(rays_from), size=(self.config.hypotheses, 2))
        return fit_rotation_ransac(
            rays_from, rays_to, pairs, self._cells(points), age, self.threshold
        )

    def _record(self, rotation: NDArray[np.float64] | None, std: float, inliers: int) -> None:
        pose = np.full((4, 4), np.nan)
        if rotation is not None:
            pose = np.eye(4)
            pose[:3, :3] = rotation
            pose[:3, 3] = self.centre
        self.poses.append(pose)
        self.stds.append(std)
        self.counts.append(inliers)

    def result(self) -> CameraMotion:
        """The poses of every frame added so far."""
        frames = len(self.poses)
        return CameraMotion(
            np.asarray(self.poses).reshape(frames, 4, 4),
            np.asarray(self.stds, dtype=np.float64),
            np.asarray(self.counts, dtype=np.int64),
            "estimate with depth" if self.depth_mode else "estimate",
        )


_CELLS = np.eye(48)
_CELLS.setflags(write=False)
"""One-hot rows of the 8 x 6 grid cells (:meth:`CameraMotionEstimator._cells`)."""
