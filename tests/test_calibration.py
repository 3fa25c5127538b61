"""The threshold fit of ``bench/quality.py --calibrate``, which writes the shipped calibration file.

Run on small hand-made candidate sets, so that what the fit promises can be checked exactly: no
labelled object is lost, a model's false boxes are dropped where its true ones score higher, and a
rule is kept only for what the models miss.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import quality
from piiblur.detect import Box, Detection
from piiblur.domain import PiiCategory

SCREEN = {"category": "screen", "x": 100, "y": 100, "w": 100, "h": 60}
ON_THE_SCREEN = Box(95, 95, 110, 70)
ELSEWHERE = Box(400, 300, 80, 50)
MODEL, LIT = "screens:nanodet", "screens:lit-quad"


def record(candidates: list[tuple[str, float, Box]], labelled: bool = True) -> quality.Record:
    entry = {"file": "photo.jpg", "boxes": [SCREEN] if labelled else []}
    found = [Detection(PiiCategory.SCREENS, box, score, source) for source, score, box in candidates]
    return quality.Record(entry, 480, 640, found, 0.0)


def fit(records: list[quality.Record]) -> dict[str, float]:
    thresholds = quality.fit_thresholds({"set": records}, [PiiCategory.SCREENS])
    return {source.split("/", 1)[1]: value for source, value in thresholds.items()}


def test_false_boxes_below_the_lowest_true_one_are_dropped_with_a_safety_margin() -> None:
    records = [
        record([(MODEL, 0.6, ON_THE_SCREEN), (MODEL, 0.1, ELSEWHERE)]),
        record([(MODEL, 0.3, ELSEWHERE)], labelled=False),
    ]
    threshold = fit(records)[MODEL]
    assert threshold > 0.3  # both false boxes dropped …
    assert threshold == round(0.6 * (1 - quality.SAFETY), 4)  # … at the safety margin below the true one


def test_a_rule_is_switched_off_where_the_model_finds_everything_it_does() -> None:
    records = [
        record([(MODEL, 0.6, ON_THE_SCREEN), (LIT, 0.5, ON_THE_SCREEN)]),
        record([(LIT, 0.5, ELSEWHERE)], labelled=False),
    ]
    thresholds = fit(records)
    assert thresholds[LIT] > 0.5  # off: the model finds the screen, and the rule is wrong elsewhere
    assert thresholds[MODEL] <= 0.6


def test_a_rule_is_kept_for_what_the_model_misses() -> None:
    records = [
        record([(MODEL, 0.6, ON_THE_SCREEN)]),
        record([(LIT, 0.5, ON_THE_SCREEN), (MODEL, 0.2, ELSEWHERE)]),
    ]
    thresholds = fit(records)
    assert thresholds[LIT] <= 0.5
    assert thresholds[MODEL] > 0.2


def test_no_labelled_screen_is_lost_by_the_fitted_thresholds() -> None:
    records = [
        record([(MODEL, 0.02, ON_THE_SCREEN), (MODEL, 0.01, ELSEWHERE)]),
        record([(MODEL, 0.4, ON_THE_SCREEN), (MODEL, 0.2, ELSEWHERE)]),
    ]
    thresholds = {f"screens/{source}": value for source, value in fit(records).items()}
    assert quality._found(records, PiiCategory.SCREENS, thresholds) == 2
