"""The one small interface every detector family implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from piiblur.domain import PiiCategory
from piiblur.profiling import stage

RgbImage = npt.NDArray[np.uint8]
"""An H x W x 3 array, RGB channel order, uint8."""

T = TypeVar("T")


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels of the image it was found in."""

    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)

    def grown(self, fraction: float, image_width: int, image_height: int) -> Box:
        """Grow by ``fraction`` of the size on every side, clipped to the image (a box wholly
        outside it, such as one carried along with the camera's move, comes back empty)."""
        dx, dy = self.w * fraction, self.h * fraction
        x0 = min(max(0.0, self.x - dx), float(image_width))
        y0 = min(max(0.0, self.y - dy), float(image_height))
        x1, y1 = min(float(image_width), self.x + self.w + dx), min(float(image_height), self.y + self.h + dy)
        return Box(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))

    def intersection_area(self, other: Box) -> float:
        ix = min(self.x + self.w, other.x + other.w) - max(self.x, other.x)
        iy = min(self.y + self.h, other.y + other.h) - max(self.y, other.y)
        return ix * iy if ix > 0 and iy > 0 else 0.0

    def overlaps(self, other: Box, fraction: float) -> bool:
        """Whether the overlap exceeds ``fraction`` of the smaller box."""
        return self.intersection_area(other) > fraction * min(self.area, other.area)

    def pixel_bounds(self, image_width: int, image_height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the whole pixels the box touches, inside the image (may be empty)."""
        x0, y0 = max(0, int(self.x)), max(0, int(self.y))
        x1 = min(image_width, int(np.ceil(self.x + self.w)))
        y1 = min(image_height, int(np.ceil(self.y + self.h)))
        return x0, y0, x1, y1

    def as_list(self) -> list[float]:
        return [round(self.x, 1), round(self.y, 1), round(self.w, 1), round(self.h, 1)]


@dataclass(frozen=True)
class Detection:
    category: PiiCategory
    box: Box
    score: float
    detector: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"category": self.category.value, "box": self.box.as_list(), "score": round(self.score, 3)}


def merged_boxes(boxes: Sequence[Box]) -> list[Box]:
    """Overlapping boxes replaced by the box around them, until none overlap: each part of the
    frame is looked at once, and an object across two regions is seen whole."""
    pending = list(boxes)
    done: list[Box] = []
    while pending:
        box = pending.pop()
        overlapping = [other for other in done if other.intersection_area(box) > 0]
        if not overlapping:
            done.append(box)
            continue
        done = [other for other in done if other.intersection_area(box) == 0]
        pending.append(around([box, *overlapping]))
    return done


def around(boxes: Sequence[Box]) -> Box:
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    x1, y1 = max(b.x + b.w for b in boxes), max(b.y + b.h for b in boxes)
    return Box(x0, y0, x1 - x0, y1 - y0)


def tile_origins(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Top-left corners of ``tile``-sized squares covering a ``width`` x ``height`` picture, each
    overlapping its neighbours by ``overlap`` pixels: an object smaller than the overlap lies
    whole inside at least one tile (tiles at the right and bottom edges may be smaller)."""
    step = tile - overlap
    xs = range(0, max(1, width - overlap), step)
    ys = range(0, max(1, height - overlap), step)
    return [(x, y) for y in ys for x in xs]


Placement = tuple[int, int, int, int, int]
"""(index of the crop, x, y, width, height) of a crop packed into a canvas."""


def pack_crops(crops: list[RgbImage], side: int) -> list[tuple[RgbImage, list[Placement]]]:
    """Pack crops (tallest first, row by row) into canvases ``side`` pixels wide and at most as
    high, so that one model run sees many small regions at the scale chosen for each; crops that
    do not fit a canvas are left out. Returns each canvas (as high as its rows) and its placements."""
    order = sorted(
        (i for i, c in enumerate(crops) if c.shape[0] <= side and c.shape[1] <= side), key=lambda i: -crops[i].shape[0]
    )
    canvases: list[list[Placement]] = []
    x = y = row_height = 0
    for index in order:
        height, width = crops[index].shape[:2]
        if x + width > side:
            x, y, row_height = 0, y + row_height, 0
        if not canvases or y + height > side:
            canvases.append([])
            x = y = row_height = 0
        canvases[-1].append((index, x, y, width, height))
        x, row_height = x + width, max(row_height, height)
    packed = []
    for placements in canvases:
        canvas = np.zeros((max(y + h for _, _, y, _, h in placements), side, 3), np.uint8)
        for index, px, py, w, h in placements:
            canvas[py : py + h, px : px + w] = crops[index]
        packed.append((canvas, placements))
    return packed


class Scene:
    """One image under analysis, and the model outputs that several detector families share.

    Text lines, for instance, are found once and then read by the writing, sign, plate, document
    and card detectors alike: ``memo`` computes such a value on first request and keeps it for
    the other families (as Presidio shares its NLP artifacts between recognizers).
    """

    def __init__(self, pixels: RgbImage, regions: Sequence[Box] | None = None) -> None:
        """``regions``: where the picture may hold something its caller does not know of yet
        (in a video, the tracked objects and whatever changed since the last look); a family
        with ``looks_in_regions`` looks only there, the others look at the whole picture anyway.
        None: look everywhere."""
        self.pixels = pixels
        self.regions = list(regions) if regions is not None else None
        self.height, self.width = int(pixels.shape[0]), int(pixels.shape[1])
        self._memo: dict[str, Any] = {}

    def downscaled(self, max_side: int) -> tuple[RgbImage, float]:
        """The picture shrunk to at most ``max_side`` pixels (for cheap colour and shape work),
        and the scale applied; computed once per size."""

        def shrink() -> tuple[RgbImage, float]:
            scale = min(1.0, max_side / max(self.width, self.height))
            if scale == 1.0:
                return self.pixels, 1.0
            size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
            return np.asarray(cv2.resize(self.pixels, size, interpolation=cv2.INTER_AREA), dtype=np.uint8), scale

        return self.memo(f"downscaled:{max_side}", shrink)

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        if key not in self._memo:
            with stage(f"shared: {key.split(':', maxsplit=1)[0]}"):
                self._memo[key] = compute()
        value: T = self._memo[key]
        return value


class Detector(Protocol):
    """A detector family: one model or library that can find one or more categories.

    Implementations load their model lazily on first use and keep it for the process, so a
    detector object is cheap to create and safe to share between threads.
    """

    name: str
    categories: frozenset[PiiCategory]
    rule_sources: frozenset[str]
    """Detector names of this family's findings that come from a rule rather than a model: their
    boxes may not cover more of the frame than the calibration allows (a wall is not a sign)."""
    looks_in_regions: bool
    """Whether the family can look at ``Scene.regions`` only (and does, when there are some):
    the cost of a video keyframe then follows what moves, not the frame size."""

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        """Find the ``wanted`` categories among those this family serves (it may skip work for
        the others); results of other categories are dropped by the engine anyway."""
        ...
