"""Rendering from detections already made: the redacted file of a reviewed item, and the
low-resolution preview a reviewer looks at. Nothing is detected here; ``timeline`` decides what
each video frame hides."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from PIL import Image

from piiblur.detect import Detection
from piiblur.domain import ObfuscationType
from piiblur.redact.image import load_upright, write_redacted_image
from piiblur.redact.muxing import BackgroundMuxer, planes_of
from piiblur.redact.obfuscate import NO_FIXED_REGIONS, FixedRegions, obfuscate
from piiblur.redact.probe import open_video
from piiblur.redact.timeline import Timeline
from piiblur.redact.video import (
    SOFTWARE,
    VideoCodecs,
    add_video_stream,
    decoded_frames,
    display_rotation,
    open_output,
)

PREVIEW_SIDE = 960  # the preview's longer side in pixels: enough to judge a box, too small to reuse
PREVIEW_JPEG_QUALITY = 80


# What a render hides: a photo's detections, or a video's timeline (what each frame hides).
Hidden = Sequence[Detection] | Timeline


def render(
    source: Path,
    target: Path,
    file_format: str,
    hidden: Hidden,
    obfuscation: ObfuscationType,
    fixed: FixedRegions = NO_FIXED_REGIONS,
    codecs: VideoCodecs = SOFTWARE,
    preview: bool = False,
) -> None:
    """The redacted file in the input's own format and quality (as the pipeline writes it), or
    (``preview``) the review page's low-resolution copy: a JPEG or an mp4 without audio."""
    if isinstance(hidden, Timeline):
        render_video(source, target, file_format, hidden, obfuscation, fixed, codecs, preview)
    elif preview:
        render_image_preview(source, target, hidden, obfuscation, fixed)
    else:
        write_redacted_image(source, target, hidden, obfuscation, fixed)


def render_image_preview(
    source: Path,
    target: Path,
    detections: Sequence[Detection],
    obfuscation: ObfuscationType,
    fixed: FixedRegions = NO_FIXED_REGIONS,
) -> None:
    """A JPEG at most ``PREVIEW_SIDE`` px across, hidden at full resolution first (so the preview
    hides exactly what the full render will), without metadata."""
    _, rgb = load_upright(source)
    hidden = Image.fromarray(obfuscate(rgb, detections, obfuscation, fixed))
    hidden.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    hidden.save(target, format="JPEG", quality=PREVIEW_JPEG_QUALITY)


def render_video(
    source: Path,
    target: Path,
    file_format: str,
    timeline: Timeline,
    obfuscation: ObfuscationType,
    fixed: FixedRegions = NO_FIXED_REGIONS,
    codecs: VideoCodecs = SOFTWARE,
    preview: bool = False,
) -> int:
    """Decode, hide ``timeline``'s regions frame by frame, encode; returns the frames written.
    Audio is copied as in the pipeline. ``preview``: an mp4 at most ``PREVIEW_SIDE`` px across,
    without audio, for the review page."""
    with ExitStack() as held:
        inp = held.enter_context(open_video(source, hwaccel=codecs.hwaccel))
        in_video = inp.streams.video[0]
        in_video.thread_type = "AUTO"
        in_audio = inp.streams.audio[0] if inp.streams.audio and not preview else None
        out = held.enter_context(open_output(target, "mp4" if preview else file_format))
        size = _preview_size(in_video.codec_context.width, in_video.codec_context.height) if preview else None
        rotation = display_rotation(source)
        out_video = add_video_stream(out, in_video, "mp4" if preview else file_format, rotation, codecs, size=size)
        out_audio = out.add_stream_from_template(in_audio) if in_audio is not None else None
        muxer = BackgroundMuxer(out, out_video, obfuscation, fixed, scaled=size is not None)
        written = 0
        try:
            for index, frame in decoded_frames(inp, in_video, in_audio, out_audio, muxer):
                reformatted = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
                muxer.video(reformatted, planes_of(reformatted), timeline.regions(index))
                written += 1
        except BaseException:
            muxer.abort()
            raise
        muxer.close()
    return written


def _preview_size(width: int, height: int) -> tuple[int, int]:
    """Scaled to fit ``PREVIEW_SIDE``, even sides (4:2:0 chroma needs them)."""
    scale = min(1.0, PREVIEW_SIDE / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
