"""A depth-buffered triangle rasteriser: the robot's meshes drawn without OpenGL.

Chosen over pyrender and Open3D's offscreen renderer: it installs with pip alone and runs
headless everywhere (both need a system EGL or OSMesa), and it is faster on these meshes
(BENCHMARKS.md has the measurements). The loop over triangles and their pixels is compiled
with numba (cached on disk after the first run).

A pixel whose centre is inside a triangle is a fragment, its depth interpolated linearly over
the image; the nearest fragment of each pixel wins. Triangles with a vertex nearer than the
near plane are dropped, so geometry at or behind the camera never reaches the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

#: Distance of the near clipping plane from the camera [m].
NEAR_PLANE = 0.01


@dataclass(frozen=True)
class Raster:
    """What one rasterisation saw.

    Attributes:
        triangle: Index of the triangle seen at each pixel, shape (h, w); -1 where none.
        depth: Its depth along the camera's z, shape (h, w) [m]; inf where none.
    """

    triangle: NDArray[np.int64]
    depth: NDArray[np.float64]

    @property
    def mask(self) -> NDArray[np.bool_]:
        """Pixels that show a triangle, shape (h, w)."""
        return self.triangle >= 0


def rasterize(
    pixels: NDArray[np.float64],
    depth: NDArray[np.float64],
    triangles: NDArray[np.intp],
    size: tuple[int, int],
) -> Raster:
    """The nearest triangle at every pixel.

    Args:
        pixels: Image positions of the vertices, shape (V, 2) [px] (x right, y down; OpenCV's
            convention: pixel ``(u, v)`` is centred on those coordinates); NaN for a vertex not
            projected.
        depth: The vertices' depth along the camera's z, shape (V,) [m].
        triangles: Vertex indices, shape (F, 3).
        size: Image (height, width) [px].

    Returns:
        The per-pixel triangle index and depth.
    """
    height, width = size
    corners = np.ascontiguousarray(np.asarray(pixels, dtype=np.float64)[triangles])  # (F, 3, 2)
    z = np.ascontiguousarray(np.asarray(depth, dtype=np.float64)[triangles])
    keep = np.asarray((z > NEAR_PLANE).all(axis=1) & np.isfinite(corners).all(axis=(1, 2)))
    triangle = np.full(height * width, -1, dtype=np.int64)
    found = np.full(height * width, np.inf)
    _scan(corners, z, keep, height, width, triangle, found)
    return Raster(triangle.reshape(size), found.reshape(size))


@numba.njit(cache=True, nogil=True)
def _scan(
    corners: NDArray[np.float64],
    z: NDArray[np.float64],
    keep: NDArray[np.bool_],
    height: int,
    width: int,
    triangle: NDArray[np.int64],
    found: NDArray[np.float64],
) -> None:  # pragma: no cover - compiled
    """Every kept triangle over the pixels of its bounding box, into the depth buffer."""
    for f in range(len(keep)):
        if not keep[f]:
            continue
        ax, ay = corners[f, 0, 0], corners[f, 0, 1]
        bx, by = corners[f, 1, 0], corners[f, 1, 1]
        cx, cy = corners[f, 2, 0], corners[f, 2, 1]
        area = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay)
        if abs(area) < 1e-9:
            continue
        top = max(int(np.ceil(min(ay, by, cy))), 0)
        bottom = min(int(np.floor(max(ay, by, cy))), height - 1)
        left = max(int(np.ceil(min(ax, bx, cx))), 0)
        right = min(int(np.floor(max(ax, bx, cx))), width - 1)
        inverse = 1.0 / area
        za, zb, zc = z[f, 0], z[f, 1], z[f, 2]
        # Barycentric weights from the edge functions over the signed area; linear in x, so
        # stepped along each row.
        step_a, step_b = (by - cy) * inverse, (cy - ay) * inverse
        for y in range(top, bottom + 1):
            wa = ((bx - left) * (cy - y) - (cx - left) * (by - y)) * inverse
            wb = ((cx - left) * (ay - y) - (ax - left) * (cy - y)) * inverse
            entered = False
            for x in range(left, right + 1):
                wc = 1.0 - wa - wb
                if wa >= 0 and wb >= 0 and wc >= 0:
                    entered = True
                    d = wa * za + wb * zb + wc * zc
                    i = y * width + x
                    if d < found[i]:
                        found[i] = d
                        triangle[i] = f
                elif entered:
                    break  # a triangle is convex: one run per row
                wa += step_a
                wb += step_b


def triangle_shading(
    vertices_in_camera: NDArray[np.float64], triangles: NDArray[np.intp]
) -> NDArray[np.float64]:
    """Brightness of each triangle under a light at the camera, shape (F,) in [0.35, 1].

    Lambert's law on the face normal, either side lit (meshes are not always consistently
    wound).
    """
    shade = np.empty(len(triangles))
    _shade(
        np.ascontiguousarray(vertices_in_camera, dtype=np.float64),
        np.ascontiguousarray(triangles, dtype=np.int64),
        shade,
    )
    return shade


@numba.njit(cache=True, nogil=True)
def _shade(
    points: NDArray[np.float64], triangles: NDArray[np.int64], shade: NDArray[np.float64]
) -> None:  # pragma: no cover - compiled
    for f in range(len(triangles)):
        a, b, c = points[triangles[f, 0]], points[triangles[f, 1]], points[triangles[f, 2]]
        u, v = b - a, c - a
        normal = np.array(
            [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]]
        )
        view = (a + b + c) / 3.0
        size = np.sqrt((normal**2).sum() * (view**2).sum()) + 1e-18
        shade[f] = 0.35 + 0.65 * abs((normal * view).sum()) / size
