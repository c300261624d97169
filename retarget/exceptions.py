"""Input errors raised by the retargeting API (one hierarchy, rooted in robots.exceptions)."""

from robots.exceptions import Hand2RobotError, RobotConfigError, RobotNotFound


class InvalidInputError(Hand2RobotError, ValueError):
    """Arrays given to the retargeting API have the wrong shape, NaN, or inconsistent lengths."""


__all__ = ["Hand2RobotError", "InvalidInputError", "RobotConfigError", "RobotNotFound"]
