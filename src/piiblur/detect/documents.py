"""Identity documents, payment cards, paper documents and name badges, recognised by content.

Shape alone cannot tell a passport from a postcard, so each kind is recognised by what it carries,
read by the shared OCR:
- passports and ID cards by their machine-readable zone (ICAO 9303: lines of ``A-Z0-9<``, 30, 36
  or 44 long): 44-character lines are a passport data page, shorter ones an ID card;
- payment cards by a 13-19 digit number that passes the Luhn check or is printed in 4-digit groups;
- paper documents (receipts, letters, forms) by a dense block of many text lines;
- name badges and business cards by a code or a printed portrait on a small flat card.
The document's extent is derived from the standard layouts (an MRZ sits at the bottom of a page of
known proportions; a card number sits just below the middle of an ID-1 card), following the text's
own rotation, then merged with the flat surface found around it.
"""

from __future__ import annotations

import re

import numpy as np

from piiblur.detect.base import Box, Detection, Scene, around
from piiblur.detect.codes import CodeDetector
from piiblur.detect.ocr import Ocr, TextLine
from piiblur.detect.panels import panel_around
from piiblur.detect.text import TextBlocks, block_box
from piiblur.domain import PiiCategory

MRZ_LINE = re.compile(r"^[A-Z0-9<]{25,48}$")
CARD_NUMBER = re.compile(r"(?<!\d)(\d[\d ]{11,22}\d)(?!\d)")
GROUPED_CARD = re.compile(r"^\d{4}( \d{4}){3}$|^\d{4} \d{6} \d{5}$")
ID1_ASPECT = 85.6 / 53.98
PASSPORT_ASPECT = 125 / 88
MIN_DOCUMENT_LINES = 8
BADGE_MAX_GROWTH = 15.0  # a badge or business card is up to ~15 times the area of its code


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def is_card_number(text: str) -> bool:
    match = CARD_NUMBER.search(text)
    if match is None:
        return False
    grouped = " ".join(match.group(1).split())
    digits = grouped.replace(" ", "")
    return 13 <= len(digits) <= 19 and (luhn_valid(digits) or bool(GROUPED_CARD.match(grouped)))


def mrz_text(text: str) -> str | None:
    cleaned = text.replace(" ", "").replace("«", "<").upper()
    return cleaned if MRZ_LINE.match(cleaned) and cleaned.count("<") >= 2 else None


class DocumentDetector:
    name = "documents"
    categories = frozenset(
        {
            PiiCategory.PASSPORTS,
            PiiCategory.ID_CARDS,
            PiiCategory.CREDIT_CARDS,
            PiiCategory.DOCUMENTS,
            PiiCategory.NAME_BADGES,
        }
    )
    rule_sources: frozenset[str] = frozenset()
    looks_in_regions = False

    def __init__(self, ocr: Ocr, codes: CodeDetector) -> None:
        self.ocr = ocr
        self.codes = codes

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        found: list[Detection] = []
        text_kinds = wanted & {PiiCategory.PASSPORTS, PiiCategory.ID_CARDS, PiiCategory.CREDIT_CARDS}
        if text_kinds:
            found += self._read_documents(scene)
        if PiiCategory.DOCUMENTS in wanted:
            found += self._paper(scene)
        if PiiCategory.NAME_BADGES in wanted:
            found += self._badges(scene)
        return found

    def _read_documents(self, scene: Scene) -> list[Detection]:
        lines = TextBlocks.of(scene, self.ocr).lines
        texts = self.ocr.texts(scene, lines)
        mrz = [(line, m) for line, text in zip(lines, texts, strict=True) if (m := mrz_text(text))]
        found: list[Detection] = []
        if mrz:
            longest = max(len(m) for _, m in mrz)
            passport = longest >= 40 or any(m.startswith("P") for _, m in mrz)
            aspect = PASSPORT_ASPECT if passport else ID1_ASPECT
            region = _page_above([line for line, _ in mrz], aspect, scene)
            panel = panel_around(scene, region, max_growth=2.5)
            if panel is not None:
                region = around([region, panel])
            category = PiiCategory.PASSPORTS if passport else PiiCategory.ID_CARDS
            found.append(Detection(category, region, 0.9, f"{self.name}:mrz"))
        for line, text in zip(lines, texts, strict=True):
            if is_card_number(text) and not any(line is m for m, _ in mrz):
                region = _card_around_number(line, scene)
                found.append(Detection(PiiCategory.CREDIT_CARDS, region, 0.8, f"{self.name}:card-number"))
        return found

    def _paper(self, scene: Scene) -> list[Detection]:
        found = []
        for block in TextBlocks.of(scene, self.ocr).blocks:
            if len(block) < MIN_DOCUMENT_LINES:
                continue
            box = block_box(block, scene, margin=1.5)
            panel = panel_around(scene, box, max_growth=3.0)
            region = around([box, panel]) if panel is not None else box
            found.append(Detection(PiiCategory.DOCUMENTS, region, 0.7, f"{self.name}:dense-text"))
        return found

    def _badges(self, scene: Scene) -> list[Detection]:
        found = []
        for code in self.codes.codes(scene):
            # Seed just outside the symbol itself (1.04 x its size): in its quiet zone, which is
            # the card's own colour. The code's box carries a wider margin (1.3 x).
            seed = code.box.grown(-0.1, scene.width, scene.height)
            panel = panel_around(scene, seed, max_growth=BADGE_MAX_GROWTH)
            if panel is not None and 1.3 * seed.area < panel.area < 0.5 * scene.width * scene.height:
                found.append(Detection(PiiCategory.NAME_BADGES, panel, 0.5, f"{self.name}:card-with-code"))
        return found


def _frame(lines: list[TextLine]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors along and across the text, and all corner points."""
    points = np.concatenate([line.quad for line in lines])
    first = max(lines, key=lambda line: line.length).quad
    along = first[1] - first[0]
    along = along / max(float(np.linalg.norm(along)), 1e-6)
    across = np.array([-along[1], along[0]], dtype=np.float32)
    return along, across, points


def _rect_to_box(
    along: np.ndarray, across: np.ndarray, u: tuple[float, float], v: tuple[float, float], scene: Scene
) -> Box:
    corners = np.array([along * a + across * b for a in u for b in v])
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    return Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0)).grown(0.0, scene.width, scene.height)


def _page_above(mrz_lines: list[TextLine], aspect: float, scene: Scene) -> Box:
    """The data page or card whose machine-readable zone these lines are: the MRZ spans nearly the
    full width at the bottom of a page of known proportions."""
    along, across, points = _frame(mrz_lines)
    u, v = points @ along, points @ across
    width = float(u.max() - u.min()) * 1.1
    height = width / aspect
    u0 = float(u.min()) - 0.05 * width
    return _rect_to_box(
        along, across, (u0, u0 + width), (float(v.max()) - height, float(v.max()) + 0.06 * height), scene
    )


def _card_around_number(line: TextLine, scene: Scene) -> Box:
    """An ID-1 card whose number spans about 80 % of its width, just below the middle."""
    along, across, points = _frame([line])
    u, v = points @ along, points @ across
    width = float(u.max() - u.min()) / 0.8
    height = width / ID1_ASPECT
    uc, vc = float(u.mean()), float(v.mean())
    return _rect_to_box(along, across, (uc - width / 2, uc + width / 2), (vc - 0.6 * height, vc + 0.45 * height), scene)
