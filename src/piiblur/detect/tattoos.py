"""Tattoos: ink on a person's skin. No tattoo model ships offline; the ink is found by a rule, and
only on people (``people.py``: person boxes and the person-segmentation mask).

Skin is found by its chroma (YCrCb), holes in it are filled, and inside the skin area the ink is
what is much darker than the surrounding skin or bluish-grey, in clusters large and textured enough
to be drawings or lettering rather than creases, veins or shadows. A cluster's score is how much of
it lies on a person (mean person support), so skin-coloured animals, food, wood and walls score
near zero and the calibrated threshold (``tattoos/tattoos:ink-on-skin``) drops them. Heads are
not searched: eyebrows, eyes, beards, glasses and masks are dark marks inside skin too, and were the
largest source of false tattoos (a close-up face hidden whole). The heads left out are the pose
model's (a head on a body, above its calibrated threshold), not the face model's: faces drawn in
tattoos are faces to it, and leaving those out lost 11 of BIVTatt's tattoos; the pose model lost 3.

The rule's own constants (``InkRule``) were chosen by ``bench/tattoo_rule.py``, which measures each
variant on every labelled set (BIVTatt recall, false finds where tattoos are boxed, and tattoo boxes on
the face and COCO photos, which are judged by eye) and writes ``bench/results/tattoo-rule.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from piiblur.detect.base import Box, Detection, Detector, Scene
from piiblur.detect.calibration import Calibration
from piiblur.detect.people import People
from piiblur.domain import PiiCategory

WORK_SIDE = 480
MIN_INK_FRACTION = 0.006  # of the image area
MIN_EDGE_DENSITY = 0.12
MIN_SKIN_AROUND = 0.6
MIN_SKIN_AROUND_AT_BORDER = 0.8
INK_JOIN = 25  # pixels at working scale: strokes of one drawing closer than this form one tattoo
SKIN_CB_RANGE = (85, 130)


@dataclass(frozen=True)
class InkRule:
    """The choices of the ink rule that ``bench/tattoo_rule.py`` compares (bench/results/tattoo-rule.md).

    The defaults are its chosen row (see that table for the figures): more of BIVTatt's tattoos than
    the earlier (135, 0.75, 41) and fewer tattoo boxes on the face and COCO photos; a smaller hole
    closing finds a few more tattoos but doubles the boxes on faces."""

    skin_cr_floor: int = 130  # YCrCb red chroma from which a pixel may be skin (cool-lit skin reaches 130)
    darker_than: float = 0.8  # ink is darker than this share of the surrounding skin's brightness
    hole_closing: int = 101  # pixels at working scale: holes in the skin up to this size are filled (large tattoos)


class TattooDetector:
    name = "tattoos"
    categories = frozenset({PiiCategory.TATTOOS})
    rule_sources: frozenset[str] = frozenset()
    looks_in_regions = False

    def __init__(self, people: People, heads: Detector, calibration: Calibration, rule: InkRule = InkRule()) -> None:
        """``heads``: the pose head family; the boxes that ``calibration`` keeps are left out."""
        self.people = people
        self.heads = heads
        self.calibration = calibration
        self.rule = rule

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        small, scale = scene.downscaled(WORK_SIDE)
        ycrcb = cv2.cvtColor(small, cv2.COLOR_RGB2YCrCb)
        skin_pixels = _skin_pixels(ycrcb, self.rule)
        skin = _skin_area(skin_pixels, self.rule)
        if skin.sum() < 0.05 * skin.size:
            return []
        support = self.people.support(scene, WORK_SIDE)
        if not support.any():
            return []
        ink = _ink(ycrcb, skin_pixels, skin, self.rule) & ~self._head_area(scene, scale, skin.shape)
        edges = cv2.Canny(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), 60, 140) > 0
        count, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
        found = []
        for index in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[index])
            if area < MIN_INK_FRACTION * ink.size:
                continue
            component = labels[y : y + h, x : x + w] == index
            if edges[y : y + h, x : x + w][component].mean() < MIN_EDGE_DENSITY:
                continue
            # Clusters cut by the frame must be more clearly on skin than the others.
            needed = MIN_SKIN_AROUND_AT_BORDER if _touches_border(x, y, w, h, ink.shape) else MIN_SKIN_AROUND
            if _skin_around(labels == index, skin_pixels) < needed:
                continue
            on_person = float(support[y : y + h, x : x + w][component].mean())
            box = Box(x / scale, y / scale, w / scale, h / scale).grown(0.1, scene.width, scene.height)
            found.append(Detection(PiiCategory.TATTOOS, box, on_person, f"{self.name}:ink-on-skin"))
        return found

    def _head_area(self, scene: Scene, scale: float, shape: tuple[int, ...]) -> np.ndarray:
        area = np.zeros(shape[:2], bool)
        for head in self.heads.detect(scene, frozenset({PiiCategory.HEADS})):
            if self.calibration.keeps(head):
                x0, y0, x1, y1 = (round(v * scale) for v in head.box.pixel_bounds(scene.width, scene.height))
                area[y0:y1, x0:x1] = True
        return area


def _touches_border(x: int, y: int, w: int, h: int, shape: tuple[int, ...]) -> bool:
    """Dark clusters cut by the frame are mostly clothing and shadow (measured on the development
    set), so they must be more clearly surrounded by skin to count."""
    return x == 0 or y == 0 or x + w >= shape[1] or y + h >= shape[0]


def _skin_around(component: np.ndarray, skin_pixels: np.ndarray) -> float:
    """Share of skin in a band around the cluster: drawings on skin are surrounded by it, while
    creases and shadows border on background, hair or clothing."""
    band = cv2.dilate(component.astype(np.uint8), np.ones((21, 21), np.uint8)) > 0
    band &= ~component
    return float(skin_pixels[band].mean()) if band.any() else 0.0


def _skin_pixels(ycrcb: np.ndarray, rule: InkRule) -> np.ndarray:
    return cv2.inRange(ycrcb, (40, rule.skin_cr_floor, SKIN_CB_RANGE[0]), (255, 180, SKIN_CB_RANGE[1])) > 0


def _skin_area(skin_pixels: np.ndarray, rule: InkRule) -> np.ndarray:
    skin = cv2.morphologyEx(skin_pixels.astype(np.uint8) * 255, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    # Ink interrupts the skin mask: close large holes so the tattoo lies inside the area.
    closing = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (rule.hole_closing, rule.hole_closing))
    return cv2.morphologyEx(skin, cv2.MORPH_CLOSE, closing) > 0


def _ink(ycrcb: np.ndarray, skin_pixels: np.ndarray, skin_area: np.ndarray, rule: InkRule) -> np.ndarray:
    luma = ycrcb[..., 0].astype(np.float32)
    reference = float(np.median(luma[skin_pixels])) if skin_pixels.any() else 128.0
    local = cv2.GaussianBlur(luma, (0, 0), 15)
    # Creases and shadows are darker skin and keep its red chroma; ink is darker *and* greyer.
    skin_cr = float(np.median(ycrcb[..., 1][skin_pixels])) if skin_pixels.any() else 150.0
    dark = (luma < rule.darker_than * np.minimum(local, reference)) & (ycrcb[..., 1] < skin_cr - 6)
    # Ink lies inside the skin, away from its outline (shadows between fingers, hair lines).
    interior = cv2.erode(skin_area.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    ink = (dark & interior).astype(np.uint8)
    return cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((INK_JOIN, INK_JOIN), np.uint8)) > 0
