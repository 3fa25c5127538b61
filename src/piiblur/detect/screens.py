"""Screens: lit rectangles framed by a dark bezel (phones, monitors, TVs, LED boards).

No permissively licensed object detector with a screen class ships offline, so screens are found by
what makes them screens: an emitting, brighter-than-surroundings quadrilateral whose border (the
bezel or the device body) is markedly darker than its content, or a dark device-shaped rectangle
with lit content inside it.
"""

from __future__ import annotations

import cv2
import numpy as np

from piiblur.detect.base import Box, Detection, Scene
from piiblur.domain import PiiCategory

WORK_SIDE = 640
MIN_SIDE_FRACTION = 0.05


class ScreenDetector:
    name = "screens"
    categories = frozenset({PiiCategory.SCREENS})

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        small, scale = scene.downscaled(WORK_SIDE)
        value = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)[..., 2]
        found = []
        lit = [q for c in _bright_regions(value) if (q := _as_quad(c, value.shape)) and _has_dark_bezel(value, q)]
        devices = [q for c in _dark_regions(value) if (q := _as_quad(c, value.shape)) and _has_lit_content(value, q)]
        for x, y, w, h in lit + devices:
            box = Box(x / scale, y / scale, w / scale, h / scale).grown(0.12, scene.width, scene.height)
            found.append(Detection(PiiCategory.SCREENS, box, 0.5, f"{self.name}:lit-quad"))
        return found


def _bright_regions(value: np.ndarray) -> list[np.ndarray]:
    threshold = max(float(np.percentile(value, 97)), 170.0)
    bright = (value >= threshold).astype(np.uint8) * 255
    closed = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return list(contours)


def _dark_regions(value: np.ndarray) -> list[np.ndarray]:
    """Device bodies and bezels: regions much darker than the picture's median."""
    dark = (value < 0.5 * float(np.median(value))).astype(np.uint8) * 255
    closed = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return list(contours)


def _has_lit_content(value: np.ndarray, quad: tuple[int, int, int, int]) -> bool:
    """A dark device showing something: a good part of it is brighter than the scene around it."""
    x, y, w, h = quad
    inner = value[y : y + h, x : x + w]
    return bool((inner > max(1.4 * float(np.median(value)), 160.0)).mean() > 0.15)


def _as_quad(contour: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    x, y, w, h = cv2.boundingRect(contour)
    if x == 0 or y == 0 or x + w >= shape[1] or y + h >= shape[0]:
        return None  # cut by the frame: walls, sky and furniture, far more often than screens
    short, long_side = min(w, h), max(w, h)
    if short < MIN_SIDE_FRACTION * max(shape[:2]) or long_side > 0.6 * max(shape[:2]):
        return None
    rect = cv2.minAreaRect(contour)
    rect_area = rect[1][0] * rect[1][1]
    # The hull, not the contour: a dark body around a lit screen is a ring, yet a rectangle.
    hull_area = cv2.contourArea(cv2.convexHull(contour))
    if rect_area <= 0 or hull_area / rect_area < 0.75 or not 1.15 <= long_side / short <= 2.6:
        return None
    return x, y, w, h


def _has_dark_bezel(value: np.ndarray, quad: tuple[int, int, int, int]) -> bool:
    x, y, w, h = quad
    ring = max(2, int(0.15 * min(w, h)))
    outer = value[max(0, y - ring) : y + h + ring, max(0, x - ring) : x + w + ring].astype(np.float32)
    inner = value[y : y + h, x : x + w].astype(np.float32)
    ring_sum = outer.sum() - inner.sum()
    ring_count = outer.size - inner.size
    if ring_count <= 0:
        return False
    return bool(ring_sum / ring_count < 0.45 * float(inner.mean()))
