import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import retarget
import robots
from pipeline.cli import app
from robots import RobotConfigError, RobotNotFound


def test_registry_is_sorted_and_unique():
    names = [d.name for d in robots.REGISTRY]
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    assert {"panda", "so101", "allegro_right", "allegro_left"} <= set(names)
    assert robots.DEFAULT_ROBOT in names


def test_every_entry_loads_with_existing_paths(robots_loaded):
    for description in robots.REGISTRY:
        assert description.urdf.resolve().is_file()
        robot = robots_loaded[description.name]
        assert robot.nq == len(robot.joint_names) == len(robot.lower) == len(robot.upper)
        assert np.all(robot.lower <= robot.rest) and np.all(robot.rest <= robot.upper)
        assert len(robot.urdf_sha256) == 64


def test_expected_kinematics(robots_loaded):
    panda = robots_loaded["panda"]
    assert panda.arm_joints == tuple(f"panda_joint{i}" for i in range(1, 8))
    assert panda.gripper_joint == "panda_finger_joint1"
    assert "panda_finger_joint2" not in panda.joint_names  # mimic follower, computed
    q = panda.rest.copy()
    q[panda.joint_names.index("panda_finger_joint1")] = 0.03
    full = panda.model_configuration(q)
    follower = panda.model.joints[panda.model.getJointId("panda_finger_joint2")].idx_q
    assert full[follower] == pytest.approx(0.03)
    so101 = robots_loaded["so101"]
    assert len(so101.arm_joints) == 5 and so101.gripper_joint == "gripper"
    for name in ("allegro_right", "allegro_left"):
        assert robots_loaded[name].nq == 16 and not robots_loaded[name].arm_joints
    composed = robots_loaded["ur5_allegro"]
    assert len(composed.arm_joints) == 6 and len(composed.hand_joints) == 16
    assert composed.nq == 22
    # The palm is carried by the arm: moving the UR5's first joint moves the palm.
    q = composed.rest.copy()
    before = composed.frame_placements(q, ("palm_link",))[0]
    q[0] += 0.5
    after = composed.frame_placements(q, ("palm_link",))[0]
    assert np.linalg.norm(after[:3, 3] - before[:3, 3]) > 0.05


def test_unknown_robot_lists_choices():
    with pytest.raises(RobotNotFound, match="valid choices: allegro_left, allegro_right, panda"):
        retarget.load_robot("pandas")


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "robot.toml"
    path.write_text(textwrap.dedent(body))
    return path


PANDA_CONFIG = """
    name = "my_panda"
    kind = "arm+gripper"
    urdf = "panda_description/urdf/panda.urdf"
    urdf_package = "example-robot-data"
    ee_frame = "{ee}"
    [transform_hand_to_ee]
    rpy = [0.0, 0.0, 0.0]
    translation = [-0.1, 0.0, -0.04]
    [gripper]
    joint = "{gripper}"
    closed_position = 0.0
    open_position = 0.04
"""


def test_user_config_loads(tmp_path):
    path = _write(tmp_path, PANDA_CONFIG.format(ee="panda_hand_tcp", gripper="panda_finger_joint1"))
    robot = retarget.load_robot(path)
    assert robot.name == "my_panda" and robot.nq == 8


def test_config_missing_link(tmp_path):
    path = _write(tmp_path, PANDA_CONFIG.format(ee="panda_tool", gripper="panda_finger_joint1"))
    with pytest.raises(
        RobotConfigError, match=r"ee_frame 'panda_tool' is not a frame.*panda_hand_tcp"
    ):
        retarget.load_robot(path)


def test_config_wrong_joint_name(tmp_path):
    path = _write(tmp_path, PANDA_CONFIG.format(ee="panda_hand_tcp", gripper="finger"))
    with pytest.raises(
        RobotConfigError, match=r"gripper joint 'finger' is not a joint.*panda_joint1"
    ):
        retarget.load_robot(path)


def test_config_mimic_joint(tmp_path):
    path = _write(tmp_path, PANDA_CONFIG.format(ee="panda_hand_tcp", gripper="panda_finger_joint2"))
    with pytest.raises(RobotConfigError, match="mimic joint following 'panda_finger_joint1'"):
        retarget.load_robot(path)


def test_config_hand_axes_against_convention(tmp_path):
    # Allegro mounting rotated 180 degrees about the palm normal: fingers would point proximal.
    path = _write(
        tmp_path,
        """
        name = "bad_allegro"
        kind = "hand"
        side = "right"
        urdf = "allegro_hand_description/urdf/allegro_right_hand.urdf"
        urdf_package = "example-robot-data"
        ee_frame = "palm_link"
        [transform_hand_to_ee]
        rotation = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]
        [[fingertips]]
        keypoint = 4
        frame = "link_15.0_tip"
        [[fingertips]]
        keypoint = 8
        frame = "link_3.0_tip"
        [[fingertips]]
        keypoint = 16
        frame = "link_11.0_tip"
        """,
    )
    with pytest.raises(
        RobotConfigError, match="does not match the hand frame convention.*proximal"
    ):
        retarget.load_robot(path)


def test_config_reflection_and_unknown_key(tmp_path):
    body = PANDA_CONFIG.format(ee="panda_hand_tcp", gripper="panda_finger_joint1")
    reflected = body.replace("rpy = [0.0, 0.0, 0.0]", "rotation = [[1,0,0],[0,1,0],[0,0,-1]]")
    with pytest.raises(RobotConfigError, match="reflection"):
        retarget.load_robot(_write(tmp_path, reflected))
    typo = body.replace('kind = "arm+gripper"', 'kind = "arm+gripper"\nscael = 1.0')
    with pytest.raises(RobotConfigError, match=r"unknown key\(s\) 'scael'; valid keys: attach"):
        retarget.load_robot(_write(tmp_path, typo))
    kind = body.replace('kind = "arm+gripper"', 'kind = "gripper"')
    with pytest.raises(
        RobotConfigError, match="valid choices: 'arm\\+gripper', 'hand', 'arm\\+hand'"
    ):
        retarget.load_robot(_write(tmp_path, kind))


def test_cli_robots_lists_registry():
    table = CliRunner().invoke(app, ["robots"], env={"COLUMNS": "80"}).output
    assert all(name in table for name in robots.names())
    assert "…" not in table  # the long URDF sources wrap on a narrow terminal, never cut short
    result = CliRunner().invoke(app, ["robots", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == list(robots.names()) + list(robots.bimanual_names())
    pair = rows[-1]
    assert pair["kind"] == "bimanual" and pair["dof"] == 16 and pair["side"] == "both"
    dof = {r["name"]: r["dof"] for r in rows}
    assert dof == {
        "allegro_left": 16,
        "bimanual_panda": 16,
        "allegro_right": 16,
        "panda": 8,
        "so101": 6,
        "ur5_allegro": 22,
    }
