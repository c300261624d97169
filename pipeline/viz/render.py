"""The robot's meshes drawn from a camera: shaded, depth-tested, composited over an image.

A scene is one or more :class:`Posed` robots (a bimanual robot is two), each with its meshes
(:class:`~pipeline.viz.meshes.RobotMeshes`), joint positions and its base seen from the camera.
:func:`render` rasterises it (:mod:`pipeline.viz.raster`) at up to :data:`RENDER_SIZE` pixels
on the long side, faces lit by a light at the camera, the outline of every part darkened so
that links stay apart; :func:`composite` lays it over a frame, scaled up and semi-transparent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numba
import numpy as np
from numpy.typing import NDArray

from pipeline.tracks import Intrinsics
from pipeline.viz.meshes import RobotMeshes
from pipeline.viz.raster import NEAR_PLANE, rasterize, triangle_shading

#: Longest side of the rendered image [px]; larger frames get it scaled up.
RENDER_SIZE = 640
#: Opacity of the robot drawn over a video frame.
OVERLAY_ALPHA = 0.6
#: Colour of the parts in contact on a ``SELF_COLLISION`` frame, RGB in [0, 1].
CONTACT_COLOR = (1.0, 0.1, 0.1)


@dataclass(frozen=True)
class Posed:
    """One robot of a scene.

    Attributes:
        meshes: Its meshes.
        q: Its joint positions (robot.nq) [rad] or [m].
        transform_camera_to_base: The camera's pose in its base frame (4, 4).
        contacts: Indices of its parts to draw in :data:`CONTACT_COLOR`.
        visible: Indices of the parts to draw; None for all.
    """

    meshes: RobotMeshes
    q: NDArray[np.float64]
    transform_camera_to_base: NDArray[np.float64]
    contacts: frozenset[int] = frozenset()
    visible: frozenset[int] | None = None


@dataclass(frozen=True)
class Rendered:
    """A rendered scene, at the render resolution.

    Attributes:
        part: Which part each pixel shows, shape (h, w): an index into the scene's parts (the
            first robot's parts, then the next robot's), -1 for none.
        depth: Depth along the camera's z of what each pixel shows, shape (h, w) [m]; inf for
            none.
        color: Shaded colour, shape (h, w, 3), RGB (uint8); zero where no part is seen.
        scale: Render resolution over the camera's resolution: 1 / k for a whole number k.
    """

    part: NDArray[np.int64]
    depth: NDArray[np.float64]
    color: NDArray[np.uint8]
    scale: float


def project(points_in_camera: NDArray[np.float64], intrinsics: Intrinsics) -> NDArray[np.float64]:
    """Pixels of points in the camera frame, shape (..., 3) [m] -> (..., 2) [px].

    Uses the intrinsics' distortion. Points behind the near plane (:data:`NEAR_PLANE` in front
    of the camera) come out NaN: nearer ones project to absurd pixels.
    """
    flat = np.asarray(points_in_camera, dtype=np.float64).reshape(-1, 3)
    pixels = np.full((len(flat), 2), np.nan)
    front = flat[:, 2] > NEAR_PLANE
    if front.any():
        projected, _ = cv2.projectPoints(
            flat[front], np.zeros(3), np.zeros(3), intrinsics.matrix, intrinsics.distortion
        )
        pixels[front] = projected.reshape(-1, 2)
    return pixels.reshape(*np.shape(points_in_camera)[:-1], 2)


def render(
    scene: Sequence[Posed],
    intrinsics: Intrinsics,
    color: tuple[float, float, float] | None = None,
    max_size: int = RENDER_SIZE,
    lighten: float = 0.0,
) -> Rendered:
    """Rasterise the scene as the camera sees it.

    Args:
        scene: The robots.
        intrinsics: The camera (its width and height are the image's).
        color: One colour for every part (RGB in [0, 1]), or None for the URDF's colours.
        max_size: Longest side of the render [px]; smaller cameras render at their own size.
        lighten: Each colour moved this fraction of the way to white (dark URDF materials
            stay visible on a dark background).
    """
    vertices, triangles, triangle_part, colors, offset = [], [], [], [], 0
    part_offset = 0
    for posed in scene:
        meshes = posed.meshes
        vertices.append(meshes.vertices_in(posed.q, posed.transform_camera_to_base))
        chosen = np.ones(len(meshes.triangles), dtype=bool)
        if posed.visible is not None:
            chosen = np.isin(meshes.triangle_part, list(posed.visible))
        triangles.append(meshes.triangles[chosen] + offset)
        triangle_part.append(meshes.triangle_part[chosen] + part_offset)
        own = np.tile(color, (len(meshes.parts), 1)) if color is not None else meshes.colors.copy()
        for k in posed.contacts:
            own[k] = CONTACT_COLOR
        colors.append(own)
        offset += len(meshes.vertices)
        part_offset += len(meshes.parts)
    points = np.concatenate(vertices)
    faces = np.concatenate(triangles)
    parts = np.concatenate(triangle_part)
    factor = max(1, int(np.ceil(max(intrinsics.width, intrinsics.height) / max_size)))
    scale = 1.0 / factor  # a whole factor: the render scales up by cv2.resize exactly
    size = (-(-intrinsics.height // factor), -(-intrinsics.width // factor))
    pixels = (project(points, intrinsics) + 0.5) * scale - 0.5  # pixel centres stay centres
    raster = rasterize(pixels, points[:, 2], faces, size)
    shade = triangle_shading(points, faces)
    palette = np.concatenate(colors).reshape(-1, 3) * (1.0 - lighten) + lighten
    face_color = np.clip(palette[parts] * shade[:, None] * 255.0, 0, 255).astype(np.uint8)
    part = np.full(size, -1, dtype=np.int64)
    image = np.zeros((*size, 3), dtype=np.uint8)
    _paint(raster.triangle, np.ascontiguousarray(parts, dtype=np.int64), face_color, part, image)
    return Rendered(part, raster.depth, image, scale)


@numba.njit(cache=True, nogil=True)
def _paint(
    triangle: NDArray[np.int64],
    face_part: NDArray[np.int64],
    face_color: NDArray[np.uint8],
    part: NDArray[np.int64],
    image: NDArray[np.uint8],
) -> None:  # pragma: no cover - compiled
    """Each pixel's part and colour from its triangle.

    The outline of every part (a seen pixel next to one of another part, or of none) is drawn
    at half the brightness.
    """
    height, width = triangle.shape
    for y in range(height):
        for x in range(width):
            f = triangle[y, x]
            if f >= 0:
                part[y, x] = face_part[f]
    for y in range(height):
        for x in range(width):
            own = part[y, x]
            if own < 0:
                continue
            f = triangle[y, x]
            edge = (
                (x > 0 and part[y, x - 1] != own)
                or (x + 1 < width and part[y, x + 1] != own)
                or (y > 0 and part[y - 1, x] != own)
                or (y + 1 < height and part[y + 1, x] != own)
            )
            for c in range(3):
                image[y, x, c] = face_color[f, c] // 2 if edge else face_color[f, c]


def composite(
    image: NDArray[np.uint8], rendered: Rendered, alpha: float = OVERLAY_ALPHA
) -> NDArray[np.uint8]:
    """Lay the render over ``image`` (RGB, the camera's size), in place; return ``image``.

    Only the box around the drawn parts is scaled up (bilinear, pixel centres on pixel
    centres) and blended, with weight ``alpha`` times the scaled-up coverage, so edges blend
    smoothly. The colour is first spread one pixel past the parts so that it does not fade
    to black at their edges.
    """
    seen = rendered.part >= 0
    rows, columns = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
    if not len(rows):
        return image
    height, width = image.shape[:2]
    # The box in the render, a pixel wider for the interpolation, and that box in the image.
    top, bottom = max(rows[0] - 1, 0), min(rows[-1] + 2, seen.shape[0])
    left, right = max(columns[0] - 1, 0), min(columns[-1] + 2, seen.shape[1])
    cover = seen[top:bottom, left:right].astype(np.float32)
    color = rendered.color[top:bottom, left:right]
    color = np.where(cover[..., None] > 0, color, cv2.dilate(color, np.ones((3, 3), np.uint8)))
    factor = round(1.0 / rendered.scale)
    y0, x0 = top * factor, left * factor
    y1, x1 = min(bottom * factor, height), min(right * factor, width)
    if factor > 1:
        # cv2.resize by a whole factor puts output pixel x on the render's (x + 0.5) / k - 0.5.
        grown = ((right - left) * factor, (bottom - top) * factor)
        cover = np.asarray(cv2.resize(cover, grown, interpolation=cv2.INTER_LINEAR))
        color = np.asarray(cv2.resize(color, grown, interpolation=cv2.INTER_LINEAR))
        cover, color = cover[: y1 - y0, : x1 - x0], color[: y1 - y0, : x1 - x0]
    weight = (alpha * cover).astype(np.float32)
    region = np.ascontiguousarray(image[y0:y1, x0:x1])
    image[y0:y1, x0:x1] = cv2.blendLinear(region, np.ascontiguousarray(color), 1.0 - weight, weight)
    return image


def framing(
    points: NDArray[np.float64],
    rotation_camera_to_frame: NDArray[np.float64],
    size: tuple[int, int],
    fill: float = 0.85,
) -> tuple[NDArray[np.float64], Intrinsics]:
    """A camera that sees all ``points`` from a fixed direction, as large as ``fill`` allows.

    Args:
        points: What to frame, in some frame F, shape (N, 3) [m].
        rotation_camera_to_frame: The camera's orientation in F (OpenCV axes: z forward, y
            down), shape (3, 3).
        size: Image (height, width) [px].
        fill: Fraction of the image's height or width (whichever binds first) that the points
            span.

    Returns:
        The camera's pose in F (4, 4), and its intrinsics.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    low, high = points.min(axis=0), points.max(axis=0)
    middle = (low + high) / 2
    radius = max(float(np.linalg.norm(high - low)) / 2, 1e-3)
    forward = rotation_camera_to_frame[:, 2]
    position = middle - forward * 3.0 * radius  # far enough that every point is in front
    in_camera = (points - position) @ rotation_camera_to_frame
    normal = in_camera[:, :2] / in_camera[:, 2:3]
    span = normal.max(axis=0) - normal.min(axis=0)
    height, width = size
    focal = fill * min(height / max(span[1], 1e-6), width / max(span[0], 1e-6))
    centre = (normal.max(axis=0) + normal.min(axis=0)) / 2
    matrix = np.array(
        [[focal, 0, width / 2 - focal * centre[0]], [0, focal, height / 2 - focal * centre[1]],
         [0, 0, 1]]
    )  # fmt: skip
    pose = np.eye(4)
    pose[:3, :3] = rotation_camera_to_frame
    pose[:3, 3] = position
    return pose, Intrinsics(matrix, np.zeros(5), width, height, "framing")


def look_rotation(forward: NDArray[np.float64], up: NDArray[np.float64]) -> NDArray[np.float64]:
    """Orientation of a camera looking along ``forward`` with ``up`` up in its image (3, 3).

    OpenCV axes: columns x (right), y (down), z (forward) in the frame of the two vectors.
    """
    z = np.asarray(forward, dtype=np.float64) / np.linalg.norm(forward)
    y = -(np.asarray(up, dtype=np.float64) - np.dot(up, z) * z)
    y /= np.linalg.norm(y)
    return np.stack([np.cross(y, z), y, z], axis=1)
