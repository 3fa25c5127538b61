"""Between detection keyframes: which boxes are the same object, and where each one is in the
frames in between.

Detection runs on keyframes only (every ``stride`` frames). Boxes of consecutive keyframes are
matched per category (IoU, then centre distance relative to size); frames in between get:
- matched objects: the box interpolated linearly, grown by the distance it moved per frame, so a
  fast face stays covered between two detections;
- objects seen only at the later keyframe (entering): its box, grown, from the earlier keyframe
  on; objects seen only at the earlier one (leaving): its box, grown, until the later one;
- where the camera moved off a straight line between the keyframes (a shaking, hand-held camera:
  ``camera``), each of those boxes also where the camera's move takes it, so a face that jumps
  with the camera stays covered.
This is the temporal hysteresis: a region is hidden before its first and after its last
detection, so no frame between two detections shows it and nothing flickers.

``TrackLedger`` names the objects: each keyframe detection gets a track id, so a video reports how
many distinct objects it showed rather than how many keyframes saw them. It also carries a track
across keyframes that miss it (``coasting``): detectors drop an object now and then (a face turned
for a moment, a plate read at one keyframe and not the next), and without this the object would
show at that keyframe and blink. A carried track keeps its last box; when the object is found again
the frames in between are interpolated from it. The track ends after ``COAST_KEYFRAMES`` misses in a
row once it has also gone unseen for longer than the channel's longest stride (``coast_frames``):
a moving picture brings keyframes closer together, and more looks must not hide an object for
less time than fewer would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from piiblur.detect import Box, Detection
from piiblur.redact.camera import NOT_MOVED, Offset, offset_at

HOLD_GROWTH = 0.25  # unmatched objects may have moved: hide a larger area
MAX_MATCH_DISTANCE = 4.0  # 1 + centre distance in object sizes: fast objects still match
# An object missed at a keyframe or two (a face turned away, a plate behind a passer-by) that
# comes back near where it was is the same object, not a new one.
LOST_TRACK_KEYFRAMES = 3
COAST_KEYFRAMES = 2  # keyframes in a row a track is carried (hidden) without being found
COASTING = "coasting"  # the detector name of a carried track's box
FAST_MOTION = 0.5  # of an object's size between keyframes: detect more often (the stride halves)
# Pixels between where linear interpolation puts a box and where the camera's move puts it, beyond
# which both are hidden: a pixel is within what a box's own margin covers.
CAMERA_APART = 1.0
EDGE = 1.0  # pixels from the frame's edge at which a box is taken as cut by it


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
    matched_indices: list[tuple[int, int]] = field(default_factory=list)  # (earlier, later) positions

    def max_relative_motion(self) -> float:
        """The largest move of a matched object between the keyframes, in object sizes. A box
        carried unseen (``COASTING``) moved only with the camera: it says nothing of the object."""
        moves = [
            _centre_distance(a.box, b.box) / max(_size(a.box), 1.0) for a, b in self.matched if b.detector != COASTING
        ]
        return max(moves, default=0.0)


def pair(earlier: Keyframe, later: Keyframe, camera_move: Offset = NOT_MOVED) -> Pairing:
    """Which detections of two keyframes are the same object: the closest first, each earlier
    box taken where the camera's move between the keyframes (``camera_move``) puts it, so that a
    crowd shaken by the camera is not paired face to neighbouring face."""
    candidates = sorted(
        (
            (_match_cost(_moved(a.box, camera_move), b.box), i, j)
            for i, a in enumerate(earlier.detections)
            for j, b in enumerate(later.detections)
            if a.category is b.category
        ),
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    indices = []
    for cost, i, j in candidates:
        if cost > MAX_MATCH_DISTANCE or i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        indices.append((i, j))
    matched = [(earlier.detections[i], later.detections[j]) for i, j in indices]
    leaving = [d for i, d in enumerate(earlier.detections) if i not in used_a]
    entering = [d for j, d in enumerate(later.detections) if j not in used_b]
    return Pairing(matched, leaving, entering, indices)


@dataclass
class _LostTrack:
    detection: Detection
    track: int
    keyframes_ago: int = 0


@dataclass
class TrackLedger:
    """Track ids for one channel's keyframes, in order.

    A detection matched to one of the previous keyframe keeps that one's track; one that matches a
    track lost within the last ``LOST_TRACK_KEYFRAMES`` keyframes (same category, near where it was
    last seen) takes it back; any other starts a new track from ``new_track``.
    """

    new_track: Callable[[], int]
    # Frames since a track was last found within which it is carried however many keyframes
    # missed it. Measured on the camera-move clip (bench/video.py, a hand-held camera over a real
    # street photo, text at the frame's edge): keyframes there come 1-3 frames apart, the text
    # detector misses the blurred block at three in a row now and then. With only
    # ``COAST_KEYFRAMES`` the clip's writing showed in 11 of 534 label-frames at 720p (20 at
    # 1080p); carried for the channel's longest stride, in 2 (1).
    coast_frames: int = 0
    _current: list[int] = field(default_factory=list)
    _current_detections: list[Detection] = field(default_factory=list)
    _lost: list[_LostTrack] = field(default_factory=list)
    _misses: dict[int, int] = field(default_factory=dict)  # track -> keyframes in a row carried unseen
    _found_at: dict[int, int] = field(default_factory=dict)  # track -> the last keyframe that found it

    def coasting(
        self, previous: Keyframe, found: Keyframe, camera_move: Offset, frame: tuple[int, int]
    ) -> list[Detection]:
        """Boxes of the previous keyframe's tracks that ``found`` misses and that may still be
        carried, moved as the camera moved since (``camera_move``; a side on the edge of the
        ``frame``, width and height, stays there): to be added to ``found`` before it is paired
        and assigned."""
        missed = pair(previous, found, camera_move).leaving
        carried = []
        for detection in missed:
            track = self._track_of(detection)
            if track is not None and self._may_coast(track, found.index):
                box = _kept_at_edges(_moved(detection.box, camera_move), detection.box, *frame)
                carried.append(Detection(detection.category, box, detection.score, COASTING))
        return carried

    def _may_coast(self, track: int, index: int) -> bool:
        unseen_for = index - self._found_at.get(track, index)
        return self._misses.get(track, 0) < COAST_KEYFRAMES or unseen_for <= self.coast_frames

    def _track_of(self, detection: Detection) -> int | None:
        for known, track in zip(self._current_detections, self._current, strict=True):
            if known is detection:
                return track
        return None

    def assign(self, keyframe: Keyframe, pairing: Pairing | None) -> list[int]:
        """Track ids of the keyframe's detections; ``pairing`` links them to the previous keyframe
        (None after a scene cut or at the start, when every track has ended)."""
        detections = keyframe.detections
        if pairing is None:
            self._current, self._current_detections, self._lost = [], [], []
            self._misses, self._found_at = {}, {}
        later_to_earlier = {j: i for i, j in pairing.matched_indices} if pairing else {}
        kept = set(later_to_earlier.values())
        for track in self._lost:
            track.keyframes_ago += 1
        self._lost = [t for t in self._lost if t.keyframes_ago <= LOST_TRACK_KEYFRAMES]
        previous = zip(self._current_detections, self._current, strict=True)
        self._lost += [_LostTrack(d, t) for i, (d, t) in enumerate(previous) if i not in kept]
        tracks = []
        for j, detection in enumerate(detections):
            if j in later_to_earlier:
                tracks.append(self._current[later_to_earlier[j]])
            else:
                tracks.append(self._reclaim(detection))
        for track_id, detection in zip(tracks, detections, strict=True):
            if detection.detector == COASTING:
                self._misses[track_id] = self._misses.get(track_id, 0) + 1
            else:
                self._misses[track_id], self._found_at[track_id] = 0, keyframe.index
        self._current, self._current_detections = tracks, list(detections)
        return tracks

    def _reclaim(self, detection: Detection) -> int:
        candidates = [
            (_match_cost(lost.detection.box, detection.box), n)
            for n, lost in enumerate(self._lost)
            if lost.detection.category is detection.category
        ]
        cost, index = min(candidates, default=(MAX_MATCH_DISTANCE + 1, -1))
        if cost > MAX_MATCH_DISTANCE:
            return self.new_track()
        return self._lost.pop(index).track


def between(
    earlier: Keyframe,
    later: Keyframe,
    pairing: Pairing,
    index: int,
    width: int,
    height: int,
    camera: list[Offset] | tuple[Offset, ...] = (),
) -> list[Detection]:
    """The regions to hide in frame ``index``, strictly between the two keyframes; ``camera``:
    the camera's offset at every frame (``camera.CameraPath``), none if empty."""
    span = max(1, later.index - earlier.index)
    t = (index - earlier.index) / span
    at_earlier, at_later, here = (offset_at(camera, i) for i in (earlier.index, later.index, index))
    regions = []
    for a, b in pairing.matched:
        box = _lerp(a.box, b.box, t)
        regions.append(_tracked(a, b, box, _centre_distance(a.box, b.box) / span, width, height))
        # The same object, still in the world between the keyframes: interpolated where the
        # camera's move is taken out, then moved by the camera's offset at this frame.
        still_a, still_b = _moved(a.box, _minus(at_earlier)), _moved(b.box, _minus(at_later))
        followed = _kept_at_edges(_moved(_lerp(still_a, still_b, t), here), box, width, height)
        if _centre_distance(followed, box) > CAMERA_APART:
            regions.append(_tracked(a, b, followed, _centre_distance(still_a, still_b) / span, width, height))
    for d, seen_at in [(d, at_earlier) for d in pairing.leaving] + [(d, at_later) for d in pairing.entering]:
        regions.append(Detection(d.category, d.box.grown(HOLD_GROWTH, width, height), d.score, "held"))
        shifted = _kept_at_edges(_moved(d.box, (here[0] - seen_at[0], here[1] - seen_at[1])), d.box, width, height)
        if _centre_distance(shifted, d.box) > CAMERA_APART:
            regions.append(Detection(d.category, shifted.grown(HOLD_GROWTH, width, height), d.score, "held"))
    return [r for r in regions if r.box.area > 0]


def _tracked(a: Detection, b: Detection, box: Box, per_frame: float, width: int, height: int) -> Detection:
    """A matched object's box between keyframes, grown by the distance it moves per frame."""
    margin = 0.05 + 1.5 * per_frame / max(_size(box), 1.0)
    return Detection(a.category, box.grown(margin, width, height), min(a.score, b.score), "tracked")


def _moved(box: Box, offset: Offset) -> Box:
    return Box(box.x + offset[0], box.y + offset[1], box.w, box.h)


def _kept_at_edges(moved: Box, original: Box, width: int, height: int) -> Box:
    """``moved``, stretched or cut to each edge of the frame that ``original`` touches: a box on the
    edge is an object cut by it (text running out of the picture), and what of it is visible
    stays at the edge however the camera moves."""
    x0, y0, x1, y1 = moved.x, moved.y, moved.x + moved.w, moved.y + moved.h
    if original.x <= EDGE:
        x0 = 0.0
    if original.y <= EDGE:
        y0 = 0.0
    if original.x + original.w >= width - EDGE:
        x1 = float(width)
    if original.y + original.h >= height - EDGE:
        y1 = float(height)
    return Box(x0, y0, x1 - x0, y1 - y0)


def _minus(offset: Offset) -> Offset:
    return (-offset[0], -offset[1])


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
