"""License plates: text lines that read like a plate.

No licence-compatible plate detector ships offline (see docs), and plate text is text: every OCR
line that is plate-shaped (wider than tall, not too long, not part of a paragraph) is read, and
kept when its characters look like a registration: 4 to 10 letters and digits with at least one
digit, a vanity plate's capital-letter groups, or, for a distant plate under ten pixels, any three
characters. The box is grown to cover the plate's border and region strip.
"""

from __future__ import annotations

import re

from piiblur.detect.base import Box, Detection, Scene
from piiblur.detect.ocr import Ocr, TextLine
from piiblur.detect.text import TextBlocks
from piiblur.domain import PiiCategory

MIN_ASPECT, MAX_ASPECT = 1.6, 8.0
MAX_BLOCK_LINES = 4  # plate rows, a US state name and slogan, maybe a bumper sticker; not a paragraph
PLATE_CHARS = re.compile(r"[A-Z0-9]")
VANITY = re.compile(r"[A-Z]{1,4}(?: [A-Z]{1,4}){1,2}")
TINY_HEIGHT = 10  # pixels: a distant plate, seen as a line of smudges
TINY_ASPECT = (2.5, 6.0)


def looks_like_plate(text: str, tiny: bool = False) -> bool:
    """4-10 letters and digits with a digit among them, or a vanity plate (capital-letter groups
    such as "FZ RULZ"); a plate under ``TINY_HEIGHT`` pixels reads too poorly for either test,
    so three characters are enough there."""
    if VANITY.fullmatch(text.strip()) and 4 <= sum(c.isalpha() for c in text) <= 8:
        return True
    cleaned = text.upper().replace(" ", "").replace("-", "").replace("·", "").replace(".", "")
    alnum = PLATE_CHARS.findall(cleaned)
    if len(alnum) < 0.75 * len(cleaned) or len(alnum) > 10:
        return False
    if tiny:
        return len(alnum) >= 3
    return len(alnum) >= 4 and any(c.isdigit() for c in alnum)


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
            if looks_like_plate(text, tiny=_tiny_plate_shape(line))
        ]


def _tiny_plate_shape(line: TextLine) -> bool:
    aspect = line.length / max(line.height, 1.0)
    return line.height < TINY_HEIGHT and TINY_ASPECT[0] <= aspect <= TINY_ASPECT[1]


def _plate_box(line: TextLine, scene: Scene) -> Box:
    box = line.box
    grown = Box(box.x - 0.2 * box.h, box.y - 0.45 * box.h, box.w + 0.4 * box.h, box.h * 1.9)
    return grown.grown(0.0, scene.width, scene.height)
