"""The video pipeline: decode with PyAV, hide detections frame by frame, encode, copy the audio.

Memory stays bounded by a few frames: frames are decoded, redacted and encoded one at a time.
The output keeps the container family (mp4 -> mp4 with H.264, mov -> mov with H.264, webm -> webm
with VP9), resolution and frame timestamps; audio packets are copied untouched. Container metadata
(location tags, device names, creation times) is not copied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from piiblur.detect import Detection, DetectionEngine
from piiblur.domain import ObfuscationType, PiiCategory
from piiblur.redact.obfuscate import obfuscate

VIDEO_CODECS = {"mp4": "libx264", "mov": "libx264", "webm": "libvpx-vp9"}
CONTAINER_FORMATS = {"mp4": "mp4", "mov": "mov", "webm": "webm"}

ProgressCallback = Callable[[float], None]


@dataclass
class VideoRedaction:
    width: int
    height: int
    frames: int = 0
    detections: list[tuple[int, Detection]] = field(default_factory=list)


def redact_video(
    source: Path,
    target: Path,
    file_format: str,
    categories: Sequence[PiiCategory],
    obfuscation: ObfuscationType,
    engine: DetectionEngine,
    on_progress: ProgressCallback | None = None,
) -> VideoRedaction:
    with av.open(str(source)) as inp, av.open(str(target), "w", format=CONTAINER_FORMATS[file_format]) as out:
        in_video = inp.streams.video[0]
        in_audio = inp.streams.audio[0] if inp.streams.audio else None
        out_video = _add_video_stream(out, in_video, file_format)
        out_audio = out.add_stream_from_template(in_audio) if in_audio is not None else None
        total = in_video.frames or _estimated_frames(inp, in_video)
        result = VideoRedaction(in_video.codec_context.width, in_video.codec_context.height)
        streams = [s for s in (in_video, in_audio) if s is not None]
        for packet in inp.demux(*streams):
            if packet.stream is in_audio and out_audio is not None:
                if packet.dts is not None:
                    packet.stream = out_audio
                    out.mux(packet)
                continue
            for frame in packet.decode():
                assert isinstance(frame, av.VideoFrame)
                _encode_redacted(frame, out_video, out, categories, obfuscation, engine, result)
                if on_progress is not None and total:
                    on_progress(min(1.0, result.frames / total))
        out.mux(out_video.encode(None))
    return result


def _estimated_frames(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """WebM and some MOV files carry no frame count; estimate one for progress reporting."""
    rate = stream.average_rate or stream.guessed_rate
    if container.duration is None or rate is None:
        return 0
    return int(container.duration / 1_000_000 * rate)


def _add_video_stream(out: av.container.OutputContainer, in_video: av.VideoStream, file_format: str) -> av.VideoStream:
    rate = in_video.average_rate or in_video.guessed_rate or Fraction(25)
    stream = out.add_stream(VIDEO_CODECS[file_format], rate=rate)
    assert isinstance(stream, av.VideoStream)
    stream.width = in_video.codec_context.width
    stream.height = in_video.codec_context.height
    stream.pix_fmt = "yuv420p"
    stream.time_base = in_video.time_base
    if file_format == "webm":
        stream.options = {"crf": "32", "b:v": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    else:
        stream.options = {"crf": "20", "preset": "veryfast", "movflags": "+faststart"}
    return stream


def _encode_redacted(
    frame: av.VideoFrame,
    out_video: av.VideoStream,
    out: av.container.OutputContainer,
    categories: Sequence[PiiCategory],
    obfuscation: ObfuscationType,
    engine: DetectionEngine,
    result: VideoRedaction,
) -> None:
    rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
    detections = engine.detect(rgb, categories)
    result.detections.extend((result.frames, d) for d in detections)
    hidden = av.VideoFrame.from_ndarray(obfuscate(rgb, detections, obfuscation), format="rgb24")
    hidden.pts = frame.pts
    hidden.time_base = frame.time_base
    out.mux(out_video.encode(hidden.reformat(format="yuv420p")))
    result.frames += 1
