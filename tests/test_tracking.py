"""Which keyframe detections are the same object: track ids, lost and found again."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from piiblur.detect import Box, Detection
from piiblur.detect.base import merged_boxes
from piiblur.domain import PiiCategory
from piiblur.redact.looks import LookPlanner
from piiblur.redact.tracking import COAST_KEYFRAMES, COASTING, LOST_TRACK_KEYFRAMES, Keyframe, TrackLedger, pair


def head(x: float, y: float = 100, size: float = 60) -> Detection:
    return Detection(PiiCategory.HEADS, Box(x, y, size, size), 0.9)


def plate(x: float) -> Detection:
    return Detection(PiiCategory.LICENSE_PLATES, Box(x, 300, 120, 30), 0.9)


def run(keyframes: list[list[Detection]]) -> list[list[int]]:
    """Track ids of each keyframe's detections, keyframes given in order."""
    ids = itertools.count(1)
    ledger = TrackLedger(lambda: next(ids))
    previous: Keyframe | None = None
    tracks = []
    for index, detections in enumerate(keyframes):
        keyframe = Keyframe(index * 10, detections)
        tracks.append(ledger.assign(keyframe, pair(previous, keyframe) if previous else None))
        previous = keyframe
    return tracks


def test_a_moving_object_keeps_its_track() -> None:
    assert run([[head(100)], [head(130)], [head(160)]]) == [[1], [1], [1]]


def test_two_objects_and_categories_are_told_apart() -> None:
    assert run([[head(100), plate(400)], [plate(405), head(110)]]) == [[1, 2], [2, 1]]
    assert run([[head(100)], [plate(100)]]) == [[1], [2]], "a plate where a head was is another object"


def test_an_object_missed_at_a_keyframe_is_the_same_object_when_it_returns() -> None:
    missed = [[head(100), head(500)], [head(500)], [head(105), head(505)]]
    assert run(missed) == [[1, 2], [2], [1, 2]]


def test_an_object_gone_for_long_or_elsewhere_is_a_new_one() -> None:
    gone = [[head(100)]] + [[]] * (LOST_TRACK_KEYFRAMES + 1) + [[head(100)]]
    assert run(gone)[-1] == [2]
    assert run([[head(100)], [], [head(900)]])[-1] == [2], "far from where it was lost"


def test_a_segment_start_forgets_every_track() -> None:
    ids = itertools.count(1)
    ledger = TrackLedger(lambda: next(ids))
    assert ledger.assign(Keyframe(0, [head(100)]), None) == [1]
    assert ledger.assign(Keyframe(10, [head(100)]), None) == [2], "after a scene cut nothing links the shots"


def carried_through(keyframes: list[int], coast_frames: int) -> list[int]:
    """The keyframes at which a head found at the first of ``keyframes`` and missed at every later
    one is still carried."""
    ids = itertools.count(1)
    ledger = TrackLedger(lambda: next(ids), coast_frames=coast_frames)
    previous = Keyframe(keyframes[0], [head(100)])
    ledger.assign(previous, None)
    carried_at = []
    for index in keyframes[1:]:
        missed = Keyframe(index, [])
        current = Keyframe(index, ledger.coasting(previous, missed, (0.0, 0.0), (1280, 720)))
        ledger.assign(current, pair(previous, current))
        carried_at += [index] if any(d.detector == COASTING for d in current.detections) else []
        previous = current
    return carried_at


def test_a_track_is_carried_as_long_when_keyframes_come_closer() -> None:
    """A moving picture shortens the stride; the track must not end sooner in time because of it."""
    assert carried_through([0, 10, 20, 30], coast_frames=10) == [10, 20][:COAST_KEYFRAMES]
    assert carried_through([0, 1, 2, 3, 4, 5], coast_frames=10) == [1, 2, 3, 4, 5], "within 10 frames"
    assert carried_through(list(range(0, 14)), coast_frames=10) == list(range(1, 11)), "not beyond them"
    assert carried_through([0, 1, 2, 3], coast_frames=0) == [1, 2][:COAST_KEYFRAMES], "by keyframes alone"


def test_the_stride_follows_what_was_seen_not_what_was_carried() -> None:
    """A carried box moves with the camera only; a pan must not keep the stride short through it."""
    seen, elsewhere = head(100), head(400)
    carried = Detection(PiiCategory.HEADS, Box(40, 100, 60, 60), 0.9, COASTING)
    earlier, later = Keyframe(0, [seen, elsewhere]), Keyframe(5, [carried, head(402)])
    pairing = pair(earlier, later)
    assert len(pairing.matched) == 2
    assert pairing.max_relative_motion() == pytest.approx(2 / 60)


def test_a_weaker_find_inside_another_of_one_family_is_one_object() -> None:
    """CenterFace sometimes puts a second, weak peak inside a face: one head, not two."""
    from piiblur.detect.registry import merge_duplicates

    outer = Detection(PiiCategory.HEADS, Box(0, 0, 100, 120), 0.9, "centerface")
    inner = Detection(PiiCategory.HEADS, Box(20, 30, 40, 50), 0.2, "centerface")
    neighbour = Detection(PiiCategory.HEADS, Box(70, 0, 100, 120), 0.8, "centerface")  # a crowd: 30 % shared
    assert merge_duplicates([inner, outer, neighbour]) == [outer, neighbour]


def street(moved: tuple[int, int] | None = None, brightness: int = 0) -> np.ndarray:
    """A still 1280x720 grey street (luma) with a 40x100 walker at ``moved``."""
    rng = np.random.default_rng(7)
    luma = np.clip(rng.normal(110, 30, (720, 1280)) + brightness, 0, 255).astype(np.uint8)
    luma = np.repeat(np.repeat(luma[::16, ::16], 16, axis=0), 16, axis=1)  # texture, not noise
    if moved is not None:
        x, y = moved
        luma[y : y + 100, x : x + 40] = 240
    return luma


def test_a_keyframe_is_looked_at_whole_until_something_is_known() -> None:
    planner = LookPlanner(1280, 720, max_gap=10)
    assert planner.regions(0, street(), tracked=None) is None, "the first keyframe"
    assert planner.regions(2, street(), tracked=None) is None, "nothing known: after a scene cut"


def test_between_full_looks_only_tracked_and_changed_parts_are_looked_at() -> None:
    planner = LookPlanner(1280, 720, max_gap=10)
    planner.regions(0, street((100, 300)), tracked=[])
    tracked = Box(900, 100, 30, 30)
    regions = planner.regions(3, street((160, 300)), tracked=[tracked])
    assert regions is not None and len(regions) == 2
    around_track = next(r for r in regions if r.x > 600)
    assert around_track.x <= 870 and around_track.x + around_track.w >= 960, "one size of room on each side"
    walker = next(r for r in regions if r.x < 600)
    assert walker.x <= 100 and walker.x + walker.w >= 200 and walker.y <= 300 and walker.y + walker.h >= 400
    assert sum(r.area for r in regions) < 0.05 * 1280 * 720
    assert planner.regions(6, street((160, 300)), tracked=[]) == [], "nothing moved, nothing tracked"


def test_a_full_look_comes_at_the_longest_stride_and_when_everything_changes() -> None:
    planner = LookPlanner(1280, 720, max_gap=10)
    planner.regions(0, street(), tracked=[])
    assert planner.regions(5, street(), tracked=[]) == []
    assert planner.regions(10, street(), tracked=[]) is None, "10 frames since the last full look"
    assert planner.regions(12, street(brightness=40), tracked=[]) is None, "the light changed everywhere"
    assert planner.regions(14, street(brightness=40), tracked=[Box(0, 0, 900, 600)]) is None, "a large object"


def test_overlapping_regions_become_one() -> None:
    boxes = [Box(0, 0, 100, 100), Box(50, 50, 100, 100), Box(400, 0, 10, 10), Box(140, 140, 20, 20)]
    assert sorted(merged_boxes(boxes), key=lambda b: b.x) == [Box(0, 0, 160, 160), Box(400, 0, 10, 10)]
