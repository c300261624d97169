"""Synthetic inputs made from robot forward kinematics, for round-trip tests."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
from numpy.typing import NDArray

from retarget import RetargetConfig, Robot, aperture_from_gripper
from retarget.hand_frame import FINGER_MCP

# A human hand in its own frame H (right hand: y towards the little finger), [m]. Wrist,
# index MCP (5), middle MCP (9) and little MCP (17) define H exactly: 9 lies on +x, 5 and 17 in
# the z = 0 plane. The other keypoints are filled in plausibly; the retargeting reads only the
# frame points and the fingertips.
_TEMPLATE_RIGHT = np.array(
    [
        [0.000, 0.000, 0.000],  # 0 wrist
        [0.030, -0.030, 0.010],  # 1 thumb CMC
        [0.050, -0.045, 0.015],  # 2 thumb MCP
        [0.070, -0.055, 0.020],  # 3 thumb IP
        [0.090, -0.060, 0.025],  # 4 thumb tip
        [0.090, -0.020, 0.000],  # 5 index MCP
        [0.125, -0.022, 0.000],  # 6
        [0.150, -0.023, 0.000],  # 7
        [0.170, -0.024, 0.000],  # 8 index tip
        [0.095, 0.000, 0.000],  # 9 middle MCP
        [0.135, 0.000, 0.000],
        [0.160, 0.000, 0.000],
        [0.182, 0.000, 0.000],  # 12 middle tip
        [0.090, 0.020, 0.000],  # 13 ring MCP
        [0.125, 0.021, 0.000],
        [0.150, 0.022, 0.000],
        [0.170, 0.023, 0.000],  # 16 ring tip
        [0.080, 0.040, 0.000],  # 17 little MCP
        [0.105, 0.042, 0.000],
        [0.125, 0.044, 0.000],
        [0.140, 0.045, 0.000],  # 20 little tip
    ]
)


def template_keypoints(side: str) -> NDArray[np.float64]:
    """Template keypoints in H, shape (21, 3); the left hand mirrors y."""
    points = _TEMPLATE_RIGHT.copy()
    if side == "left":
        points[:, 1] *= -1
    return points


def smooth_trajectory(
    rng: np.random.Generator,
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    frames: int,
    margin: float = 0.1,
) -> NDArray[np.float64]:
    """Random smooth joint trajectory inside [lower, upper] (shrunk by ``margin`` of the range)."""
    lo = lower + margin * (upper - lower)
    hi = upper - margin * (upper - lower)
    t = np.linspace(0.0, 1.0, frames)[:, None]
    phase = rng.uniform(0, 2 * np.pi, size=(1, len(lower)))
    freq = rng.uniform(0.5, 1.5, size=(1, len(lower)))
    centre = rng.uniform(0.3, 0.7, size=(1, len(lower)))
    wave = centre + 0.3 * np.sin(2 * np.pi * freq * t + phase)
    return lo + np.clip(wave, 0, 1) * (hi - lo)


def random_rigid(rng: np.random.Generator) -> NDArray[np.float64]:
    """A random rigid transform (4, 4): uniform rotation, translation within 1 m."""
    quat = rng.normal(size=4)
    w, x, y, z = quat / np.linalg.norm(quat)
    transform = np.eye(4)
    transform[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    transform[:3, 3] = rng.uniform(-1, 1, size=3)
    return transform


FROM_WRIST = RetargetConfig(finger_roots=False)
"""The default settings with every finger target taken from the wrist: the hands that
:func:`synthetic_keypoints` makes by default are exact for it (their MCPs are the template's,
not at the robot's finger roots)."""


def synthetic_keypoints(
    robot: Robot, q: NDArray[np.float64], side: str, finger_roots: bool = False
) -> NDArray[np.float64]:
    """Human keypoints in H whose retargeting target is exactly the robot at ``q``.

    Fingertips come from forward kinematics mapped back through the mounting and scale; with
    ``finger_roots`` (``RetargetConfig.finger_roots``) a finger's tip is placed from its MCP as
    the robot's is from the finger's root. The thumb-index aperture is set from the gripper
    joint when the robot has one.

    Args:
        robot: A loaded robot.
        q: Joint trajectory, shape (T, nq).
        side: ``"right"`` or ``"left"``.
        finger_roots: The retargeting's ``RetargetConfig.finger_roots``.

    Returns:
        Shape (T, 21, 3) [m], in the hand frame H.
    """
    d = robot.description
    points = np.repeat(template_keypoints(side)[None], len(q), axis=0)
    mounting = robot.transform_hand_to_ee
    if d.fingertips:
        frames = (d.ee_frame,) + tuple(f.frame for f in d.fingertips)
        for t, qt in enumerate(q):
            poses = robot.frame_placements(qt, frames)
            in_ee = (poses[1:, :3, 3] - poses[0, :3, 3]) @ poses[0, :3, :3]
            in_hand = (in_ee - mounting[:3, 3]) @ mounting[:3, :3] / d.scale
            for f, p in zip(d.fingertips, in_hand, strict=True):
                points[t, f.keypoint] = p
            if finger_roots:
                for keypoint, root in _finger_roots_in_hand(robot, qt).items():
                    points[t, keypoint] += points[t, FINGER_MCP[keypoint]] - root
    if d.gripper is not None:
        column = robot.joint_names.index(d.gripper.joint)
        aperture = aperture_from_gripper(q[:, column], d.gripper)
        # Place the thumb tip at that distance from the index tip, along -z (palmar side).
        points[:, 4] = points[:, 8] + aperture[:, None] * np.array([0.0, 0.0, 1.0])
    return points


def _finger_roots_in_hand(robot: Robot, q: NDArray[np.float64]) -> dict[int, NDArray[np.float64]]:
    """Each finger's root joint in H at human scale, by the finger's tip keypoint (thumb aside)."""
    d, model = robot.description, robot.model
    data = model.createData()
    pin.framesForwardKinematics(model, data, robot.model_configuration(q))
    ee = data.oMf[model.getFrameId(d.ee_frame)]
    mounting = robot.transform_hand_to_ee
    roots = {}
    for f in d.fingertips:
        if f.keypoint not in FINGER_MCP:
            continue
        joint = model.frames[model.getFrameId(f.frame)].parentJoint
        while model.names[model.parents[joint]] in robot.hand_joints:
            joint = model.parents[joint]
        in_ee = ee.actInv(data.oMi[joint].translation)
        roots[f.keypoint] = (in_ee - mounting[:3, 3]) @ mounting[:3, :3] / d.scale
    return roots


def apply_transform(
    transform: NDArray[np.float64], points: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Apply a (4, 4) transform to points of shape (..., 3)."""
    return np.asarray(points @ transform[:3, :3].T + transform[:3, 3])
