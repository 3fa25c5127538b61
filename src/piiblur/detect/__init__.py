"""Detectors: image in, ``Detection``s out. Knows nothing of HTTP, databases or storage.

``registry.DetectionEngine`` is the entry point: it maps the contract's categories to the detector
families that can find them and runs each family at most once per image.
"""

from piiblur.detect.base import Box, Detection, Detector
from piiblur.detect.registry import DetectionEngine, Look, UnsupportedCategoryError, default_engine

__all__ = ["Box", "Detection", "DetectionEngine", "Detector", "Look", "UnsupportedCategoryError", "default_engine"]
