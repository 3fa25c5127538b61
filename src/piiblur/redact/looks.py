"""Where a video keyframe needs looking at: the whole frame, or only where something can be new.

A full look at a 1280x720 frame costs the face detector about 0.15 s on a 2-core machine, and a
street camera's keyframes mostly show the same street with a few people moved. So between full
looks (at least one every ``max_gap`` frames of a channel: its longest stride, as often as
keyframes came before there were partial looks), a keyframe is looked at only in

- the boxes of the objects tracked so far, and of the candidates that nearly reached their
  threshold (``SCORE_WOBBLE``), grown by how far they can have moved since (beyond
  ``FAST_MOTION`` of their size between keyframes the stride halves, so twice that is room), and
- the parts of the picture that changed since the channel's previous keyframe (and a cell around
  them), where something can have come in.

Where these cover more than ``FULL_LOOK_SHARE`` of the frame (a pan, a zoom, a light switched on)
the full look is no dearer and is taken. Families that cannot look at regions (``Detector.
looks_in_regions``) look at the whole frame anyway; the planner only runs for channels with one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from piiblur.detect import Box
from piiblur.detect.base import merged_boxes
from piiblur.redact.obfuscate import Plane
from piiblur.redact.tracking import FAST_MOTION

CHANGE_SCALE = 8  # luma compared at 1/8 of the frame size (a cell is 8x8 pixels)
# Grey levels a cell must change by to count. Measured on a real static camera (Debian opencv-doc's
# vtest.avi scaled to 1280x720, consecutive frames, 1/8 cells): 95 % of cells change by at most 2
# levels (compression noise); the 2 % that hold walking people change by 12 and more.
CHANGED_LEVEL = 12
TRACK_REACH = 2 * FAST_MOTION  # of a tracked object's size, on each side
MIN_REGION_SIDE = 64  # pixels: the least a region shows, so the detector sees some context
# Candidates this close under their threshold are looked at again, like tracked objects: a still,
# hard face (small, turned) wobbles around its threshold from frame to frame, and a full look that
# happens to catch it under would leave it unseen until the next. Measured on the street camera
# with every keyframe looked at whole: the score of a face found in two keyframes at most 2 frames
# apart changed by 0.044 (median), 0.13 (90th percentile, this value), 0.17 (95th) in 561 pairs.
SCORE_WOBBLE = 0.13
# Above this share of the frame, regions cost the detector about what the full frame does (packing
# wastes some canvas) and the full look is taken.
FULL_LOOK_SHARE = 0.4

Thumb = npt.NDArray[np.int16]


@dataclass
class LookPlanner:
    """Decides, keyframe by keyframe, whether a channel looks at the whole frame or at regions."""

    width: int
    height: int
    max_gap: int
    last_full: int | None = None
    _last_thumb: Thumb | None = field(default=None, repr=False)

    def regions(self, index: int, luma: Plane, tracked: Sequence[Box] | None) -> list[Box] | None:
        """The regions keyframe ``index`` is to be looked at in, or None for the whole frame.
        ``tracked``: the boxes of the objects known at the channel's previous keyframe, None when
        nothing is known (the start, or just after a scene cut)."""
        thumb = _change_thumb(luma)
        previous, self._last_thumb = self._last_thumb, thumb
        if tracked is None or previous is None or self.last_full is None or index - self.last_full >= self.max_gap:
            self.last_full = index
            return None
        grown = [_at_least(box.grown(TRACK_REACH, self.width, self.height), self.width, self.height) for box in tracked]
        grown += [_at_least(box, self.width, self.height) for box in changed_areas(previous, thumb)]
        regions = merged_boxes(grown)
        if sum(r.area for r in regions) > FULL_LOOK_SHARE * self.width * self.height:
            self.last_full = index
            return None
        return regions


def _change_thumb(luma: Plane) -> Thumb:
    height, width = luma.shape[:2]
    size = (max(1, width // CHANGE_SCALE), max(1, height // CHANGE_SCALE))
    return np.asarray(cv2.resize(luma, size, interpolation=cv2.INTER_AREA), dtype=np.int16)


def changed_areas(before: Thumb, after: Thumb) -> list[Box]:
    """Boxes (in frame pixels) around the connected parts that changed by ``CHANGED_LEVEL``."""
    mask = (np.abs(after - before) >= CHANGED_LEVEL).astype(np.uint8)
    # Two cells around: the edges of what moved, and the still head above a moving body.
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return [
        Box(float(x * CHANGE_SCALE), float(y * CHANGE_SCALE), float(w * CHANGE_SCALE), float(h * CHANGE_SCALE))
        for x, y, w, h, _ in stats[1:count]
    ]


def _at_least(box: Box, width: int, height: int) -> Box:
    """``box`` widened about its centre to ``MIN_REGION_SIDE`` where smaller, inside the frame."""
    w, h = min(float(width), max(box.w, MIN_REGION_SIDE)), min(float(height), max(box.h, MIN_REGION_SIDE))
    x = min(max(0.0, box.x + box.w / 2 - w / 2), width - w)
    y = min(max(0.0, box.y + box.h / 2 - h / 2), height - h)
    return Box(x, y, w, h)
