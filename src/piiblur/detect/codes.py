"""QR codes and barcodes: zxing-cpp (Apache-2.0) decodes, OpenCV's detectors locate.

Several passes, because each binarizer misses what another finds (glare, low contrast, print
screens): zxing with its local-average and fixed-threshold binarizers, then with a global histogram
also reporting codes it located but could not decode, then OpenCV's QR and 1D locators as a last
net. Overlapping finds are merged. A code need not be readable to be hidden: a damaged code still
carries data someone else may recover.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import zxingcpp

from piiblur.detect.base import Box, Detection, Scene
from piiblur.domain import PiiCategory

QUIET_ZONE = 0.15  # of the symbol's size, each side: ISO quiet zones are 4 modules on a 25-module QR
MATRIX_QR = {"QRCode", "MicroQRCode", "RMQRCode", "QRCodeModel1", "QRCodeModel2"}


def category_of(format_name: str) -> PiiCategory:
    return PiiCategory.QR_CODES if format_name in MATRIX_QR else PiiCategory.BARCODES


class CodeDetector:
    name = "codes"
    categories = frozenset({PiiCategory.QR_CODES, PiiCategory.BARCODES})
    rule_sources: frozenset[str] = frozenset()
    looks_in_regions = True

    def __init__(self) -> None:
        self._local = threading.local()  # OpenCV detectors are not thread-safe

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        return self.codes(scene)

    def codes(self, scene: Scene) -> list[Detection]:
        """Every code in the scene (in its regions, when it has some), searched once per scene
        (badges look for codes too)."""

        def search() -> list[Detection]:
            if scene.regions is None:
                return self._search(scene.pixels)
            found = []
            for region in scene.regions:
                x0, y0, x1, y1 = region.pixel_bounds(scene.width, scene.height)
                if x1 > x0 and y1 > y0:
                    found += [_moved(d, x0, y0) for d in self._search(scene.pixels[y0:y1, x0:x1])]
            return found

        return scene.memo("codes", search)

    def _search(self, pixels: np.ndarray) -> list[Detection]:
        """Codes in ``pixels``, boxes in its coordinates."""
        bgr = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2BGR)
        size = (bgr.shape[1], bgr.shape[0])
        found = self._zxing(bgr, size)
        return found + [d for d in self._opencv(bgr, size) if not _overlaps_any(d, found)]

    def _zxing(self, bgr: np.ndarray, size: tuple[int, int]) -> list[Detection]:
        found: list[Detection] = []
        passes = (
            (zxingcpp.Binarizer.LocalAverage, False),
            (zxingcpp.Binarizer.FixedThreshold, False),
            (zxingcpp.Binarizer.GlobalHistogram, True),
        )
        for binarizer, with_errors in passes:
            for code in zxingcpp.read_barcodes(bgr, binarizer=binarizer, return_errors=with_errors):
                if code.format == zxingcpp.BarcodeFormat.NONE:
                    continue
                name = code.format.name
                corners = [code.position.top_left, code.position.top_right]
                corners += [code.position.bottom_right, code.position.bottom_left]
                quad = np.array([[p.x, p.y] for p in corners], dtype=np.float32)
                # Read with errors, the symbol was still located by its own structure (finder
                # patterns, guard bars): nearly as sure a code, if not a readable one.
                score = 1.0 if code.valid else 0.9
                detection = Detection(category_of(name), _code_box(quad, name, size), score, "zxing")
                if not _overlaps_any(detection, found):
                    found.append(detection)
        return found

    def _opencv(self, bgr: np.ndarray, size: tuple[int, int]) -> list[Detection]:
        if not hasattr(self._local, "qr"):
            self._local.qr = cv2.QRCodeDetectorAruco()
            self._local.barcode = cv2.barcode.BarcodeDetector()
        found: list[Detection] = []
        ok, points = self._local.qr.detectMulti(bgr)
        if ok and points is not None:
            for quad in points:
                box = _code_box(np.asarray(quad, np.float32), "QRCode", size)
                found.append(Detection(PiiCategory.QR_CODES, box, 0.4, "opencv:qr"))
        ok, points = self._local.barcode.detectMulti(bgr)[:2]
        if ok and points is not None:
            grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            for quad in points:
                box = _code_box(np.asarray(quad, np.float32), "Linear", size)
                if _has_bars(grey, box):
                    found.append(Detection(PiiCategory.BARCODES, box, 0.4, "opencv:barcode"))
        return found


def _code_box(quad: np.ndarray, format_name: str, size: tuple[int, int]) -> Box:
    """Enclosing box, with a quiet-zone margin, inside a picture of ``size`` (width, height); 1D
    codes are reported as thin scan lines, so they are padded to a plausible bar height."""
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    w, h = float(x1 - x0), float(y1 - y0)
    if format_name not in MATRIX_QR and format_name not in ("DataMatrix", "Aztec", "MaxiCode", "PDF417"):
        long_side = max(w, h)
        if h < 0.3 * long_side and w >= h:
            pad = (0.3 * long_side - h) / 2
            y0, h = y0 - pad, h + 2 * pad
        elif w < 0.3 * long_side:
            pad = (0.3 * long_side - w) / 2
            x0, w = x0 - pad, w + 2 * pad
    return Box(float(x0), float(y0), w, h).grown(QUIET_ZONE, *size)


def _moved(detection: Detection, dx: int, dy: int) -> Detection:
    box = detection.box
    return Detection(detection.category, Box(box.x + dx, box.y + dy, box.w, box.h), detection.score, detection.detector)


MIN_BAR_EDGES = 30


def _has_bars(grey: np.ndarray, box: Box) -> bool:
    """A located but undecoded 1D code must show bars: many dark/light alternations along rows
    (or columns, for a vertical code). Round signs and text do not."""
    x0, y0 = int(box.x), int(box.y)
    crop = grey[y0 : y0 + int(box.h), x0 : x0 + int(box.w)].astype(np.float32)
    if crop.size == 0:
        return False
    centred = crop - crop.mean()
    across_rows = np.abs(np.diff(np.sign(centred), axis=1)).sum(axis=1) / 2
    across_cols = np.abs(np.diff(np.sign(centred), axis=0)).sum(axis=0) / 2
    return max(float(np.median(across_rows)), float(np.median(across_cols))) >= MIN_BAR_EDGES


def _overlaps_any(detection: Detection, others: list[Detection]) -> bool:
    return any(detection.box.overlaps(other.box, 0.5) for other in others)
