"""Screens: TVs, monitors, laptops and phones from the object model, and lit rectangles framed by
a dark bezel (LED boards, displays the model has no class for).

The object model (NanoDet, ``objects.py``) knows tv, laptop and cell phone; each such box is looked
at again by an ImageNet classifier (``imagenet.py``), and the source's score is the product of the two
(calibrated per source like every other). A laptop's box holds its keyboard too: the display is its
upper part.
The lit-rectangle rule (an emitting quadrilateral whose border is markedly darker than its content,
or a dark device-shaped rectangle with lit content) is a second source with a fixed score, which
the calibration keeps only if it finds screens the model misses without hiding too much else.
"""

from __future__ import annotations

import cv2
import numpy as np

from piiblur.detect.base import Box, Detection, Scene
from piiblur.detect.imagenet import ImageNetClassifier
from piiblur.detect.objects import ObjectKind, ObjectModel, SceneObject
from piiblur.domain import PiiCategory

WORK_SIDE = 640
MIN_SIDE_FRACTION = 0.05
LAPTOP_DISPLAY = 0.6  # of a laptop box, from its top: the lid (COCO's laptop boxes hold the keyboard)


class ScreenDetector:
    name = "screens"
    categories = frozenset({PiiCategory.SCREENS})
    rule_sources: frozenset[str] = frozenset({"screens:lit-quad"})
    looks_in_regions = False

    def __init__(self, objects: ObjectModel, classifier: ImageNetClassifier) -> None:
        self.objects, self.classifier = objects, classifier

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        devices = [o for o in self.objects.objects(scene) if o.kind is ObjectKind.SCREEN]
        # The whole device is classified (a laptop's keyboard says "laptop"), its display is hidden.
        likeness = self.classifier.screen_likeness(scene.pixels, [o.box for o in devices])
        found = [
            Detection(PiiCategory.SCREENS, _display(o), o.score * seen, "screens:nanodet")
            for o, seen in zip(devices, likeness, strict=True)
        ]
        return found + self._lit_rectangles(scene)

    def _lit_rectangles(self, scene: Scene) -> list[Detection]:
        small, scale = scene.downscaled(WORK_SIDE)
        value = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)[..., 2]
        found = []
        lit = [q for c in _bright_regions(value) if (q := _as_quad(c, value.shape)) and _has_dark_bezel(value, q)]
        devices = [q for c in _dark_regions(value) if (q := _as_quad(c, value.shape)) and _has_lit_content(value, q)]
        for x, y, w, h in lit + devices:
            box = Box(x / scale, y / scale, w / scale, h / scale).grown(0.12, scene.width, scene.height)
            found.append(Detection(PiiCategory.SCREENS, box, 0.5, f"{self.name}:lit-quad"))
        return found


def _display(device: SceneObject) -> Box:
    box = device.box
    if device.label == "laptop":
        return Box(box.x, box.y, box.w, box.h * LAPTOP_DISPLAY)
    return box


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
