"""The built-in robots. Keep the tuple sorted by name (a test checks it)."""

from __future__ import annotations

from robots.description import (
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
from robots.sources import EXAMPLE_ROBOT_DATA, UrdfSource

# Human hand frame H -> Allegro palm_link. Allegro's palm frame has z distal (fingers extend
# along +z), x palmar (fingers curl towards +x), and the index finger on +y (right hand) or -y
# (left hand). H has x distal, z palmar and y towards the little finger (right) or the thumb
# (left); on both Allegro hands that is palm -y. The human wrist sits at the bottom of the palm
# box (z = -0.095 m, centre of its thickness x = -0.0093 m, from the URDF's collision box).
_HAND_TO_ALLEGRO_PALM = Transform(
    rotation=((0.0, 0.0, 1.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0)),
    translation=(-0.0093, 0.0, -0.095),
)

# Allegro: thumb, index, middle, ring (no little finger).
_ALLEGRO_TIPS = (
    FingerMapping(4, "link_15.0_tip"),
    FingerMapping(8, "link_3.0_tip"),
    FingerMapping(12, "link_7.0_tip"),
    FingerMapping(16, "link_11.0_tip"),
)

# Robot fingertip vectors over human ones. The Allegro's wrist-to-middle-tip distance at full
# extension is 0.231 m; an adult hand's wrist-to-middle-tip distance is about 0.18-0.19 m.
_ALLEGRO_SCALE = 1.25

# Parallel grippers: the tool frame's axes equal H's (z = approach = palmar, x = distal), and
# the tool centre point sits where a human pinch closes, about 10 cm distal and 4 cm palmar of
# the wrist: the wrist is therefore at (-0.10, 0, -0.04) in the tool frame.
_HAND_TO_TCP = Transform(translation=(-0.10, 0.0, -0.04))


def _allegro(side: Side) -> RobotDescription:
    """The Allegro hand of one side: same mapping, mirrored URDF."""
    return RobotDescription(
        name=f"allegro_{side.value}",
        kind=RobotKind.HAND,
        side=side,
        urdf=UrdfSource(
            f"allegro_hand_description/urdf/allegro_{side.value}_hand.urdf", EXAMPLE_ROBOT_DATA
        ),
        ee_frame="palm_link",
        transform_hand_to_ee=_HAND_TO_ALLEGRO_PALM,
        fingertips=_ALLEGRO_TIPS,
        scale=_ALLEGRO_SCALE,
        summary=f"Wonik Allegro {side.value} hand, 16 DoF, floating wrist",
    )


REGISTRY: tuple[RobotDescription, ...] = (
    _allegro(Side.LEFT),
    _allegro(Side.RIGHT),
    RobotDescription(
        name="panda",
        kind=RobotKind.ARM_GRIPPER,
        side=Side.ANY,
        urdf=UrdfSource("panda_description/urdf/panda.urdf", EXAMPLE_ROBOT_DATA),
        ee_frame="panda_hand_tcp",
        transform_hand_to_ee=_HAND_TO_TCP,
        # Each finger travels 0-0.04 m; panda_finger_joint2 mimics panda_finger_joint1.
        gripper=GripperMapping("panda_finger_joint1", closed_position=0.0, open_position=0.04),
        nominal_ee_position=(0.5, 0.0, 0.35),
        rest_pose=(
            ("panda_joint1", 0.0),
            ("panda_joint2", -0.785),
            ("panda_joint3", 0.0),
            ("panda_joint4", -2.356),
            ("panda_joint5", 0.0),
            ("panda_joint6", 1.571),
            ("panda_joint7", 0.785),
        ),
        summary="Franka Emika Panda, 7-DoF arm with parallel gripper (default robot)",
        symmetry=Symmetry.TWO_FOLD,  # the two fingers are alike: turned 180 deg, the same grasp
    ),
    RobotDescription(
        name="so101",
        kind=RobotKind.ARM_GRIPPER,
        side=Side.ANY,
        urdf=UrdfSource("so_arm_description/urdf/so101.urdf", EXAMPLE_ROBOT_DATA),
        ee_frame="gripper_frame_link",
        transform_hand_to_ee=_HAND_TO_TCP,
        # LeRobot's SO-101 convention: gripper 0 rad is closed, larger opens the jaw.
        gripper=GripperMapping("gripper", closed_position=0.0, open_position=1.5),
        nominal_ee_position=(0.25, 0.0, 0.15),
        rest_pose=(("shoulder_lift", -0.6), ("elbow_flex", 0.6), ("wrist_flex", 0.6)),
        summary="TheRobotStudio SO-101, 5-DoF arm with gripper (LeRobot's low-cost arm)",
        # A fixed and a moving jaw close on the same midplane: turned 180 deg, the same grasp.
        symmetry=Symmetry.TWO_FOLD,
    ),
    RobotDescription(
        name="ur5_allegro",
        kind=RobotKind.ARM_HAND,
        side=Side.RIGHT,
        urdf=UrdfSource("ur_description/urdf/ur5_robot.urdf", EXAMPLE_ROBOT_DATA),
        attach=Attachment(
            urdf=UrdfSource(
                "allegro_hand_description/urdf/allegro_right_hand.urdf", EXAMPLE_ROBOT_DATA
            ),
            parent_frame="tool0",
            # The palm box's bottom (z = -0.095 m in palm_link) sits on the flange.
            transform_child_to_parent=Transform(translation=(0.0, 0.0, 0.095)),
        ),
        ee_frame="palm_link",
        transform_hand_to_ee=_HAND_TO_ALLEGRO_PALM,
        fingertips=_ALLEGRO_TIPS,
        scale=_ALLEGRO_SCALE,
        nominal_ee_position=(0.45, 0.15, 0.35),
        rest_pose=(
            ("shoulder_pan_joint", 0.0),
            ("shoulder_lift_joint", -1.571),
            ("elbow_joint", 1.571),
            ("wrist_1_joint", -1.571),
            ("wrist_2_joint", -1.571),
            ("wrist_3_joint", 0.0),
        ),
        summary="Universal Robots UR5 carrying an Allegro right hand (composed at load time)",
    ),
)


#: Robots made of two single-arm robots, one per hand. Keep sorted by name.
BIMANUAL_REGISTRY: tuple[BimanualDescription, ...] = (
    BimanualDescription(
        name="bimanual_panda",
        left="panda",
        right="panda",
        # Bases 0.6 m apart, both facing +x (an ALOHA-like table setup); each arm keeps its
        # nominal reachable point 0.5 m ahead of its own base.
        transform_left_base_to_base=Transform(translation=(0.0, 0.3, 0.0)),
        transform_right_base_to_base=Transform(translation=(0.0, -0.3, 0.0)),
        summary="two Franka Emika Pandas with grippers, 0.6 m apart (left hand -> left arm)",
    ),
)
