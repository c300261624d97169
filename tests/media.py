"""Media made from the shared real clips, for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import av


def reencode(source: Path, target: Path, crf: int) -> Path:
    """``source`` re-encoded by libx264 at ``crf``, every frame's timestamp kept."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = inp.streams.video[0]
        encoded = out.add_stream("libx264", rate=stream.average_rate)
        encoded.width, encoded.height, encoded.pix_fmt = stream.width, stream.height, "yuv420p"
        encoded.time_base = stream.time_base
        encoded.options = {"crf": str(crf)}
        for frame in inp.decode(stream):
            image = frame.reformat(format="yuv420p")
            image.pts, image.time_base = frame.pts, stream.time_base
            out.mux(encoded.encode(image))
        out.mux(encoded.encode())
    return target
