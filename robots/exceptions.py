"""The root of hand2robot's exception hierarchy.

Every error that hand2robot raises for bad input derives from :class:`Hand2RobotError`, so
callers can catch one type. Failing to reach a target is never an exception: it is data in a
retargeting result.
"""


class Hand2RobotError(Exception):
    """Base class of every hand2robot input error."""


class RobotNotFound(Hand2RobotError, KeyError):
    """A robot name is neither in the registry nor a path to a config file."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise.
        return str(self.args[0]) if self.args else ""


class RobotConfigError(Hand2RobotError, ValueError):
    """A robot description or config file is inconsistent with its URDF or the conventions."""
