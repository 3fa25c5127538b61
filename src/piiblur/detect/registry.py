"""Which detector families serve which categories, and running each at most once per image."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from piiblur.detect.base import Box, Detection, Detector, RgbImage, Scene, around
from piiblur.detect.calibration import UNFILTERED, Calibration, shipped_calibration
from piiblur.detect.codes import CodeDetector
from piiblur.detect.documents import DocumentDetector
from piiblur.detect.faces import CenterFaceDetector
from piiblur.detect.imagenet import ImageNetClassifier
from piiblur.detect.objects import ObjectModel
from piiblur.detect.ocr import Ocr
from piiblur.detect.onnx import CPU_ONLY, Inference
from piiblur.detect.people import People
from piiblur.detect.plate_ssd import PlateSsd
from piiblur.detect.plates import LicensePlateDetector
from piiblur.detect.poses import PoseHeadDetector
from piiblur.detect.screens import ScreenDetector
from piiblur.detect.signs import StreetSignDetector
from piiblur.detect.tattoos import TattooDetector
from piiblur.detect.text import WritingDetector
from piiblur.domain import PiiCategory
from piiblur.profiling import stage


class UnsupportedCategoryError(ValueError):
    """No installed detector can find a requested category."""


class Look(NamedTuple):
    """What one look at a picture found: the detections (to hide), and where it was unsure."""

    detections: list[Detection]
    unsure: list[Box]


class DetectionEngine:
    """Runs the detector families needed for a set of categories.

    Families are shared by categories (one text detector serves writing, signs and plates), so the
    engine groups the request by family first: each family runs once per image, whatever the
    number of categories it serves.
    """

    def __init__(self, detectors: Sequence[Detector], calibration: Calibration = UNFILTERED) -> None:
        self.detectors = list(detectors)
        self.calibration = calibration

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
        """What ``image`` shows of ``categories``."""
        return self.look(image, categories).detections

    def look(
        self,
        image: RgbImage,
        categories: Iterable[PiiCategory],
        regions: Sequence[Box] | None = None,
        unsure_within: float = 0.0,
    ) -> Look:
        """``detect``, for a video keyframe: with ``regions`` (see ``Scene``), the families that
        can look there only do, and report nothing outside them; with ``unsure_within``, the
        region families' candidates that missed their threshold by less than that are reported
        as unsure, so that the next keyframe looks at them again."""
        height, width = image.shape[:2]
        candidates = self.candidates(image, categories, regions)
        detections = self.finalize(candidates, self.calibration, width, height)
        if not unsure_within:
            return Look(detections, [])
        in_regions = {d.name for d in self.detectors if d.looks_in_regions}
        unsure = [
            d.box
            for d in candidates
            if d.detector in in_regions and not self.calibration.keeps(d) and self.calibration.keeps(d, unsure_within)
        ]
        return Look(detections, unsure)

    def looks_in_regions(self, categories: Iterable[PiiCategory]) -> bool:
        """Whether any family serving ``categories`` saves work when given regions."""
        return any(d.looks_in_regions for d in self.detectors_for(categories))

    def candidates(
        self, image: RgbImage, categories: Iterable[PiiCategory], regions: Sequence[Box] | None = None
    ) -> list[Detection]:
        """Everything the families report above their floors, before calibration."""
        wanted = frozenset(categories)
        self.check_supported(wanted)
        scene = Scene(image, regions)
        found: list[Detection] = []
        for detector in self.detectors_for(wanted):
            with stage(f"detect: {detector.name}"):
                found.extend(d for d in detector.detect(scene, wanted & detector.categories) if d.category in wanted)
        return found

    @property
    def rule_sources(self) -> frozenset[str]:
        return frozenset(source for d in self.detectors for source in d.rule_sources)

    def finalize(
        self, candidates: list[Detection], calibration: Calibration, width: int, height: int
    ) -> list[Detection]:
        """The candidates that reach their calibrated thresholds, rule-based ones no larger than the
        calibration allows, one detection per object."""
        rules = self.rule_sources
        kept = [
            d
            for d in candidates
            if calibration.keeps(d) and (d.detector not in rules or calibration.rule_share_allowed(d, width, height))
        ]
        return merge_duplicates(kept)


# Overlap, as a share of the smaller box, that makes two finds of one category one object: found
# by two families (a head by the face and the pose model), half is enough; by one family, the
# smaller must lie nearly whole inside the other (a second, weaker face peak inside a face),
# since one model's neighbouring boxes are usually neighbouring objects (heads in a crowd).
SAME_OBJECT_ACROSS_FAMILIES = 0.5
SAME_OBJECT_WITHIN_FAMILY = 0.8


def merge_duplicates(found: list[Detection]) -> list[Detection]:
    """One object found twice becomes one detection, so counts stay true. Two families' finds keep
    the surer one's box (the face model's head, not the pose model's coarser estimate of it); one
    family's nested finds become the box around both."""
    merged: list[Detection] = []
    for detection in sorted(found, key=lambda d: -d.score):
        for index, kept in enumerate(merged):
            same_family = kept.detector == detection.detector
            share = SAME_OBJECT_WITHIN_FAMILY if same_family else SAME_OBJECT_ACROSS_FAMILIES
            if kept.category is detection.category and kept.box.overlaps(detection.box, share):
                if same_family:
                    box = around([kept.box, detection.box])
                    merged[index] = Detection(kept.category, box, kept.score, kept.detector)
                break
        else:
            merged.append(detection)
    return merged


_default_engine: DetectionEngine | None = None
_default_lock = threading.Lock()


def build_engine(inference: Inference = CPU_ONLY, calibration: Calibration | None = None) -> DetectionEngine:
    """Every family, sharing the models they have in common (one OCR, one object detector)."""
    calibration = calibration or shipped_calibration()
    ocr = Ocr(inference)
    codes = CodeDetector()
    objects = ObjectModel(inference)
    pose_heads = PoseHeadDetector(inference)
    return DetectionEngine(
        [
            CenterFaceDetector(inference=inference, growth=calibration.head),
            pose_heads,
            WritingDetector(ocr),
            LicensePlateDetector(ocr, objects, PlateSsd(inference)),
            codes,
            DocumentDetector(ocr, codes),
            StreetSignDetector(ocr, objects),
            ScreenDetector(objects, ImageNetClassifier(inference)),
            TattooDetector(People(objects, inference), pose_heads, calibration),
        ],
        calibration,
    )


def default_engine(threads: int = 0, providers: Sequence[str] = ()) -> DetectionEngine:
    """The process-wide engine: detectors (and so models) are created once and shared; each
    model loads when a request first needs it (``warm_up`` loads them all). ``threads`` and
    ``providers`` (``Inference.of``) count only for the call that creates it."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = build_engine(Inference.of(threads, providers))
        return _default_engine
