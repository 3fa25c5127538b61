"""What decides how much is hidden, fitted on labelled data rather than chosen by eye.

``calibration.json`` (next to this module) is written by ``bench/quality.py --calibrate``:

- ``thresholds``: per detection source (``category/detector``, e.g. ``heads/centerface``,
  ``street_signs/signs:panel``), the lowest score kept. Families report every candidate above a
  low floor; the engine keeps those that reach their source's threshold. A source missing from the
  file keeps everything its family reports.
- ``max_rule_share``: per category, the largest share of the frame a rule-based finding (a
  family's ``rule_sources``: colour shapes, panels, lit rectangles) may cover: 1.5 times the largest
  labelled object of the category, so no rule can hide a whole picture.
- ``head``: how a face box becomes the hidden head (growth of the box on each side, as shares of the
  face box's width and height), the smallest that still covers the labelled heads.
- ``measured``: where the numbers come from (sets, labels, the rule that fitted them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from piiblur.detect.base import Detection

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class HeadGrowth:
    """Face box (x, y, w, h) -> head box: ``left``/``right`` of the width and ``top``/``bottom`` of
    the height added on each side; faces smaller than ``small_face_pixels`` get ``small_face_extra``
    of their size more on every side (a few pixels of box error are a large part of them)."""

    left: float = 0.15
    right: float = 0.15
    top: float = 0.35
    bottom: float = 0.15
    small_face_pixels: float = 30.0
    small_face_extra: float = 0.4


@dataclass(frozen=True)
class Calibration:
    thresholds: dict[str, float] = field(default_factory=dict)
    max_rule_share: dict[str, float] = field(default_factory=dict)
    head: HeadGrowth = field(default_factory=HeadGrowth)
    measured: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def source(detection: Detection) -> str:
        return f"{detection.category.value}/{detection.detector}"

    def keeps(self, detection: Detection, slack: float = 0.0) -> bool:
        """Whether the detection reaches its threshold (less ``slack``)."""
        return detection.score + slack >= self.thresholds.get(self.source(detection), 0.0)

    def rule_share_allowed(self, detection: Detection, width: int, height: int) -> bool:
        share = detection.box.area / max(1, width * height)
        return share <= self.max_rule_share.get(detection.category.value, 1.0)

    def to_json(self) -> str:
        payload = {
            "thresholds": dict(sorted(self.thresholds.items())),
            "max_rule_share": dict(sorted(self.max_rule_share.items())),
            "head": vars(self.head),
            "measured": self.measured,
        }
        return json.dumps(payload, indent=2) + "\n"

    @staticmethod
    def from_json(text: str) -> Calibration:
        payload = json.loads(text)
        return Calibration(
            thresholds={str(k): float(v) for k, v in payload.get("thresholds", {}).items()},
            max_rule_share={str(k): float(v) for k, v in payload.get("max_rule_share", {}).items()},
            head=HeadGrowth(**payload.get("head", {})),
            measured=dict(payload.get("measured", {})),
        )


UNFILTERED = Calibration()
"""Every candidate kept: what ``bench/quality.py --calibrate`` measures before fitting."""


@lru_cache(maxsize=1)
def shipped_calibration() -> Calibration:
    """The calibration committed with the package (every family's floor if the file is absent)."""
    if not CALIBRATION_FILE.is_file():
        return UNFILTERED
    return Calibration.from_json(CALIBRATION_FILE.read_text())
