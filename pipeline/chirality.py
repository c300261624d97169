"""The landmarker's mirrored hands: a 3D hand of the other chirality, found and reflected.

A right hand seen from its back and a left hand seen from its palm have the same keypoints in
the image; the landmarker's 3D hand (its world landmarks, frame W) is a guess from that image,
and on some frames it answers with the other one (mostly, but not only, where its own label
names the other hand): the palm where its neighbours have it, the fingers curled to the other
side of it (97% of the frames it labels as the other hand on the shared cups clip, and
a few it labels right). Read as the track's side, such a hand's fingers curl behind the palm,
where no robot hand can follow (75-81 mm median fingertip error on the Allegro on that clip;
15-21 mm once reflected).

:func:`mirrored_hands` decides, per detected frame of a track, whether the landmarker's hand or
its reflection through the palm plane (:func:`reflect_fingers`) is the hand of the track's side,
as the cheapest path through the frames (Viterbi, two states) of two costs:

- **anatomy**: fingers flex towards the palm. The mean offset of the index, middle, ring and
  little fingertips along the palm normal (:func:`finger_curl`, in palm lengths: wrist to middle
  MCP) of a real hand is above ``-CURL_FREE``; each palm length further behind the palm costs 1.
  On the shared videos' hand frames the landmarker's curls form two clusters, -0.8 to -0.3
  (mostly frames it labels as the other hand) and -0.1 to 0.8, with few frames between;
- **continuity**: a hand's shape moves little between neighbouring frames: the mean distance of
  the 21 wrist-centred keypoints between a frame's chosen hand and the previous one's, in palm
  lengths (where the landmarker switches chirality, 0.3-0.7 between its neighbouring hands;
  mostly 0.05-0.3 from a frame to the next otherwise, at 30 fps), so a nearly flat hand, whose
  reflection costs the same anatomy, takes its neighbours' choice instead of flickering.

When more than half of a track's frames would be reflected, the landmarker disagrees with the
track's side on most of them, and it is the side that is in doubt (a second person's hand, as
in the shared arm-wrestling clip, where both visible hands are right hands): nothing is
reflected.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pipeline.lifting import hand_frames

CURL_FREE = 0.1
"""Curl behind the palm [palm lengths] that costs nothing: a hand with straight or slightly
overextended fingers (see the module docstring)."""
TIPS = (8, 12, 16, 20)
"""The index, middle, ring and little fingertips (MediaPipe order)."""


def finger_curl(world_keypoints: NDArray[np.float64], side: str) -> NDArray[np.float64]:
    """Mean offset of the four fingertips along the palm normal of ``side``, (N,) [palm lengths].

    Positive: towards the palm (the fingers flex); a reflected hand has the opposite curl. NaN
    for a degenerate hand (no palm plane).

    Args:
        world_keypoints: Shape (N, 21, 3) [m], in W.
        side: ``"left"`` or ``"right"``.
    """
    frames = hand_frames(world_keypoints, side)
    tips = world_keypoints[:, TIPS] - frames[:, None, :3, 3]
    curl = np.einsum("nkj,nj->n", tips, frames[:, :3, 2]) / len(TIPS)
    palm = np.linalg.norm(world_keypoints[:, 9] - world_keypoints[:, 0], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(curl / palm, dtype=np.float64)


def reflect_fingers(world_keypoints: NDArray[np.float64]) -> NDArray[np.float64]:
    """The hand reflected through its palm plane, shape (N, 21, 3) [m].

    The plane through the wrist, the index MCP and the little-finger MCP (0, 5, 17) stays; every
    other keypoint goes to its mirror image across it, so the fingers and the thumb curl to the
    other side of the palm: the other chirality with the same palm. A degenerate palm (the three
    points collinear) is left as it is.
    """
    points = np.array(world_keypoints, dtype=np.float64)
    normal = np.cross(points[:, 5] - points[:, 0], points[:, 17] - points[:, 0])
    length = np.linalg.norm(normal, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normal = np.where(length > 1e-12, normal / length, 0.0)
    offset = np.einsum("nkj,nj->nk", points - points[:, :1], normal)
    return np.asarray(points - 2 * offset[..., None] * normal[:, None], dtype=np.float64)


def mirrored_hands(
    world_keypoints: NDArray[np.float64], side: str, starts: NDArray[np.bool_] | None = None
) -> NDArray[np.bool_]:
    """Frames whose landmarker 3D hand is the reflection of the track's side, (N,) bool.

    See the module docstring for the decision.

    Args:
        world_keypoints: Shape (N, 21, 3) [m], in W: a track's detected frames in time order.
        side: ``"left"`` or ``"right"``, the track's side.
        starts: Shape (N,) bool: frames with no continuity to the row before (a gap, another
            tracklet). None: only the first.
    """
    count = len(world_keypoints)
    if count == 0:
        return np.zeros(0, dtype=bool)
    given = np.asarray(world_keypoints, dtype=np.float64)
    shapes = np.stack([given, reflect_fingers(given)], axis=1)  # (N, 2, 21, 3)
    shapes -= shapes[:, :, :1]
    palm = np.linalg.norm(given[:, 9] - given[:, 0], axis=-1)
    curl = np.nan_to_num(finger_curl(given, side))
    anatomy = np.maximum(0.0, np.stack([-curl, curl], axis=1) - CURL_FREE)  # (N, 2)
    # change[t, a, b]: from state a at t - 1 to state b at t.
    change = np.zeros((count, 2, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        change[1:] = (
            np.linalg.norm(shapes[1:, None, :, :, :] - shapes[:-1, :, None, :, :], axis=-1).mean(
                axis=-1
            )
            / palm[1:, None, None]
        )
    change = np.nan_to_num(change)
    if starts is not None:
        change[np.asarray(starts, dtype=bool)] = 0.0
    cost = anatomy[0].copy()
    back = np.zeros((count, 2), dtype=np.int64)
    for t in range(1, count):
        total = cost[:, None] + change[t]
        back[t] = np.argmin(total, axis=0)
        cost = total[back[t], [0, 1]] + anatomy[t]
    state = np.zeros(count, dtype=np.int64)
    state[-1] = int(np.argmin(cost))
    for t in range(count - 1, 0, -1):
        state[t - 1] = back[t, state[t]]
    reflected = state.astype(bool)
    if reflected.sum() * 2 > count:  # the side is in doubt, not the shapes
        return np.zeros(count, dtype=bool)
    return reflected
