"""Finding the flat surface (paper, card, plastic, sign panel) that a found object sits on.

Text lines and codes are small parts of the thing that must be hidden: a whole receipt, a whole
badge. The surface around them is usually one colour; flood-filling that colour outwards from
just outside the object's box gives the surface's extent.
"""

from __future__ import annotations

import cv2
import numpy as np

from piiblur.detect.base import Box, Scene

WORK_SIDE = 480


def panel_around(scene: Scene, seed: Box, tolerance: int = 14, max_growth: float = 12.0) -> Box | None:
    """The uniform region enclosing ``seed``, or None when it leaks into the whole picture or
    grows more than ``max_growth`` times the seed's area (then it is background, not a panel)."""
    small, scale = _work_image(scene)
    h, w = small.shape[:2]
    sx0, sy0 = int(seed.x * scale), int(seed.y * scale)
    sx1, sy1 = int((seed.x + seed.w) * scale), int((seed.y + seed.h) * scale)
    mask = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
    diff = (tolerance,) * 3
    # Seeds on the seed box's own edge: boxes of text and codes already include their margin
    # (the paper or quiet zone around them), which is the surface's colour.
    for x, y in _ring_points(sx0 + 1, sy0 + 1, sx1 - 2, sy1 - 2, w, h):
        if mask[y + 1, x + 1] == 0:
            cv2.floodFill(small, mask, (x, y), (0, 0, 0), diff, diff, flags)
    filled = mask[1:-1, 1:-1]
    filled[max(0, sy0) : sy1, max(0, sx0) : sx1] = 255
    ys, xs = np.nonzero(filled)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    area = (x1 - x0) * (y1 - y0)
    seed_area = max(1, (sx1 - sx0) * (sy1 - sy0))
    if area > 0.9 * w * h or area > max_growth * seed_area:
        return None
    return Box(x0 / scale, y0 / scale, (x1 - x0) / scale, (y1 - y0) / scale)


def _work_image(scene: Scene) -> tuple[np.ndarray, float]:
    def build() -> tuple[np.ndarray, float]:
        scale = min(1.0, WORK_SIDE / max(scene.width, scene.height))
        size = (max(1, round(scene.width * scale)), max(1, round(scene.height * scale)))
        small = cv2.resize(scene.pixels, size, interpolation=cv2.INTER_AREA)
        return cv2.medianBlur(small, 5), scale

    return scene.memo("panels.work_image", build)


def _ring_points(x0: int, y0: int, x1: int, y1: int, w: int, h: int) -> list[tuple[int, int]]:
    xs = np.linspace(x0, x1, 7).astype(int)
    ys = np.linspace(y0, y1, 5).astype(int)
    points = [(x, y0) for x in xs] + [(x, y1) for x in xs] + [(x0, y) for y in ys] + [(x1, y) for y in ys]
    return [(x, y) for x, y in points if 0 <= x < w and 0 <= y < h]
