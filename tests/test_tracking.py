"""Which keyframe detections are the same object: track ids, lost and found again."""

from __future__ import annotations

import itertools

from piiblur.detect import Box, Detection
from piiblur.domain import PiiCategory
from piiblur.redact.tracking import LOST_TRACK_KEYFRAMES, Keyframe, TrackLedger, pair


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
        tracks.append(ledger.assign(detections, pair(previous, keyframe) if previous else None))
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
    assert ledger.assign([head(100)], None) == [1]
    assert ledger.assign([head(100)], None) == [2], "after a scene cut nothing links the shots"


def test_a_weaker_find_inside_another_of_one_family_is_one_object() -> None:
    """CenterFace sometimes puts a second, weak peak inside a face: one head, not two."""
    from piiblur.detect.registry import merge_duplicates

    outer = Detection(PiiCategory.HEADS, Box(0, 0, 100, 120), 0.9, "centerface")
    inner = Detection(PiiCategory.HEADS, Box(20, 30, 40, 50), 0.2, "centerface")
    neighbour = Detection(PiiCategory.HEADS, Box(70, 0, 100, 120), 0.8, "centerface")  # a crowd: 30 % shared
    assert merge_duplicates([inner, outer, neighbour]) == [outer, neighbour]
