"""Where a batch job runs: an embedded local Ray, or a cluster joined by address."""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from pipeline.batch.config import BatchConfig, BatchError


def _check_reachable(address: str) -> None:
    """Fail fast on a ``host:port`` nobody listens on (Ray itself retries for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if address == "auto" or address.startswith("ray://") or not port.isdigit():
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5.0):
            pass
    except OSError as err:
        raise BatchError(
            f"cannot join the Ray cluster at {address!r}: nothing answers there ({err}); start "
            "one with `ray start --head` (then --address auto), or leave out --address and "
            "RAY_ADDRESS for an embedded local Ray"
        ) from None


def init_ray(config: BatchConfig) -> dict[str, Any]:
    """Join the cluster named by the config or ``RAY_ADDRESS``, or start an embedded Ray.

    Returns:
        Where the job runs (the report's ``ray`` record).
    """
    import ray

    address = config.address or os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        _start_ray(config, address)
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    return {
        "mode": "cluster" if address else "embedded",
        "address": address or None,
        "nodes": len(nodes),
        "cpus": sum(node.get("Resources", {}).get("CPU", 0.0) for node in nodes),
    }


class _RayConsoleFilter(logging.Filter):
    """Ray Data's console on the driver: warnings and errors only.

    Its note that its own progress bars are off is left out too (``hand2robot batch`` shows
    one of its own). Its log files in the Ray session folder keep everything.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        return not record.getMessage().startswith("Progress bars disabled")


def quiet_ray_data_console() -> None:
    """Put ``_RayConsoleFilter`` on the console handler of the ``ray.data`` logger (once)."""
    for handler in logging.getLogger("ray.data").handlers:
        if handler.name == "console" and not any(
            isinstance(f, _RayConsoleFilter) for f in handler.filters
        ):
            handler.addFilter(_RayConsoleFilter())


class _TokenNoteFilter(logging.Filter):
    """Ray's note that a new local cluster uses token authentication: left out.

    It is Ray's default, and Ray says so at the start of every embedded job. Its other
    authentication warnings (a cluster without it, a missing token) still show.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(
            "Token authentication is enabled for this Ray cluster"
        )


#: Where Ray logs its authentication notes (ray/_private/authentication).
_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


def _start_ray(config: BatchConfig, address: str | None) -> None:
    import ray

    notes = logging.getLogger(_AUTH_LOGGER)
    if not any(isinstance(f, _TokenNoteFilter) for f in notes.filters):
        notes.addFilter(_TokenNoteFilter())

    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise BatchError(
                f"cannot join the Ray cluster at {address!r} ({err}); start one with "
                "`ray start --head` (then --address auto), or leave out --address and "
                "RAY_ADDRESS for an embedded local Ray"
            ) from None
    else:
        # Logical CPUs: one per extraction actor, half per retargeting actor.
        ray.init(num_cpus=config.workers + math.ceil(config.max_retarget_actors / 2), **options)
