"""Street signs: traffic signs by colour and shape, and text signs by the panel their text sits on.

- Traffic signs (speed limits, warnings, mandatory and information signs) are red or blue shapes:
  rings, triangles, discs and squares of saturated colour. Colour masks, then shape tests
  (convexity, circularity or a 3/4-sided outline) keep the signs and drop red cars and blue shirts.
- Direction and street-name signs are text on a flat, strongly coloured panel (green, blue, brown,
  dark navy): the panel found around a text block decides it, and the panel is hidden whole.
"""

from __future__ import annotations

import cv2
import numpy as np

from piiblur.detect.base import Box, Detection, Scene
from piiblur.detect.ocr import Ocr
from piiblur.detect.text import TextBlocks, block_box
from piiblur.domain import PiiCategory

WORK_SIDE = 800
COLOUR_TOLERANCE = 40
MIN_SIGN_PIXELS = 12  # at working scale, on the short side of the sign


class StreetSignDetector:
    name = "signs"
    categories = frozenset({PiiCategory.STREET_SIGNS})

    def __init__(self, ocr: Ocr) -> None:
        self.ocr = ocr

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        return self._traffic_signs(scene) + self._text_signs(scene)

    def _traffic_signs(self, scene: Scene) -> list[Detection]:
        scale = min(1.0, WORK_SIDE / max(scene.width, scene.height))
        small = (
            cv2.resize(scene.pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            if scale < 1
            else scene.pixels
        )
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
        red = ((hue < 8) | (hue > 170)) & (sat > 110) & (val > 70)
        blue = (hue > 100) & (hue < 125) & (sat > 130) & (val > 60)
        found: list[Detection] = []
        for mask, colour in ((red, "red"), (blue, "blue")):
            closed = cv2.morphologyEx(mask.astype(np.uint8) * 255, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
            contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for contour in contours:
                if _is_sign_shape(contour, colour, small.shape[:2]):
                    x, y, w, h = cv2.boundingRect(contour)
                    box = Box(x / scale, y / scale, w / scale, h / scale).grown(0.08, scene.width, scene.height)
                    found.append(Detection(PiiCategory.STREET_SIGNS, box, 0.6, f"{self.name}:{colour}-shape"))
        return found

    def _text_signs(self, scene: Scene) -> list[Detection]:
        found = []
        for block in TextBlocks.of(scene, self.ocr).blocks:
            heights = sorted(line.height for line in block)
            line_height = heights[len(heights) // 2]
            seed = block_box(block, scene, margin=0.3)
            background = _background_colour(scene, seed)
            if background is None or not _sign_colour(background):
                continue
            panel = _panel_extent(scene, seed, background, line_height)
            if panel is None:
                continue
            box = panel.grown(0.03, scene.width, scene.height)
            found.append(Detection(PiiCategory.STREET_SIGNS, box, 0.6, f"{self.name}:panel"))
        return found


def _is_sign_shape(contour: np.ndarray, colour: str, shape: tuple[int, int]) -> bool:
    _, _, w, h = cv2.boundingRect(contour)
    if min(w, h) < MIN_SIGN_PIXELS or max(w, h) > 0.35 * min(shape) or not 0.6 <= w / h <= 1.6:
        return False
    area = cv2.contourArea(contour)
    hull_area = cv2.contourArea(cv2.convexHull(contour))
    if hull_area <= 0 or area / hull_area < 0.85:
        return False
    perimeter = cv2.arcLength(contour, True)
    circularity = 4 * np.pi * area / max(perimeter * perimeter, 1e-6)
    corners = len(cv2.approxPolyDP(contour, 0.04 * perimeter, True))
    if colour == "red":
        return circularity > 0.75 or corners == 3
    return circularity > 0.75 or (corners == 4 and area / (w * h) > 0.85)


def _background_colour(scene: Scene, box: Box) -> np.ndarray | None:
    """The colour behind a text block: the median of its pixels (strokes are the minority)."""
    x0, y0 = int(box.x), int(box.y)
    crop = scene.pixels[y0 : y0 + int(box.h), x0 : x0 + int(box.w)]
    if crop.size == 0:
        return None
    colour: np.ndarray = np.median(crop.reshape(-1, 3), axis=0).astype(np.float32)
    return colour


def _sign_colour(rgb: np.ndarray) -> bool:
    """Sign panels are saturated green, blue, brown or red, or dark navy; not white, grey or skin."""
    hsv = cv2.cvtColor(rgb.reshape(1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2HSV)[0, 0]
    hue, sat, val = int(hsv[0]), int(hsv[1]), int(hsv[2])
    saturated = sat > 100 and val > 50 and not 5 <= hue <= 25  # orange-brown skin tones excluded
    navy = val < 100 and sat > 60 and 95 < hue < 135
    return saturated or navy


def _panel_extent(scene: Scene, seed: Box, background: np.ndarray, line_height: float) -> Box | None:
    """Walk outwards from the text along rows and columns while the sign's colour continues,
    stepping over gaps narrower than a line height (arrows and pictograms), and take the median
    reach: the panel's extent. A colour that runs on past the limit on two sides or more is a
    wall, a shirt or a car body, not a sign: None."""
    pixels = scene.pixels.astype(np.int16)
    matches = np.abs(pixels - background.astype(np.int16)).max(axis=2) < COLOUR_TOLERANCE
    gap = max(3, int(line_height))
    rows = np.linspace(seed.y + 0.1 * seed.h, seed.y + 0.9 * seed.h, 7).astype(int)
    cols = np.linspace(seed.x + 0.1 * seed.w, seed.x + 0.9 * seed.w, 7).astype(int)
    x0 = np.median([_reach(matches[r, : int(seed.x)][::-1], gap) for r in rows])
    x1 = np.median([_reach(matches[r, int(seed.x + seed.w) :], gap) for r in rows])
    y0 = np.median([_reach(matches[: int(seed.y), c][::-1], gap) for c in cols])
    y1 = np.median([_reach(matches[int(seed.y + seed.h) :, c], gap) for c in cols])
    limit = 3 * line_height
    if sum((x0 > 4 * limit, x1 > 4 * limit, y0 > limit, y1 > limit)) >= 2:
        return None
    left, top = seed.x - min(x0, 4 * limit), seed.y - min(y0, limit)
    right, bottom = seed.x + seed.w + min(x1, 4 * limit), seed.y + seed.h + min(y1, limit)
    return Box(float(left), float(top), float(right - left), float(bottom - top)).grown(0.0, scene.width, scene.height)


def _reach(run: np.ndarray, gap: int) -> int:
    """How far a run of matching pixels reaches from its start, tolerating short gaps."""
    last, misses = 0, 0
    for index, matched in enumerate(run):
        if matched:
            last, misses = index + 1, 0
        else:
            misses += 1
            if misses > gap:
                break
    return last
