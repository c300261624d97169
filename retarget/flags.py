"""Per-frame feasibility flags: why a retargeted frame may not be something the robot can do."""

from enum import IntFlag


class Flag(IntFlag):
    """Bitmask of the reasons a frame is questionable. ``0`` means no reason was found.

    Each bit has a figure behind it in the retargeting result (residuals, scores) and a
    threshold in :class:`retarget.RetargetConfig`.
    """

    NO_HAND = 1 << 0
    """No hand was detected in this frame; the joint positions hold the last valid frame."""
    LOW_CONFIDENCE = 1 << 1
    """The hand detector's score is below the threshold."""
    LIFT_UNCERTAIN = 1 << 2
    """The metric lifting (PnP) reprojection error is above the threshold."""
    UNREACHABLE = 1 << 3
    """The solver's position, orientation or fingertip residual is above tolerance."""
    JOINT_LIMIT = 1 << 4
    """The target needs a joint beyond its URDF limit (the solution sits on the limit)."""
    VELOCITY_LIMIT = 1 << 5
    """A joint speed implied by consecutive frames exceeds its URDF velocity limit."""
    SELF_COLLISION = 1 << 6
    """The robot's collision geometry intersects itself (adjacent links excluded)."""
    SINGULAR = 1 << 7
    """The arm is close to a kinematic singularity."""
    CAMERA_UNCERTAIN = 1 << 8
    """The camera's own motion, taken out of the hand motion, is uncertain or unknown in this
    frame (its rotation's standard deviation is above the threshold or NaN)."""


def flag_names(value: int) -> list[str]:
    """Names of the flags set in ``value``, in bit order."""
    return [f.name for f in Flag if f.name is not None and value & f]
