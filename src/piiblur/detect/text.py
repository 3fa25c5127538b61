"""Writing: every block of legible text, found by the shared OCR line detector.

Lines are grouped into blocks (lines of similar height stacked or side by side), and a block is
hidden as a whole, grown by a line height so that ascenders, descenders, the edges of characters
the detector clipped and faint or curved lines around the block (a plaque's rim) are hidden too.
Ghost lines that OCR detectors report on textured surfaces (skin, dot grids) are dropped: a "line"
taller than half the picture is not text.
"""

from __future__ import annotations

from piiblur.detect.base import Box, Detection, Scene
from piiblur.detect.ocr import Ocr, TextLine
from piiblur.domain import PiiCategory

MAX_LINE_FRACTION = 0.5
BLOCK_MARGIN = 1.0  # of a small line's height, on every side: curved or faint lines at a block's edge


class TextBlocks:
    """Lines grouped into blocks; shared by the writing, sign, plate and document families."""

    def __init__(self, lines: list[TextLine]) -> None:
        self.lines = lines
        self.blocks = _group(lines)

    @staticmethod
    def of(scene: Scene, ocr: Ocr) -> TextBlocks:
        def build() -> TextBlocks:
            limit = MAX_LINE_FRACTION * min(scene.width, scene.height)
            return TextBlocks([line for line in ocr.lines(scene) if line.height <= limit])

        return scene.memo("text.blocks", build)


def block_box(block: list[TextLine], scene: Scene, margin: float = BLOCK_MARGIN) -> Box:
    heights = sorted(line.height for line in block)
    pad = margin * heights[len(heights) // 4]  # the block's smaller lines: big headlines need no wider margin
    x0 = min(line.box.x for line in block) - pad
    y0 = min(line.box.y for line in block) - pad
    x1 = max(line.box.x + line.box.w for line in block) + pad
    y1 = max(line.box.y + line.box.h for line in block) + pad
    x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(scene.width), x1), min(float(scene.height), y1)
    return Box(x0, y0, x1 - x0, y1 - y0)


def _group(lines: list[TextLine]) -> list[list[TextLine]]:
    parent = list(range(len(lines)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(lines):
        for j in range(i + 1, len(lines)):
            if _same_block(a, lines[j]):
                parent[root(i)] = root(j)
    groups: dict[int, list[TextLine]] = {}
    for i, line in enumerate(lines):
        groups.setdefault(root(i), []).append(line)
    return list(groups.values())


def _same_block(a: TextLine, b: TextLine) -> bool:
    ha, hb = max(a.height, 1.0), max(b.height, 1.0)
    if max(ha, hb) / min(ha, hb) > 2.2:
        return False
    h = max(ha, hb)
    ba, bb = a.box, b.box
    gap_x = max(ba.x, bb.x) - min(ba.x + ba.w, bb.x + bb.w)
    gap_y = max(ba.y, bb.y) - min(ba.y + ba.h, bb.y + bb.h)
    stacked = gap_y < 0.9 * h and gap_x < 0.5 * h
    side_by_side = gap_x < 1.2 * h and gap_y < -0.4 * min(ha, hb)
    return stacked or side_by_side


class WritingDetector:
    name = "writing"
    categories = frozenset({PiiCategory.WRITING})
    rule_sources: frozenset[str] = frozenset()
    looks_in_regions = False

    def __init__(self, ocr: Ocr) -> None:
        self.ocr = ocr

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        found = []
        blocks = TextBlocks.of(scene, self.ocr)
        readings = dict(zip(map(id, blocks.lines), self.ocr.readings(scene, blocks.lines), strict=True))
        for block in blocks.blocks:
            if not any(legible(*readings[id(line)]) for line in block):
                continue
            score = max(line.score for line in block)
            found.append(Detection(PiiCategory.WRITING, block_box(block, scene), score, self.name))
        return found


def legible(text: str, confidence: float) -> bool:
    """Whether a line reads as writing. Texture, dot grids and foliage make the line detector
    report lines that read as nothing, or as one doubtful character."""
    characters = sum(ch.isalnum() for ch in text)
    if characters >= 3:
        return confidence >= 0.45
    return confidence >= 0.6 and (characters >= 2 or (characters == 1 and confidence >= 0.8))
