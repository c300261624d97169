"""A robot as retargeting needs it: a Pinocchio model, its joints by name, and its mapping."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

import robots
from robots import RobotConfigError, RobotDescription, RobotKind, Side, Transform


@dataclass(frozen=True)
class MimicJoint:
    """A URDF joint that follows another: ``q_follower = multiplier * q_leader + offset``."""

    follower: str
    leader: str
    multiplier: float
    offset: float


def transform_matrix(transform: Transform) -> NDArray[np.float64]:
    """Return a description's :class:`robots.Transform` as a (4, 4) homogeneous matrix."""
    matrix = np.eye(4)
    matrix[:3, :3] = np.asarray(transform.rotation, dtype=np.float64)
    matrix[:3, 3] = transform.translation
    return matrix


def _read_mimics(urdf: Path) -> list[MimicJoint]:
    mimics = []
    for joint in ET.parse(urdf).getroot().iter("joint"):
        tag = joint.find("mimic")
        if tag is not None:
            mimics.append(
                MimicJoint(
                    follower=joint.attrib["name"],
                    leader=tag.attrib["joint"],
                    multiplier=float(tag.attrib.get("multiplier", 1.0)),
                    offset=float(tag.attrib.get("offset", 0.0)),
                )
            )
    return mimics


def frame_id(model: pin.Model, name: str, what: str, robot: str) -> int:
    """The id of frame ``name`` of ``model``.

    Raises:
        RobotConfigError: No such frame (the message says what it was for and lists them).
    """
    if not model.existFrame(name):
        frames = sorted({f.name for f in model.frames if f.name != "universe"})
        raise RobotConfigError(
            f"robot {robot!r}: {what} {name!r} is not a frame of the URDF; valid choices: "
            + ", ".join(frames)
        )
    return int(model.getFrameId(name))


def _build_model(description: RobotDescription) -> tuple[pin.Model, list[Path]]:
    """The Pinocchio model of the URDF (with the attached one, if any), and the URDF paths."""
    urdf_path = description.urdf.resolve()
    model = pin.buildModelFromUrdf(str(urdf_path))
    paths = [urdf_path]
    if description.attach is not None:
        attach = description.attach
        child_path = attach.urdf.resolve()
        paths.append(child_path)
        child = pin.buildModelFromUrdf(str(child_path))
        parent = frame_id(model, attach.parent_frame, "attach parent_frame", description.name)
        placement = pin.SE3(transform_matrix(attach.transform_child_to_parent))
        model = pin.appendModel(model, child, parent, placement)
    return model, paths


def _scalar_joints(model: pin.Model, name: str) -> list[str]:
    """The model's joint names; every joint must be one scalar (revolute or prismatic)."""
    multi = [model.names[j] for j in range(1, model.njoints) if model.joints[j].nq != 1]
    if multi:
        raise RobotConfigError(
            f"robot {name!r}: joints {multi} are not single-axis (continuous, floating or "
            "planar joints); hand2robot drives revolute joints with limits and prismatic joints"
        )
    return [model.names[j] for j in range(1, model.njoints)]


def _checked_mimics(mimics: list[MimicJoint], all_joints: list[str], name: str) -> list[MimicJoint]:
    for mimic in mimics:
        if mimic.leader not in all_joints:
            raise RobotConfigError(
                f"robot {name!r}: mimic joint {mimic.follower!r} follows unknown joint "
                f"{mimic.leader!r}; valid choices: {', '.join(all_joints)}"
            )
    return mimics


def _mimic_index(
    model: pin.Model, mimics: list[MimicJoint], joint_names: tuple[str, ...], name: str
) -> list[tuple[int, int, MimicJoint]]:
    """Per follower: its index in the model's configuration, its leader's column of ``q``."""
    index = []
    for mimic in mimics:
        if mimic.leader not in joint_names:
            raise RobotConfigError(
                f"robot {name!r}: mimic joint {mimic.follower!r} follows another follower "
                f"{mimic.leader!r}; chains of mimic joints are not supported"
            )
        follower = model.joints[model.getJointId(mimic.follower)].idx_q
        index.append((follower, joint_names.index(mimic.leader), mimic))
    return index


class Robot:
    """A loaded robot: the Pinocchio model of its URDF(s) plus the human-to-robot mapping.

    Attributes:
        description: The registry entry or config it was loaded from.
        model: Pinocchio model of the whole robot (for ``arm+hand``, the composed model).
            Mimic followers are joints of the model but not columns of ``q``.
        joint_names: Independent joints in model order; the columns of every ``q`` array.
        lower: Lower position limits [rad] or [m], shape (nq,), read-only.
        upper: Upper position limits, shape (nq,), read-only.
        velocity_limit: Velocity limits [rad/s] or [m/s], shape (nq,), read-only.
        rest: Rest configuration (solver start), shape (nq,), read-only.
        arm_joints: Joints that carry the end effector (empty for a free hand).
        hand_joints: Joints that move the mapped fingertips.
        gripper_joint: The gripper's driving joint, or ``None``.
        mimic_joints: Followers, computed from their leaders.
        urdf_sha256: SHA-256 of the URDF file(s), in order, for provenance.
    """

    def __init__(self, description: RobotDescription) -> None:
        self.description = description
        name = description.name
        model, paths = _build_model(description)
        self.model = model
        self.urdf_sha256 = hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()
        self.urdf_paths = tuple(paths)
        all_joints = _scalar_joints(model, name)
        mimics = _checked_mimics([m for p in paths for m in _read_mimics(p)], all_joints, name)
        self.mimic_joints = tuple(mimics)
        followers = {m.follower for m in mimics}
        self.joint_names = tuple(j for j in all_joints if j not in followers)
        self._model_q_index = np.array(
            [model.joints[model.getJointId(j)].idx_q for j in self.joint_names]
        )
        self._mimic_index = _mimic_index(model, mimics, self.joint_names, name)
        self.lower = self._columns(model.lowerPositionLimit)
        self.upper = self._columns(model.upperPositionLimit)
        self.velocity_limit = self._columns(model.velocityLimit)
        self.rest = self._rest_pose()
        self.ee_frame_id = frame_id(model, description.ee_frame, "ee_frame", name)
        self.fingertip_frame_ids = tuple(
            frame_id(model, f.frame, f"fingertip frame (keypoint {f.keypoint})", name)
            for f in description.fingertips
        )
        arm, hand = self._chains(followers)
        self.arm_joints = tuple(j for j in self.joint_names if j in arm)
        self.hand_joints = tuple(j for j in self.joint_names if j in hand)
        if description.kind is not RobotKind.ARM_GRIPPER and not self.hand_joints:
            raise RobotConfigError(f"robot {name!r}: no joint moves the mapped fingertips")
        self.gripper_joint = self._checked_gripper_joint(mimics)
        self.transform_hand_to_ee = transform_matrix(description.transform_hand_to_ee)
        self.transform_hand_to_ee.setflags(write=False)
        if self.hand_joints:
            self._check_hand_convention()

    def _columns(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per-joint model values (limits) as a read-only (nq,) array in ``q``'s columns."""
        out = np.array(values[self._model_q_index], dtype=np.float64)
        out.setflags(write=False)
        return out

    def _rest_pose(self) -> NDArray[np.float64]:
        """Zeros clipped to the limits, with the description's ``rest_pose`` values (checked)."""
        name = self.description.name
        rest = np.clip(np.zeros(len(self.joint_names)), self.lower, self.upper)
        for joint, value in self.description.rest_pose:
            if joint not in self.joint_names:
                raise RobotConfigError(
                    f"robot {name!r}: rest_pose names unknown joint {joint!r}; valid choices: "
                    + ", ".join(self.joint_names)
                )
            i = self.joint_names.index(joint)
            if not self.lower[i] <= value <= self.upper[i]:
                raise RobotConfigError(
                    f"robot {name!r}: rest_pose {joint}={value} is outside its limits "
                    f"[{self.lower[i]}, {self.upper[i]}]"
                )
            rest[i] = value
        rest.setflags(write=False)
        return rest

    def _chains(self, followers: set[str]) -> tuple[list[str], list[str]]:
        """The joints that carry the end effector (the arm) and those that move the fingertips."""
        model, description, name = self.model, self.description, self.description.name
        ee_joint = model.frames[self.ee_frame_id].parentJoint
        arm = [model.names[j] for j in model.supports[ee_joint] if j > 0]
        if description.kind is RobotKind.HAND:
            arm = []
        elif len(arm) < 5:
            raise RobotConfigError(
                f"robot {name!r}: ee_frame {description.ee_frame!r} is carried by only "
                f"{len(arm)} joint(s) {arm}; an arm needs at least 5"
            )
        hand: list[str] = []
        for fid in self.fingertip_frame_ids:
            for j in model.supports[model.frames[fid].parentJoint]:
                joint = model.names[j]
                if j > 0 and joint not in arm and joint not in hand:
                    hand.append(joint)
        for joint in arm + hand:
            if joint in followers:
                raise RobotConfigError(
                    f"robot {name!r}: mimic joint {joint!r} lies on the arm or finger chain; "
                    "hand2robot solves only independent joints there"
                )
        return arm, hand

    def _checked_gripper_joint(self, mimics: list[MimicJoint]) -> str | None:
        """The gripper's driving joint, checked against the URDF and the arm; None without."""
        gripper, name = self.description.gripper, self.description.name
        if gripper is None:
            return None
        joint = gripper.joint
        follower = next((m for m in mimics if m.follower == joint), None)
        if follower is not None:
            raise RobotConfigError(
                f"robot {name!r}: gripper joint {joint!r} is a mimic joint following "
                f"{follower.leader!r}; name the driving joint {follower.leader!r} instead"
            )
        if joint not in self.joint_names:
            raise RobotConfigError(
                f"robot {name!r}: gripper joint {joint!r} is not a joint of the URDF; valid "
                f"choices: {', '.join(self.joint_names)}"
            )
        if joint in self.arm_joints:
            raise RobotConfigError(
                f"robot {name!r}: gripper joint {joint!r} moves the end effector frame; "
                "choose the finger joint"
            )
        i = self.joint_names.index(joint)
        for value in (gripper.closed_position, gripper.open_position):
            if not self.lower[i] - 1e-9 <= value <= self.upper[i] + 1e-9:
                raise RobotConfigError(
                    f"robot {name!r}: gripper position {value} is outside the limits of "
                    f"{joint!r} [{self.lower[i]}, {self.upper[i]}]"
                )
        return joint

    @property
    def name(self) -> str:
        """Registry name."""
        return self.description.name

    @property
    def nq(self) -> int:
        """Number of independent joints (columns of ``q``)."""
        return len(self.joint_names)

    def joint_indices(self, names: tuple[str, ...]) -> NDArray[np.intp]:
        """Columns of ``q`` for the given joint names."""
        return np.array([self.joint_names.index(n) for n in names], dtype=np.intp)

    def model_configuration(self, q: NDArray[np.floating]) -> NDArray[np.float64]:
        """Pinocchio configuration (mimic followers filled in) for ``q`` of shape (nq,)."""
        q_model = pin.neutral(self.model)
        q_model[self._model_q_index] = q
        for index, leader, mimic in self._mimic_index:
            q_model[index] = mimic.multiplier * q[leader] + mimic.offset
        return q_model

    def frame_placements(
        self, q: NDArray[np.floating], frames: tuple[str, ...]
    ) -> NDArray[np.float64]:
        """Forward kinematics: poses of ``frames`` in the base frame, shape (len(frames), 4, 4)."""
        data = self.model.createData()
        pin.framesForwardKinematics(self.model, data, self.model_configuration(np.asarray(q)))
        return np.stack([data.oMf[self.model.getFrameId(f)].homogeneous for f in frames])

    def _check_hand_convention(self) -> None:
        """Check that the mounting puts the robot's fingers where ``H`` expects them.

        With the fingers at zero (clipped to limits, i.e. an open hand), the mapped fingertips
        expressed in ``H`` must lie distal (x > 0), and going from the index towards the little
        finger must go along +y on a right hand and -y on a left hand.
        """
        d = self.description
        q = self.rest.copy()
        hand = self.joint_indices(self.hand_joints)
        q[hand] = np.clip(0.0, self.lower[hand], self.upper[hand])
        frames = (d.ee_frame,) + tuple(f.frame for f in d.fingertips)
        poses = self.frame_placements(q, frames)
        tips_in_ee = np.einsum("ji,kj->ki", poses[0, :3, :3], poses[1:, :3, 3] - poses[0, :3, 3])
        rotation = self.transform_hand_to_ee[:3, :3]
        tips_in_hand = (tips_in_ee - self.transform_hand_to_ee[:3, 3]) @ rotation
        fingers = [
            (f.keypoint, p)
            for f, p in zip(d.fingertips, tips_in_hand, strict=True)
            if f.keypoint != 4
        ]
        problems = []
        if np.mean([p[0] for _, p in fingers]) <= 0:
            problems.append("the fingertips lie proximal (x <= 0) instead of distal (x > 0)")
        if len(fingers) >= 2:
            first = min(fingers, key=lambda kp: kp[0])[1]
            last = max(fingers, key=lambda kp: kp[0])[1]
            sign = 1.0 if d.side is Side.RIGHT else -1.0
            if sign * (last[1] - first[1]) <= 0:
                expected = "+y" if d.side is Side.RIGHT else "-y"
                problems.append(
                    f"from the index towards the little finger should go along {expected} on a "
                    f"{d.side.value} hand"
                )
        if problems:
            raise RobotConfigError(
                f"robot {d.name!r}: transform_hand_to_ee does not match the hand frame convention "
                "(H: x distal, z palmar, y = z cross x): "
                + "; ".join(problems)
                + ". Fingertips in H at the open-hand pose [m]: "
                + str(np.round(tips_in_hand, 3).tolist())
            )

    def __repr__(self) -> str:
        return f"Robot({self.name!r}, kind={self.description.kind.value!r}, nq={self.nq})"


def load_robot(robot: str | Path | RobotDescription) -> Robot:
    """Load a robot by registry name, TOML config path, or description.

    Raises:
        RobotNotFound: Unknown name and no such file (the message lists the registry).
        RobotConfigError: The description does not fit its URDF or the conventions.
    """
    description = robot if isinstance(robot, RobotDescription) else robots.get_description(robot)
    return Robot(description)
