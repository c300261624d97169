"""A still of an episode: the joints against their limits, the flags over time, the residuals."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.viz.episode import load_episode
from retarget import BimanualRobot, Flag, Robot, load_any_robot
from robots import FINGERTIP_KEYPOINTS

#: Order of the fingers in plots of a dexterous hand.
FINGER_ORDER = ("index", "middle", "ring", "little", "thumb")


def joint_fingers(robot: Robot | BimanualRobot) -> dict[str, str]:
    """The finger each joint of a dexterous hand moves, by joint name.

    A joint moves a finger when it is on the path from the base to that finger's fingertip
    frame and on no other finger's path. Empty for a robot without fingertips.
    """
    if isinstance(robot, BimanualRobot):
        return {}
    model = robot.model
    moved: dict[str, list[str]] = {}
    for mapping in robot.description.fingertips:
        joint = model.frames[model.getFrameId(mapping.frame)].parentJoint
        while joint > 0:
            moved.setdefault(model.names[joint], []).append(FINGERTIP_KEYPOINTS[mapping.keypoint])
            joint = model.parents[joint]
    # A joint that moves every finger (an arm's) belongs to none.
    return {name: fingers[0] for name, fingers in moved.items() if len(fingers) == 1}


def plot_episode(root: str | Path, episode: int, output: str | Path) -> None:
    """PNG of one episode: joints against their limits, the flags over time, the residuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = load_episode(root, episode)
    robot = load_any_robot(data.robot)
    time = data.rows["timestamp"].astype(np.float64)
    fingers = joint_fingers(robot)
    # A dexterous hand's joints grouped by finger (arm joints first), each labelled with it.
    order = sorted(
        range(len(data.joint_names)),
        key=lambda j: (
            FINGER_ORDER.index(fingers[data.joint_names[j]]) + 1
            if data.joint_names[j] in fingers else 0, j,
        ),
    )  # fmt: skip
    state = data.rows["observation.state"].astype(np.float64)
    count = state.shape[1]
    marker = "o" if len(time) < 2 else None  # one frame (an image) draws no line: a point
    figure, axes = plt.subplots(
        count + 2, 1, figsize=(10, 1.3 * (count + 2)), sharex=True, constrained_layout=True
    )
    for axis, j in zip(axes, order, strict=False):
        axis.plot(time, state[:, j], color="tab:blue", lw=1, marker=marker)
        axis.axhline(robot.lower[j], color="tab:red", lw=0.8, ls="--")
        axis.axhline(robot.upper[j], color="tab:red", lw=0.8, ls="--")
        name = data.joint_names[j]
        label = f"{fingers[name]}: {name}" if name in fingers else name
        axis.set_ylabel(label, rotation=0, ha="right", fontsize=7)
    flags = data.rows["flags"].astype(np.int64)
    timeline = np.array([[(value >> bit) & 1 for value in flags] for bit in range(len(Flag))])
    axes[count].imshow(
        timeline, aspect="auto", cmap="Reds", interpolation="nearest",
        extent=(time[0], time[-1] + 1.0 / data.fps, len(Flag) - 0.5, -0.5),
    )  # fmt: skip
    axes[count].set_yticks(range(len(Flag)), [str(f.name) for f in Flag], fontsize=6)
    residual = axes[count + 1]
    for name, scale, label in (
        ("residual.position", 1000.0, "position [mm]"),
        ("residual.fingertip", 1000.0, "fingertip [mm]"),
        ("residual.orientation", np.degrees(1.0), "orientation [deg]"),
    ):
        values = data.rows[name].astype(np.float64) * scale
        if np.isfinite(values).any():
            residual.plot(time, values, lw=1, label=label, marker=marker)
    residual.legend(fontsize=6, loc="upper right")
    residual.set_xlabel("time [s]")
    figure.suptitle(f"episode {episode}: {data.robot}, {data.side} hand (dashed: URDF limits)")
    figure.savefig(output, dpi=90)
    plt.close(figure)
