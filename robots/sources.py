"""Where URDF files come from: the ``example-robot-data`` package or a user path."""

from __future__ import annotations

import functools
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from robots.exceptions import RobotConfigError

#: Package name of the URDF collection shipped on PyPI as ``example-robot-data``.
EXAMPLE_ROBOT_DATA = "example-robot-data"


@functools.cache
def example_robot_data_root() -> Path:
    """Return the ``robots/`` folder of the installed ``example-robot-data`` package.

    The wheel installs its files under ``<site-packages>/cmeel.prefix/share/example-robot-data``
    and ships no importable Python module, so the folder is found from the install scheme.

    Raises:
        RobotConfigError: If the package is not installed.
    """
    candidates = []
    for key in ("purelib", "platlib"):
        candidates.append(
            Path(sysconfig.get_paths()[key]) / "cmeel.prefix" / "share" / "example-robot-data"
        )
    for candidate in candidates:
        if (candidate / "robots").is_dir():
            return candidate / "robots"
    raise RobotConfigError(
        "the 'example-robot-data' package is not installed (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); install hand2robot with pip so that its dependencies come along"
    )


@dataclass(frozen=True)
class UrdfSource:
    """A URDF file, either inside a package or at a filesystem path.

    Attributes:
        path: Path of the URDF, relative to the package's robot folder when ``package`` is set,
            else absolute or relative to the current directory.
        package: ``"example-robot-data"`` or ``None`` for a plain path.
    """

    path: str
    package: str | None = None

    def resolve(self) -> Path:
        """Return the absolute path of the URDF file.

        Raises:
            RobotConfigError: If the package is unknown or the file does not exist.
        """
        if self.package is None:
            resolved = Path(self.path).expanduser().resolve()
        elif self.package == EXAMPLE_ROBOT_DATA:
            resolved = example_robot_data_root() / self.path
        else:
            raise RobotConfigError(
                f"unknown URDF package {self.package!r}; valid choices: "
                f"{EXAMPLE_ROBOT_DATA!r} or no package (a file path)"
            )
        if not resolved.is_file():
            raise RobotConfigError(f"URDF file not found: {resolved}")
        return resolved

    def package_dirs(self) -> list[str]:
        """Folders that ``package://`` mesh URIs inside the URDF are resolved against."""
        if self.package == EXAMPLE_ROBOT_DATA:
            # URIs read package://example-robot-data/robots/..., so the share folder is the root.
            return [str(example_robot_data_root().parent.parent)]
        return [str(self.resolve().parent)]

    def __str__(self) -> str:
        return f"{self.package}:{self.path}" if self.package else self.path
