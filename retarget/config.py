"""Settings of the retargeter: solver settings and the thresholds behind every flag."""

from __future__ import annotations

from dataclasses import dataclass, field

from retarget.arm_ik import IKConfig
from retarget.exceptions import InvalidInputError
from retarget.vector_retargeting import VectorConfig


@dataclass(frozen=True)
class FeasibilityConfig:
    """Thresholds above which a frame is flagged.

    Defaults: a 1 cm end-effector position error is about the accuracy of monocular metric hand
    lifting, so larger errors mean the robot really missed; 0.35 rad (20 degrees) orientation
    error is beyond the usual wrist-orientation noise of single-camera estimates (about 10
    degrees); a 3 cm mean fingertip error (robot scale) means a visibly different hand shape.
    """

    max_position_error: float = 0.01
    """UNREACHABLE above this end-effector position error [m]."""
    max_orientation_error: float = 0.35
    """UNREACHABLE above this end-effector orientation error [rad]."""
    max_fingertip_error: float = 0.03
    """UNREACHABLE above this mean wrist-to-fingertip vector error [m] (robot scale)."""
    min_score: float = 0.5
    """LOW_CONFIDENCE below this detector score (MediaPipe's own default threshold)."""
    max_lift_error: float = 0.15
    """LIFT_UNCERTAIN above this PnP reprojection error over the hand's image size, where a
    caller gives that figure (``lift_error``): measured 5-12% on well-detected real frames."""
    max_wrist_std: float = 0.10
    """LIFT_UNCERTAIN above this standard deviation of the lifted wrist along its viewing ray
    [m], as the caller gives it (``wrist_std``; the pipeline passes ``wrist_position_std``
    without the unknown hand size's part, which is one scale for the whole track:
    :func:`pipeline.lifting.frame_std`). Measured on the shared ZED frames: median 89 mm at
    0.61-0.87 m from the camera monocular, of which 54 mm per frame; 19 mm with depth maps.
    0.10 m marks a wrist that may be half a hand's length off along the ray from one frame to
    the next."""
    max_camera_std: float = 1.0
    """CAMERA_UNCERTAIN above this standard deviation of the camera's rotation [deg], as the
    caller gives it (``camera_std``; the pipeline passes ``HandTracks.camera_rotation_std``,
    NaN where the camera's pose is unknown). Measured on the estimator's turning clips:
    0.01-0.05 deg, with errors of 0.02 deg median; a degree turns a wrist 0.5 m away by 9 mm."""
    joint_limit_margin: float = 1e-3
    """A joint within this of a URDF limit is on it [rad] or [m]. JOINT_LIMIT is set when a frame
    misses its target with a joint on a limit and the same solve without limits reaches it."""
    velocity_scale: float = 1.0
    """VELOCITY_LIMIT when a joint moves faster than this times its URDF velocity limit between
    consecutive frames with a hand (true timestamps)."""
    min_singular_value: float = 0.03
    """SINGULAR when the arm's dexterity falls below this: the smallest singular value of its
    end-effector Jacobian, the linear rows divided by the arm's chain length
    (:func:`retarget.arm_ik.dexterity`; dimensionless, so one threshold suits arms of every
    size). The arm loses a direction of motion. Measured on the Panda (chain 1.09 m): 0.12-0.16
    on the sample clip's frames (10th-90th percentile), 0.024 with the elbow stretched to its
    limit (q4 = -0.07 rad) and the wrist bent (q6 = 1.5 rad)."""
    check_self_collision: bool = True
    """SELF_COLLISION when two parts of the robot's URDF collision geometry intersect
    (:class:`retarget.collision.SelfCollision`: adjacent links, SRDF-disabled pairs and
    contacts already present at the rest pose excluded). Costs 0.07 (Panda) to 0.5 (UR5 +
    Allegro) ms per frame."""

    def __post_init__(self) -> None:
        for name in (
            "max_position_error",
            "max_orientation_error",
            "max_fingertip_error",
            "max_lift_error",
            "max_wrist_std",
            "max_camera_std",
            "joint_limit_margin",
            "velocity_scale",
        ):
            if not getattr(self, name) > 0:
                raise InvalidInputError(f"FeasibilityConfig.{name} must be > 0")
        if not 0 <= self.min_score <= 1 or self.min_singular_value < 0:
            raise InvalidInputError(
                "FeasibilityConfig.min_score must be within [0, 1] and min_singular_value >= 0"
            )


DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class TrajectoryConfig:
    """Settings of :class:`retarget.TrajectoryOptimizer`: the whole clip's cost and its solver.

    The cost, summed over the clip: the tracking error of every frame with a hand in units of
    the flag thresholds (``FeasibilityConfig``: 1 = a residual at its threshold), plus the
    joints' velocity, acceleration and jerk in units of their URDF velocity limits, plus a
    steep penalty on speeds above ``velocity_margin`` times the limit the ``VELOCITY_LIMIT``
    flag applies.
    """

    velocity_weight: float = 1e-3
    """Weight of the squared joint speed over its limit (dimensionless), every joint, every
    frame step. The three smoothness weights were chosen on the five shared videos (feasible
    frames, Panda: 439 of 843 with 0.001/0.1/0.01, 433 with 0.001/0.01/0.001, 430 with
    0.01/1/1, the smoothest) and a synthetic clip (3 mm target noise: the end effector 3.6 mm
    from the true motion against 4.5 mm per frame)."""
    acceleration_weight: float = 0.1
    """Weight of the squared acceleration, times ``time_scale``, over the velocity limit."""
    jerk_weight: float = 1e-2
    """Weight of the squared jerk, times ``time_scale`` squared, over the velocity limit."""
    time_scale: float = 0.1
    """The time [s] that turns acceleration and jerk into speeds (a tenth of a second: the
    motion within a few video frames)."""
    velocity_margin: float = 0.9
    """Speeds above this fraction of the flagged speed (``velocity_scale`` times the URDF
    limit) are penalised, so that the optimised motion stays clear of the flag."""
    velocity_penalty: float = 300.0
    """Weight of the speed above the margin, in limits (its square is added)."""
    uncertain_weight: float = 0.1
    """Tracking weight of frames whose input is in doubt (``LOW_CONFIDENCE``,
    ``LIFT_UNCERTAIN``, ``CAMERA_UNCERTAIN``): their targets jump with the lifting's noise, so
    the motion follows the trusted frames around them more closely than them."""
    guard_level: float = 0.8
    """A dexterous hand's mean fingertip error above this fraction of its threshold is also
    penalised steeply (``guard_weight``): smoothing is free below the threshold and costly
    across it, where a frame's flag would change (measured, five shared videos,
    ``allegro_right``: feasible frames 49 per frame, 34 optimised without it, 61 with)."""
    guard_weight: float = 10.0
    """Weight of the mean fingertip error's excess over ``guard_level``, in thresholds."""
    collision_margin: float = 0.002
    """Gap [m] kept between the spheres that cover a dexterous hand's collision geometry
    (:class:`retarget.spheres.SphereModel`; they hold the geometry, so it is kept at least this
    far apart where they cover it), or the gap the start has if that is smaller: the
    per-frame solve keeps coal's exact geometry apart, and the spheres are larger than it."""
    collision_weight: float = 30.0
    """Weight of a sphere pair's intrusion into its gap, per ``max_position_error`` (30: a
    millimetre weighs three position thresholds). 0 turns the term off. Measured on the five
    shared videos (left / right Allegro, feasible and ``SELF_COLLISION`` frames): 3 -> 54 / 68
    feasible with 354 / 69 colliding, 10 -> 54 / 68 with 41 / 16, 30 -> 53 / 68 with 8 / 4 (per
    frame: 43 / 49 with 0 / 0). Without the start's gap as the floor, 3 gave 38 / 62, and 10-30
    (with a lower guard) 0-2 on the left hand: the spheres alone are too large for a grasp."""
    penalty_stages: int = 6
    """The speed penalty starts at its weight over ``penalty_ramp`` to the power
    ``penalty_stages - 1`` and reaches it at this iteration (continuation)."""
    penalty_ramp: float = 4.0
    """The speed penalty's growth per iteration while it ramps up."""
    gripper_tolerance: float = 0.05
    """The gripper's tracking unit: this fraction of its closed-to-open travel."""
    hard_velocity_limit: bool = True
    """After the solve, rate-limit what is still faster than ``hard_speed`` times the flagged
    speed (a stretch the penalty did not settle within ``iterations``): the mean of a forward
    and a backward rate limiter, which leaves a trajectory within the bound unchanged."""
    hard_speed: float = 0.99
    """The bound of ``hard_velocity_limit``, as a fraction of the flagged speed."""
    iterations: int = 30
    """Gauss-Newton (Levenberg-Marquardt) iterations at most. Measured on the five shared
    videos (Panda): ``VELOCITY_LIMIT`` frames 211 per frame, 44 after 15 iterations, 24 after
    30; the bundled sample's flags settle after 3."""
    tolerance: float = 1e-4
    """Stop when an accepted step lowers the cost by less than this fraction."""
    device: str = "cpu"
    """torch device: ``cpu``, ``cuda``, ``cuda:1``, ..."""
    dtype: str = "float64"
    """Floating type: ``float64`` (Pinocchio's precision) or ``float32`` (faster on GPUs)."""

    def __post_init__(self) -> None:
        for name in ("velocity_weight", "acceleration_weight", "jerk_weight", "collision_weight"):
            if not getattr(self, name) >= 0:
                raise InvalidInputError(f"TrajectoryConfig.{name} must be >= 0")
        for name in (
            "time_scale",
            "velocity_penalty",
            "gripper_tolerance",
            "tolerance",
            "uncertain_weight",
            "collision_margin",
            "guard_level",
            "guard_weight",
        ):
            if not getattr(self, name) > 0:
                raise InvalidInputError(f"TrajectoryConfig.{name} must be > 0")
        if not 0 < self.velocity_margin <= 1 or not 0 < self.hard_speed <= 1:
            raise InvalidInputError(
                "TrajectoryConfig.velocity_margin and hard_speed must be within (0, 1]"
            )
        if self.penalty_stages < 1 or self.penalty_ramp < 1:
            raise InvalidInputError(
                "TrajectoryConfig.penalty_stages must be >= 1 and penalty_ramp >= 1"
            )
        if self.iterations < 1:
            raise InvalidInputError("TrajectoryConfig.iterations must be >= 1")
        if self.dtype not in DTYPES:
            raise InvalidInputError(
                f"unknown TrajectoryConfig.dtype {self.dtype!r}; valid choices: "
                + ", ".join(DTYPES)
            )


@dataclass(frozen=True)
class RetargetConfig:
    """Settings of :class:`Retargeter`; every field has a documented default."""

    ik: IKConfig = field(default_factory=IKConfig)
    """Arm inverse kinematics settings."""
    hand: VectorConfig = field(default_factory=VectorConfig)
    """Finger vector retargeting settings."""
    feasibility: FeasibilityConfig = field(default_factory=FeasibilityConfig)
    """Flag thresholds."""
    optimize: bool | None = None
    """Refine the per-frame solution over the whole clip (:class:`retarget.TrajectoryOptimizer`:
    tracking against smoothness and velocity limits, in torch). None (the default): every clip
    that has timestamps (every clip the pipeline retargets; a plain
    ``retarget_sequence(keypoints)`` has none and is solved per frame); True: every clip
    (timestamps required); False: never. Measured on the five shared videos at the default
    placements: more feasible frames for the two Allegro hands and the UR5 + Allegro, 2% fewer
    for the Panda and 1% fewer for the SO-101 (which keep to the velocity limits through the
    lift's noise), ``VELOCITY_LIMIT`` on 12 frames instead of 798, for 6-8% of a clip's
    conversion time (README, "Trajectory optimisation")."""
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    """The trajectory optimiser's weights and solver settings."""
    thumb_vectors: bool = True
    """Also match thumb-to-finger vectors (keeps pinches closed), not only wrist-to-fingertip."""
    finger_roots: bool = True
    """Start the four fingers' targets at the robot's own finger roots: each wrist-to-fingertip
    target is the robot's wrist-to-root vector plus the human's MCP-to-tip vector, scaled. The
    robot's fingers stand further apart than a scaled human's (the Allegro's roots 43.5 mm, a
    human's MCPs about 25 mm scaled), and a closing human hand brings its fingertips in towards
    the middle finger: taken from the wrist, that bends the robot's outer fingers sideways past
    their limits (``JOINT_LIMIT``). Measured on the five shared videos' 1,493 hand frames
    (Allegro, per-frame solve): frames without a hand-solver flag 67.2% -> 92.0%, on the
    open-and-close stretches 80.4% -> 89.5%; the fingertip geometry against the human's
    (palm-normalised distances) MAE 0.134 -> 0.123, correlation 0.975 -> 0.974 (BENCHMARKS.md).
    The thumb keeps its wrist-to-tip target (its root sits elsewhere on every robot hand), and
    the thumb-to-finger vectors are the human's. False: every target is the human's vector,
    scaled (earlier releases; dex-retargeting's vector mapping)."""
    avoid_self_collision: bool = True
    """Keep a dexterous hand's fingers apart while solving (finger against finger and against
    the palm, :class:`retarget.collision.CollisionAvoidance`; margin and weight in ``hand``).
    Without it the vector targets, scaled from a human hand that is narrower than the robot's,
    drive neighbouring fingers through each other on most real frames, and those frames are
    flagged ``SELF_COLLISION``. Contacts involving an arm link are not avoided, only flagged."""
    use_symmetry: bool = True
    """Take the end effector's symmetry (``RobotDescription.symmetry``: a parallel gripper is the
    same turned 180 deg about its approach axis) into account: the solve may reach the turned
    twin of a target, chosen per stretch of frames (:meth:`Retargeter.solve`), and the
    orientation residual is measured to the nearest equivalent target. False asks for the one
    orientation the wrist gives (earlier releases' behaviour)."""
