"""Long videos on several workers: plan segments, redact each, join them when the last is done.

The media item stays claimed (``processing``, one attempt) for the whole job; its segments are
rows of their own, each claimed by the worker that redacts it and kept alive by a heartbeat, so a
worker killed in the middle of a segment costs that segment only: the housekeeper resends it and
another worker redoes it. The last segment to finish sends the join; the join finishes the item
exactly like a whole-video job (one result, one charge, one webhook).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Integer, func, select, update
from sqlalchemy.orm import Session

from piiblur.config import Settings
from piiblur.db.models import Account, Media, VideoSegment, utcnow
from piiblur.detect import DetectionEngine
from piiblur.domain import MediaMode, MediaStatus, MediaType, ObfuscationType, PiiCategory
from piiblur.logs import log_context
from piiblur.redact.segments import Segment, SegmentDetections, join_segments, merge_detections, plan_segments
from piiblur.redact.video import redact_video
from piiblur.services import review
from piiblur.services.context import ServiceContext
from piiblur.services.processing import (
    Claim,
    Heartbeat,
    Outcome,
    failure_message,
    finish_completed,
    finish_failed,
    media_heartbeat,
    result_key_for,
    timed,
    video_codecs,
)

log = logging.getLogger(__name__)

PENDING, RUNNING, DONE = "pending", "running", "done"


def worth_splitting(settings: Settings, media: Media) -> bool:
    seconds = settings.video_segment_seconds
    duration = media.duration_seconds or 0
    # Held, detection-only and render jobs run whole: they keep the plan a render needs.
    plain = media.mode == MediaMode.REDACT.value and not media.review and not media.render_requested
    return plain and media.media_type == MediaType.VIDEO.value and seconds > 0 and duration > 2 * seconds


def plan(ctx: ServiceContext, claimed: Claim) -> list[int]:
    """Cut the claimed video into segments and store them; returns their indices (empty when it
    cannot be cut: too few keyframes, then it is redacted whole)."""
    with ctx.sessions() as session:
        media = session.get(Media, claimed.media_id)
        assert media is not None and media.original_key is not None
        key = media.original_key
    with ctx.storage.local_copy(key) as source:
        segments = plan_segments(source, ctx.settings.video_segment_seconds)
    if len(segments) < 2:
        return []
    with ctx.sessions() as session:
        now = utcnow()
        for segment in segments:
            session.add(
                VideoSegment(
                    media_id=claimed.media_id,
                    attempt=claimed.attempt,
                    index=segment.index,
                    start_pts=segment.start_pts,
                    end_pts=segment.end_pts,
                    margin_pts=segment.margin_pts,
                    first_frame=segment.first_frame,
                    frames=segment.frames,
                    status=PENDING,
                    claims=0,
                    progress=0,
                    dispatched_at=now,
                )
            )
        session.commit()
    log.info("media %s split into %d segments", claimed.media_id, len(segments))
    return [segment.index for segment in segments]


def _current(session: Session, media_id: str, attempt: int) -> Media | None:
    """The item, if this attempt still holds it."""
    media = session.get(Media, media_id)
    if media is None or media.status != MediaStatus.PROCESSING.value or media.attempts != attempt:
        return None
    return media


def _exhausted(row: VideoSegment, settings: Settings) -> bool:
    """Claimable again (pending, or its worker silent for a lease) but claimed too often already."""
    stale = utcnow() - timedelta(seconds=settings.job_lease_seconds)
    silent = row.status == RUNNING and (row.heartbeat_at is None or row.heartbeat_at < stale)
    return (row.status == PENDING or silent) and row.claims >= settings.job_max_attempts


def _claim_segment(session: Session, media_id: str, attempt: int, index: int, settings: Settings) -> bool:
    stale = utcnow() - timedelta(seconds=settings.job_lease_seconds)
    taken = session.execute(
        update(VideoSegment)
        .where(
            VideoSegment.media_id == media_id,
            VideoSegment.attempt == attempt,
            VideoSegment.index == index,
            (VideoSegment.status == PENDING) | ((VideoSegment.status == RUNNING) & (VideoSegment.heartbeat_at < stale)),
        )
        .values(status=RUNNING, heartbeat_at=utcnow(), claims=VideoSegment.claims + 1)
    )
    session.commit()
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def redact_segment(ctx: ServiceContext, engine: DetectionEngine, media_id: str, attempt: int, index: int) -> bool:
    """Redact one segment if it is still wanted; True when it was the last one left."""
    with log_context(media_id=media_id), ctx.sessions() as session:
        media = _current(session, media_id, attempt)
        if media is None:
            return False
        row = session.get(VideoSegment, (media_id, attempt, index))
        if row is not None and _exhausted(row, ctx.settings):
            log.error("media %s segment %d killed its worker %d times: the item fails", media_id, index, row.claims)
            finish_failed(session, Claim(media_id, attempt))
            return False
        if row is None or not _claim_segment(session, media_id, attempt, index, ctx.settings):
            return False
        assert media.original_key is not None
        segment = _segment_of(row)
        log.info("media %s segment %d claimed (claim %d)", media_id, index, row.claims)
        extension = media.original_key.rsplit(".", 1)[-1]
        part_key = f"segments/{media.account_id}/{media_id}-{attempt}-{index}.{extension}"
        progress = _SegmentProgress(ctx, media_id, attempt, index)
        with _segment_heartbeat(ctx, media_id, attempt, index), media_heartbeat(ctx, Claim(media_id, attempt)):
            found = _redact_part(ctx, engine, segment, media, part_key, progress)
        session.expire_all()
        done = session.execute(
            update(VideoSegment)
            .where(
                VideoSegment.media_id == media_id,
                VideoSegment.attempt == attempt,
                VideoSegment.index == index,
                VideoSegment.status == RUNNING,
            )
            .values(status=DONE, result_key=part_key, detections=found, progress=100)
        )
        session.commit()
        if done.rowcount != 1:  # type: ignore[attr-defined]
            ctx.storage.delete(part_key)
            return False
        left = session.scalar(
            select(func.count())
            .select_from(VideoSegment)
            .where(VideoSegment.media_id == media_id, VideoSegment.attempt == attempt, VideoSegment.status != DONE)
        )
        return left == 0


def _redact_part(
    ctx: ServiceContext,
    engine: DetectionEngine,
    segment: Segment,
    media: Media,
    part_key: str,
    progress: Callable[[float], None],
) -> list[dict[str, object]]:
    assert media.original_key is not None
    original_key, file_format = media.original_key, media.file_format
    categories = [PiiCategory(c) for c in media.pii_categories]
    obfuscation = ObfuscationType(media.obfuscation_type)
    with (
        tempfile.TemporaryDirectory(dir=ctx.settings.scratch_dir()) as tmp,
        ctx.storage.local_copy(original_key) as source,
    ):
        target = Path(tmp) / f"part.{original_key.rsplit('.', 1)[-1]}"
        with timed(MediaType.VIDEO.value, "redact segment"):
            codecs = video_codecs(ctx.settings)
            result = redact_video(
                source,
                target,
                file_format,
                categories,
                obfuscation,
                engine,
                progress,
                segment.window(),
                codecs,
                ctx.settings.video_partial_looks,
            )
        offset = segment.first_frame - (result.first_written or 0)
        ctx.storage.save_file(part_key, target)
    return [d.detection.as_dict() | {"frame": d.frame + offset, "track": d.track} for d in result.detections]


def _segment_heartbeat(ctx: ServiceContext, media_id: str, attempt: int, index: int) -> Heartbeat:
    def beat(session: Session) -> None:
        session.execute(
            update(VideoSegment)
            .where(VideoSegment.media_id == media_id, VideoSegment.attempt == attempt, VideoSegment.index == index)
            .values(heartbeat_at=utcnow())
        )

    return Heartbeat(ctx, f"{media_id}-{index}", beat)


class _SegmentProgress:
    """A segment's progress on its row, and the item's as the mean over its segments."""

    def __init__(self, ctx: ServiceContext, media_id: str, attempt: int, index: int) -> None:
        self.ctx, self.media_id, self.attempt, self.index, self.last = ctx, media_id, attempt, index, 0

    def __call__(self, fraction: float) -> None:
        percent = min(99, int(fraction * 100))
        if percent < self.last + 5:
            return
        self.last = percent
        with self.ctx.sessions() as session:
            mine = (VideoSegment.media_id == self.media_id) & (VideoSegment.attempt == self.attempt)
            session.execute(update(VideoSegment).where(mine, VideoSegment.index == self.index).values(progress=percent))
            mean = session.scalar(select(func.avg(VideoSegment.progress)).where(mine)) or 0
            session.execute(
                update(Media)
                .where(Media.id == self.media_id, Media.attempts == self.attempt)
                .values(progress=min(99, int(mean)))
            )
            session.commit()


def join(ctx: ServiceContext, media_id: str, attempt: int) -> None:
    """Join the finished segments into the result and finish the item (idempotent: a second
    join of the same attempt finds the item finished and stops)."""
    claimed = Claim(media_id, attempt)
    with log_context(media_id=media_id), ctx.sessions() as session, media_heartbeat(ctx, claimed):
        media = _current(session, media_id, attempt)
        if media is None:
            return
        rows = session.scalars(
            select(VideoSegment)
            .where(VideoSegment.media_id == media_id, VideoSegment.attempt == attempt)
            .order_by(VideoSegment.index)
        ).all()
        if not rows or any(row.status != DONE for row in rows):
            return
        account = session.get(Account, media.account_id)
        assert account is not None and media.original_key is not None
        result_key = result_key_for(media, claimed)
        parts = [SegmentDetections(_segment_of(r), r.detections or []) for r in rows]
        part_keys = [r.result_key for r in rows if r.result_key is not None]
        try:
            with timed(MediaType.VIDEO.value, "join"):
                _join_parts(ctx, media.original_key, part_keys, result_key, media.file_format)
        except Exception as error:
            log.exception("joining %s failed", media_id)
            session.rollback()
            finish_failed(session, claimed, failure_message(error))
            return
        outcome = Outcome(result_key, review.stored(merge_detections(parts)), rendered=True)
        finish_completed(ctx, session, claimed, account, outcome)
    _forget_segments(ctx, media_id, part_keys)


def _join_parts(
    ctx: ServiceContext, original_key: str, part_keys: list[str], result_key: str, file_format: str
) -> None:
    """The parts are read where storage has them (local files as they are, S3 as scratch copies)."""
    with tempfile.TemporaryDirectory(dir=ctx.settings.scratch_dir()) as tmp, ExitStack() as held:
        original = held.enter_context(ctx.storage.local_copy(original_key))
        local_parts = [held.enter_context(ctx.storage.local_copy(key)) for key in part_keys]
        target = Path(tmp) / f"joined.{original_key.rsplit('.', 1)[-1]}"
        join_segments(original, local_parts, target, file_format)
        ctx.storage.save_file(result_key, target)


def _segment_of(row: VideoSegment) -> Segment:
    return Segment(row.index, row.start_pts, row.end_pts, row.first_frame, row.frames, row.margin_pts)


def _forget_segments(ctx: ServiceContext, media_id: str, part_keys: list[str]) -> None:
    for key in part_keys:
        ctx.storage.delete(key)
    with ctx.sessions() as session:
        for row in session.scalars(select(VideoSegment).where(VideoSegment.media_id == media_id)):
            if row.result_key is not None:
                ctx.storage.delete(row.result_key)
            session.delete(row)
        session.commit()


def segments_due(session: Session, settings: Settings) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
    """For the housekeeper: segments whose message may be lost (pending, or running without a
    heartbeat, and not sent for a lease), and items whose segments are all done but that no join
    finished (its message lost). Marks the segments sent now."""
    stale = utcnow() - timedelta(seconds=settings.job_lease_seconds)
    current = (
        select(VideoSegment.media_id, VideoSegment.attempt, VideoSegment.index)
        .join(Media, (Media.id == VideoSegment.media_id) & (Media.attempts == VideoSegment.attempt))
        .where(Media.status == MediaStatus.PROCESSING.value)
    )
    waiting = (VideoSegment.status == PENDING) | (
        (VideoSegment.status == RUNNING) & (VideoSegment.heartbeat_at < stale)
    )
    not_recent = VideoSegment.dispatched_at.is_(None) | (VideoSegment.dispatched_at < stale)
    resend = []
    for media_id, attempt, index in session.execute(current.where(waiting, not_recent).limit(500)).all():
        marked = session.execute(
            update(VideoSegment)
            .where(
                VideoSegment.media_id == media_id,
                VideoSegment.attempt == attempt,
                VideoSegment.index == index,
                not_recent,
            )
            .values(dispatched_at=utcnow())
        )
        if marked.rowcount == 1:  # type: ignore[attr-defined]
            resend.append((media_id, attempt, index))
    unjoined = session.execute(
        select(Media.id, Media.attempts)
        .join(VideoSegment, (Media.id == VideoSegment.media_id) & (Media.attempts == VideoSegment.attempt))
        .where(Media.status == MediaStatus.PROCESSING.value, Media.heartbeat_at < stale)
        .group_by(Media.id, Media.attempts)
        .having(func.sum(func.cast(VideoSegment.status != DONE, Integer)) == 0)
    ).all()
    session.commit()
    return resend, [(media_id, attempt) for media_id, attempt in unjoined]
