"""The image pipeline on its own: orientation, formats, metadata, and hidden faces stay hidden."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import astronaut, jpeg_with_exif
from piiblur.detect import default_engine
from piiblur.domain import ObfuscationType, PiiCategory
from piiblur.redact.image import redact_image
from piiblur.redact.probe import UnsupportedMediaError, probe

HEADS = [PiiCategory.HEADS]


@pytest.mark.parametrize("method", list(ObfuscationType))
def test_redacted_face_is_no_longer_found(tmp_path: Path, method: ObfuscationType) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(astronaut()).save(source)
    target = tmp_path / "out.png"
    found = redact_image(source, target, HEADS, method, default_engine())
    assert len(found.detections) == 1
    again = default_engine().detect(np.asarray(Image.open(target).convert("RGB")), HEADS)
    assert again == [], f"face still detectable after {method}: {again}"


def test_exif_orientation_is_applied_then_dropped(tmp_path: Path) -> None:
    # Stored sideways with orientation 6 ("rotate 90° clockwise to view"), as phones do.
    sideways = np.rot90(astronaut(), k=1).copy()
    exif = Image.Exif()
    exif[0x0112] = 6
    source = tmp_path / "phone.jpg"
    Image.fromarray(sideways).save(source, "JPEG", quality=90, exif=exif)
    target = tmp_path / "out.jpg"
    result = redact_image(source, target, HEADS, ObfuscationType.BLUR, default_engine())
    assert len(result.detections) == 1, "the upright face is found"
    out = Image.open(target)
    assert not out.getexif() and out.size == (512, 512)


def test_formats_are_kept(tmp_path: Path) -> None:
    rgba = np.dstack([astronaut(), np.full((512, 512), 255, np.uint8)])
    rgba[400:, 400:, 3] = 0  # a transparent corner, which must survive
    for fmt, options in (("WEBP", {"quality": 80}), ("WEBP", {"lossless": True}), ("PNG", {})):
        source = tmp_path / f"in.{fmt.lower()}"
        Image.fromarray(rgba).save(source, fmt, **options)
        target = tmp_path / f"out.{fmt.lower()}"
        redact_image(source, target, HEADS, ObfuscationType.BLUR, default_engine())
        out = Image.open(target)
        assert out.format == fmt and out.mode == "RGBA"
        assert np.asarray(out)[450, 450, 3] == 0 and np.asarray(out)[100, 100, 3] == 255


def test_probe_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    jpeg = jpeg_with_exif(astronaut())
    cases = {"empty": b"", "truncated": jpeg[:3000], "text": b"%PDF-1.4 not an image", "bmp": _bmp()}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(UnsupportedMediaError):
            probe(path)
    path = tmp_path / "fine.jpg"
    path.write_bytes(jpeg)
    assert probe(path).file_format == "jpeg"


def _bmp() -> bytes:
    out = io.BytesIO()
    Image.fromarray(astronaut()).save(out, "BMP")
    return out.getvalue()


@pytest.mark.parametrize("method", list(ObfuscationType))
def test_redacted_text_cannot_be_read(tmp_path: Path, method: ObfuscationType) -> None:
    """After redaction the OCR finds no characters inside any region it hid."""
    import render
    from piiblur.detect.ocr import Ocr

    lines = [("Jane Doe, 42 Elm Road", 44, (30, 30)), ("Phone 555 0199", 44, (30, 100))]
    note = render.card((620, 180), (240, 238, 230), lines)
    scene, _ = render.place(render.photo("brick"), note, (300, 250))
    source, target = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(scene).save(source)
    result = redact_image(source, target, [PiiCategory.WRITING], method, default_engine())
    assert result.detections, "the text was found"

    ocr = Ocr()
    before = np.asarray(Image.open(source).convert("RGB"))
    after = np.asarray(Image.open(target).convert("RGB"))
    assert "".join(t for t, _ in ocr.read(before, ocr.find_lines(before))).count("5") >= 2, "OCR reads the input"
    for detection in result.detections:
        b = detection.box.grown(0.1, after.shape[1], after.shape[0])
        crop = np.ascontiguousarray(after[int(b.y) : int(b.y + b.h), int(b.x) : int(b.x + b.w)])
        read = [text for text, score in ocr.read(crop, ocr.find_lines(crop)) if score > 0.5]
        assert not any(ch.isalnum() for text in read for ch in text), (method, read)


@pytest.mark.parametrize("method", list(ObfuscationType))
def test_video_frames_are_hidden_in_yuv_like_in_rgb(method: ObfuscationType) -> None:
    """Video frames are hidden plane by plane in YUV 4:2:0; the face must be as gone as in RGB,
    and pixels away from it untouched."""
    import av

    from piiblur.redact.muxing import frame_from_planes, planes_of
    from piiblur.redact.obfuscate import obfuscate, obfuscate_yuv420

    rgb = np.ascontiguousarray(astronaut()[:510, :510])
    (face,) = default_engine().detect(rgb, HEADS)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    planes = planes_of(frame)
    before = [plane.copy() for plane in planes]
    obfuscate_yuv420(planes, [face], method)
    back = frame_from_planes(planes).to_ndarray(format="rgb24")
    assert default_engine().detect(back, HEADS) == []
    reference = obfuscate(frame.to_ndarray(format="rgb24"), [face], method)
    assert np.abs(back.astype(int) - reference).mean() < 2.0  # the same hiding, up to chroma rounding
    assert np.array_equal(planes[0][450:], before[0][450:])  # bottom luma rows: far from the face
