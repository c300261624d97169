"""Robot registry: URDF sources and human-to-robot mappings, as frozen descriptions.

Nothing here builds a kinematic model; :func:`retarget.load_robot` does that from a description.
"""

from __future__ import annotations

from pathlib import Path

from robots._descriptions import REGISTRY
from robots.config import load_config
from robots.description import (
    FINGERTIP_KEYPOINTS,
    Attachment,
    FingerMapping,
    GripperMapping,
    RobotDescription,
    RobotKind,
    Side,
    Transform,
)
from robots.exceptions import Hand2RobotError, RobotConfigError, RobotNotFound
from robots.sources import EXAMPLE_ROBOT_DATA, UrdfSource, example_robot_data_root

#: The robot used when none is named.
DEFAULT_ROBOT = "panda"


def names() -> tuple[str, ...]:
    """Names of the built-in robots, sorted."""
    return tuple(d.name for d in REGISTRY)


def get_description(name_or_path: str | Path) -> RobotDescription:
    """Return a built-in robot's description, or read one from a TOML config file.

    Raises:
        RobotNotFound: If the name is not in the registry and is not an existing file.
        RobotConfigError: If the config file is invalid.
    """
    for description in REGISTRY:
        if description.name == str(name_or_path):
            return description
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise RobotNotFound(f"robot config file not found: {path}")
        return load_config(path)
    raise RobotNotFound(
        f"unknown robot {str(name_or_path)!r}; valid choices: {', '.join(names())} "
        "or the path of a robot config file (.toml)"
    )


__all__ = [
    "DEFAULT_ROBOT",
    "EXAMPLE_ROBOT_DATA",
    "FINGERTIP_KEYPOINTS",
    "REGISTRY",
    "Attachment",
    "FingerMapping",
    "GripperMapping",
    "Hand2RobotError",
    "RobotConfigError",
    "RobotDescription",
    "RobotKind",
    "RobotNotFound",
    "Side",
    "Transform",
    "UrdfSource",
    "example_robot_data_root",
    "get_description",
    "load_config",
    "names",
]
