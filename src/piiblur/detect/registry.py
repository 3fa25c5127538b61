"""Which detector families serve which categories, and running each at most once per image."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

from piiblur.detect.base import Box, Detection, Detector, RgbImage, Scene
from piiblur.detect.codes import CodeDetector
from piiblur.detect.documents import DocumentDetector
from piiblur.detect.faces import CenterFaceDetector
from piiblur.detect.ocr import Ocr
from piiblur.detect.plates import LicensePlateDetector
from piiblur.detect.poses import PoseHeadDetector
from piiblur.detect.screens import ScreenDetector
from piiblur.detect.signs import StreetSignDetector
from piiblur.detect.tattoos import TattooDetector
from piiblur.detect.text import WritingDetector
from piiblur.domain import PiiCategory


class UnsupportedCategoryError(ValueError):
    """No installed detector can find a requested category."""


class DetectionEngine:
    """Runs the detector families needed for a set of categories.

    Families are shared by categories (one text detector serves writing, signs and plates), so the
    engine groups the request by family first: each family runs once per image, whatever the
    number of categories it serves.
    """

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors = list(detectors)

    @property
    def supported_categories(self) -> frozenset[PiiCategory]:
        return frozenset(c for d in self.detectors for c in d.categories)

    def check_supported(self, categories: Iterable[PiiCategory]) -> None:
        missing = [c.value for c in categories if c not in self.supported_categories]
        if missing:
            raise UnsupportedCategoryError(f"No detector installed for: {', '.join(missing)}")

    def detectors_for(self, categories: Iterable[PiiCategory]) -> list[Detector]:
        wanted = set(categories)
        return [d for d in self.detectors if d.categories & wanted]

    def warm_up(self) -> None:
        """Load every model now (one tiny inference each) so the first real request is not slow."""
        blank = np.zeros((64, 64, 3), dtype=np.uint8)
        for detector in self.detectors:
            detector.detect(Scene(blank), detector.categories)

    def detect(self, image: RgbImage, categories: Iterable[PiiCategory]) -> list[Detection]:
        wanted = frozenset(categories)
        self.check_supported(wanted)
        scene = Scene(image)
        found: list[Detection] = []
        for detector in self.detectors_for(wanted):
            found.extend(d for d in detector.detect(scene, wanted & detector.categories) if d.category in wanted)
        return merge_duplicates(found)


# Overlap, as a share of the smaller box, that makes two finds of one category one object: found
# by two families (a head by the face and the pose model), half is enough; by one family, the
# smaller must lie nearly whole inside the other (a second, weaker face peak inside a face),
# since one model's neighbouring boxes are usually neighbouring objects (heads in a crowd).
SAME_OBJECT_ACROSS_FAMILIES = 0.5
SAME_OBJECT_WITHIN_FAMILY = 0.8


def merge_duplicates(found: list[Detection]) -> list[Detection]:
    """One object found twice becomes one detection covering both boxes, so counts stay true
    and nothing hidden shrinks."""
    merged: list[Detection] = []
    for detection in sorted(found, key=lambda d: -d.score):
        for index, kept in enumerate(merged):
            share = SAME_OBJECT_WITHIN_FAMILY if kept.detector == detection.detector else SAME_OBJECT_ACROSS_FAMILIES
            if kept.category is detection.category and kept.box.overlaps(detection.box, share):
                merged[index] = Detection(kept.category, _union(kept.box, detection.box), kept.score, kept.detector)
                break
        else:
            merged.append(detection)
    return merged


def _union(a: Box, b: Box) -> Box:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    return Box(x0, y0, max(a.x + a.w, b.x + b.w) - x0, max(a.y + a.h, b.y + b.h) - y0)


_default_engine: DetectionEngine | None = None
_default_lock = threading.Lock()


def default_engine(threads: int = 0) -> DetectionEngine:
    """The process-wide engine: detectors (and so models) are created once and shared."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            ocr = Ocr(threads=threads)
            codes = CodeDetector()
            _default_engine = DetectionEngine(
                [
                    CenterFaceDetector(threads=threads),
                    PoseHeadDetector(threads=threads),
                    WritingDetector(ocr),
                    LicensePlateDetector(ocr),
                    codes,
                    DocumentDetector(ocr, codes),
                    StreetSignDetector(ocr),
                    ScreenDetector(),
                    TattooDetector(),
                ]
            )
        return _default_engine
