"""Street signs: traffic signs by colour and shape, and text signs by the panel their text sits on.

- Traffic signs (speed limits, warnings, mandatory and information signs) are red or blue shapes:
  rings, triangles, discs and squares of saturated colour. Colour masks, then shape tests
  (convexity, circularity or a 3/4-sided outline) keep the signs and drop red cars and blue shirts.
- Direction and street-name signs are text on a flat, strongly coloured panel (green, blue, brown,
  dark navy): the panel found around a text block decides it, and the panel is hidden whole.
- Stop signs come from the object model (COCO's "stop sign").
"""

from __future__ import annotations

import cv2
import numpy as np

from piiblur.detect.base import Box, Detection, Scene
from piiblur.detect.objects import ObjectKind, ObjectModel
from piiblur.detect.ocr import Ocr
from piiblur.detect.text import TextBlocks
from piiblur.domain import PiiCategory

WORK_SIDE = 800
COLOUR_TOLERANCE = 40
MIN_SIGN_PIXELS = 8  # at working scale, on the short side of the sign (the long side needs 12)


class StreetSignDetector:
    name = "signs"
    categories = frozenset({PiiCategory.STREET_SIGNS})
    rule_sources: frozenset[str] = frozenset({"signs:red-shape", "signs:blue-shape", "signs:panel"})
    looks_in_regions = False

    def __init__(self, ocr: Ocr, objects: ObjectModel) -> None:
        self.ocr, self.objects = ocr, objects

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        stop_signs = [
            Detection(PiiCategory.STREET_SIGNS, o.box, o.score, "signs:nanodet")
            for o in self.objects.objects(scene)
            if o.kind is ObjectKind.STOP_SIGN
        ]
        return stop_signs + self._traffic_signs(scene) + self._text_signs(scene)

    def _traffic_signs(self, scene: Scene) -> list[Detection]:
        small, scale = scene.downscaled(WORK_SIDE)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
        red = ((hue < 8) | (hue > 170)) & (sat > 110) & (val > 70)
        blue = (hue > 88) & (hue < 128) & (sat > 100) & (val > 60)
        found: list[Detection] = []
        for mask, colour in ((red, "red"), (blue, "blue")):
            closed = cv2.morphologyEx(mask.astype(np.uint8) * 255, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
            contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for contour in contours:
                if _is_sign_shape(contour, colour, small.shape[:2]) and _has_sign_face(contour, mask, hsv):
                    x, y, w, h = cv2.boundingRect(contour)
                    box = Box(x / scale, y / scale, w / scale, h / scale).grown(0.08, scene.width, scene.height)
                    found.append(Detection(PiiCategory.STREET_SIGNS, box, 0.6, f"{self.name}:{colour}-shape"))
        return found

    def _text_signs(self, scene: Scene) -> list[Detection]:
        """Each line separately: stacked signs of different colours often merge into one block.

        A panel's score is how much of it the text lines cover: a sign is mostly lettering, while a
        wall, a shop front or a bus side that happens to be sign-coloured around a small line is
        mostly not, and the calibrated threshold (``street_signs/signs:panel``) drops it."""
        found: list[Detection] = []
        lines = TextBlocks.of(scene, self.ocr).lines
        for line in lines:
            box, pad = line.box, 0.3 * line.height
            seed = Box(box.x - pad, box.y - pad, box.w + 2 * pad, box.h + 2 * pad).grown(0.0, scene.width, scene.height)
            background = _background_colour(scene, seed)
            if background is None or not _sign_colour(background):
                continue
            panel = _panel_extent(scene, seed, background, line.height)
            if panel is None:
                continue
            box = panel.grown(0.03, scene.width, scene.height)
            if not any(_mostly_inside(box, other.box) for other in found):
                lettering = sum(other.box.intersection_area(box) for other in lines)
                found.append(Detection(PiiCategory.STREET_SIGNS, box, min(1.0, lettering / box.area), "signs:panel"))
        return found


def _is_sign_shape(contour: np.ndarray, colour: str, shape: tuple[int, int]) -> bool:
    """Judged on the convex hull: a sign's coloured border is often a broken ring at small sizes,
    but its hull is still a disc, a triangle or a square; cars, clothes and awnings are not."""
    _, _, w, h = cv2.boundingRect(contour)
    if min(w, h) < MIN_SIGN_PIXELS or max(w, h) < 12 or max(w, h) > 0.35 * min(shape):
        return False
    round_or_square = 0.6 <= w / h <= 1.6
    if not round_or_square and (colour == "red" or not 0.3 <= w / h <= 3.3):
        return False
    hull = cv2.convexHull(contour)
    hull_area = cv2.contourArea(hull)
    if hull_area <= 0 or cv2.contourArea(contour) < 0.12 * hull_area:
        return False  # a few scattered pixels, not a painted border
    perimeter = cv2.arcLength(hull, True)
    circularity = 4 * np.pi * hull_area / max(perimeter * perimeter, 1e-6)
    corners = len(cv2.approxPolyDP(hull, 0.06 * perimeter, True))
    if colour == "red":
        return circularity > 0.82 or corners == 3
    rectangle = corners == 4 and hull_area / (w * h) > 0.85
    return rectangle or (round_or_square and circularity > 0.82)


def _has_sign_face(contour: np.ndarray, colour_mask: np.ndarray, hsv: np.ndarray) -> bool:
    """Signs carry a light face inside their coloured border or on their coloured disc: a red
    ring around white (speed limits, warnings), or white symbols on blue. Red skin, cars and
    clothes have no white inside them."""
    hull = cv2.convexHull(contour)
    inside = np.zeros(colour_mask.shape, np.uint8)
    cv2.fillConvexPoly(inside, hull, 1)
    region = inside > 0
    if not region.any():
        return False
    white = (hsv[..., 1] < 70) & (hsv[..., 2] > 140)
    white_share = float(white[region].mean())
    colour_share = float(colour_mask[region].mean())
    return white_share >= 0.12 and colour_share >= 0.15


def _mostly_inside(inner: Box, outer: Box) -> bool:
    return inner.intersection_area(outer) > 0.8 * inner.area


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
    navy = val < 100 and sat > 40 and 95 < hue < 135
    black = val < 60  # black and dark-grey name signs with white lettering
    return saturated or navy or black


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
