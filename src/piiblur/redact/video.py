"""The video pipeline: decode -> detect on keyframes -> track in between -> obfuscate -> encode.

- Decoding and encoding use PyAV (FFmpeg): mp4 -> mp4 and mov -> mov with H.264 (yuv420p,
  faststart), webm -> webm with VP9; resolution, frame timestamps (variable frame rates
  included) and display rotation are kept, audio packets are copied untouched, and container
  metadata (location tags, device names, creation times) is not copied.
- Detection runs on keyframes; the frames in between are buffered until the next keyframe and get
  interpolated, motion-grown boxes (``tracking``). The stride adapts: it halves when objects move
  more than half their size between keyframes, grows back while they move little, and a scene
  cut (a large change between consecutive frames) forces a keyframe and ends every track.
- Memory is bounded by the buffer: at most ``MAX_TEXT_STRIDE`` decoded frames, whatever the length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
from piiblur.redact.muxing import BackgroundMuxer
from piiblur.redact.obfuscate import Plane
from piiblur.redact.tracking import Keyframe

VIDEO_CODECS = {"mp4": "libx264", "mov": "libx264", "webm": "libvpx-vp9"}
CONTAINER_FORMATS = {"mp4": "mp4", "mov": "mov", "webm": "webm"}
MAX_STRIDE = 10  # heads, codes, screens, tattoos
MAX_TEXT_STRIDE = 20  # the OCR-based categories: the line detector costs 4x the face detector
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


class _Pending:
    """A decoded frame waiting for its regions, kept as planar YUV 4:2:0 (what the decoder gives
    and the encoder takes): RGB is made only for the frames detection runs on."""

    def __init__(self, frame: av.VideoFrame) -> None:
        self.frame = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
        self.yuv: Plane = np.array(self.frame.to_ndarray(), dtype=np.uint8)

    @property
    def luma(self) -> Plane:
        return self.yuv[: self.yuv.shape[0] * 2 // 3]

    def rgb(self) -> RgbImage:
        return np.asarray(cv2.cvtColor(self.yuv, cv2.COLOR_YUV2RGB_I420), dtype=np.uint8)


FAST_FAMILIES = frozenset(
    {PiiCategory.HEADS, PiiCategory.QR_CODES, PiiCategory.BARCODES, PiiCategory.SCREENS, PiiCategory.TATTOOS}
)


class _Channel:
    """A group of categories with its own keyframe stride.

    Heads (0.08 s a 720p keyframe) can be looked for far more often than the OCR-based categories
    (0.3 s or more); each group keeps its own keyframes, tracks and stride, and a frame is written
    once every group has decided what to hide in it.
    """

    def __init__(self, engine: DetectionEngine, categories: list[PiiCategory], max_stride: int) -> None:
        self.engine, self.categories, self.max_stride = engine, categories, max_stride
        self.stride = max(1, max_stride // 2)
        self.last_key: Keyframe | None = None
        self.waiting: list[int] = []

    def due(self, index: int) -> bool:
        return self.last_key is None or index - self.last_key.index >= self.stride

    def keyframe(self, index: int, pixels: RgbImage, result: VideoRedaction) -> dict[int, list[Detection]]:
        """Detect on this frame; returns the regions of every frame waiting since the last keyframe."""
        keyframe = Keyframe(index, self.engine.detect(pixels, self.categories))
        result.detections.extend((index, d) for d in keyframe.detections)
        height, width = pixels.shape[:2]
        regions: dict[int, list[Detection]] = {i: [] for i in self.waiting}
        if self.last_key is not None:
            pairing = tracking.pair(self.last_key, keyframe)
            for i in self.waiting:
                regions[i] = tracking.between(self.last_key, keyframe, pairing, i, width, height)
            motion = pairing.max_relative_motion()
            if motion > FAST_MOTION:
                self.stride = max(1, self.stride // 2)
            elif motion < SLOW_MOTION:
                self.stride = min(self.max_stride, self.stride + 1)
        regions[index] = keyframe.detections
        self.waiting.clear()
        self.last_key = keyframe
        return regions


class _Redactor:
    """Buffers frames until every channel knows their regions, then writes them in order."""

    def __init__(
        self,
        engine: DetectionEngine,
        categories: Sequence[PiiCategory],
        obfuscation: ObfuscationType,
        write: Callable[[av.VideoFrame, Plane, list[Detection]], None],
        result: VideoRedaction,
    ) -> None:
        self.obfuscation, self.write, self.result = obfuscation, write, result
        fast = [c for c in categories if c in FAST_FAMILIES]
        slow = [c for c in categories if c not in FAST_FAMILIES]
        self.channels = [
            _Channel(engine, group, stride) for group, stride in ((fast, MAX_STRIDE), (slow, MAX_TEXT_STRIDE)) if group
        ]
        self.buffer: dict[int, _Pending] = {}
        self.regions: dict[int, list[list[Detection]]] = {}
        self.next_to_write = 0
        self.previous_thumb: np.ndarray | None = None

    def push(self, frame: av.VideoFrame, index: int) -> None:
        pending = _Pending(frame)
        if self._is_cut(pending.luma):
            self._close_segments()
        self.buffer[index] = pending
        for channel in self.channels:
            if channel.due(index):
                self._run(channel, index)
            else:
                channel.waiting.append(index)
        self._write_ready()

    def finish(self) -> None:
        self._close_segments()
        self._write_ready()
        for index in sorted(self.buffer):  # no channel at all: nothing requested
            self._emit(index, [])

    def _is_cut(self, luma: Plane) -> bool:
        thumb = cv2.resize(luma[::4, ::4], (32, 18), interpolation=cv2.INTER_AREA).astype(np.int16)
        previous, self.previous_thumb = self.previous_thumb, thumb
        return previous is not None and float(np.abs(thumb - previous).mean()) > SCENE_CUT

    def _close_segments(self) -> None:
        """Before a scene cut and at the end: each channel's last waiting frame becomes a keyframe,
        so the frames before it are interpolated rather than guessed; tracks then end."""
        for channel in self.channels:
            if channel.waiting:
                self._run(channel, channel.waiting.pop())
            channel.last_key = None

    def _run(self, channel: _Channel, index: int) -> None:
        if index not in self.result.keyframes:
            self.result.keyframes.append(index)
        for frame_index, regions in channel.keyframe(index, self.buffer[index].rgb(), self.result).items():
            self.regions.setdefault(frame_index, []).append(regions)

    def _write_ready(self) -> None:
        while len(self.regions.get(self.next_to_write, [])) == len(self.channels) and self.channels:
            regions = [d for group in self.regions.pop(self.next_to_write) for d in group]
            self._emit(self.next_to_write, regions)

    def _emit(self, index: int, regions: list[Detection]) -> None:
        item = self.buffer.pop(index)
        self.write(item.frame, item.yuv, regions)
        self.next_to_write = index + 1


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

        muxer = BackgroundMuxer(out, out_video, obfuscation)

        def write(frame: av.VideoFrame, yuv: Plane, regions: list[Detection]) -> None:
            muxer.video(frame, yuv, regions)
            result.regions_per_frame.append([d.box for d in regions])
            result.frames += 1
            if on_progress is not None and total:
                on_progress(min(1.0, result.frames / total))

        redactor = _Redactor(engine, categories, obfuscation, write, result)
        try:
            for index, frame in _decoded(inp, in_video, in_audio, out_audio, muxer):
                redactor.push(frame, index)
            redactor.finish()
        except BaseException:
            muxer.abort()
            raise
        muxer.close()
        result.keyframes.sort()
    return result


def _decoded(
    inp: av.container.InputContainer,
    in_video: av.VideoStream,
    in_audio: av.AudioStream | None,
    out_audio: av.AudioStream | None,
    muxer: BackgroundMuxer,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Video frames with their index; audio packets go straight to the muxer on the way."""
    index = 0
    for packet in inp.demux(*[s for s in (in_video, in_audio) if s is not None]):
        if packet.stream is in_audio:
            if out_audio is not None and packet.dts is not None:
                packet.stream = out_audio
                muxer.audio(packet)
            continue
        for frame in packet.decode():
            assert isinstance(frame, av.VideoFrame)
            yield index, frame
            index += 1


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
    # Frames keep their own timestamps (variable frame rates too): encode in the input's time base.
    stream.time_base = in_video.time_base
    if in_video.time_base is not None:
        stream.codec_context.time_base = in_video.time_base
    if rotation:
        stream.set_display_rotation(rotation)
    if file_format == "webm":
        stream.options = {"crf": "32", "b:v": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    else:
        stream.options = {"crf": "20", "preset": "veryfast"}
    return stream
