"""Tattoos: ink on a person's skin. No tattoo model ships offline; the ink is found by a rule, and
only on people (``people.py``: person boxes and the person-segmentation mask).

Skin is found by its chroma (YCrCb), holes in it are filled, and inside the skin area the ink is
what is much darker than the surrounding skin or bluish-grey, in clusters large and textured enough
to be drawings or lettering rather than creases, veins or shadows. A cluster's score is how much of
it lies on a person (mean person support), so skin-coloured animals, food, wood and walls score
near zero and the calibrated threshold (``tattoos/tattoos:ink-on-skin``) drops them.
"""

from __future__ import annotations

import cv2
import numpy as np

from piiblur.detect.base import Box, Detection, Scene
from piiblur.detect.people import People
from piiblur.domain import PiiCategory

WORK_SIDE = 480
MIN_INK_FRACTION = 0.006  # of the image area
MIN_EDGE_DENSITY = 0.12
MIN_SKIN_AROUND = 0.6
MIN_SKIN_AROUND_AT_BORDER = 0.8
INK_JOIN = 25  # pixels at working scale: strokes of one drawing closer than this form one tattoo


class TattooDetector:
    name = "tattoos"
    categories = frozenset({PiiCategory.TATTOOS})
    rule_sources: frozenset[str] = frozenset()
    looks_in_regions = False

    def __init__(self, people: People) -> None:
        self.people = people

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        small, scale = scene.downscaled(WORK_SIDE)
        skin = _skin_area(small)
        if skin.sum() < 0.05 * skin.size:
            return []
        support = self.people.support(scene, WORK_SIDE)
        if not support.any():
            return []
        ink = _ink(small, skin)
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
            if _skin_around(labels == index, small) < needed:
                continue
            on_person = float(support[y : y + h, x : x + w][component].mean())
            box = Box(x / scale, y / scale, w / scale, h / scale).grown(0.1, scene.width, scene.height)
            found.append(Detection(PiiCategory.TATTOOS, box, on_person, f"{self.name}:ink-on-skin"))
        return found


def _touches_border(x: int, y: int, w: int, h: int, shape: tuple[int, ...]) -> bool:
    """Dark clusters cut by the frame are mostly clothing and shadow (measured on the development
    set), so they must be more clearly surrounded by skin to count."""
    return x == 0 or y == 0 or x + w >= shape[1] or y + h >= shape[0]


def _skin_around(component: np.ndarray, rgb: np.ndarray) -> float:
    """Share of skin in a band around the cluster: drawings on skin are surrounded by it, while
    creases and shadows border on background, hair or clothing."""
    band = cv2.dilate(component.astype(np.uint8), np.ones((21, 21), np.uint8)) > 0
    band &= ~component
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    skin = cv2.inRange(ycrcb, (40, 135, 85), (255, 180, 130)) > 0
    return float(skin[band].mean()) if band.any() else 0.0


def _skin_area(rgb: np.ndarray) -> np.ndarray:
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    skin = cv2.inRange(ycrcb, (40, 135, 85), (255, 180, 130))
    skin = cv2.morphologyEx(skin, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    # Ink interrupts the skin mask: close large holes so the tattoo lies inside the area.
    filled = cv2.morphologyEx(skin, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (41, 41)))
    return filled > 0


def _ink(rgb: np.ndarray, skin_area: np.ndarray) -> np.ndarray:
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    luma = ycrcb[..., 0].astype(np.float32)
    skin_pixels = cv2.inRange(ycrcb, (40, 135, 85), (255, 180, 130)) > 0
    reference = float(np.median(luma[skin_pixels])) if skin_pixels.any() else 128.0
    local = cv2.GaussianBlur(luma, (0, 0), 15)
    # Creases and shadows are darker skin and keep its red chroma; ink is darker *and* greyer.
    skin_cr = float(np.median(ycrcb[..., 1][skin_pixels])) if skin_pixels.any() else 150.0
    dark = (luma < 0.75 * np.minimum(local, reference)) & (ycrcb[..., 1] < skin_cr - 6)
    # Ink lies inside the skin, away from its outline (shadows between fingers, hair lines).
    interior = cv2.erode(skin_area.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    ink = (dark & interior).astype(np.uint8)
    return cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((INK_JOIN, INK_JOIN), np.uint8)) > 0
