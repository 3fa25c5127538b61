"""License plates: text lines that read like a plate, wherever they are, and plates on vehicles.

Three sources, each calibrated on its own:

- ``plates:line``: every plate-shaped OCR line of a short text block, or of any block on a vehicle
  (a plate is still a plate among a dealer's stickers), is read, and kept when it reads like a
  registration: 4 to 10 letters and digits (any script) with a digit, a vanity plate's
  capital-letter groups, or two stacked rows that together do (``plates:two-rows``). Lines of long
  blocks away from vehicles (paragraphs, posters, forms) are not read for plates: their codes and
  numbers read like plates, and reading them all costs more than the plates they might hold.
- ``plates:vehicle-line``: each vehicle the object model finds (``objects.py``) is looked at again
  enlarged, so that its plate is tens of pixels high rather than a few: the enlarged crops are
  packed into one mosaic and the line detector runs once on it.
- ``plates:ssd``: the same enlarged vehicles go through HyperLPR's plate detector
  (``plate_ssd.py``), which finds plates by their look where the characters are too blurred to read.

Scores are the reading's confidence (lines) or the plate detector's; the boxes are grown to cover
the plate's border and region strip.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from piiblur.detect.base import Box, Detection, RgbImage, Scene, around, pack_crops
from piiblur.detect.objects import ObjectKind, ObjectModel
from piiblur.detect.ocr import Ocr, TextLine
from piiblur.detect.plate_ssd import PlateSsd
from piiblur.detect.text import TextBlocks
from piiblur.domain import PiiCategory

MIN_ASPECT, MAX_ASPECT = 1.6, 8.0
MAX_BLOCK_LINES = 4  # plate rows, a US state name and slogan, maybe a bumper sticker; not a paragraph
VANITY = re.compile(r"[A-Z]{1,4}(?: [A-Z]{1,4}){1,2}")
SEPARATORS = " -·.:"
TINY_HEIGHT = 10  # pixels: a distant plate, seen as a line of smudges
TINY_ASPECT = (2.5, 6.0)
VEHICLE_FLOOR = 0.3  # object score from which a vehicle is looked at again (the calibration decides the plates)
VEHICLE_MARGIN = 0.1  # of the vehicle box on every side: plates sit at its edge
LOOK_WIDTH = 400  # a vehicle is looked at again this wide (its plate then some 60 px wide)...
MAX_ZOOM = 8.0  # ...enlarged at most this much
MAX_VEHICLES = 24  # the largest ones first: beyond that, a street scene's far cars are specks
OCR_CANVAS = 960  # the line detector's own working size: the mosaic is not resized again
SSD_CELL = 256  # each vehicle in a quarter of the plate detector's 512 x 512 input
MAX_PLATE_SHARE = (0.6, 0.4)  # a plate is at most this share of its vehicle's width and height


def looks_like_plate(text: str, tiny: bool = False) -> bool:
    """4-10 letters and digits with a digit among them, or a vanity plate (capital-letter groups
    such as "FZ RULZ"); a plate under ``TINY_HEIGHT`` pixels reads too poorly for either test,
    so three characters are enough there. Letters of any script count (plates in Cyrillic, Arabic,
    Chinese or Korean carry them)."""
    if VANITY.fullmatch(text.strip()) and 4 <= sum(c.isalpha() for c in text) <= 8:
        return True
    cleaned = "".join(c for c in text.upper() if c not in SEPARATORS)
    characters = [c for c in cleaned if c.isalnum()]
    if not cleaned or len(characters) < 0.75 * len(cleaned) or len(characters) > 10:
        return False
    if tiny:
        return len(characters) >= 3
    return len(characters) >= 4 and any(c.isdigit() for c in characters)


def plate_shaped(line: TextLine, scene_height: float) -> bool:
    aspect = line.length / max(line.height, 1.0)
    return MIN_ASPECT <= aspect <= MAX_ASPECT and line.height < 0.25 * scene_height


class LicensePlateDetector:
    name = "plates"
    categories = frozenset({PiiCategory.LICENSE_PLATES})
    rule_sources: frozenset[str] = frozenset()
    looks_in_regions = False

    def __init__(self, ocr: Ocr, objects: ObjectModel, ssd: PlateSsd) -> None:
        self.ocr, self.objects, self.ssd = ocr, objects, ssd

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        vehicles = self._vehicles(scene)
        return self._plate_lines(scene, vehicles) + self._vehicle_looks(scene, vehicles)

    def _vehicles(self, scene: Scene) -> list[Box]:
        found = [
            o.box for o in self.objects.objects(scene) if o.kind is ObjectKind.VEHICLE and o.score >= VEHICLE_FLOOR
        ]
        found.sort(key=lambda box: -box.area)
        unique: list[Box] = []
        for box in found:  # a car is often also a truck: one look each
            if not any(box.overlaps(kept, 0.8) for kept in unique):
                unique.append(box)
        return unique[:MAX_VEHICLES]

    def _plate_lines(self, scene: Scene, vehicles: list[Box]) -> list[Detection]:
        blocks = TextBlocks.of(scene, self.ocr).blocks
        candidates = [
            line
            for block in blocks
            for line in block
            if plate_shaped(line, scene.height) and (len(block) <= MAX_BLOCK_LINES or _on_a_vehicle(line.box, vehicles))
        ]
        found = _plates_among(candidates, self.ocr.readings(scene, candidates), scene, "plates:line")
        return found + self._two_row_plates(scene, blocks)

    def _two_row_plates(self, scene: Scene, blocks: list[list[TextLine]]) -> list[Detection]:
        """Plates of two stacked rows (motorcycles, many Asian and some European plates): each row
        alone reads as too little, together they read as a plate."""
        pairs = [
            (a, b) for block in blocks if len(block) <= MAX_BLOCK_LINES for a in block for b in block if _stacked(a, b)
        ]
        rows = list({id(line): line for pair in pairs for line in pair}.values())
        readings = dict(zip(map(id, rows), self.ocr.readings(scene, rows), strict=True))
        found = []
        for upper, lower in pairs:
            (top, top_confidence), (bottom, bottom_confidence) = readings[id(upper)], readings[id(lower)]
            if looks_like_plate(top + bottom) and not looks_like_plate(top) and not looks_like_plate(bottom):
                box = around([upper.box, lower.box])
                score = min(top_confidence, bottom_confidence)
                found.append(Detection(PiiCategory.LICENSE_PLATES, _plate_box(box, scene), score, "plates:two-rows"))
        return found

    def _vehicle_looks(self, scene: Scene, vehicles: list[Box]) -> list[Detection]:
        """Vehicles the picture's own look saw narrower than ``LOOK_WIDTH`` (it sees the picture at
        the line detector's working size), looked at again at that width."""
        first_look = self.ocr.limit_side_len / max(scene.width, scene.height)
        zones = [v.grown(VEHICLE_MARGIN, scene.width, scene.height) for v in vehicles]
        zones = [z for z in zones if z.w >= 8 and z.h >= 8 and z.w * first_look < LOOK_WIDTH]
        if not zones:
            return []
        crops = [_crop(scene.pixels, zone) for zone in zones]
        return self._lines_on_vehicles(scene, zones, crops) + self._ssd_on_vehicles(scene, zones, crops)

    def _lines_on_vehicles(self, scene: Scene, zones: list[Box], crops: list[RgbImage]) -> list[Detection]:
        zooms = [min(MAX_ZOOM, max(1.0, LOOK_WIDTH / zone.w)) for zone in zones]
        enlarged = [_resized(crop, zoom) for crop, zoom in zip(crops, zooms, strict=True)]
        found = []
        for canvas, placements in pack_crops(enlarged, OCR_CANVAS):
            lines = self.ocr.find_lines_at_size(canvas)
            readings = self.ocr.read(canvas, lines)
            for line, (text, confidence) in zip(lines, readings, strict=True):
                placed = _placement_of(line.box, placements)
                if placed is None:
                    continue
                index, (x, y) = placed
                zoom, zone = zooms[index], zones[index]
                local = line.box
                box = Box(zone.x + (local.x - x) / zoom, zone.y + (local.y - y) / zoom, local.w / zoom, local.h / zoom)
                aspect = line.length / max(line.height, 1.0)
                if MIN_ASPECT <= aspect <= MAX_ASPECT and looks_like_plate(text, tiny=box.h < TINY_HEIGHT):
                    found.append(
                        Detection(PiiCategory.LICENSE_PLATES, _plate_box(box, scene), confidence, "plates:vehicle-line")
                    )
        return found

    def _ssd_on_vehicles(self, scene: Scene, zones: list[Box], crops: list[RgbImage]) -> list[Detection]:
        cells = [
            np.asarray(cv2.resize(crop, (SSD_CELL, SSD_CELL), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
            for crop in crops
        ]
        found = []
        for canvas, placements in pack_crops(cells, 2 * SSD_CELL):
            square = np.zeros((2 * SSD_CELL, 2 * SSD_CELL, 3), np.uint8)
            square[: canvas.shape[0], : canvas.shape[1]] = canvas
            for local, score in self.ssd.find(square):
                placed = _placement_of(local, placements)
                if placed is None:
                    continue
                index, (x, y) = placed
                zone = zones[index]
                sx, sy = zone.w / SSD_CELL, zone.h / SSD_CELL
                box = Box(zone.x + (local.x - x) * sx, zone.y + (local.y - y) * sy, local.w * sx, local.h * sy)
                if _plate_sized(box, zone):
                    grown = box.grown(0.1, scene.width, scene.height)
                    found.append(Detection(PiiCategory.LICENSE_PLATES, grown, score, "plates:ssd"))
        return found


def _plates_among(
    lines: list[TextLine], readings: list[tuple[str, float]], scene: Scene, source: str
) -> list[Detection]:
    return [
        Detection(PiiCategory.LICENSE_PLATES, _plate_box(line.box, scene), confidence, source)
        for line, (text, confidence) in zip(lines, readings, strict=True)
        if looks_like_plate(text, tiny=_tiny_plate_shape(line))
    ]


def _plate_sized(box: Box, vehicle: Box) -> bool:
    """A plate is wider than tall and a small part of its vehicle (the detector also answers with
    boxes the size of a grille or a whole car at low scores)."""
    aspect = box.w / max(box.h, 1.0)
    return (
        MIN_ASPECT <= aspect <= MAX_ASPECT
        and box.w <= MAX_PLATE_SHARE[0] * vehicle.w
        and box.h <= MAX_PLATE_SHARE[1] * vehicle.h
    )


def _on_a_vehicle(box: Box, vehicles: list[Box]) -> bool:
    return any(vehicle.intersection_area(box) > 0.8 * box.area for vehicle in vehicles)


def _stacked(upper: TextLine, lower: TextLine) -> bool:
    """``lower`` directly under ``upper``, about as wide, the pair plate-shaped."""
    a, b = upper.box, lower.box
    if upper is lower or b.y <= a.y:
        return False
    gap = b.y - (a.y + a.h)
    overlap = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    pair = around([a, b])
    return gap < 0.6 * max(a.h, b.h) and overlap > 0.5 * min(a.w, b.w) and 1.0 <= pair.w / max(pair.h, 1.0) <= 3.0


def _crop(pixels: RgbImage, zone: Box) -> RgbImage:
    x0, y0 = int(zone.x), int(zone.y)
    return np.ascontiguousarray(pixels[y0 : y0 + max(1, int(zone.h)), x0 : x0 + max(1, int(zone.w))])


def _resized(crop: RgbImage, zoom: float) -> RgbImage:
    if zoom == 1.0:
        return crop
    size = (max(1, round(crop.shape[1] * zoom)), max(1, round(crop.shape[0] * zoom)))
    return np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)


def _placement_of(box: Box, placements: list[tuple[int, int, int, int, int]]) -> tuple[int, tuple[int, int]] | None:
    """Which packed crop (index, its top-left in the canvas) holds the centre of ``box``."""
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    for index, x, y, w, h in placements:
        if x <= cx < x + w and y <= cy < y + h:
            return index, (x, y)
    return None


def _tiny_plate_shape(line: TextLine) -> bool:
    aspect = line.length / max(line.height, 1.0)
    return line.height < TINY_HEIGHT and TINY_ASPECT[0] <= aspect <= TINY_ASPECT[1]


def _plate_box(box: Box, scene: Scene) -> Box:
    grown = Box(box.x - 0.2 * box.h, box.y - 0.45 * box.h, box.w + 0.4 * box.h, box.h * 1.9)
    return grown.grown(0.0, scene.width, scene.height)
