"""Spheres that cover a robot's collision geometry, and their gaps in torch.

The trajectory optimiser keeps the robot clear of itself with these (:mod:`retarget.optimizer`);
the flag stays coal's (:class:`retarget.collision.SelfCollision`, on the URDF geometry itself).
Only a dexterous hand's own pairs are kept apart (:func:`hand_pairs`), as in the per-frame solve.
Each part of the geometry is covered by a chain of spheres along the longest axis of its
bounding box (one sphere for a sphere), each sphere reaching the box's corners between its
neighbours, so the spheres hold the whole part: a pair of spheres apart means the parts' boxes
are apart where they cover. The pairs kept are the hand's among
:class:`~retarget.collision.SelfCollision`'s, less the sphere pairs that already overlap at the
rest pose (the covers are larger than the parts, as coal's own rest contacts are left out).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pinocchio as pin
import torch
from numpy.typing import NDArray

from retarget.collision import SelfCollision
from retarget.robot import Robot
from retarget.torch_kinematics import FrameJacobians, TorchKinematics


def cover(item: pin.GeometryObject) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Spheres holding one collision part: centres (S, 3) in its joint's frame [m], radii (S,)."""
    shape = item.geometry
    shape.computeLocalAABB()
    low = np.asarray(shape.aabb_local.min_, dtype=np.float64)
    high = np.asarray(shape.aabb_local.max_, dtype=np.float64)
    center, half = (low + high) / 2, (high - low) / 2
    if type(shape).__name__ == "Sphere":
        centers, radii = center[None], np.array([float(shape.radius)])
    else:
        axis = int(np.argmax(half))
        across = np.delete(half, axis)
        spacing = max(float(across.min()), 1e-4) * 2
        count = max(1, math.ceil(2 * half[axis] / spacing))
        step = 2 * half[axis] / count
        offsets = -half[axis] + step * (np.arange(count) + 0.5)
        centers = np.repeat(center[None], count, axis=0)
        centers[:, axis] += offsets
        radius = math.sqrt(float(across @ across) + (step / 2) ** 2)
        radii = np.full(count, radius)
    placement = item.placement
    return centers @ placement.rotation.T + placement.translation, radii


def hand_pairs(robot: Robot, checker: SelfCollision) -> list[tuple[int, int]]:
    """The checked geometry pairs among a dexterous hand's own parts.

    Finger against finger and against the palm, as
    :class:`~retarget.collision.CollisionAvoidance` keeps them.

    Contacts with an arm link are flagged, not avoided, in the per-frame solve as here.
    """
    model, objects = checker.model, checker.geometry.geometryObjects
    hand = {model.getJointId(name) for name in robot.hand_joints}
    anchor = model.frames[model.getFrameId(robot.description.ee_frame)].parentJoint
    kept = []
    for pair in checker.geometry.collisionPairs:
        joints = {objects[pair.first].parentJoint, objects[pair.second].parentJoint}
        if joints <= hand | {anchor} and joints & hand:
            kept.append((int(pair.first), int(pair.second)))
    return kept


class NearPairs(NamedTuple):
    """Sphere pairs closer than asked, over a batch of configurations (K of them)."""

    frame: torch.Tensor
    """Shape (K,): the configuration each is found in."""
    pair: torch.Tensor
    """Shape (K,): which pair (a row of :attr:`SphereModel.pairs`)."""
    gap: torch.Tensor
    """Shape (K,) [m]: the gap (negative: overlap)."""
    slope: torch.Tensor
    """Shape (K, nq): d(gap)/dq."""


class SphereModel:
    """The robot's collision cover and the sphere pairs of its hand to keep apart.

    Args:
        robot: A loaded robot.
        checker: Its collision check (the geometry and the pairs checked).
        dtype: Floating type of the tensors.
        device: Where they live.

    Only the parts in the hand's pairs (:func:`hand_pairs`) are covered.

    Attributes:
        pairs: Shape (P, 2): sphere indices kept apart (none that overlap at the rest pose).
        radii: Shape (S,) [m].
    """

    def __init__(
        self,
        robot: Robot,
        checker: SelfCollision,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        model, objects = checker.model, checker.geometry.geometryObjects
        kept = hand_pairs(robot, checker)
        parts = sorted({part for pair in kept for part in pair})  # only these are covered
        joints = sorted({int(objects[part].parentJoint) for part in parts})
        frames = tuple("universe" if j == 0 else model.names[j] for j in joints)
        self.kinematics = TorchKinematics(robot, frames, dtype, device)
        centers: list[NDArray[np.float64]] = []
        radii: list[NDArray[np.float64]] = []
        owner: list[int] = []
        first_sphere: dict[int, int] = {}
        for part in parts:
            c, r = cover(objects[part])
            first_sphere[part] = len(owner)
            centers.append(c)
            radii.append(r)
            owner += [joints.index(int(objects[part].parentJoint))] * len(r)
        pairs = [
            (first_sphere[a] + i, first_sphere[b] + j)
            for a, b in kept
            for i in range(len(radii[parts.index(a)]))
            for j in range(len(radii[parts.index(b)]))
        ]
        self._centers = torch.as_tensor(
            np.concatenate(centers or [np.zeros((0, 3))]), dtype=dtype, device=device
        )
        self.radii = torch.as_tensor(
            np.concatenate(radii or [np.zeros(0)]), dtype=dtype, device=device
        )
        self._owner = torch.as_tensor(np.array(owner, dtype=np.int64), device=device)
        self.pairs = torch.as_tensor(np.array(pairs, dtype=np.int64).reshape(-1, 2), device=device)
        rest = torch.as_tensor(np.array(robot.rest), dtype=dtype, device=device)
        self.pairs = self.pairs[self.gaps(rest) > 0]

    def centers(self, q: torch.Tensor) -> torch.Tensor:
        """Sphere centres in the base frame at ``q`` (..., nq): shape (..., S, 3) [m]."""
        rotations, positions = self.kinematics.forward(q)
        return self._place(rotations, positions)

    def _place(self, rotations: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        rotation = rotations[..., self._owner, :, :]
        return (rotation @ self._centers[..., None])[..., 0] + positions[..., self._owner, :]

    def gaps(self, q: torch.Tensor) -> torch.Tensor:
        """Gaps between the kept sphere pairs at ``q`` (..., nq), shape (..., P) [m].

        Negative where they overlap.
        """
        centers = self.centers(q)
        between = centers[..., self.pairs[:, 1], :] - centers[..., self.pairs[:, 0], :]
        distance = torch.linalg.vector_norm(between, dim=-1)
        return distance - self.radii[self.pairs[:, 0]] - self.radii[self.pairs[:, 1]]

    def near(self, q: torch.Tensor, within: float | torch.Tensor) -> NearPairs:
        """The (frame, pair) gaps below ``within`` [m] at ``q`` (N, nq), with their slopes.

        ``within``: one distance, or one per frame and pair, shape (N, P).
        """
        frames = self.kinematics.jacobians(q)
        centers = self._place(frames.rotations, frames.positions)  # (N, S, 3)
        first, second = self.pairs[:, 0], self.pairs[:, 1]
        between = centers[:, second] - centers[:, first]
        distance = torch.linalg.vector_norm(between, dim=-1)
        gaps = distance - self.radii[first] - self.radii[second]
        frame, pair = torch.nonzero(gaps < within, as_tuple=True)
        normal = between[frame, pair] / distance[frame, pair].clamp_min(1e-9)[:, None]
        slope = self._point_slope(frames, centers, frame, second[pair], normal)
        slope = slope - self._point_slope(frames, centers, frame, first[pair], normal)
        return NearPairs(frame, pair, gaps[frame, pair], slope)

    def _point_slope(
        self,
        frames: FrameJacobians,
        centers: torch.Tensor,
        rows: torch.Tensor,
        sphere: torch.Tensor,
        normal: torch.Tensor,
    ) -> torch.Tensor:
        """The rate of one sphere's centre along ``normal``, per row: shape (K, nq)."""
        owner = self._owner[sphere]
        # A point c carried by joint frame (p, W) moves at L + W x (c - p) per joint velocity.
        offset = centers[rows, sphere] - frames.positions[rows, owner]
        linear = frames.linear[rows, owner]  # (K, 3, nq)
        angular = frames.angular[rows, owner]
        moving = linear + torch.linalg.cross(angular, offset[..., None].expand_as(angular), dim=-2)
        return (normal[..., None] * moving).sum(-2)
