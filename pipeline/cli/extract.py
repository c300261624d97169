"""``hand2robot extract``: one input to a hand-track file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import Command, app, console, say
from pipeline.cli.options import (
    EXTRACTION,
    EXTRACTION_DEFAULT,
    CameraMotionOption,
    DepthOption,
    DepthScaleOption,
    InputArgument,
    IntrinsicsOption,
    ModelOption,
    camera_motion_choice,
    with_options,
)
from pipeline.cli.render import ensure_model_shown, frame_progress
from pipeline.decoding import estimate_frame_count, open_media
from pipeline.exceptions import TrackFileError
from pipeline.extract import ExtractConfig, extract_cached
from pipeline.tracks import HandTracks


def expected_frames(input_path: Path, config: ExtractConfig) -> int | None:
    """How many frames extraction will keep, where the container says (for the progress bar)."""
    if input_path.suffix == ".parquet":
        return None
    total = estimate_frame_count(open_media(input_path))
    return -(-total // config.stride) if total and config.max_fps is None else None


def extract_with_progress(
    input_path: Path,
    model: Path | None,
    config: ExtractConfig,
    intrinsics: Path | None,
    cache: Path | None = None,
    depth: Path | None = None,
    depth_scale: float = 1000.0,
    camera_motion: str = "static",
) -> HandTracks:
    """:func:`pipeline.extract_cached` with a progress bar; says so on a cache hit."""
    ensure_model_shown(model)
    with frame_progress(input_path.name, expected_frames(input_path, config)) as update:
        tracks, path, hit = extract_cached(
            input_path,
            intrinsics,
            config=config,
            model=model,
            cache=cache,
            progress=update,
            depth=depth,
            depth_scale=depth_scale,
            camera_motion=camera_motion,
        )
    if hit:
        say(f"hand tracks: cache hit, {path}", console)
    return tracks


@app.command(cls=Command)
@with_options(config=EXTRACTION)
def extract(
    input_path: InputArgument,
    output: Annotated[Path, typer.Option("--out", help="Hand-track file to write (.parquet).")],
    model: ModelOption = None,
    intrinsics: IntrinsicsOption = None,
    depth: DepthOption = None,
    depth_scale: DepthScaleOption = 1000.0,
    camera_motion: CameraMotionOption = None,
    config: ExtractConfig = EXTRACTION_DEFAULT,
) -> None:
    """Extract per-frame 3D hand poses into a hand-track file.

    A second run with the same input content, model, settings and intrinsics finds the file
    up to date and does not extract again.

    Examples:
      hand2robot extract clip.mp4 --out clip.tracks.parquet
      hand2robot extract frames/ --intrinsics calib.json --out frames.parquet
      hand2robot extract long.mp4 --max-fps 15 --hands 1 --out long.parquet
      hand2robot extract rgb/ --depth depth/ --depth-scale 1000 --out rgbd.parquet
      hand2robot extract head_cam.mp4 --camera-motion estimate --out head.parquet
    """
    if output.is_dir():
        raise TrackFileError(f"--out {output} is a folder; give a file name such as x.parquet")
    tracks = extract_with_progress(
        input_path,
        model,
        config,
        intrinsics,
        cache=output,
        depth=depth,
        depth_scale=depth_scale,
        camera_motion=camera_motion_choice(camera_motion, egocentric=False),
    )
    present = {s: f"{h.present.mean():.0%}" for s, h in tracks.hands.items()}
    extra = f", {len(tracks.extra)} extra hand track(s)" if tracks.extra else ""
    say(
        f"{tracks.num_frames} frames, hands present {present}{extra}, intrinsics "
        f"{tracks.intrinsics.source} -> {output}"
    )
