"""Camera intrinsics from sidecar files, or from a field of view.

Accepted files:

- ``.npy``: a plain 3x3 camera matrix K [px] (e.g. FreiHAND's ``NAME_K.npy``); no distortion.
- ``.json``: either the stereo-camera ``calibration.json`` layout (``intrinsic_left`` with
  ``fx, fy, cx, cy``, ``distortion_coefficients_left`` with ``k1, k2, p1, p2, k3``, and
  ``resolution`` ``"WxH"``; the left camera is used), or a flat object with ``fx, fy, cx, cy``
  (or ``K``/``camera_matrix`` as 3x3), optional ``distortion`` (OpenCV order) and optional
  ``width``/``height``.

When a file states the resolution it was made for and the frames differ by a uniform scale, K is
scaled; a different aspect ratio is an error. Sidecars next to an input are found by name (see
:func:`find_sidecar`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.decoding import Media
from pipeline.exceptions import InputMediaError
from pipeline.tracks import Intrinsics

_DISTORTION_KEYS = ("k1", "k2", "p1", "p2", "k3")


def find_sidecar(media: Media) -> Path | None:
    """An intrinsics file that belongs to an input, if there is one.

    Looks for, in order: inside a folder ``calibration.json``, ``intrinsics.json``, ``K.npy``;
    beside a file ``STEM.calibration.json``, ``STEM.intrinsics.json``, ``STEM_K.npy``,
    ``STEM.K.npy``, and for ``NAME_img.jpg``-style names ``NAME_K.npy``.
    """
    if media.kind == "images":
        candidates = [media.path / n for n in ("calibration.json", "intrinsics.json", "K.npy")]
    else:
        stem, folder = media.path.stem, media.path.parent
        names = [f"{stem}.calibration.json", f"{stem}.intrinsics.json", f"{stem}_K.npy"]
        names.append(f"{stem}.K.npy")
        if "_" in stem:
            names.append(f"{stem.rsplit('_', 1)[0]}_K.npy")
        candidates = [folder / n for n in names]
    return next((c for c in candidates if c.is_file()), None)


def _matrix(fx: float, fy: float, cx: float, cy: float) -> NDArray[np.float64]:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _check_matrix(path: Path, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        raise InputMediaError(f"{path}: camera matrix must be a finite 3x3 array, got {matrix}")
    if matrix[0, 0] <= 0 or matrix[1, 1] <= 0 or not np.allclose(matrix[2], [0, 0, 1]):
        raise InputMediaError(
            f"{path}: not a camera matrix (need fx > 0, fy > 0, last row 0 0 1): {matrix.tolist()}"
        )
    return matrix


def _from_json(path: Path, data: dict[str, Any]) -> tuple[NDArray, NDArray, tuple[int, int] | None]:
    size: tuple[int, int] | None = None
    if isinstance(data.get("resolution"), str) and "x" in data["resolution"]:
        width, height = data["resolution"].lower().split("x")
        size = (int(width), int(height))
    elif "width" in data and "height" in data:
        size = (int(data["width"]), int(data["height"]))
    block = data.get("intrinsic_left", data)
    if all(k in block for k in ("fx", "fy", "cx", "cy")):
        matrix = _matrix(*(float(block[k]) for k in ("fx", "fy", "cx", "cy")))
    else:
        key = next((k for k in ("K", "camera_matrix", "intrinsic_matrix") if k in block), None)
        if key is None:
            raise InputMediaError(
                f"{path}: no intrinsics found; expected keys fx, fy, cx, cy, or K / "
                "camera_matrix / intrinsic_matrix (3x3), or the calibration.json layout with "
                "intrinsic_left"
            )
        matrix = np.asarray(block[key], dtype=np.float64)
    distortion = np.zeros(5)
    coefficients = data.get("distortion_coefficients_left")
    if isinstance(coefficients, dict):
        distortion = np.array([float(coefficients.get(k, 0.0)) for k in _DISTORTION_KEYS])
    elif "distortion" in data or "dist_coeffs" in data:
        distortion = np.asarray(data.get("distortion", data.get("dist_coeffs")), np.float64)
    return matrix, distortion.ravel(), size


def load_intrinsics(path: str | Path, width: int, height: int) -> Intrinsics:
    """Read intrinsics for frames of ``width`` x ``height`` [px].

    Raises:
        InputMediaError: Missing or unreadable file, unknown layout, or a calibration made for
            another aspect ratio.
    """
    path = Path(path)
    if not path.is_file():
        raise InputMediaError(f"{path}: intrinsics file not found")
    size: tuple[int, int] | None = None
    try:
        if path.suffix.lower() == ".npy":
            matrix = np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
            distortion = np.zeros(5)
        elif path.suffix.lower() == ".json":
            matrix, distortion, size = _from_json(path, json.loads(path.read_text()))
        else:
            raise InputMediaError(f"{path}: unknown intrinsics file type; valid: .json, .npy")
    except (ValueError, OSError, TypeError) as err:
        raise InputMediaError(f"{path}: cannot read intrinsics ({err})") from None
    matrix = _check_matrix(path, matrix)
    if distortion.size not in (4, 5, 8, 12, 14) or not np.all(np.isfinite(distortion)):
        raise InputMediaError(
            f"{path}: distortion must hold 4, 5, 8, 12 or 14 finite OpenCV coefficients, "
            f"got {distortion.tolist()}"
        )
    source = str(path)
    if size is not None and size != (width, height):
        scale_x, scale_y = width / size[0], height / size[1]
        if abs(scale_x - scale_y) > 1e-3 * max(scale_x, scale_y):
            raise InputMediaError(
                f"{path}: calibrated for {size[0]}x{size[1]}, but the frames are "
                f"{width}x{height} (a different aspect ratio)"
            )
        matrix = np.diag([scale_x, scale_y, 1.0]) @ matrix
        source += f" (scaled from {size[0]}x{size[1]})"
    return Intrinsics(matrix, distortion, width, height, source)
