"""Robot descriptions from a user's TOML file.

A config file names the same fields as :class:`robots.RobotDescription`; paths are relative to
the file. Example (see README, "Your own robot")::

    name = "my_arm"
    kind = "arm+gripper"          # "arm+gripper", "hand" or "arm+hand"
    side = "any"                  # "right", "left" or "any"
    urdf = "my_arm.urdf"
    ee_frame = "tool0"
    nominal_ee_position = [0.4, 0.0, 0.3]

    [transform_hand_to_ee]        # pose of the human hand frame H in ee_frame
    rpy = [0.0, 0.0, 0.0]         # or: rotation = [[1,0,0],[0,1,0],[0,0,1]]
    translation = [-0.10, 0.0, -0.04]

    symmetry = "2-fold"           # turns about the approach axis that grasp the same way:
                                  # "none" (default), "2-fold" (parallel grippers), "continuous"

    [gripper]
    joint = "finger_joint"
    closed_position = 0.0
    open_position = 0.04
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robots.description import (
    Attachment,
    FingerMapping,
    GripperMapping,
    RobotDescription,
    Transform,
    parse_kind,
    parse_side,
    parse_symmetry,
)
from robots.exceptions import RobotConfigError
from robots.sources import EXAMPLE_ROBOT_DATA, UrdfSource

_TOP_KEYS = {
    "name": "registry-style name, lower case",
    "kind": "'arm+gripper', 'hand' or 'arm+hand'",
    "side": "'right', 'left' or 'any'",
    "urdf": "URDF path, relative to this file (or to the package)",
    "urdf_package": f"optional: {EXAMPLE_ROBOT_DATA!r}",
    "ee_frame": "frame driven by the wrist pose (arms) or palm frame (hands)",
    "transform_hand_to_ee": "table: pose of the human hand frame H in ee_frame",
    "fingertips": "array of tables {keypoint, frame}",
    "gripper": "table {joint, closed_position, open_position, closed_aperture, open_aperture}",
    "scale": "robot hand size over human hand size",
    "attach": "table {urdf, urdf_package, parent_frame, transform}",
    "nominal_ee_position": "[x, y, z] in the base frame [m]",
    "rest_pose": "table joint name -> position",
    "summary": "one line for listings",
    "symmetry": "'none', '2-fold' or 'continuous' (turns about the gripper's approach axis)",
}


def _check_keys(table: Mapping[str, Any], valid: Mapping[str, str] | set[str], where: str) -> None:
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise RobotConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: "
            + ", ".join(sorted(valid))
        )


def _require(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise RobotConfigError(f"{where}: missing required key {key!r}")
    return table[key]


def _vector3(value: Any, where: str) -> tuple[float, float, float]:
    try:
        x, y, z = (float(v) for v in value)
    except (TypeError, ValueError):
        raise RobotConfigError(f"{where}: expected three numbers, got {value!r}") from None
    return (x, y, z)


def _transform(table: Any, where: str) -> Transform:
    if not isinstance(table, Mapping):
        raise RobotConfigError(f"{where}: expected a table with rotation or rpy, and translation")
    _check_keys(table, {"rotation", "rpy", "translation"}, where)
    if "rotation" in table and "rpy" in table:
        raise RobotConfigError(f"{where}: give either 'rotation' or 'rpy', not both")
    translation = _vector3(table.get("translation", (0, 0, 0)), f"{where}.translation")
    if "rpy" in table:
        roll, pitch, yaw = _vector3(table["rpy"], f"{where}.rpy")
        return Transform.from_rpy(roll, pitch, yaw, translation)
    rotation = table.get("rotation", ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    rows = tuple(_vector3(row, f"{where}.rotation") for row in rotation)
    return Transform(rows, translation)


def _urdf(path: Any, package: Any, base: Path, where: str) -> UrdfSource:
    if not isinstance(path, str):
        raise RobotConfigError(f"{where}: 'urdf' must be a path string, got {path!r}")
    if package is None:
        return UrdfSource(str((base / path).resolve()))
    return UrdfSource(path, str(package))


def description_from_mapping(table: Mapping[str, Any], base: Path, where: str) -> RobotDescription:
    """Build a description from a parsed config table; paths are relative to ``base``."""
    _check_keys(table, _TOP_KEYS, where)
    gripper = None
    if "gripper" in table:
        g = table["gripper"]
        valid = {"joint", "closed_position", "open_position", "closed_aperture", "open_aperture"}
        _check_keys(g, valid, f"{where} [gripper]")
        gripper = GripperMapping(
            joint=str(_require(g, "joint", f"{where} [gripper]")),
            closed_position=float(_require(g, "closed_position", f"{where} [gripper]")),
            open_position=float(_require(g, "open_position", f"{where} [gripper]")),
            closed_aperture=float(g.get("closed_aperture", 0.02)),
            open_aperture=float(g.get("open_aperture", 0.10)),
        )
    fingertips = []
    for i, f in enumerate(table.get("fingertips", ())):
        _check_keys(f, {"keypoint", "frame"}, f"{where} [[fingertips]] #{i}")
        fingertips.append(
            FingerMapping(
                int(_require(f, "keypoint", f"{where} [[fingertips]] #{i}")),
                str(_require(f, "frame", f"{where} [[fingertips]] #{i}")),
            )
        )
    attach = None
    if "attach" in table:
        a = table["attach"]
        _check_keys(a, {"urdf", "urdf_package", "parent_frame", "transform"}, f"{where} [attach]")
        attach = Attachment(
            urdf=_urdf(
                _require(a, "urdf", f"{where} [attach]"), a.get("urdf_package"), base, where
            ),
            parent_frame=str(_require(a, "parent_frame", f"{where} [attach]")),
            transform_child_to_parent=_transform(
                a.get("transform", {}), f"{where} [attach.transform]"
            ),
        )
    rest_pose = table.get("rest_pose", {})
    if not isinstance(rest_pose, Mapping):
        raise RobotConfigError(f"{where}: 'rest_pose' must be a table of joint name = position")
    return RobotDescription(
        name=str(_require(table, "name", where)),
        kind=parse_kind(str(_require(table, "kind", where))),
        side=parse_side(str(table.get("side", "any"))),
        urdf=_urdf(_require(table, "urdf", where), table.get("urdf_package"), base, where),
        ee_frame=str(_require(table, "ee_frame", where)),
        transform_hand_to_ee=_transform(
            table.get("transform_hand_to_ee", {}), f"{where} [transform_hand_to_ee]"
        ),
        fingertips=tuple(fingertips),
        gripper=gripper,
        scale=float(table.get("scale", 1.0)),
        attach=attach,
        nominal_ee_position=_vector3(
            table.get("nominal_ee_position", (0.4, 0.0, 0.3)), f"{where}.nominal_ee_position"
        ),
        rest_pose=tuple((str(k), float(v)) for k, v in rest_pose.items()),
        summary=str(table.get("summary", f"user robot from {where}")),
        symmetry=parse_symmetry(str(table.get("symmetry", "none"))),
    )


def load_config(path: str | Path) -> RobotDescription:
    """Read a robot description from a TOML file.

    Raises:
        RobotConfigError: If the file cannot be read or parsed, or a field is missing or wrong.
    """
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise RobotConfigError(f"cannot read robot config {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise RobotConfigError(f"robot config {path} is not valid TOML: {err}") from None
    return description_from_mapping(table, path.parent.resolve(), str(path))
