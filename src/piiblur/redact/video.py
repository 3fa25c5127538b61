"""The video pipeline: decode -> detect on keyframes -> track in between -> obfuscate -> encode.

- Decoding and encoding use PyAV (FFmpeg): mp4 -> mp4 and mov -> mov with H.264 (yuv420p,
  faststart), webm -> webm with VP9; resolution, frame timestamps (variable frame rates
  included) and display rotation are kept, audio packets are copied untouched, and container
  metadata (location tags, device names, creation times) is not copied.
- Detection runs on keyframes; the frames in between are buffered until the next keyframe and get
  interpolated, motion-grown boxes (``tracking``). The stride adapts: it halves when objects move
  more than half their size between keyframes, grows back while they move little, and a scene
  cut (a large change between consecutive frames) forces a keyframe and ends every track.
- Memory is bounded by the buffer: at most ``MAX_STRIDE`` decoded frames, whatever the length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from piiblur.detect import Box, Detection, DetectionEngine
from piiblur.detect.base import RgbImage
from piiblur.domain import ObfuscationType, PiiCategory
from piiblur.redact import tracking
from piiblur.redact.obfuscate import obfuscate
from piiblur.redact.tracking import Keyframe

VIDEO_CODECS = {"mp4": "libx264", "mov": "libx264", "webm": "libvpx-vp9"}
CONTAINER_FORMATS = {"mp4": "mp4", "mov": "mov", "webm": "webm"}
MAX_STRIDE = 10
FAST_MOTION = 0.5  # of an object's size between keyframes: detect more often
SLOW_MOTION = 0.3
SCENE_CUT = 40.0  # mean absolute difference of 32x18 grey thumbnails, 0-255

ProgressCallback = Callable[[float], None]


@dataclass
class VideoRedaction:
    width: int
    height: int
    frames: int = 0
    keyframes: list[int] = field(default_factory=list)
    detections: list[tuple[int, Detection]] = field(default_factory=list)  # on keyframes
    regions_per_frame: list[list[Box]] = field(default_factory=list)  # what was hidden, frame by frame


@dataclass
class _Pending:
    frame: av.VideoFrame
    pixels: RgbImage
    index: int


class _Redactor:
    """Holds the state between keyframes and writes frames out as soon as their regions are known."""

    def __init__(
        self,
        engine: DetectionEngine,
        categories: Sequence[PiiCategory],
        obfuscation: ObfuscationType,
        write: Callable[[av.VideoFrame, RgbImage, list[Detection]], None],
    ) -> None:
        self.engine, self.categories, self.obfuscation, self.write = engine, categories, obfuscation, write
        self.stride = MAX_STRIDE // 2
        self.last_key: Keyframe | None = None
        self.pending: list[_Pending] = []
        self.previous_thumb: np.ndarray | None = None
        self.result: VideoRedaction | None = None

    def push(self, frame: av.VideoFrame, index: int, result: VideoRedaction) -> None:
        self.result = result
        pixels = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        thumb = cv2.resize(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), (32, 18), interpolation=cv2.INTER_AREA)
        cut = (
            self.previous_thumb is not None
            and float(np.abs(thumb.astype(np.int16) - self.previous_thumb).mean()) > SCENE_CUT
        )
        self.previous_thumb = thumb.astype(np.int16)
        if cut:
            self._close_segment()
            self.last_key = None
        due = self.last_key is None or index - self.last_key.index >= self.stride
        if not due:
            self.pending.append(_Pending(frame, pixels, index))
            return
        self._keyframe(_Pending(frame, pixels, index))

    def finish(self) -> None:
        self._close_segment()

    def _keyframe(self, item: _Pending) -> None:
        assert self.result is not None
        keyframe = Keyframe(item.index, self.engine.detect(item.pixels, self.categories))
        self.result.keyframes.append(item.index)
        self.result.detections.extend((item.index, d) for d in keyframe.detections)
        self._flush_between(keyframe)
        self._write(item, keyframe.detections)
        self.last_key = keyframe

    def _close_segment(self) -> None:
        """Before a scene cut and at the end: the last buffered frame becomes a keyframe, so the
        frames before it are interpolated rather than guessed."""
        if self.pending:
            self._keyframe(self.pending.pop())

    def _flush_between(self, keyframe: Keyframe) -> None:
        if self.last_key is None:
            self._emit_plain()
            return
        pairing = tracking.pair(self.last_key, keyframe)
        for item in self.pending:
            height, width = item.pixels.shape[:2]
            self._write(item, tracking.between(self.last_key, keyframe, pairing, item.index, width, height))
        self.pending.clear()
        motion = pairing.max_relative_motion()
        if motion > FAST_MOTION:
            self.stride = max(1, self.stride // 2)
        elif motion < SLOW_MOTION:
            self.stride = min(MAX_STRIDE, self.stride + 1)

    def _emit_plain(self) -> None:
        for item in self.pending:
            self._write(item, [])
        self.pending.clear()

    def _write(self, item: _Pending, regions: list[Detection]) -> None:
        self.write(item.frame, obfuscate(item.pixels, regions, self.obfuscation), regions)


def redact_video(
    source: Path,
    target: Path,
    file_format: str,
    categories: Sequence[PiiCategory],
    obfuscation: ObfuscationType,
    engine: DetectionEngine,
    on_progress: ProgressCallback | None = None,
) -> VideoRedaction:
    rotation = _display_rotation(source)
    options = {"movflags": "+faststart"} if file_format in ("mp4", "mov") else {}
    with (
        av.open(str(source)) as inp,
        av.open(str(target), "w", format=CONTAINER_FORMATS[file_format], options=options) as out,
    ):
        in_video = inp.streams.video[0]
        in_audio = inp.streams.audio[0] if inp.streams.audio else None
        out_video = _add_video_stream(out, in_video, file_format, rotation)
        out_audio = out.add_stream_from_template(in_audio) if in_audio is not None else None
        total = in_video.frames or _estimated_frames(inp, in_video)
        result = VideoRedaction(in_video.codec_context.width, in_video.codec_context.height)

        def write(frame: av.VideoFrame, pixels: RgbImage, regions: list[Detection]) -> None:
            hidden = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
            hidden.pts, hidden.time_base = frame.pts, frame.time_base
            out.mux(out_video.encode(hidden))
            result.regions_per_frame.append([d.box for d in regions])
            result.frames += 1
            if on_progress is not None and total:
                on_progress(min(1.0, result.frames / total))

        redactor = _Redactor(engine, categories, obfuscation, write)
        index = 0
        for packet in inp.demux(*[s for s in (in_video, in_audio) if s is not None]):
            if packet.stream is in_audio:
                if out_audio is not None and packet.dts is not None:
                    packet.stream = out_audio
                    out.mux(packet)
                continue
            for frame in packet.decode():
                assert isinstance(frame, av.VideoFrame)
                redactor.push(frame, index, result)
                index += 1
        redactor.finish()
        out.mux(out_video.encode(None))
    return result


def _display_rotation(source: Path) -> int:
    """The rotation players apply (phones record sideways and say so in side data)."""
    with av.open(str(source)) as container:
        for frame in container.decode(video=0):
            return round(frame.rotation or 0)
    return 0


def _estimated_frames(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """WebM and some MOV files carry no frame count; estimate one for progress reporting."""
    rate = stream.average_rate or stream.guessed_rate
    if container.duration is None or rate is None:
        return 0
    return int(container.duration / 1_000_000 * rate)


def _add_video_stream(
    out: av.container.OutputContainer, in_video: av.VideoStream, file_format: str, rotation: int
) -> av.VideoStream:
    rate = in_video.average_rate or in_video.guessed_rate or Fraction(25)
    stream = out.add_stream(VIDEO_CODECS[file_format], rate=rate)
    assert isinstance(stream, av.VideoStream)
    stream.width = in_video.codec_context.width
    stream.height = in_video.codec_context.height
    stream.pix_fmt = "yuv420p"
    stream.time_base = in_video.time_base
    if rotation:
        stream.set_display_rotation(rotation)
    if file_format == "webm":
        stream.options = {"crf": "32", "b:v": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    else:
        stream.options = {"crf": "20", "preset": "veryfast"}
    return stream
