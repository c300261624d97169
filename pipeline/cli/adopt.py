"""``hand2robot adopt``: the provenance of a dataset edited by LeRobot's tools, written back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import Command, app, say
from pipeline.cli.render import counted
from pipeline.dataset.adopt import restore_provenance


@app.command(cls=Command)
def adopt(
    dataset: Annotated[
        Path, typer.Argument(metavar="DATASET_DIR", help="The dataset another tool rewrote.")
    ],
    sources: Annotated[
        list[Path],
        typer.Option(
            "--from",
            metavar="DATASET_DIR",
            help="A hand2robot dataset it was made from (repeat for a merge).",
        ),
    ],
) -> None:
    """Write back the provenance lerobot-edit-dataset drops.

    delete_episodes, split and merge keep every per-frame column (flags, residuals,
    human and camera columns) but drop meta/hand2robot.json, the surrogate tag with
    it, and the dataset card. adopt finds each episode's origin among the --from
    datasets by its frames and writes both back; inspect and viz work again.

    Examples:
      hand2robot adopt ~/.cache/huggingface/lerobot/me/pour_a --from datasets/pour
      hand2robot adopt merged --from datasets/pour --from datasets/stir
    """
    provenance = restore_provenance(dataset, sources)
    say(
        f"{counted(len(provenance['episodes']), 'episode')} from "
        f"{counted(len(provenance['inputs']), 'input')} -> "
        f"{dataset / 'meta/hand2robot.json'}"
    )
