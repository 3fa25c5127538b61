"""What to hide in every frame of a video, from its keyframe detections: the render of a
reviewed video.

The video pipeline decides each frame's regions as it goes (``video``, ``tracking``). To render a
video again from detections a person has corrected, the same decision is made from what was kept
of that run (``VideoPlan``): each channel's keyframes and scene cuts, and the boxes of tracks
carried over keyframes that missed them. Between two consecutive keyframes of a channel, the
objects of both are paired by their track and hidden exactly as ``tracking.between`` hides them
(interpolated and grown when seen at both, held when seen at one, following the camera's move the
plan kept), so an unedited video renders as it was redacted.

A reviewer's own boxes (``Span``) cover a frame range exactly; the spans of one track are
interpolated between the frames the reviewer set. A ``Suppression`` removes one track from a
range of frames (or from all), whichever way its boxes came.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from piiblur.detect import Box, Detection
from piiblur.domain import PiiCategory
from piiblur.redact import tracking
from piiblur.redact.camera import NOT_MOVED, Offset
from piiblur.redact.tracking import Keyframe, Pairing


@dataclass(frozen=True)
class TrackedBox:
    """A detection on a keyframe, with its track."""

    frame: int
    track: int
    detection: Detection


@dataclass
class ChannelPlan:
    """One channel of the pipeline (a group of categories with its own keyframes)."""

    categories: list[PiiCategory]
    keyframes: list[int] = field(default_factory=list)
    segment_ends: list[int] = field(default_factory=list)  # keyframes after which tracks ended (a cut)


@dataclass
class VideoPlan:
    """What rendering a video again needs besides its detections."""

    width: int
    height: int
    frames: int
    channels: list[ChannelPlan]
    carried: list[TrackedBox] = field(default_factory=list)  # boxes of tracks kept over a missed keyframe
    camera: list[Offset] = field(default_factory=list)  # the camera's offset at every frame (``camera``)

    def as_json(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "channels": [
                {
                    "categories": [c.value for c in channel.categories],
                    "keyframes": sorted(set(channel.keyframes)),
                    "segment_ends": sorted(set(channel.segment_ends)),
                }
                for channel in self.channels
            ],
            "carried": [
                {"frame": c.frame, "track": c.track} | c.detection.as_dict() | {"detector": c.detection.detector}
                for c in self.carried
            ],
            # Only where the camera moved: a still camera's plan stays small.
            **({"camera": [list(o) for o in self.camera]} if any(o != NOT_MOVED for o in self.camera) else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VideoPlan:
        channels = [
            ChannelPlan([PiiCategory(c) for c in ch["categories"]], list(ch["keyframes"]), list(ch["segment_ends"]))
            for ch in data.get("channels", [])
        ]
        carried = [tracked_box(item) for item in data.get("carried", [])]
        camera = [(float(x), float(y)) for x, y in data.get("camera", [])]
        return cls(int(data["width"]), int(data["height"]), int(data["frames"]), channels, carried, camera)


def tracked_box(item: dict[str, Any]) -> TrackedBox:
    """A stored keyframe detection (the API's shape) as a ``TrackedBox``."""
    detection = Detection(
        PiiCategory(item["category"]),
        Box(*(float(v) for v in item["box"])),
        float(item.get("score", 1.0)),
        str(item.get("detector", "")),
    )
    return TrackedBox(int(item.get("frame", 0)), int(item.get("track", 0)), detection)


@dataclass(frozen=True)
class Span:
    """A reviewer's box, hidden on frames ``frame`` to ``frame_end`` inclusive."""

    track: int
    category: PiiCategory
    box: Box
    frame: int
    frame_end: int


@dataclass(frozen=True)
class Suppression:
    """Track ``track`` is not hidden on frames ``frame_start`` to ``frame_end`` (None: open)."""

    track: int
    frame_start: int | None = None
    frame_end: int | None = None

    def covers(self, track: int, frame: int) -> bool:
        return (
            track == self.track
            and (self.frame_start is None or frame >= self.frame_start)
            and (self.frame_end is None or frame <= self.frame_end)
        )


class _Channel:
    def __init__(self, plan: ChannelPlan, boxes: list[TrackedBox], camera: list[Offset]) -> None:
        self.camera = camera
        self.by_frame: dict[int, dict[int, Detection]] = defaultdict(dict)
        for item in boxes:
            self.by_frame[item.frame][item.track] = item.detection
        self.keyframes = sorted(set(plan.keyframes) | set(self.by_frame))
        self.segment_ends = set(plan.segment_ends)

    def regions(self, index: int, width: int, height: int, hidden: set[int]) -> list[Detection]:
        """``hidden``: the tracks that may be hidden at ``index`` (the others are suppressed)."""
        position = bisect.bisect_right(self.keyframes, index) - 1
        if position < 0:  # before the first keyframe (not made by the pipeline): hold the first
            return self._held(self.keyframes[0], width, height, hidden) if self.keyframes else []
        earlier = self.keyframes[position]
        if earlier == index:
            return [d for t, d in self.by_frame.get(index, {}).items() if t in hidden]
        if position + 1 == len(self.keyframes) or earlier in self.segment_ends:
            return self._held(earlier, width, height, hidden)  # past the last keyframe: privacy first
        later = self.keyframes[position + 1]
        a = {t: d for t, d in self.by_frame.get(earlier, {}).items() if t in hidden}
        b = {t: d for t, d in self.by_frame.get(later, {}).items() if t in hidden}
        pairing = Pairing(
            matched=[(a[t], b[t]) for t in a if t in b],
            leaving=[a[t] for t in a if t not in b],
            entering=[b[t] for t in b if t not in a],
        )
        return tracking.between(Keyframe(earlier, []), Keyframe(later, []), pairing, index, width, height, self.camera)

    def _held(self, keyframe: int, width: int, height: int, hidden: set[int]) -> list[Detection]:
        return [
            Detection(d.category, d.box.grown(tracking.HOLD_GROWTH, width, height), d.score, "held")
            for t, d in self.by_frame.get(keyframe, {}).items()
            if t in hidden
        ]

    def tracks(self) -> set[int]:
        return {t for found in self.by_frame.values() for t in found}


class Timeline:
    """The regions of each frame of one video, from its plan, its keyframe detections (as edited),
    the reviewer's spans and the suppressed tracks."""

    def __init__(
        self,
        plan: VideoPlan,
        keyed: Sequence[TrackedBox],
        spans: Sequence[Span] = (),
        suppressed: Sequence[Suppression] = (),
    ) -> None:
        self.width, self.height = plan.width, plan.height
        everything = [*keyed, *plan.carried]
        self.channels = []
        for channel in plan.channels:
            mine = [b for b in everything if b.detection.category in channel.categories]
            self.channels.append(_Channel(channel, mine, plan.camera))
        planned = {c for channel in plan.channels for c in channel.categories}
        orphans = [b for b in everything if b.detection.category not in planned]
        if orphans:  # a category edited in that no channel looked for: its own channel
            orphan_plan = ChannelPlan(sorted({b.detection.category for b in orphans}))
            self.channels.append(_Channel(orphan_plan, orphans, plan.camera))
        self.spans: dict[int, list[Span]] = defaultdict(list)
        for span in sorted(spans, key=lambda s: s.frame):
            self.spans[span.track].append(span)
        self.suppressed = list(suppressed)
        self.all_tracks = {t for c in self.channels for t in c.tracks()} | set(self.spans)

    def regions(self, index: int) -> list[Detection]:
        hidden = {t for t in self.all_tracks if not any(s.covers(t, index) for s in self.suppressed)}
        found = [d for channel in self.channels for d in channel.regions(index, self.width, self.height, hidden)]
        for track, spans in self.spans.items():
            if track in hidden:
                box = _span_box(spans, index)
                if box is not None:
                    found.append(Detection(spans[0].category, box, 1.0, "reviewer"))
        return found


def _span_box(spans: list[Span], index: int) -> Box | None:
    """Where a reviewer's track is at ``index``: interpolated between the frames the reviewer set
    where one span runs into the next, the span's own box otherwise; None outside every span."""
    for span, following in zip(spans, [*spans[1:], None], strict=True):
        if not span.frame <= index <= span.frame_end:
            continue
        if following is not None and following.frame <= span.frame_end + 1 and index < following.frame:
            t = (index - span.frame) / max(1, following.frame - span.frame)
            a, b = span.box, following.box
            return Box(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, a.w + (b.w - a.w) * t, a.h + (b.h - a.h) * t)
        return span.box
    return None
