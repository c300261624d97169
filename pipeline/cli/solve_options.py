"""The retargeting solver's command-line options, parsed into :class:`retarget.RetargetConfig`.

Flag thresholds, the hand's collision avoidance, the trajectory optimiser and the fingers'
targets: shared by ``retarget`` and ``batch`` through :data:`pipeline.cli.options.CHAIN`.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from retarget import FeasibilityConfig, RetargetConfig

ThresholdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        help="Flag threshold KEY=VALUE, repeatable (retarget.FeasibilityConfig), e.g. "
        "max_position_error=0.02 or check_self_collision=false.",
    ),
]
AvoidOption = Annotated[
    bool,
    typer.Option(
        "--avoid-collisions/--no-avoid-collisions",
        help="Keep a dexterous hand's fingers from passing through each other while solving "
        "(no effect on grippers). Off: the raw vector mapping, faster, with SELF_COLLISION "
        "flags wherever the fingers meet.",
    ),
]
OptimizeOption = Annotated[
    bool | None,
    typer.Option(
        "--optimize/--no-optimize",
        help="Refine each clip's per-frame solution as a whole trajectory (torch): smooth, "
        "within the URDF velocity limits, fingers kept apart; flags are judged on the result. "
        "More feasible frames for three of the five registry robots (the Panda 2% fewer, "
        "the SO-101 1% fewer), "
        "a motion within the velocity limits for all, 6-8% of a clip's conversion time; "
        "--no-optimize keeps the per-frame solve (README: Trajectory optimisation). "
        "Default: on.",
        show_default=False,
    ),
]
FingerRootsOption = Annotated[
    bool,
    typer.Option(
        "--finger-roots/--no-finger-roots",
        help="Dexterous hands: start each finger's target at the robot's own finger root (the "
        "human's MCP-to-tip vector, scaled), so a closing hand is not asked to bend the robot's "
        "wider-set fingers sideways past their limits. Off: every target is the human's "
        "wrist-to-tip vector, scaled (earlier releases, dex-retargeting's mapping).",
    ),
]


def retarget_config_option(
    thresholds: list[str] | None,
    avoid: bool = True,
    optimize: bool | None = None,
    finger_roots: bool = True,
) -> RetargetConfig:
    """``RetargetConfig`` from ``--threshold`` and the ``--[no-]`` switches of this module."""
    fields = {f.name: f for f in dataclasses.fields(FeasibilityConfig)}
    values: dict[str, object] = {}
    for item in thresholds or []:
        key, _, text = item.partition("=")
        if key not in fields or not text:
            raise typer.BadParameter(
                f"--threshold {item!r}: give KEY=VALUE with KEY one of {', '.join(fields)}"
            )
        kind = type(getattr(FeasibilityConfig(), key))
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise typer.BadParameter(f"--threshold {item!r}: {key} takes true or false")
            values[key] = text.lower() in ("true", "1")
        else:
            try:
                values[key] = kind(text)
            except ValueError:
                raise typer.BadParameter(f"--threshold {item!r}: {key} takes a number") from None
    return RetargetConfig(
        feasibility=FeasibilityConfig(**values),  # type: ignore[arg-type]
        avoid_self_collision=avoid,
        optimize=optimize,
        finger_roots=finger_roots,
    )
