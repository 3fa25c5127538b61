"""Between detection keyframes: which boxes are the same object, and where each one is in the
frames in between.

Detection runs on keyframes only (every ``stride`` frames). Boxes of consecutive keyframes are
matched per category (IoU, then centre distance relative to size); frames in between get:
- matched objects: the box interpolated linearly, grown by the distance it moved per frame, so a
  fast face stays covered between two detections;
- objects seen only at the later keyframe (entering): its box, grown, from the earlier keyframe
  on; objects seen only at the earlier one (leaving): its box, grown, until the later one.
This is the temporal hysteresis: a region is hidden before its first and after its last
detection, so no frame between two detections shows it and nothing flickers.
"""

from __future__ import annotations

from dataclasses import dataclass

from piiblur.detect import Box, Detection

HOLD_GROWTH = 0.25  # unmatched objects may have moved: hide a larger area
MAX_MATCH_DISTANCE = 4.0  # 1 + centre distance in object sizes: fast objects still match


@dataclass(frozen=True)
class Keyframe:
    index: int
    detections: list[Detection]


@dataclass(frozen=True)
class Pairing:
    """What links two consecutive keyframes: matched pairs, and the unmatched on either side."""

    matched: list[tuple[Detection, Detection]]
    leaving: list[Detection]
    entering: list[Detection]

    def max_relative_motion(self) -> float:
        """The largest move of a matched object between the keyframes, in object sizes."""
        moves = [_centre_distance(a.box, b.box) / max(_size(a.box), 1.0) for a, b in self.matched]
        return max(moves, default=0.0)


def pair(earlier: Keyframe, later: Keyframe) -> Pairing:
    candidates = sorted(
        (
            (_match_cost(a.box, b.box), i, j)
            for i, a in enumerate(earlier.detections)
            for j, b in enumerate(later.detections)
            if a.category is b.category
        ),
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    matched = []
    for cost, i, j in candidates:
        if cost > MAX_MATCH_DISTANCE or i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        matched.append((earlier.detections[i], later.detections[j]))
    leaving = [d for i, d in enumerate(earlier.detections) if i not in used_a]
    entering = [d for j, d in enumerate(later.detections) if j not in used_b]
    return Pairing(matched, leaving, entering)


def between(
    earlier: Keyframe, later: Keyframe, pairing: Pairing, index: int, width: int, height: int
) -> list[Detection]:
    """The regions to hide in frame ``index``, strictly between the two keyframes."""
    span = max(1, later.index - earlier.index)
    t = (index - earlier.index) / span
    regions = []
    for a, b in pairing.matched:
        box = _lerp(a.box, b.box, t)
        per_frame = _centre_distance(a.box, b.box) / span
        margin = 0.05 + 1.5 * per_frame / max(_size(box), 1.0)
        regions.append(Detection(a.category, box.grown(margin, width, height), min(a.score, b.score), "tracked"))
    for d in pairing.leaving + pairing.entering:
        regions.append(Detection(d.category, d.box.grown(HOLD_GROWTH, width, height), d.score, "held"))
    return regions


def _size(box: Box) -> float:
    return max(box.w, box.h)


def _centre_distance(a: Box, b: Box) -> float:
    return float(((a.x + a.w / 2 - b.x - b.w / 2) ** 2 + (a.y + a.h / 2 - b.y - b.h / 2) ** 2) ** 0.5)


def _match_cost(a: Box, b: Box) -> float:
    """0 for identical boxes; below 1 when overlapping; the centre distance in sizes otherwise."""
    overlap = a.intersection_area(b)
    if overlap > 0:
        return 1.0 - overlap / (a.area + b.area - overlap)
    return 1.0 + _centre_distance(a, b) / max(_size(a), _size(b), 1.0)


def _lerp(a: Box, b: Box, t: float) -> Box:
    return Box(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, a.w + (b.w - a.w) * t, a.h + (b.h - a.h) * t)
