"""Long videos cut into segments, redacted apart and joined without re-encoding: the joined file
is the same video (frames, timestamps, audio) with every frame of the face hidden, across borders
too, and a face crossing a border is one track."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import av

from conftest import render_video
from piiblur.config import Settings
from piiblur.db.models import Media, VideoSegment, utcnow
from piiblur.detect import default_engine
from piiblur.domain import MediaStatus, ObfuscationType, PiiCategory, Plan
from piiblur.redact.segments import SegmentDetections, join_segments, merge_detections, plan_segments
from piiblur.redact.video import redact_video
from piiblur.services.accounts import create_account
from piiblur.services.context import build_context
from piiblur.services.segmented import redact_segment
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


def test_a_segment_that_keeps_killing_its_worker_fails_the_item(tmp_path: Path) -> None:
    """Its claims are bounded like a whole job's: the next delivery after the last one fails the item."""
    ctx = build_context(Settings(data_dir=tmp_path, job_lease_seconds=5))
    with ctx.sessions() as session:
        account = create_account(session, "seg@example.com", Plan.PRO)
        media = Media(
            account_id=account.id, status=MediaStatus.PROCESSING.value, original_filename="v.mp4", media_type="video",
            file_format="mp4", size_bytes=1, pii_categories=["heads"], obfuscation_type="blur",
            original_key="originals/x.mp4", attempts=1,
        )  # fmt: skip
        session.add(media)
        session.commit()
        session.add(
            VideoSegment(
                media_id=media.id, attempt=1, index=0, start_pts=0, end_pts=None, margin_pts=0, first_frame=0,
                frames=10, status="running", claims=Settings().job_max_attempts, progress=0,
                heartbeat_at=utcnow() - timedelta(seconds=60),
            )
        )  # fmt: skip
        session.commit()
        media_id = media.id
    assert not redact_segment(ctx, default_engine(), media_id, 1, 0)
    with ctx.sessions() as session:
        failed = session.get(Media, media_id)
        assert failed is not None and failed.status == MediaStatus.FAILED.value
    ctx.close()
