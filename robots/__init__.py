"""Robot registry: URDF sources and human-to-robot mappings, as frozen descriptions.

Nothing here builds a kinematic model; :func:`retarget.load_robot` does that from a description.
"""

from __future__ import annotations

from pathlib import Path

from robots._descriptions import BIMANUAL_REGISTRY, REGISTRY
from robots.config import load_config
from robots.description import (
    FINGERTIP_KEYPOINTS,
    Attachment,
    BimanualDescription,
    FingerMapping,
    GripperMapping,
    RobotDescription,
    RobotKind,
    Side,
    Symmetry,
    Transform,
)
from robots.exceptions import Hand2RobotError, RobotConfigError, RobotNotFound
from robots.sources import EXAMPLE_ROBOT_DATA, UrdfSource, example_robot_data_root

#: The robot used when none is named.
DEFAULT_ROBOT = "panda"


def names() -> tuple[str, ...]:
    """Names of the built-in robots, sorted."""
    return tuple(d.name for d in REGISTRY)


def bimanual_names() -> tuple[str, ...]:
    """Names of the built-in bimanual robots (two arms, one per hand), sorted."""
    return tuple(d.name for d in BIMANUAL_REGISTRY)


def get_bimanual(name: str) -> BimanualDescription:
    """Return a built-in bimanual robot's description.

    Raises:
        RobotNotFound: If the name is not a bimanual robot (the message lists them).
    """
    for description in BIMANUAL_REGISTRY:
        if description.name == name:
            return description
    raise RobotNotFound(
        f"unknown bimanual robot {name!r}; valid choices: {', '.join(bimanual_names())}"
    )


def get_description(name_or_path: str | Path) -> RobotDescription:
    """Return a built-in robot's description, or read one from a TOML config file.

    Raises:
        RobotNotFound: If the name is not in the registry and is not an existing file.
        RobotConfigError: If the config file is invalid.
    """
    for description in REGISTRY:
        if description.name == str(name_or_path):
            return description
    if str(name_or_path) in bimanual_names():
        raise RobotNotFound(
            f"{name_or_path!s} is a bimanual robot (two arms, one per hand): load it with "
            "retarget.load_bimanual, or on the command line use it with --hand both"
        )
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise RobotNotFound(f"robot config file not found: {path}")
        return load_config(path)
    raise RobotNotFound(
        f"unknown robot {str(name_or_path)!r}; valid choices: {', '.join(names())} "
        f"(bimanual: {', '.join(bimanual_names())}) or the path of a robot config file (.toml)"
    )


__all__ = [
    "BIMANUAL_REGISTRY",
    "DEFAULT_ROBOT",
    "EXAMPLE_ROBOT_DATA",
    "FINGERTIP_KEYPOINTS",
    "REGISTRY",
    "Attachment",
    "BimanualDescription",
    "FingerMapping",
    "GripperMapping",
    "Hand2RobotError",
    "RobotConfigError",
    "RobotDescription",
    "RobotKind",
    "RobotNotFound",
    "Side",
    "Symmetry",
    "Transform",
    "UrdfSource",
    "bimanual_names",
    "example_robot_data_root",
    "get_bimanual",
    "get_description",
    "load_config",
    "names",
]
