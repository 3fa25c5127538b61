"""The video pipeline: decode -> detect on keyframes -> track in between -> obfuscate -> encode.

- Decoding and encoding use PyAV (FFmpeg): mp4 -> mp4 and mov -> mov with H.264 (yuv420p,
  faststart), webm -> webm with VP9; resolution, frame timestamps (variable frame rates
  included) and display rotation are kept, audio packets are copied untouched, and container
  metadata (location tags, device names, creation times) is not copied.
- Detection runs on keyframes; the frames in between are buffered until the next keyframe and get
  interpolated, motion-grown boxes (``tracking``), which also follow the camera's own move
  where it shakes (``camera``, measured on every frame). The stride adapts: it halves when objects move
  more than half their size between keyframes, grows back while they move little, and a scene
  cut (a large change between consecutive frames) forces a keyframe and ends every track.
  Heads; codes, screens and tattoos; and the text-based categories each have their own channel
  (keyframes, stride, tracks: ``CHANNEL_GROUPS``), so each group is looked for as often as its
  own objects move. Between full looks (at the longest stride), a keyframe is looked at only around the tracked
  objects and where the picture changed (``looks``), by the families that can.
- Frames stay in planar YUV 4:2:0 (RGB only for keyframes); detection runs on worker threads,
  one channel beside the other, and hiding + encoding on the writer thread of ``muxing``, so the
  two cores of a small machine are both busy.
- Memory is bounded by the buffer: about ``MAX_TEXT_STRIDE`` decoded frames, whatever the length.
"""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import av
import cv2
import numpy as np

from piiblur.detect import Box, Detection, DetectionEngine, Look
from piiblur.detect.base import RgbImage
from piiblur.domain import ObfuscationType, PiiCategory
from piiblur.profiling import stage
from piiblur.redact import tracking
from piiblur.redact.camera import NOT_MOVED, CameraPath
from piiblur.redact.looks import SCORE_WOBBLE, LookPlanner
from piiblur.redact.muxing import BackgroundMuxer, planes_of
from piiblur.redact.obfuscate import NO_FIXED_REGIONS, FixedRegions, Plane
from piiblur.redact.probe import open_video
from piiblur.redact.timeline import ChannelPlan, TrackedBox, VideoPlan
from piiblur.redact.tracking import FAST_MOTION, Keyframe, TrackLedger

VIDEO_CODECS = {"mp4": "libx264", "mov": "libx264", "webm": "libvpx-vp9"}
SOFTWARE_H264 = "libx264"
CONTAINER_FORMATS = {"mp4": "mp4", "mov": "mov", "webm": "webm"}
MAX_STRIDE = 10  # heads; codes, screens, tattoos
MAX_TEXT_STRIDE = 20  # the OCR-based categories: the line detector costs 4x the face detector
SLOW_MOTION = 0.3
SCENE_CUT = 40.0  # mean absolute difference of 32x18 grey thumbnails, 0-255

ProgressCallback = Callable[[float], None]


class UnavailableCodecError(RuntimeError):
    """A hardware decoder or encoder was asked for that this FFmpeg build does not have."""


@dataclass(frozen=True)
class VideoCodecs:
    """Which FFmpeg codecs do the video work. Software by default (the tested path); on a machine
    with a GPU, its decoder (``hwaccel``: an FFmpeg device type such as cuda, qsv or vaapi; what it
    cannot decode falls back to software) and its H.264 encoder for mp4 and mov (``h264_encoder``:
    h264_nvenc, h264_qsv, h264_vaapi...). WebM stays VP9 in software."""

    hwaccel: str | None = None
    h264_encoder: str = SOFTWARE_H264

    def check(self) -> None:
        """Encode and decode a tiny clip with these codecs: a name this FFmpeg build does not know,
        or a device that is not there, stops a process before it takes work (instead of failing
        every video job later)."""
        from av.codec.hwaccel import hwdevices_available

        if self.hwaccel and self.hwaccel not in hwdevices_available():
            raise UnavailableCodecError(
                f"hardware decoding device {self.hwaccel!r} not in this FFmpeg build "
                f"(it has: {', '.join(hwdevices_available())})"
            )
        if self.h264_encoder not in av.codecs_available:
            raise UnavailableCodecError(f"H.264 encoder {self.h264_encoder!r} not in this FFmpeg build")
        with tempfile.TemporaryDirectory() as folder:
            trial = Path(folder) / "trial.mp4"
            try:
                self._trial(trial)
            except (av.FFmpegError, OSError) as error:
                raise UnavailableCodecError(
                    f"{self.hwaccel or 'software'} decoding with {self.h264_encoder} encoding failed on a "
                    f"trial clip: {error}"
                ) from error

    def _trial(self, path: Path) -> None:
        with av.open(str(path), "w", format="mp4") as out:
            stream = out.add_stream(self.h264_encoder, rate=25)
            assert isinstance(stream, av.VideoStream)
            stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
            for _ in range(2):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((256, 256, 3), np.uint8), format="rgb24")))
            out.mux(stream.encode(None))
        with open_video(path, "mp4", self.hwaccel) as inp:
            next(inp.decode(video=0))


SOFTWARE = VideoCodecs()


@dataclass(frozen=True)
class FrameWindow:
    """Part of a video, for redacting it in segments on several workers: the frames with
    ``start_pts <= pts < end_pts`` are encoded; ``margin_pts`` more on each side are decoded and
    looked at but not written, so tracks run across the border and no frame there is uncovered."""

    start_pts: int
    end_pts: int | None  # None: to the end
    margin_pts: int

    def looks_at(self, pts: int) -> bool:
        return pts >= self.start_pts - self.margin_pts and (
            self.end_pts is None or pts < self.end_pts + self.margin_pts
        )

    def writes(self, pts: int) -> bool:
        return pts >= self.start_pts and (self.end_pts is None or pts < self.end_pts)

    def past(self, pts: int) -> bool:
        return self.end_pts is not None and pts >= self.end_pts + self.margin_pts


class FrameDetection(NamedTuple):
    """A detection on a keyframe, and the track (the object) it belongs to."""

    frame: int
    detection: Detection
    track: int


@dataclass
class VideoRedaction:
    width: int
    height: int
    frames: int = 0
    keyframes: list[int] = field(default_factory=list)
    partial_keyframes: list[int] = field(default_factory=list)  # a channel looked only at regions
    detections: list[FrameDetection] = field(default_factory=list)  # on keyframes
    # What rendering it again from (edited) detections needs: each channel's keyframes and cuts,
    # and the boxes of tracks carried over missed keyframes (``timeline``).
    plan: VideoPlan | None = None
    regions_per_frame: list[list[Box]] = field(default_factory=list)  # what was hidden, frame by frame
    first_written: int | None = None  # a window's first written frame, in its own numbering

    def object_counts(self) -> dict[PiiCategory, int]:
        """Distinct tracked objects per category: what a user means by "how many faces"."""
        tracks = {(d.detection.category, d.track) for d in self.detections}
        return dict(Counter(category for category, _ in tracks))


class _Pending:
    """A decoded frame waiting for its regions, kept as planar YUV 4:2:0 (what the decoder gives
    and the encoder takes): RGB is made only for the frames detection runs on."""

    def __init__(self, frame: av.VideoFrame) -> None:
        with stage("frame copy"):
            self.frame = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
            self.planes = planes_of(self.frame)
        self._rgb: RgbImage | None = None

    @property
    def luma(self) -> Plane:
        return self.planes[0]

    def rgb(self) -> RgbImage:
        if self._rgb is None:
            with stage("to RGB"):
                self._rgb = np.asarray(self.frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        return self._rgb


class ChannelGroup(NamedTuple):
    """Categories looked for on the same keyframes, and the longest stride between them."""

    categories: frozenset[PiiCategory]
    max_stride: int


# Heads have a channel of their own: they are the smallest objects for their speed (a pedestrian
# at 10 fps moves more than half a head a frame), so their stride falls to 1 on a busy street, and
# codes, screens and tattoos, which move little for their size, should not be looked for at every
# frame with them. Measured on a real street camera (vtest.avi, 720p, all 13 asked), against every
# frame looked at whole: the same share of what that run hides is hidden (heads 927 of 950 frames
# x boxes against 928, every other category the same), with the codes-screens-tattoos channel at
# 32 keyframes instead of 240 and detection in 22.7 s instead of 42.1 s (``bench/video.py``).
HEADS_GROUP = ChannelGroup(frozenset({PiiCategory.HEADS}), MAX_STRIDE)
OBJECTS_GROUP = ChannelGroup(
    frozenset({PiiCategory.QR_CODES, PiiCategory.BARCODES, PiiCategory.SCREENS, PiiCategory.TATTOOS}), MAX_STRIDE
)
TEXT_GROUP = ChannelGroup(frozenset(PiiCategory) - HEADS_GROUP.categories - OBJECTS_GROUP.categories, MAX_TEXT_STRIDE)
CHANNEL_GROUPS = (HEADS_GROUP, OBJECTS_GROUP, TEXT_GROUP)


def channel_groups(categories: Sequence[PiiCategory]) -> list[tuple[list[PiiCategory], int]]:
    """The asked categories split into ``CHANNEL_GROUPS`` (in the asked order), empty ones left out."""
    split = [([c for c in categories if c in group.categories], group.max_stride) for group in CHANNEL_GROUPS]
    return [(wanted, stride) for wanted, stride in split if wanted]


@dataclass
class _Submitted:
    """A keyframe whose detection runs in the background, and the frames waiting for it."""

    index: int
    found: Future[Look]
    frames_before: list[int]
    ends_segment: bool = False


class _Channel:
    """A group of categories (``CHANNEL_GROUPS``) with its own keyframe stride.

    Heads (0.1 s a 720p keyframe) can be looked for far more often than the OCR-based categories
    (0.1-0.3 s and more), and fast-moving heads should not drag codes and screens to every frame;
    each group keeps its own keyframes, tracks and stride, and a frame is written once every group
    has decided what to hide in it. Detection runs on a worker thread: while it runs, the next
    frames are decoded and earlier ones encoded, and the groups' detectors run side by side.
    """

    def __init__(
        self,
        engine: DetectionEngine,
        categories: list[PiiCategory],
        max_stride: int,
        pool: Executor,
        new_track: Callable[[], int],
        frame_size: tuple[int, int],
        partial_looks: bool,
        fixed: FixedRegions,
        camera: CameraPath,
    ) -> None:
        self.engine, self.categories, self.max_stride, self.pool = engine, categories, max_stride, pool
        self.fixed, self.camera = fixed, camera
        self.plan = ChannelPlan(list(categories))
        planned = partial_looks and engine.looks_in_regions(categories)
        self.looks = LookPlanner(*frame_size, max_gap=max_stride) if planned else None
        self.ledger = TrackLedger(new_track, coast_frames=max_stride)
        # Kept across a scene cut (a new shot goes on at the last one's stride). Starting each shot
        # over at half the longest stride was measured on the camera-move clip and rejected: 720p
        # writing recall 0.996 -> 0.979 and 1080p heads 0.964 -> 0.953 (other keyframes, other misses).
        self.stride = max(1, max_stride // 2)
        self.last_key: Keyframe | None = None  # the latest resolved keyframe of the current segment
        self.last_unsure: list[Box] = []  # where its look was unsure (``DetectionEngine.look``)
        self.last_submitted: int | None = None
        self.carried: list[TrackedBox] = []
        self.waiting: list[int] = []
        self.in_flight: deque[_Submitted] = deque()

    def due(self, index: int) -> bool:
        return self.last_submitted is None or index - self.last_submitted >= self.stride

    def could_be_due(self, index: int) -> bool:
        """Whether frame ``index`` is a keyframe once the detection in flight has adapted the
        stride: one resolved keyframe can at most halve it (``_adapt_stride``)."""
        shortest = max(1, self.stride // 2)
        return self.last_submitted is None or index - self.last_submitted >= shortest

    def submit(self, index: int, pending: _Pending, result: VideoRedaction, ends_segment: bool = False) -> None:
        """Start detecting on frame ``index`` (in the regions ``looks`` chooses); the frames
        waiting so far are resolved by it."""
        regions = None
        if self.looks is not None:
            with stage("choosing regions"):
                known = None
                if self.last_key is not None:
                    known = [d.box for d in self.last_key.detections] + self.last_unsure
                regions = self.looks.regions(index, pending.luma, known)
            if regions is not None:
                result.partial_keyframes.append(index)
        unsure_within = SCORE_WOBBLE if self.looks is not None else 0.0
        found = self.pool.submit(self.engine.look, pending.rgb(), self.categories, regions, unsure_within)
        self.plan.keyframes.append(index)
        self.in_flight.append(_Submitted(index, found, self.waiting, ends_segment))
        self.waiting = []
        self.last_submitted = None if ends_segment else index

    def end_segment(self) -> None:
        """A scene cut or the end: the last keyframe closes its segment and no track continues."""
        if self.in_flight:
            self.in_flight[-1].ends_segment = True
        else:
            if self.last_key is not None:
                self.plan.segment_ends.append(self.last_key.index)
            self.last_key = None
        self.last_submitted = None

    def resolve(self, width: int, height: int, result: VideoRedaction, wait: bool) -> dict[int, list[Detection]]:
        """Regions of every frame whose keyframes have been detected (waiting for the oldest
        keyframe if ``wait``): interpolated between consecutive keyframes of a segment."""
        regions: dict[int, list[Detection]] = {}
        while self.in_flight and (wait or self.in_flight[0].found.done()):
            wait = False
            submitted = self.in_flight.popleft()
            with stage("waiting for detection"):
                look = submitted.found.result()
            if self.fixed.never_hide:  # found wholly where the request says never to hide: not hidden
                look = Look([d for d in look.detections if self.fixed.keeps(d)], look.unsure)
            with stage("tracking"):
                self._track(Keyframe(submitted.index, look.detections), submitted, width, height, result, regions)
            self.last_unsure = look.unsure
        return regions

    def _track(
        self,
        keyframe: Keyframe,
        submitted: _Submitted,
        width: int,
        height: int,
        result: VideoRedaction,
        regions: dict[int, list[Detection]],
    ) -> None:
        """Pair a detected keyframe with the previous one and give the frames between them boxes."""
        pairing = None
        camera_move = NOT_MOVED
        if self.last_key is not None:
            camera_move = self.camera.move(self.last_key.index, keyframe.index)
            carried = self.ledger.coasting(self.last_key, keyframe, camera_move, (width, height))
            keyframe = Keyframe(keyframe.index, keyframe.detections + carried)
            pairing = tracking.pair(self.last_key, keyframe, camera_move)
        tracks = self.ledger.assign(keyframe, pairing)
        for detection, track in zip(keyframe.detections, tracks, strict=True):
            if detection.detector == tracking.COASTING:
                self.carried.append(TrackedBox(keyframe.index, track, detection))
            else:
                result.detections.append(FrameDetection(keyframe.index, detection, track))
        regions.update({i: [] for i in submitted.frames_before})
        if self.last_key is not None and pairing is not None:
            for i in submitted.frames_before:
                regions[i] = tracking.between(self.last_key, keyframe, pairing, i, width, height, self.camera.offsets)
            # On the move seen in the picture, the camera's included: a moving picture blurs and
            # turns what detectors see, and they find more in more looks (taking the camera's
            # move out halved the looks at a shaking camera, and 1080p writing recall fell
            # from 0.998 to 0.942 on the camera-move clip).
            self._adapt_stride(pairing.max_relative_motion())
        regions[keyframe.index] = keyframe.detections
        if submitted.ends_segment:
            self.plan.segment_ends.append(keyframe.index)
        self.last_key = None if submitted.ends_segment else keyframe

    def _adapt_stride(self, motion: float) -> None:
        if motion > FAST_MOTION:
            self.stride = max(1, self.stride // 2)
        elif motion < SLOW_MOTION:  # grow by half: back to the longest stride in a few keyframes
            self.stride = min(self.max_stride, self.stride + max(1, self.stride // 2))


class _Redactor:
    """Buffers frames until every channel knows their regions, then writes them in order."""

    def __init__(
        self,
        engine: DetectionEngine,
        categories: Sequence[PiiCategory],
        write: Callable[[av.VideoFrame, list[Plane], list[Detection]], None],
        result: VideoRedaction,
        pool: Executor,
        partial_looks: bool,
        fixed: FixedRegions,
    ) -> None:
        self.write, self.result = write, result
        track_ids = itertools.count(1)  # shared, so ids are unique across channels
        size = (result.width, result.height)
        self.camera = CameraPath()
        self.channels = [
            _Channel(engine, group, stride, pool, lambda: next(track_ids), size, partial_looks, fixed, self.camera)
            for group, stride in channel_groups(categories)
        ]
        self.buffer: dict[int, _Pending] = {}
        self.regions: dict[int, list[list[Detection]]] = {}
        self.next_to_write = 0
        self.previous_thumb: np.ndarray | None = None

    def push(self, frame: av.VideoFrame, index: int) -> None:
        pending = _Pending(frame)
        with stage("scene cuts"):
            cut = self._is_cut(_thumbnail(pending.luma))
        if cut:
            self._close_segments()
        with stage("camera motion"):
            self.camera.follow(pending.luma, cut)
        self.buffer[index] = pending
        for channel in self.channels:
            if channel.in_flight and channel.could_be_due(index):
                # The stride is decided by the keyframe in flight, so wait for it: keyframes then
                # fall on the same frames however long detection takes (a loaded machine, 1080p,
                # all 13 categories) -- with one detection in flight per channel.
                self._resolve(channel, wait=True)
            if channel.due(index):
                channel.submit(index, pending, self.result)
                self._note_keyframe(index)
            else:
                channel.waiting.append(index)
        for channel in self.channels:
            self._resolve(channel, wait=False)
        self._write_ready()

    def finish(self) -> None:
        self._close_segments()
        for channel in self.channels:
            while channel.in_flight:
                self._resolve(channel, wait=True)
        self._write_ready()
        for index in sorted(self.buffer):  # no channel at all: nothing requested
            self._emit(index, [])

    def plan(self, frames: int) -> VideoPlan:
        carried = [box for channel in self.channels for box in channel.carried]
        channels = [channel.plan for channel in self.channels]
        return VideoPlan(self.result.width, self.result.height, frames, channels, carried, self.camera.offsets[:frames])

    def _is_cut(self, thumb: np.ndarray) -> bool:
        previous, self.previous_thumb = self.previous_thumb, thumb
        return previous is not None and float(np.abs(thumb - previous).mean()) > SCENE_CUT

    def _close_segments(self) -> None:
        """Before a scene cut and at the end: each channel's last waiting frame becomes a keyframe,
        so the frames before it are interpolated rather than guessed; tracks then end."""
        for channel in self.channels:
            if channel.waiting:
                last = channel.waiting.pop()
                self._resolve(channel, wait=bool(channel.in_flight))
                channel.submit(last, self.buffer[last], self.result, ends_segment=True)
                self._note_keyframe(last)
            else:
                channel.end_segment()

    def _note_keyframe(self, index: int) -> None:
        if index not in self.result.keyframes:
            self.result.keyframes.append(index)

    def _resolve(self, channel: _Channel, wait: bool) -> None:
        for frame_index, regions in channel.resolve(self.result.width, self.result.height, self.result, wait).items():
            self.regions.setdefault(frame_index, []).append(regions)

    def _write_ready(self) -> None:
        while len(self.regions.get(self.next_to_write, [])) == len(self.channels) and self.channels:
            regions = [d for group in self.regions.pop(self.next_to_write) for d in group]
            self._emit(self.next_to_write, regions)

    def _emit(self, index: int, regions: list[Detection]) -> None:
        item = self.buffer.pop(index)
        self.write(item.frame, item.planes, regions)
        self.next_to_write = index + 1


def _detection_threads() -> Executor:
    return ThreadPoolExecutor(max_workers=len(CHANNEL_GROUPS), thread_name_prefix="piiblur-detect")


def _thumbnail(luma: Plane) -> np.ndarray:
    """32x18 grey thumbnail: what scene cuts are measured on."""
    return np.asarray(cv2.resize(luma[::4, ::4], (32, 18), interpolation=cv2.INTER_AREA), dtype=np.int16)


def redact_video(
    source: Path,
    target: Path | None,
    file_format: str,
    categories: Sequence[PiiCategory],
    obfuscation: ObfuscationType,
    engine: DetectionEngine,
    on_progress: ProgressCallback | None = None,
    window: FrameWindow | None = None,
    codecs: VideoCodecs = SOFTWARE,
    partial_looks: bool = True,
    fixed: FixedRegions = NO_FIXED_REGIONS,
    detection_pool: Callable[[], Executor] | None = None,
) -> VideoRedaction:
    """Redact a whole video, or (``window``) one segment of it: then only the window's frames
    are written, without audio (the joiner copies it once), and ``first_written`` says which
    decoded frame index was the first one written. ``partial_looks``: see ``looks``; without
    them every keyframe is looked at whole (slower, for who wants no trade at all). Without a
    ``target`` nothing is encoded: detection only (the result's detections and plan).
    ``detection_pool`` makes the executor keyframes are detected on (by default one thread per
    channel group); what is hidden does not depend on how fast it runs them."""
    with ExitStack() as held:
        inp = held.enter_context(open_video(source, hwaccel=codecs.hwaccel))
        in_video = inp.streams.video[0]
        in_video.thread_type = "AUTO"  # decode on FFmpeg's own threads
        total = in_video.frames or estimated_frames(inp, in_video)
        result = VideoRedaction(in_video.codec_context.width, in_video.codec_context.height)
        in_audio = inp.streams.audio[0] if inp.streams.audio and window is None and target is not None else None
        if target is None:
            muxer: BackgroundMuxer | DiscardingMuxer = DiscardingMuxer()
            out_audio = None
        else:
            out = held.enter_context(open_output(target, file_format))
            rotation = display_rotation(source)
            out_video = add_video_stream(out, in_video, file_format, rotation, codecs, joinable=window is not None)
            out_audio = out.add_stream_from_template(in_audio) if in_audio is not None else None
            muxer = BackgroundMuxer(out, out_video, obfuscation, fixed)

        def write(frame: av.VideoFrame, planes: list[Plane], regions: list[Detection]) -> None:
            if window is not None and not window.writes(frame.pts or 0):
                return
            muxer.video(frame, planes, regions)
            result.regions_per_frame.append([d.box for d in regions])
            result.frames += 1
            if on_progress is not None and total:
                on_progress(min(1.0, result.frames / total))

        with (detection_pool or _detection_threads)() as pool:
            redactor = _Redactor(engine, categories, write, result, pool, partial_looks, fixed)
            try:
                frames = decoded_frames(inp, in_video, in_audio, out_audio, muxer)
                for index, frame in frames if window is None else _windowed(inp, in_video, frames, window, result):
                    redactor.push(frame, index)
                redactor.finish()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                muxer.abort()
                raise
        muxer.close()
        result.keyframes.sort()
        result.plan = redactor.plan(redactor.next_to_write)
    return result


def open_output(target: Path, file_format: str) -> av.container.OutputContainer:
    options = {"movflags": "+faststart"} if file_format in ("mp4", "mov") else {}
    return av.open(str(target), "w", format=CONTAINER_FORMATS[file_format], options=options)


class DiscardingMuxer:
    """Stands in for ``BackgroundMuxer`` when only detections are wanted: writes nothing."""

    def video(self, frame: av.VideoFrame, planes: list[Plane], regions: list[Detection]) -> None:
        pass

    def audio(self, packet: av.Packet[Any]) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def decoded_frames(
    inp: av.container.InputContainer,
    in_video: av.VideoStream,
    in_audio: av.AudioStream | None,
    out_audio: av.AudioStream | None,
    muxer: BackgroundMuxer | DiscardingMuxer,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Video frames with their index; audio packets go straight to the muxer on the way."""
    index = 0
    for packet in inp.demux(*[s for s in (in_video, in_audio) if s is not None]):
        if packet.stream is in_audio:
            if out_audio is not None and packet.dts is not None:
                packet.stream = out_audio
                muxer.audio(packet)
            continue
        with stage("decode"):
            frames = packet.decode()
        for frame in frames:
            assert isinstance(frame, av.VideoFrame)
            yield index, frame
            index += 1


def _windowed(
    inp: av.container.InputContainer,
    in_video: av.VideoStream,
    frames: Iterator[tuple[int, av.VideoFrame]],
    window: FrameWindow,
    result: VideoRedaction,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """The frames a window looks at, numbered from 0; decoding starts at the keyframe before."""
    inp.seek(max(0, window.start_pts - window.margin_pts), stream=in_video, backward=True, any_frame=False)
    local = 0
    for _, frame in frames:
        pts = frame.pts or 0
        if window.past(pts):
            return
        if not window.looks_at(pts):
            continue
        if result.first_written is None and window.writes(pts):
            result.first_written = local
        yield local, frame
        local += 1


def display_rotation(source: Path) -> int:
    """The rotation players apply (phones record sideways and say so in side data)."""
    with open_video(source) as container:
        for frame in container.decode(video=0):
            return round(frame.rotation or 0)
    return 0


def estimated_frames(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """WebM and some MOV files carry no frame count; estimate one for progress reporting."""
    rate = stream.average_rate or stream.guessed_rate
    if container.duration is None or rate is None:
        return 0
    return int(container.duration / 1_000_000 * rate)


def add_video_stream(
    out: av.container.OutputContainer,
    in_video: av.VideoStream,
    file_format: str,
    rotation: int,
    codecs: VideoCodecs,
    joinable: bool = False,
    size: tuple[int, int] | None = None,
) -> av.VideoStream:
    """``joinable``: encoded so that segments can be joined packet by packet, without decoding:
    no B-frames (decode order = display order, so timestamps stay monotonic across a join).
    ``size``: another width and height than the input's (a preview; frames are scaled to it)."""
    rate = in_video.average_rate or in_video.guessed_rate or Fraction(25)
    codec = codecs.h264_encoder if VIDEO_CODECS[file_format] == SOFTWARE_H264 else VIDEO_CODECS[file_format]
    stream = out.add_stream(codec, rate=rate)
    assert isinstance(stream, av.VideoStream)
    stream.width, stream.height = size or (in_video.codec_context.width, in_video.codec_context.height)
    stream.pix_fmt = "yuv420p"
    # Frames keep their own timestamps (variable frame rates too): encode in the input's time base.
    stream.time_base = in_video.time_base
    if in_video.time_base is not None:
        stream.codec_context.time_base = in_video.time_base
    if rotation:
        stream.set_display_rotation(rotation)
    if file_format == "webm":
        stream.options = {"crf": "32", "b:v": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    elif codec != SOFTWARE_H264:  # a hardware encoder: its own defaults, B-frames off where joined
        stream.options = {"bf": "0"} if joinable else {}
    else:
        stream.options = (
            {"crf": "20", "preset": "veryfast", "bf": "0"} if joinable else {"crf": "20", "preset": "veryfast"}
        )
    return stream
