"""Hand identity over a clip: link per-frame detections into tracks, give each its side.

The landmarker labels every detection Left or Right on its own, frame by frame, and on real
footage that label flickers: on ``cups_shuffle_third_person.mp4`` one physical hand is called
Left and Right in alternate seconds, and both hands are often called Left at once with scores of
0.99. Continuity is more reliable than the label, so identity is decided in two steps:

1. **Linking.** Detections in consecutive frames are joined into *tracklets* by their image
   keypoints (Hungarian assignment on the mean keypoint distance divided by the hand's size, with
   a gate), so a tracklet is one physical hand for as long as it is seen.
2. **Side.** Each tracklet gets one side from the evidence of all its frames: the sum of the
   per-frame log-odds of "right". With ``one_person`` (a clip of one person's two hands),
   tracklets that overlap in time must take different sides; the most certain tracklets choose
   first. Without it (a single image, a crowd), each tracklet takes its own vote, and a second
   hand of a side already taken goes to an extra track.

Then, per side: short gaps are interpolated (bounded in time) and the keypoints are smoothed by a
Gaussian kernel in time, which is symmetric (zero-phase: no lag) and honours uneven timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

#: Clip for the per-frame label probability before log-odds, so that a single frame with a
#: confident wrong label cannot outvote many frames.
_PROBABILITY_CLIP = (0.05, 0.95)


@dataclass(frozen=True)
class Detection:
    """One hand found in one frame.

    Attributes:
        frame: Frame index.
        probability_right: Probability that this is a right hand, from the detector's label and
            score (score if labelled Right, 1 - score if Left; after the selfie mirror).
        score: The detector's handedness score.
        image_keypoints: Shape (21, 2) [px].
        world_keypoints: Shape (21, 3) [m], the landmarker's hand-centred metric frame.
    """

    frame: int
    probability_right: float
    score: float
    image_keypoints: NDArray[np.float64]
    world_keypoints: NDArray[np.float64]


def hand_sizes(image_keypoints: NDArray[np.float64]) -> NDArray[np.float64]:
    """Size of hands in the image: the larger side of each keypoint bounding box [px].

    Args:
        image_keypoints: Shape (..., 21, 2) [px].

    Returns:
        Shape (...) [px], at least 1.
    """
    extent = np.ptp(image_keypoints, axis=-2).max(axis=-1)
    return np.asarray(np.maximum(extent, 1.0), dtype=np.float64)


def hand_size(image_keypoints: NDArray[np.float64]) -> float:
    """Size of one hand in the image (shape (21, 2) [px]); see :func:`hand_sizes`."""
    return float(hand_sizes(image_keypoints))


def keypoint_distance(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Mean distance between corresponding image keypoints [px]."""
    return float(np.linalg.norm(a - b, axis=1).mean())


def box_overlap(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Overlap of two hands' keypoint bounding boxes: intersection over the smaller area."""
    low = np.maximum(a.min(axis=0), b.min(axis=0))
    high = np.minimum(a.max(axis=0), b.max(axis=0))
    intersection = float(np.prod(np.clip(high - low, 0.0, None)))
    areas = [float(np.prod(np.maximum(k.max(axis=0) - k.min(axis=0), 1.0))) for k in (a, b)]
    return intersection / min(areas)


def suppress_duplicates(detections: list[Detection], overlap: float) -> list[Detection]:
    """Drop detections of a hand already found in the same frame.

    With two hands requested the landmarker sometimes returns one hand twice, with different
    labels and a distorted second skeleton (seen on ``cups_shuffle_third_person.mp4``). Two
    detections whose keypoint boxes overlap by more than ``overlap`` (intersection over the
    smaller box) are taken as one hand, and the higher score is kept.
    """
    kept: list[Detection] = []
    for detection in sorted(detections, key=lambda d: -d.score):
        if all(
            box_overlap(detection.image_keypoints, other.image_keypoints) <= overlap
            for other in kept
        ):
            kept.append(detection)
    return kept


def link_tracklets(
    detections: list[list[Detection]],
    timestamps: NDArray[np.float64],
    *,
    gate: float,
    max_gap_s: float,
) -> list[list[Detection]]:
    """Join detections of consecutive frames into tracklets (one physical hand each).

    Args:
        detections: Per frame, the detections of that frame.
        timestamps: Shape (T,) [s].
        gate: Largest link cost (mean keypoint distance over hand size) that joins a detection
            to a tracklet.
        max_gap_s: A tracklet unseen for longer than this [s] is closed.

    Returns:
        Tracklets, each a list of detections in frame order, at most one per frame.
    """
    finished: list[list[Detection]] = []
    active: list[list[Detection]] = []
    for frame, found in enumerate(detections):
        now = float(timestamps[frame])
        still = []
        for tracklet in active:
            if now - float(timestamps[tracklet[-1].frame]) > max_gap_s:
                finished.append(tracklet)
            else:
                still.append(tracklet)
        active = still
        linked: set[int] = set()
        if active and found:
            last = np.stack([t[-1].image_keypoints for t in active])  # (A, 21, 2)
            new = np.stack([d.image_keypoints for d in found])  # (F, 21, 2)
            # Mean keypoint distance over the tracklet's hand size, shape (A, F).
            distance = np.linalg.norm(last[:, None] - new[None], axis=-1).mean(axis=-1)
            cost = distance / hand_sizes(last)[:, None]
            rows, cols = linear_sum_assignment(cost)
            for row, col in zip(rows, cols, strict=True):
                if cost[row, col] <= gate:
                    active[row].append(found[col])
                    linked.add(int(col))
        active.extend([d] for i, d in enumerate(found) if i not in linked)
    return sorted(finished + active, key=lambda t: (t[0].frame, t[-1].frame))


def log_odds_right(tracklet: list[Detection]) -> float:
    """Evidence that a tracklet is a right hand: the sum of per-frame log-odds."""
    p = np.clip([d.probability_right for d in tracklet], *_PROBABILITY_CLIP)
    return float(np.sum(np.log(p / (1.0 - p))))


def assign_sides(
    tracklets: list[list[Detection]], *, one_person: bool
) -> tuple[dict[str, list[list[Detection]]], list[tuple[str, list[Detection]]]]:
    """Give every tracklet a side.

    Args:
        tracklets: From :func:`link_tracklets`.
        one_person: Tracklets that overlap in time are one person's two hands, so they take
            different sides. Most certain first: a tracklet takes the side its evidence favours
            unless an overlapping tracklet already holds it.

    Returns:
        The tracklets of each side (``"left"``, ``"right"``; never two at one frame), and extra
        hands that did not fit (a second hand of the same side at the same time), with their
        side.
    """
    sides: dict[str, list[list[Detection]]] = {"left": [], "right": []}
    extra: list[tuple[str, list[Detection]]] = []

    def frames(tracklet: list[Detection]) -> set[int]:
        return {d.frame for d in tracklet}

    def free(side: str, tracklet: list[Detection]) -> bool:
        mine = frames(tracklet)
        return all(not (mine & frames(other)) for other in sides[side])

    for tracklet in sorted(tracklets, key=lambda t: -abs(log_odds_right(t))):
        preferred = "right" if log_odds_right(tracklet) > 0 else "left"
        other = "left" if preferred == "right" else "right"
        if free(preferred, tracklet):
            sides[preferred].append(tracklet)
        elif one_person and free(other, tracklet):
            sides[other].append(tracklet)
        else:
            extra.append((preferred, tracklet))
    if one_person:
        _follow_position(sides)
    return sides, extra


def _boundary_cost(before: list[Detection], after: list[Detection]) -> float:
    """Image distance from the end of ``before`` to the start of ``after`` over hand size."""
    end, start = before[-1].image_keypoints, after[0].image_keypoints
    return keypoint_distance(end, start) / hand_size(end)


def _follow_position(sides: dict[str, list[list[Detection]]]) -> None:
    """Swap the sides of a group of tracklets when their positions continue the other sides.

    A group is tracklets linked by overlapping in time (one person's hands seen together). A
    group's own labels decide its sides; when they flicker for a whole stretch (both hands
    called by the wrong name, as at the start of ``cups_shuffle_third_person.mp4``), the group
    is swapped if the hands before and after it continue the swapped sides: the summed image
    distance from each tracklet's ends to the nearest tracklets of the other side outside the
    group is at most half that to its own side's. Least certain groups first. In place.
    """
    side_of = {id(t): side for side, tracklets in sides.items() for t in tracklets}
    every = [t for tracklets in sides.values() for t in tracklets]
    spans = {id(t): (t[0].frame, t[-1].frame) for t in every}

    def overlap(a: list[Detection], b: list[Detection]) -> bool:
        (a0, a1), (b0, b1) = spans[id(a)], spans[id(b)]
        return a0 <= b1 and b0 <= a1 and bool({d.frame for d in a} & {d.frame for d in b})

    groups: list[list[list[Detection]]] = []
    for tracklet in every:
        joined = [g for g in groups if any(overlap(tracklet, t) for t in g)]
        merged = [tracklet] + [t for g in joined for t in g]
        groups = [g for g in groups if all(g is not j for j in joined)] + [merged]

    def evidence(group: list[list[Detection]]) -> float:
        return sum(abs(log_odds_right(t)) for t in group)

    def agreement(tracklet: list[Detection]) -> float:
        """The tracklet's own label evidence for the side it holds now (negative: against)."""
        odds = log_odds_right(tracklet)
        return odds if side_of[id(tracklet)] == "right" else -odds

    for group in sorted(groups, key=evidence):
        members = {id(t) for t in group}
        keep = swap = 0.0
        compared = 0
        support: dict[int, list[Detection]] = {}  # the other sides' hands that argue for a swap
        for tracklet in group:
            own = side_of[id(tracklet)]
            other = "left" if own == "right" else "right"
            for direction in ("before", "after"):
                cost = {}
                candidate: dict[int, list[Detection]] = {}
                for side in (own, other):
                    outside = [t for t in sides[side] if id(t) not in members]
                    if direction == "before":
                        near = [t for t in outside if t[-1].frame < tracklet[0].frame]
                        if near:
                            neighbour = max(near, key=lambda t: t[-1].frame)
                            cost[side] = _boundary_cost(neighbour, tracklet)
                            if side == other:
                                candidate[id(neighbour)] = neighbour
                    else:
                        near = [t for t in outside if t[0].frame > tracklet[-1].frame]
                        if near:
                            neighbour = min(near, key=lambda t: t[0].frame)
                            cost[side] = _boundary_cost(tracklet, neighbour)
                            if side == other:
                                candidate[id(neighbour)] = neighbour
                if len(cost) == 2:
                    keep += cost[own]
                    swap += cost[other]
                    compared += 1
                    support.update(candidate)
        # Positions may overrule the group's labels only where its labels weigh less than those
        # of the hands its positions continue: a long track named right on almost every frame
        # is not turned left by a short track beside it (armwrestling_lowres.mp4 at 24 fps).
        weighed = sum(agreement(t) for t in group) < sum(agreement(t) for t in support.values())
        if compared and swap < 0.5 * keep and weighed:
            for tracklet in group:
                own = side_of[id(tracklet)]
                other = "left" if own == "right" else "right"
                sides[own] = [t for t in sides[own] if t is not tracklet]
                sides[other].append(tracklet)
                side_of[id(tracklet)] = other
    for tracklets in sides.values():
        tracklets.sort(key=lambda t: t[0].frame)


def interpolate_gaps(
    timestamps: NDArray[np.float64],
    identity: NDArray[np.int64],
    values: list[NDArray[np.float64]],
    max_gap_s: float,
) -> NDArray[np.bool_]:
    """Fill short gaps of one hand by linear interpolation in time, in place.

    Args:
        timestamps: Shape (T,) [s].
        identity: Shape (T,) tracklet number of each frame's detection, -1 where none. Only
            gaps inside one tracklet are filled: the hand on both sides is the same.
        values: Arrays with T leading rows, filled where a gap is interpolated.
        max_gap_s: Only gaps whose bounding detections are at most this far apart [s] are
            filled; longer gaps stay masked.

    Returns:
        Shape (T,) bool, the frames that were filled.
    """
    filled = np.zeros(len(identity), dtype=bool)
    seen = np.flatnonzero(identity >= 0)
    for before, after in zip(seen[:-1], seen[1:], strict=True):
        if after - before < 2 or identity[before] != identity[after]:
            continue
        if timestamps[after] - timestamps[before] > max_gap_s:
            continue
        span = timestamps[after] - timestamps[before]
        for frame in range(before + 1, after):
            weight = (timestamps[frame] - timestamps[before]) / span
            for array in values:
                array[frame] = (1.0 - weight) * array[before] + weight * array[after]
            filled[frame] = True
    return filled


def smooth(
    timestamps: NDArray[np.float64],
    valid: NDArray[np.bool_],
    values: NDArray[np.float64],
    sigma_s: float,
) -> NDArray[np.float64]:
    """Zero-phase Gaussian smoothing in time over valid frames.

    Each valid frame becomes the weighted mean of the valid frames of its run (consecutive valid
    frames), with weights ``exp(-(dt / sigma_s)^2 / 2)`` on the true time differences, so uneven
    timestamps are honoured and there is no lag. The -3 dB cut-off is about
    ``0.13 / sigma_s`` [Hz].

    Args:
        timestamps: Shape (T,) [s].
        valid: Shape (T,) bool.
        values: Shape (T, ...) values to smooth.
        sigma_s: Kernel width [s]; 0 returns a copy.

    Returns:
        The smoothed values, same shape; invalid rows are unchanged.
    """
    result = np.array(values, dtype=np.float64, copy=True)
    if sigma_s <= 0:
        return result
    flat = result.reshape(len(result), -1)
    source = np.asarray(values, dtype=np.float64).reshape(len(result), -1)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        times = timestamps[start:stop]
        # Neighbours beyond 4 sigma weigh under 3.4e-4: a banded sum keeps memory O(T).
        reach = int(np.max(np.searchsorted(times, times + 4.0 * sigma_s) - np.arange(len(times))))
        total = source[start:stop].copy()
        norm = np.ones(len(times))
        for offset in range(1, min(reach, len(times))):
            weight = np.exp(-0.5 * ((times[offset:] - times[:-offset]) / sigma_s) ** 2)
            total[offset:] += weight[:, None] * source[start : stop - offset]
            total[:-offset] += weight[:, None] * source[start + offset : stop]
            norm[offset:] += weight
            norm[:-offset] += weight
        flat[start:stop] = total / norm[:, None]
    return result
