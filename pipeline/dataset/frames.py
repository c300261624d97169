"""One input's per-frame values, checked and gathered, and its cut into episodes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from pipeline.dataset.config import DatasetConfig
from pipeline.encoding import EpisodeVideo
from pipeline.exceptions import DatasetError
from pipeline.retargeted import RetargetedHand
from pipeline.tracks import SIDES, HandTracks, held_camera_poses, hold
from retarget import BimanualResult, Flag


def default_task(source_path: str) -> str:
    """Task string from an input's name: ``kettle_pour.mp4`` -> ``kettle pour``."""
    name = Path(source_path.rstrip("/")).name
    stem = name.split(".")[0] if "." in name else name
    return " ".join(stem.replace("_", " ").replace("-", " ").split()) or "human video"


def split_segments(
    bad: NDArray[np.bool_], min_gap_frames: int | None, min_frames: int
) -> list[tuple[int, int]]:
    """Ranges ``[start, stop)`` left after removing runs of ``bad`` of ``min_gap_frames`` or more.

    With ``min_gap_frames=None`` the whole input is one range, however short (a single image
    is a one-frame episode). Pieces of a split shorter than ``min_frames`` are left out.
    """
    frames = len(bad)
    if min_gap_frames is None:
        return [(0, frames)] if frames else []
    padded = np.concatenate([[False], bad, [False]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == 1)
    stops = np.flatnonzero(np.diff(padded) == -1)
    cuts = [(a, b) for a, b in zip(starts, stops, strict=True) if b - a >= min_gap_frames]
    segments = []
    begin = 0
    for a, b in cuts:
        segments.append((begin, int(a)))
        begin = int(b)
    segments.append((begin, frames))
    return [(a, b) for a, b in segments if b - a >= min_frames]


def pose_vectors(transforms: NDArray[np.float64]) -> NDArray[np.float64]:
    """(T, 4, 4) rigid transforms -> (T, 7) ``x, y, z, qx, qy, qz, qw``; NaN rows stay NaN."""
    from scipy.spatial.transform import Rotation

    out = np.full((len(transforms), 7), np.nan)
    finite = np.isfinite(transforms).all(axis=(1, 2))
    if finite.any():
        out[finite, :3] = transforms[finite, :3, 3]
        out[finite, 3:] = Rotation.from_matrix(transforms[finite, :3, :3]).as_quat()
    return out


def pose_matrices(vectors: NDArray[np.floating]) -> NDArray[np.float64]:
    """(T, 7) ``x, y, z, qx, qy, qz, qw`` -> (T, 4, 4): :func:`pose_vectors` undone."""
    from scipy.spatial.transform import Rotation

    values = np.asarray(vectors, dtype=np.float64)
    out = np.tile(np.eye(4), (len(values), 1, 1))
    out[:, :3, :3] = Rotation.from_quat(values[:, 3:]).as_matrix()
    out[:, :3, 3] = values[:, :3]
    return out


class InputFrames(NamedTuple):
    """One input's per-frame values over all its frames, before it is cut into episodes."""

    tracks: HandTracks
    """The hand tracks."""
    retargeted: RetargetedHand
    """Their retargeted trajectory."""
    present: NDArray[np.bool_]
    """Shape (T,): frames the robot followed a hand (both, for a bimanual robot)."""
    keypoints: NDArray[np.float64]
    """Shape (T, 63 per hand): hand-centred keypoints [m], held over missing frames."""
    wrist: NDArray[np.float64]
    """Shape (T, 7 per hand): wrist poses in the camera frame, held over missing frames."""
    score: NDArray[np.float64]
    """Shape (T, hands): detector scores, 0 where the hand is missing."""
    hand_present: NDArray[np.bool_]
    """Shape (T, hands): each hand's presence."""
    wrist_std: NDArray[np.float64]
    """Shape (T, hands) [m]: the lifted wrist's standard deviation along its viewing ray,
    held over missing frames; NaN for track files of earlier releases."""
    camera: NDArray[np.float64]
    """Shape (T, 7): the camera's pose in the world frame (``x, y, z, qx, qy, qz, qw``), an
    unknown one holding the last known (:func:`pipeline.tracks.held_camera_poses`)."""

    @property
    def bimanual(self) -> bool:
        """Whether the trajectory is a two-arm one."""
        return isinstance(self.retargeted.result, BimanualResult)


def gather(
    tracks: HandTracks,
    retargeted: RetargetedHand,
    video: EpisodeVideo | None,
    fps: int,
    config: DatasetConfig,
) -> InputFrames:
    """Check that the pieces of one input belong together; its per-frame human values.

    Raises:
        DatasetError: Frame counts that differ, a video given without ``config.video`` (or
            the other way round), a bad fps, or no frame with the hand.
    """
    result = retargeted.result
    frames = tracks.num_frames
    if len(result.q) != frames:
        raise DatasetError(f"retargeted trajectory has {len(result.q)} frames, tracks {frames}")
    if (video is None) != (config.video is None):
        raise DatasetError("pass the episode video exactly when config.video is set")
    if video is not None and video.frames != frames:
        raise DatasetError(
            f"the episode video holds {video.frames} frames, the tracks {frames}: both must "
            "come from the same decoding settings"
        )
    if not int(fps) >= 1:
        raise DatasetError(f"fps must be a positive integer, got {fps}")
    bimanual = isinstance(result, BimanualResult)
    present = ~(result.flags & Flag.NO_HAND).astype(bool)
    if not present.any():
        raise DatasetError(
            f"{tracks.source.get('path')}: no frame has both hands, which a bimanual robot "
            "needs; nothing to write"
            if bimanual
            else f"{tracks.source.get('path')}: no frame has the {retargeted.side} hand; "
            "nothing to write (try --hand, or check the input)"
        )
    if not np.isfinite(result.q).all():
        raise DatasetError("internal error: the joint trajectory holds NaN")  # never written
    # Human columns, one hand after the other; each hand held over its own missing frames.
    keypoints, wrist, score, seen, std = [], [], [], [], []
    for side in SIDES if bimanual else (retargeted.side,):
        hand = tracks.hands[side]
        mine = present
        if isinstance(result, BimanualResult):
            arm = result.left if side == "left" else result.right
            mine = ~(arm.flags & Flag.NO_HAND).astype(bool)
        seen.append(mine)
        keypoints.append(hold(hand.world_keypoints.reshape(frames, 63), mine))
        wrist.append(hold(pose_vectors(hand.transform_wrist_to_camera), mine))
        score.append(np.where(mine, np.nan_to_num(hand.score, nan=0.0), 0.0)[:, None])
        spread = hand.wrist_position_std
        std.append(hold(np.full(frames, np.nan) if spread is None else spread, mine)[:, None])
    return InputFrames(
        tracks,
        retargeted,
        present,
        np.concatenate(keypoints, axis=1),
        np.concatenate(wrist, axis=1),
        np.concatenate(score, axis=1),
        np.stack(seen, axis=1),
        np.concatenate(std, axis=1),
        pose_vectors(held_camera_poses(tracks)),
    )


def cut_episodes(one: InputFrames, config: DatasetConfig, fps: int) -> list[tuple[int, int]]:
    """The ``[start, stop)`` frame ranges of the input that become episodes.

    Raises:
        DatasetError: Splitting left nothing.
    """
    result = one.retargeted.result
    bad = ~result.feasible if config.split_on == "infeasible" else ~one.present
    gap = None
    if config.split_min_gap_s is not None:
        gap = max(1, math.ceil(config.split_min_gap_s * fps - 1e-9))
    segments = split_segments(bad, gap, config.min_episode_frames)
    if gap is not None:
        # An episode that is entirely unusable is not an episode.
        segments = [(a, b) for a, b in segments if not bad[a:b].all()]
    if not segments:
        raise DatasetError(
            f"{one.tracks.source.get('path')}: nothing left to write after splitting at "
            f"{config.split_min_gap_s} s {config.split_on} stretches"
        )
    return segments
