"""Forward kinematics in torch, built from a robot's own Pinocchio model.

Pinocchio stays the reference: :class:`TorchKinematics` reads the joint placements, axes and
frame placements of the very model :class:`retarget.Robot` loaded (the attached hand, the mimic
followers included), so the two agree to rounding (``tests/test_trajectory.py``: 1e-9 m and
rad on every registry robot). Batched over any leading shape, differentiable (``torch.func``
takes its Jacobians), on the CPU or CUDA.

pytorch-kinematics (``pk.build_serial_chain_from_urdf``) does the same from the URDF text; it
was measured and not taken (BENCHMARKS.md, sixteenth session: 2.5-2.9x slower on the Panda,
8.6e-8 from Pinocchio against 4e-16 here); it also parses the URDF again (a second reading of
joints and mimics that could disagree with Pinocchio's) and knows nothing of the hand
``arm+hand`` robots attach.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pinocchio as pin
import torch

from retarget.exceptions import RobotConfigError
from retarget.robot import Robot, frame_id


def _skew(axis: np.ndarray) -> np.ndarray:
    x, y, z = axis
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


class FrameJacobians(NamedTuple):
    """Frame poses with their Jacobians (:meth:`TorchKinematics.jacobians`)."""

    rotations: torch.Tensor
    """Shape (..., F, 3, 3): frame orientations in the base frame."""
    positions: torch.Tensor
    """Shape (..., F, 3): frame origins in the base frame [m]."""
    linear: torch.Tensor
    """Shape (..., F, 3, nq): d(origin)/dq in base axes [m/rad] or [m/m]."""
    angular: torch.Tensor
    """Shape (..., F, 3, nq): angular velocity per joint velocity in base axes [rad/rad]."""


class TorchKinematics:
    """Poses of chosen frames of ``robot`` for batches of joint positions ``q``.

    Args:
        robot: A loaded robot; its model is read once.
        frames: Names of the frames to place (the end effector, fingertips, ...).
        dtype: Floating type of every tensor (float64 matches Pinocchio to rounding).
        device: Where the tensors live (``"cpu"``, ``"cuda"``, a ``torch.device``).

    Raises:
        RobotConfigError: A frame is not in the model (the message lists them), or a joint
            moves along neither one axis of rotation nor of translation.
    """

    def __init__(
        self,
        robot: Robot,
        frames: tuple[str, ...],
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        model = robot.model
        self.frames = frames
        self.dtype, self.device = dtype, torch.device(device)
        ids = [frame_id(model, f, "frame", robot.name) for f in frames]
        needed = sorted({j for f in ids for j in model.supports[model.frames[f].parentJoint]})
        self._joints = [j for j in needed if j > 0]
        self._slot = {0: -1} | {j: i for i, j in enumerate(self._joints)}
        columns = {name: i for i, name in enumerate(robot.joint_names)}
        mimics = {m.follower: m for m in robot.mimic_joints}
        rows, parents, revolute = [], [], []
        rotation, translation, axes = [], [], []
        for j in self._joints:
            name = model.names[j]
            mimic = mimics.get(name)
            source = mimic.leader if mimic is not None else name
            rows.append(
                (
                    columns[source],
                    mimic.multiplier if mimic else 1.0,
                    mimic.offset if mimic else 0.0,
                )
            )
            parents.append(self._slot[model.parents[j]])
            axis, turns = _joint_axis(model, j, robot.name)
            revolute.append(turns)
            rotation.append(model.jointPlacements[j].rotation)
            translation.append(model.jointPlacements[j].translation)
            axes.append(axis)
        self._column = torch.tensor([r[0] for r in rows], dtype=torch.long, device=self.device)
        self._multiplier = self._tensor([r[1] for r in rows])
        self._offset = self._tensor([r[2] for r in rows])
        self._parents = parents
        self._revolute = revolute
        self._placement_rotation = self._tensor(np.array(rotation))
        self._placement_translation = self._tensor(np.array(translation))
        self._axis = self._tensor(np.array(axes))
        self._skew = self._tensor(np.array([_skew(a) for a in axes]))
        self._skew2 = self._skew @ self._skew
        # A frame fixed to the base hangs from the base pose, kept after the joints' poses.
        slots = [self._slot[model.frames[f].parentJoint] % (len(self._joints) + 1) for f in ids]
        self._frame_slot = torch.tensor(slots, dtype=torch.long, device=self.device)
        ancestor = np.zeros((len(ids), len(self._joints)))
        for k, f in enumerate(ids):
            for j in model.supports[model.frames[f].parentJoint]:
                if j > 0:
                    ancestor[k, self._slot[j]] = 1.0
        self._ancestor = self._tensor(ancestor)
        joint_to_column = np.zeros((len(self._joints), robot.nq))
        for i, (column, multiplier, _) in enumerate(rows):
            joint_to_column[i, column] += multiplier
        self._joint_to_column = self._tensor(joint_to_column)
        self._revolute_mask = self._tensor(np.array(revolute, dtype=np.float64))
        self._frame_rotation = self._tensor(
            np.array([model.frames[f].placement.rotation for f in ids])
        )
        self._frame_translation = self._tensor(
            np.array([model.frames[f].placement.translation for f in ids])
        )

    def _tensor(self, values: object) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=np.float64), device=self.device).to(
            self.dtype
        )

    def forward(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame poses in the base frame at ``q``.

        Args:
            q: Shape (..., nq): joint positions in the columns of ``robot.joint_names`` [rad]
                or [m].

        Returns:
            Rotations of shape (..., F, 3, 3) and positions of shape (..., F, 3) [m], one per
            frame of ``frames``, in their order.
        """
        rotations, positions = self._joint_poses(q)
        return self._frame_poses(rotations, positions)

    def jacobians(self, q: torch.Tensor) -> FrameJacobians:
        """Frame poses and their Jacobians at ``q`` (..., nq), in the base frame's axes.

        The Jacobians are Pinocchio's ``LOCAL_WORLD_ALIGNED`` frame Jacobians: the velocity of
        each frame's origin and its angular velocity, both in base-frame axes, per joint
        velocity (mimic followers folded into their leaders' columns).
        """
        rotations, positions = self._joint_poses(q)
        frame_rotations, frame_positions = self._frame_poses(rotations, positions)
        rotations, positions = rotations[..., :-1, :, :], positions[..., :-1, :]
        axes = (rotations @ self._axis[:, :, None])[..., 0]  # (..., J, 3) in base axes
        turns = self._revolute_mask[:, None]
        arm = frame_positions[..., :, None, :] - positions[..., None, :, :]  # (..., F, J, 3)
        angular = axes * turns
        linear = torch.where(
            turns > 0, torch.linalg.cross(angular[..., None, :, :], arm), axes[..., None, :, :]
        )
        linear = linear * self._ancestor[..., None]
        angular = angular[..., None, :, :] * self._ancestor[..., None]
        return FrameJacobians(
            frame_rotations,
            frame_positions,
            linear.transpose(-1, -2) @ self._joint_to_column,
            angular.transpose(-1, -2) @ self._joint_to_column,
        )

    def _joint_poses(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every needed joint's pose, then the base's: (..., J + 1, 3, 3) and (..., J + 1, 3)."""
        values = q[..., self._column] * self._multiplier + self._offset  # (..., J)
        shape = q.shape[:-1]
        eye = torch.eye(3, dtype=q.dtype, device=q.device).expand(*shape, 3, 3)
        zero = torch.zeros(*shape, 3, dtype=q.dtype, device=q.device)
        rotations: list[torch.Tensor] = []
        positions: list[torch.Tensor] = []
        for i, parent in enumerate(self._parents):
            parent_rotation = eye if parent < 0 else rotations[parent]
            parent_position = zero if parent < 0 else positions[parent]
            value = values[..., i, None, None]
            placement = self._placement_rotation[i]
            local_position = self._placement_translation[i].expand(*shape, 3)
            if self._revolute[i]:
                motion = (
                    eye
                    + torch.sin(value) * self._skew[i]
                    + (1 - torch.cos(value)) * (self._skew2[i])
                )
                local_rotation = placement @ motion
            else:
                local_rotation = placement.expand(*shape, 3, 3)
                local_position = local_position + value[..., 0] * (placement @ self._axis[i])
            rotations.append(parent_rotation @ local_rotation)
            positions.append(
                parent_position + (parent_rotation @ local_position[..., None])[..., 0]
            )
        rotations.append(eye)  # the base, for frames fixed to it
        positions.append(zero)
        return torch.stack(rotations, dim=-3), torch.stack(positions, dim=-2)

    def _frame_poses(
        self, rotations: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The frames' rotations (..., F, 3, 3) and positions (..., F, 3) from the joints'."""
        parent_rotation = rotations[..., self._frame_slot, :, :]
        parent_position = positions[..., self._frame_slot, :]
        frame_rotations = parent_rotation @ self._frame_rotation
        frame_positions = (
            parent_position + (parent_rotation @ self._frame_translation[..., None])[..., 0]
        )
        return frame_rotations, frame_positions


def _joint_axis(model: pin.Model, joint: int, robot: str) -> tuple[np.ndarray, bool]:
    """The joint's unit axis in its own frame, and whether it turns (else it slides)."""
    joint_model = model.joints[joint]
    data = joint_model.createData()
    joint_model.calc(data, np.zeros(joint_model.nq))
    motion = np.asarray(data.S).ravel()
    linear, angular = motion[:3], motion[3:]
    if np.linalg.norm(linear) < 1e-12 and abs(np.linalg.norm(angular) - 1) < 1e-9:
        return angular, True
    if np.linalg.norm(angular) < 1e-12 and abs(np.linalg.norm(linear) - 1) < 1e-9:
        return linear, False
    raise RobotConfigError(
        f"robot {robot!r}: joint {model.names[joint]!r} ({joint_model.shortname()}) is neither "
        "revolute nor prismatic about one axis"
    )
