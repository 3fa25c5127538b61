"""Long videos cut into segments, redacted apart and joined without re-encoding: the joined file
is the same video (frames, timestamps, audio) with every frame of the face hidden, across borders
too, and a face crossing a border is one track."""

from __future__ import annotations

from pathlib import Path

import av

from conftest import render_video
from piiblur.detect import default_engine
from piiblur.domain import ObfuscationType, PiiCategory
from piiblur.redact.segments import SegmentDetections, join_segments, merge_detections, plan_segments
from piiblur.redact.video import redact_video
from test_video import stream_facts, uncovered_frames


def timestamps(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [frame.pts for frame in container.decode(video=0)]


def test_segments_redacted_apart_join_into_the_whole_video(tmp_path: Path) -> None:
    clip = render_video(tmp_path / "in.mp4", seconds=8, fps=15, size=(320, 240), crossings=2, keyframe_every=15)
    segments = plan_segments(clip.path, 2.0)
    assert len(segments) >= 3
    assert sum(s.frames for s in segments) == len(clip.face_boxes)
    assert [s.first_frame for s in segments] == [sum(t.frames for t in segments[:i]) for i in range(len(segments))]
    parts, found = [], []
    for segment in segments:
        part = tmp_path / f"part{segment.index}.mp4"
        result = redact_video(
            clip.path, part, "mp4", [PiiCategory.HEADS], ObfuscationType.BLUR, default_engine(), window=segment.window()
        )
        assert result.frames == segment.frames and result.first_written is not None
        offset = segment.first_frame - result.first_written
        found.append(
            SegmentDetections(
                segment,
                [d.detection.as_dict() | {"frame": d.frame + offset, "track": d.track} for d in result.detections],
            )
        )
        parts.append(part)
    joined = tmp_path / "joined.mp4"
    join_segments(clip.path, parts, joined, "mp4")
    assert timestamps(joined) == timestamps(clip.path)
    assert stream_facts(joined).keys() == stream_facts(clip.path).keys()  # audio kept
    assert uncovered_frames(clip, joined) == []
    merged = merge_detections(found)
    assert {d["track"] for d in merged} == {1}, "one face, one track across every border"
    assert all(0 <= d["frame"] < len(clip.face_boxes) for d in merged)
