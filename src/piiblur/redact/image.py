"""The image pipeline: decode, detect, obfuscate, encode in the input's own format, no metadata.

EXIF orientation is applied to the pixels before detection (so boxes match what viewers show) and
then dropped with every other metadata block: EXIF (GPS, camera serials), XMP, IPTC, comments and
PNG text chunks never reach the output. Only the ICC colour profile is kept, so colours stay right.
JPEGs are re-encoded with the input's own quantisation tables and subsampling, so quality matches
the input; PNG output is lossless, so pixels outside the hidden regions are bit-for-bit the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin

from piiblur.detect import Detection, DetectionEngine
from piiblur.detect.base import RgbImage
from piiblur.domain import ObfuscationType, PiiCategory
from piiblur.redact.obfuscate import NO_FIXED_REGIONS, FixedRegions, obfuscate


@dataclass(frozen=True)
class ImageRedaction:
    width: int
    height: int
    detections: list[Detection]


def load_rgb(path: Path) -> Image.Image:
    """Decode an image upright (EXIF orientation applied)."""
    with Image.open(path) as image:
        image.load()
        return ImageOps.exif_transpose(image)


def detect_image(
    path: Path,
    categories: Sequence[PiiCategory],
    engine: DetectionEngine,
    fixed: FixedRegions = NO_FIXED_REGIONS,
) -> ImageRedaction:
    image = load_rgb(path)
    pixels = np.asarray(image.convert("RGB"))
    detections = [d for d in engine.detect(pixels, categories) if fixed.keeps(d)]
    return ImageRedaction(image.width, image.height, detections)


def redact_image(
    source: Path,
    target: Path,
    categories: Sequence[PiiCategory],
    obfuscation: ObfuscationType,
    engine: DetectionEngine,
    fixed: FixedRegions = NO_FIXED_REGIONS,
) -> ImageRedaction:
    """Detect and hide. Detections wholly inside ``fixed.never_hide`` are neither hidden nor reported."""
    upright, rgb = load_upright(source)
    detections = [d for d in engine.detect(rgb, categories) if fixed.keeps(d)]
    write_redacted_image(source, target, detections, obfuscation, fixed, (upright, rgb))
    return ImageRedaction(upright.width, upright.height, detections)


def load_upright(source: Path) -> tuple[Image.Image, RgbImage]:
    """The image upright (EXIF orientation applied), and its RGB pixels."""
    with Image.open(source) as original:
        original.load()
        upright = ImageOps.exif_transpose(original)
    return upright, np.asarray(upright.convert("RGB"))


def write_redacted_image(
    source: Path,
    target: Path,
    detections: Sequence[Detection],
    obfuscation: ObfuscationType,
    fixed: FixedRegions = NO_FIXED_REGIONS,
    loaded: tuple[Image.Image, RgbImage] | None = None,
) -> None:
    """Hide ``detections`` and write the result in the input's format, quality and mode, without
    metadata (``loaded``: ``load_upright(source)``, when the caller has it already)."""
    with Image.open(source) as original:
        file_format = original.format or "PNG"
        encoder_options = _encoder_options(original, source)
    upright, rgb = loaded or load_upright(source)
    hidden = Image.fromarray(obfuscate(rgb, detections, obfuscation, fixed))
    _restore_mode(hidden, upright).save(target, format=file_format, **encoder_options)


def _restore_mode(hidden: Image.Image, upright: Image.Image) -> Image.Image:
    """Give back the input's alpha channel or greyscale, which detection worked without."""
    if upright.mode in ("L", "I;16", "I"):
        return hidden.convert("L")
    if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info):
        alpha = upright.convert("RGBA").getchannel("A")
        hidden.putalpha(alpha)
    return hidden


def _encoder_options(original: Image.Image, source: Path) -> dict[str, object]:
    options: dict[str, object] = {}
    icc = original.info.get("icc_profile")
    if icc:
        options["icc_profile"] = icc
    if original.format == "JPEG":
        assert isinstance(original, JpegImagePlugin.JpegImageFile)
        options["qtables"] = original.quantization
        options["subsampling"] = JpegImagePlugin.get_sampling(original)
        if options["subsampling"] == -1:
            options.pop("subsampling")
    elif original.format == "WEBP":
        with source.open("rb") as handle:
            lossless = handle.read(16)[12:16] == b"VP8L"
        options.update({"lossless": True} if lossless else {"quality": 90})
    return options
