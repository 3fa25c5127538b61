"""License plates: text lines that read like a plate.

No licence-compatible plate detector ships offline (see docs), and plate text is text: every OCR
line that is plate-shaped (wider than tall, not too long, not part of a paragraph) is read, and
kept when its characters look like a registration — 4 to 10 letters and digits with at least one digit, mostly
alphanumeric. The box is grown to cover the plate's border and region strip.
"""

from __future__ import annotations

import re

from piiblur.detect.base import Box, Detection, Scene
from piiblur.detect.ocr import Ocr, TextLine
from piiblur.detect.text import TextBlocks
from piiblur.domain import PiiCategory

MIN_ASPECT, MAX_ASPECT = 1.6, 8.0
MAX_BLOCK_LINES = 2  # one- and two-row plates; a line inside a paragraph is not a plate
PLATE_CHARS = re.compile(r"[A-Z0-9]")


def looks_like_plate(text: str) -> bool:
    cleaned = text.upper().replace(" ", "").replace("-", "").replace("·", "").replace(".", "")
    alnum = PLATE_CHARS.findall(cleaned)
    if not 4 <= len(alnum) <= 10 or not any(c.isdigit() for c in alnum):
        return False
    return len(alnum) >= 0.75 * len(cleaned)


def plate_shaped(line: TextLine, scene: Scene) -> bool:
    aspect = line.length / max(line.height, 1.0)
    return MIN_ASPECT <= aspect <= MAX_ASPECT and line.height < 0.25 * scene.height


class LicensePlateDetector:
    name = "plates"
    categories = frozenset({PiiCategory.LICENSE_PLATES})

    def __init__(self, ocr: Ocr) -> None:
        self.ocr = ocr

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        blocks = TextBlocks.of(scene, self.ocr).blocks
        isolated = [line for block in blocks if len(block) <= MAX_BLOCK_LINES for line in block]
        candidates = [line for line in isolated if plate_shaped(line, scene)]
        texts = self.ocr.texts(scene, candidates)
        return [
            Detection(PiiCategory.LICENSE_PLATES, _plate_box(line, scene), line.score, self.name)
            for line, text in zip(candidates, texts, strict=True)
            if looks_like_plate(text)
        ]


def _plate_box(line: TextLine, scene: Scene) -> Box:
    box = line.box
    grown = Box(box.x - 0.2 * box.h, box.y - 0.45 * box.h, box.w + 0.4 * box.h, box.h * 1.9)
    return grown.grown(0.0, scene.width, scene.height)
