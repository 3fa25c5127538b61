"""Writing the redacted video on a thread of its own.

Hiding regions, encoding (x264 / VP9) and muxing are a third of a frame's cost; detection is most
of the rest. Both run in native code that releases the GIL, so with the encoder on its own thread
the two overlap on a multi-core machine instead of taking turns. Frames and audio packets are
written strictly in the order they are handed over; the queue is short, so memory stays bounded.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeAlias

import av
import numpy as np

from piiblur.detect import Detection
from piiblur.domain import ObfuscationType
from piiblur.profiling import stage
from piiblur.redact.obfuscate import NO_FIXED_REGIONS, FixedRegions, Plane, obfuscate_yuv420

QUEUE_DEPTH = 8
_Item: TypeAlias = "tuple[av.VideoFrame, list[Plane], list[Detection]] | av.Packet[Any] | None"


def planes_of(frame: av.VideoFrame) -> list[Plane]:
    """Copies of a yuv420p frame's Y, U and V planes (without FFmpeg's row padding); unlike
    ``to_ndarray`` this works for odd widths and heights too."""
    return [_view(plane).copy() for plane in frame.planes]


def frame_from_planes(planes: list[Plane]) -> av.VideoFrame:
    height, width = planes[0].shape[:2]
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, pixels in zip(frame.planes, planes, strict=True):
        _view(plane)[:] = pixels
    return frame


def _view(plane: av.video.plane.VideoPlane) -> Plane:
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    view: Plane = rows[:, : plane.width]
    return view


class BackgroundMuxer:
    """``fixed``: the request's always/never-hide regions, on every frame. ``scaled``: frames are
    resized to the output stream's size after hiding (the low-resolution review preview)."""

    def __init__(
        self,
        out: av.container.OutputContainer,
        video: av.VideoStream,
        obfuscation: ObfuscationType,
        fixed: FixedRegions = NO_FIXED_REGIONS,
        scaled: bool = False,
    ) -> None:
        self.out, self.video_stream, self.obfuscation = out, video, obfuscation
        self.fixed, self.scaled = fixed, scaled
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="piiblur-muxer", daemon=True)
        self._thread.start()

    def video(self, frame: av.VideoFrame, planes: list[Plane], regions: list[Detection]) -> None:
        """Hide ``regions`` in ``planes`` (the Y, U, V pixels of ``frame``), encode and mux it."""
        self._put((frame, planes, regions))

    def audio(self, packet: av.Packet[Any]) -> None:
        """Mux an audio packet as it is (already pointed at its output stream)."""
        self._put(packet)

    def close(self) -> None:
        """Flush the encoder and wait for everything to be written; re-raise a failure."""
        self._put(None)
        self._thread.join()
        self._raise_if_failed()

    def abort(self) -> None:
        """Stop writing (the producer failed): drop what is queued and wait for the thread."""
        if self._error is None:
            self._error = RuntimeError("aborted")
        self._queue.put(None)
        self._thread.join()

    def _put(self, item: _Item) -> None:
        self._raise_if_failed()
        with stage("waiting for the encoder"):
            self._queue.put(item)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError("writing the redacted video failed") from self._error

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:  # after a failure, keep draining so the producer never blocks
                self._guarded(functools.partial(self._write, item))
        if self._error is None:
            with stage("encode"):
                self._guarded(lambda: self.out.mux(self.video_stream.encode(None)))

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except BaseException as error:  # handed to the producer thread
            self._error = error

    def _write(self, item: tuple[av.VideoFrame, list[Plane], list[Detection]] | av.Packet[Any]) -> None:
        if isinstance(item, av.Packet):
            self.out.mux(item)
            return
        frame, planes, regions = item
        with stage("hiding"):
            obfuscate_yuv420(planes, regions, self.obfuscation, self.fixed)
        with stage("encode"):
            hidden = frame_from_planes(planes)
            if self.scaled:
                hidden = hidden.reformat(width=self.video_stream.width, height=self.video_stream.height)
            hidden.pts, hidden.time_base = frame.pts, frame.time_base
            self.out.mux(self.video_stream.encode(hidden))
