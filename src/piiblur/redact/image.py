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
from piiblur.domain import ObfuscationType, PiiCategory
from piiblur.redact.obfuscate import obfuscate


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


def detect_image(path: Path, categories: Sequence[PiiCategory], engine: DetectionEngine) -> ImageRedaction:
    image = load_rgb(path)
    pixels = np.asarray(image.convert("RGB"))
    return ImageRedaction(image.width, image.height, engine.detect(pixels, categories))


def redact_image(
    source: Path,
    target: Path,
    categories: Sequence[PiiCategory],
    obfuscation: ObfuscationType,
    engine: DetectionEngine,
) -> ImageRedaction:
    with Image.open(source) as original:
        original.load()
        file_format = original.format or "PNG"
        encoder_options = _encoder_options(original, source)
        upright = ImageOps.exif_transpose(original)
    rgb = np.asarray(upright.convert("RGB"))
    detections = engine.detect(rgb, categories)
    hidden = Image.fromarray(obfuscate(rgb, detections, obfuscation))
    _restore_mode(hidden, upright).save(target, format=file_format, **encoder_options)
    return ImageRedaction(upright.width, upright.height, detections)


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
