"""Long videos in parallel: cut at keyframes into segments, redact each on its own worker
(``video.redact_video`` with a ``FrameWindow``), join the parts without re-encoding and copy the
audio once from the original.

The cut needs no decoding: video packets are read to find keyframes and count frames. Each
segment is redacted with a margin on both sides (decoded and looked at, not written), so tracking
runs across the border; the joiner then merges the tracks that both neighbours saw in the
overlap, so a face crossing a border is one face.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from piiblur.detect import Box
from piiblur.redact.probe import open_video
from piiblur.redact.video import CONTAINER_FORMATS, MAX_STRIDE, FrameWindow

MARGIN_SECONDS = 1.0  # decoded beyond each border: more than the longest keyframe stride (20 frames) at 30 fps
# Two neighbours' keyframes rarely fall on the same frame of their overlap: boxes of one category
# on frames at most half the shortest keyframe stride apart, overlapping by half the smaller box,
# are taken for one object.
NEAR_FRAMES = MAX_STRIDE // 2
SAME_OBJECT_OVERLAP = 0.5


@dataclass(frozen=True)
class Segment:
    index: int
    start_pts: int
    end_pts: int | None
    first_frame: int  # index of its first frame in the whole video
    frames: int
    margin_pts: int

    def window(self) -> FrameWindow:
        return FrameWindow(self.start_pts, self.end_pts, self.margin_pts)


def plan_segments(source: Path, seconds: float) -> list[Segment]:
    """Segments of about ``seconds`` each, starting at keyframes (a decoder can start there).
    One segment when the video is short or its packets carry no timestamps."""
    with open_video(source) as container:
        stream = container.streams.video[0]
        base = stream.time_base or Fraction(1, 90000)
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.pts is not None and p.size]
    if not packets:
        return []
    all_pts = sorted(pts for pts, _ in packets)
    step = round(seconds / base)
    margin = round(MARGIN_SECONDS / base)
    starts = [all_pts[0]]
    for pts in sorted(pts for pts, keyframe in packets if keyframe):
        if pts - starts[-1] >= step and all_pts[-1] - pts >= step // 2:  # no tiny last segment
            starts.append(pts)
    segments = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else None
        first = sum(1 for pts in all_pts if pts < start)
        frames = sum(1 for pts in all_pts if pts >= start and (end is None or pts < end))
        segments.append(Segment(index, start, end, first, frames, margin))
    return segments


def join_segments(original: Path, parts: Sequence[Path], target: Path, file_format: str) -> None:
    """Concatenate the segments' video packets and interleave the original's audio packets:
    nothing is decoded or encoded again. Container metadata is not copied."""
    options = {"movflags": "+faststart"} if file_format in ("mp4", "mov") else {}
    with (
        open_video(original) as source,
        open_video(parts[0]) as first,
        av.open(str(target), "w", format=CONTAINER_FORMATS[file_format], options=options) as out,
    ):
        out_video = out.add_stream_from_template(first.streams.video[0])
        rotation = _rotation(first)
        if rotation:
            out_video.set_display_rotation(rotation)
        in_audio = source.streams.audio[0] if source.streams.audio else None
        out_audio = out.add_stream_from_template(in_audio) if in_audio is not None else None
        streams: list[Iterator[tuple[float, int, av.Packet[Any]]]] = [_video_packets(parts, 0)]
        if in_audio is not None:
            streams.append(_packets(source, in_audio, 1))
        for _, kind, packet in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            packet.stream = out_video if kind == 0 else out_audio
            out.mux(packet)


def _video_packets(parts: Sequence[Path], kind: int) -> Iterator[tuple[float, int, av.Packet[Any]]]:
    for part in parts:
        with open_video(part) as container:
            yield from _packets(container, container.streams.video[0], kind)


def _packets(
    container: av.container.InputContainer, stream: av.VideoStream | av.AudioStream, kind: int
) -> Iterator[tuple[float, int, av.Packet[Any]]]:
    base = stream.time_base or Fraction(1, 90000)
    for packet in container.demux(stream):
        if packet.dts is None:  # the demuxer's end-of-stream marker
            continue
        yield float(packet.dts * base), kind, packet


def _rotation(container: av.container.InputContainer) -> int:
    for frame in container.decode(video=0):
        return round(frame.rotation or 0)
    return 0


@dataclass(frozen=True)
class SegmentDetections:
    """What one segment found: keyframe detections as stored for media (``frame`` in the whole
    video's numbering; frames in the margins fall outside the segment's own range)."""

    segment: Segment
    detections: list[dict[str, Any]]


def merge_detections(parts: Sequence[SegmentDetections]) -> list[dict[str, Any]]:
    """One list for the whole video: each detection kept by the segment whose frames it is on,
    tracks renumbered to be unique, and a track that both neighbours saw in their overlap made one."""
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def root(key: tuple[int, int]) -> tuple[int, int]:
        while parent.get(key, key) != key:
            key = parent[key]
        return key

    for left, right in itertools.pairwise(parts):
        for a in left.detections:
            for b in right.detections:
                near = abs(a["frame"] - b["frame"]) <= NEAR_FRAMES
                if near and a["category"] == b["category"] and _same_place(a, b):
                    parent[root((right.segment.index, b["track"]))] = root((left.segment.index, a["track"]))
    numbers: dict[tuple[int, int], int] = {}
    merged = []
    for part in parts:
        first, count = part.segment.first_frame, part.segment.frames
        for detection in part.detections:
            if not first <= detection["frame"] < first + count:
                continue  # the neighbour writes that frame
            key = root((part.segment.index, detection["track"]))
            merged.append(detection | {"track": numbers.setdefault(key, len(numbers) + 1)})
    return sorted(merged, key=lambda d: (d["frame"], d["track"]))


def _same_place(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return Box(*a["box"]).overlaps(Box(*b["box"]), SAME_OBJECT_OVERLAP)
