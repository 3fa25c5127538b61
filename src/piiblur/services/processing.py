"""The job body: take one queued media item through the redaction pipeline.

Queue adapters (``piiblur.jobs``) decide *when* this runs and on which worker; this module decides
*what* happens: claim, re-check the quota, redact, store the result, apply retention.
"""

from __future__ import annotations

import errno
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.orm import Session

from piiblur import metrics
from piiblur.config import Settings
from piiblur.db.models import Account, Media, VideoSegment, utcnow
from piiblur.detect import DetectionEngine
from piiblur.domain import MediaMode, MediaStatus, MediaType, ObfuscationType, PiiCategory
from piiblur.logs import log_context
from piiblur.redact.image import detect_image, redact_image
from piiblur.redact.render import Hidden, render
from piiblur.redact.video import VideoCodecs, redact_video
from piiblur.services import audit, review, webhooks
from piiblur.services.context import ServiceContext
from piiblur.services.media import mark_original_deleted, object_counts
from piiblur.services.review import fixed_regions_of
from piiblur.services.usage import still_within_quota

log = logging.getLogger(__name__)

PROCESSING_FAILED = "Processing failed"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over quota, over the file size limit


@dataclass(frozen=True)
class Claim:
    """The right to work on one media item: ``attempt`` is the token every later write of the job
    checks, so a worker that lost its claim (retaken after it went silent) cannot finish it too."""

    media_id: str
    attempt: int


def claim_next(session: Session) -> Claim | None:
    """Atomically move the oldest queued item to ``processing``; None when the queue is empty.

    The conditional UPDATE is the lock: when several workers race for one row, exactly one sees
    a row count of 1.
    """
    while True:
        media_id = session.scalar(
            select(Media.id).where(Media.status == MediaStatus.QUEUED.value).order_by(Media.created_at).limit(1)
        )
        if media_id is None:
            return None
        claim = _take(session, media_id, Media.status == MediaStatus.QUEUED.value)
        if claim is not None:
            return claim


def claim(session: Session, media_id: str, settings: Settings) -> Claim | None:
    """Claim one named item (a broker delivered its job): a queued one, or one whose worker has
    been silent for a lease (it died). None when someone else holds it or it is finished, so a job
    delivered twice runs once. An item that has used up its attempts ends ``failed``."""
    stale = utcnow() - timedelta(seconds=settings.job_lease_seconds)
    silent = (Media.status == MediaStatus.PROCESSING.value) & (Media.heartbeat_at < stale) & ~_split_now()
    media = session.get(Media, media_id)
    if media is None:
        return None
    if media.attempts >= settings.job_max_attempts and _claimable(media, stale) and not _is_split(session, media):
        _fail_exhausted(session, media)
        return None
    return _take(session, media_id, (Media.status == MediaStatus.QUEUED.value) | silent)


def _split_now() -> ColumnElement[bool]:
    """The item's current attempt runs in segments: those have heartbeats of their own, and
    between them (segments waiting for a worker) the item itself is silent but alive."""
    return exists().where(VideoSegment.media_id == Media.id, VideoSegment.attempt == Media.attempts)


def _is_split(session: Session, media: Media) -> bool:
    return bool(session.scalar(select(_split_now()).where(Media.id == media.id)))


def _claimable(media: Media, stale: datetime) -> bool:
    if media.status == MediaStatus.QUEUED.value:
        return True
    silent = media.heartbeat_at is None or media.heartbeat_at < stale
    return media.status == MediaStatus.PROCESSING.value and silent


def _take(session: Session, media_id: str, condition: ColumnElement[bool]) -> Claim | None:
    now = utcnow()
    taken = session.execute(
        update(Media)
        .where(Media.id == media_id, condition)
        .values(
            status=MediaStatus.PROCESSING.value,
            started_at=now,
            heartbeat_at=now,
            progress=0,
            attempts=Media.attempts + 1,
        )
    )
    session.commit()
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    attempt = session.scalar(select(Media.attempts).where(Media.id == media_id))
    return Claim(media_id, int(attempt or 0))


def _fail_exhausted(session: Session, media: Media) -> None:
    """The job was started ``attempts`` times and its worker never finished: it kills workers."""
    failed = session.execute(
        update(Media)
        .where(Media.id == media.id, Media.status.in_([MediaStatus.QUEUED.value, MediaStatus.PROCESSING.value]))
        .values(status=MediaStatus.FAILED.value, error_message=PROCESSING_FAILED, processed_at=None)
    )
    if failed.rowcount == 1:  # type: ignore[attr-defined]
        log.error("media %s failed: its worker died %d times", media.id, media.attempts)
        session.refresh(media)
        webhooks.enqueue(session, media.account_id, "media.failed", webhooks.failed_payload(media))
    session.commit()


def requeue_interrupted(session: Session) -> int:
    """At start-up of the single-machine server: work left in ``processing`` by the process that
    died is queued again."""
    result = session.execute(
        update(Media).where(Media.status == MediaStatus.PROCESSING.value).values(status=MediaStatus.QUEUED.value)
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def due_for_dispatch(session: Session, settings: Settings) -> list[tuple[str, str]]:
    """Items whose job message may be lost (the broker restarted, or the worker holding it died
    silently): queued, or processing without a heartbeat, and not handed to the broker for a lease.
    Marks them dispatched now and returns ``(media id, media type)`` pairs to send again."""
    stale = utcnow() - timedelta(seconds=settings.job_lease_seconds)
    waiting = (Media.status == MediaStatus.QUEUED.value) | (
        (Media.status == MediaStatus.PROCESSING.value) & (Media.heartbeat_at < stale) & ~_split_now()
    )
    not_recent = Media.dispatched_at.is_(None) | (Media.dispatched_at < stale)
    rows = session.execute(
        select(Media.id, Media.media_type).where(waiting, not_recent, Media.created_at < stale).limit(500)
    ).all()
    due = []
    for media_id, media_type in rows:
        marked = session.execute(update(Media).where(Media.id == media_id, not_recent).values(dispatched_at=utcnow()))
        if marked.rowcount == 1:  # type: ignore[attr-defined]
            due.append((media_id, media_type))
    session.commit()
    return due


class Heartbeat:
    """While a job runs, a thread writes its sign of life every quarter lease (``beat``); a
    worker that is killed stops writing, and its job is retaken once the lease has passed."""

    def __init__(self, ctx: ServiceContext, name: str, beat: Callable[[Session], None]) -> None:
        self.ctx, self.name, self.beat = ctx, name, beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = self.ctx.settings.job_lease_seconds / 4
        while not self._stop.wait(interval):
            try:
                with self.ctx.sessions() as session:
                    self.beat(session)
                    session.commit()
            except Exception:  # a missed beat is harmless; the next one retries
                log.warning("heartbeat for %s failed", self.name, exc_info=True)


def media_heartbeat(ctx: ServiceContext, claimed: Claim) -> Heartbeat:
    def beat(session: Session) -> None:
        session.execute(
            update(Media)
            .where(Media.id == claimed.media_id, Media.attempts == claimed.attempt)
            .values(heartbeat_at=utcnow())
        )

    return Heartbeat(ctx, claimed.media_id, beat)


def process_media(ctx: ServiceContext, engine: DetectionEngine, claimed: Claim) -> None:
    """Every line logged while the job runs names the media it is about."""
    with log_context(media_id=claimed.media_id), media_heartbeat(ctx, claimed):
        _process(ctx, engine, claimed)


def _process(ctx: ServiceContext, engine: DetectionEngine, claimed: Claim) -> None:
    with ctx.sessions() as session:
        media = session.get(Media, claimed.media_id)
        if media is None:
            return
        account = session.get(Account, media.account_id)
        assert account is not None
        rendering = media.render_requested  # a render of reviewed detections: already counted
        if not rendering and not still_within_quota(session, account, ctx.settings, media):
            settle(session, claimed, status=MediaStatus.QUOTA_EXCEEDED.value, error_message="Monthly quota exceeded")
            session.commit()
            metrics.JOBS_FINISHED.labels(media.media_type, "quota_exceeded").inc()
            return
        try:
            outcome = _render(ctx, media, claimed) if rendering else _run_pipeline(ctx, engine, media, claimed)
        except Exception as error:
            log.exception("processing %s failed", claimed.media_id)
            session.rollback()
            finish_failed(session, claimed, failure_message(error))
            metrics.JOBS_FINISHED.labels(media.media_type, "failed").inc()
            return
        if outcome.preview_key is not None:
            finish_awaiting_review(ctx, session, claimed, account, outcome)
        else:
            finish_completed(ctx, session, claimed, account, outcome)
        metrics.JOBS_FINISHED.labels(media.media_type, "completed").inc()


def settle(session: Session, claimed: Claim, **values: object) -> bool:
    """Write a job's outcome only while its claim holds (same attempt, still processing): of two
    workers that both ran a job, exactly one result, one charge and one webhook count."""
    written = session.execute(
        update(Media)
        .where(
            Media.id == claimed.media_id,
            Media.status == MediaStatus.PROCESSING.value,
            Media.attempts == claimed.attempt,
        )
        .values(**values)
    )
    if written.rowcount != 1:  # type: ignore[attr-defined]
        log.warning("media %s: claim %d was lost; its outcome is dropped", claimed.media_id, claimed.attempt)
        return False
    return True


def result_key_for(media: Media, claimed: Claim) -> str:
    """One key per attempt: a worker that lost its claim deletes its own file, never the winner's."""
    assert media.original_key is not None
    extension = media.original_key.rsplit(".", 1)[-1]
    suffix = "" if claimed.attempt <= 1 else f"-{claimed.attempt}"
    return f"results/{media.account_id}/{media.id}{suffix}.{extension}"


@dataclass(frozen=True)
class Outcome:
    """What a job made: the redacted file (None for detection only and for review), the
    detections as stored, the video's plan, and the review preview (None unless held)."""

    result_key: str | None
    detections: list[dict[str, object]]
    video_plan: dict[str, object] | None = None
    preview_key: str | None = None
    rendered: bool = False
    job: str = "redact"  # or RENDER_JOB


RENDER_JOB = "render"


def _run_pipeline(ctx: ServiceContext, engine: DetectionEngine, media: Media, claimed: Claim) -> Outcome:
    """Detect, and (unless held for review or detection only) redact into a scratch file and
    store it. A held item gets a low-resolution preview instead."""
    assert media.original_key is not None
    categories = [PiiCategory(c) for c in media.pii_categories]
    obfuscation = ObfuscationType(media.obfuscation_type)
    fixed = fixed_regions_of(media)
    held_back = media.review or media.mode == MediaMode.DETECT.value  # nothing released by this job
    extension = media.original_key.rsplit(".", 1)[-1]
    kind = media.media_type
    plan: dict[str, object] | None = None
    with tempfile.TemporaryDirectory(dir=ctx.settings.scratch_dir()) as tmp, ExitStack() as held:
        with timed(kind, "fetch"):
            source = held.enter_context(ctx.storage.local_copy(media.original_key))
        target = None if held_back else Path(tmp) / f"redacted.{extension}"
        with timed(kind, "redact") as clock:
            if kind == MediaType.IMAGE.value:
                if target is None:
                    image = detect_image(source, categories, engine, fixed)
                else:
                    image = redact_image(source, target, categories, obfuscation, engine, fixed)
                found = [d.as_dict() | {"detector": d.detector} for d in image.detections]
            else:
                progress = _ProgressWriter(ctx, claimed)
                codecs = video_codecs(ctx.settings)
                video = redact_video(
                    source,
                    target,
                    media.file_format,
                    categories,
                    obfuscation,
                    engine,
                    progress,
                    codecs=codecs,
                    partial_looks=ctx.settings.video_partial_looks,
                    fixed=fixed,
                )
                found = [
                    d.detection.as_dict() | {"detector": d.detection.detector, "frame": d.frame, "track": d.track}
                    for d in video.detections
                ]
                plan = video.plan.as_json() if video.plan is not None else None
        if kind == MediaType.VIDEO.value:
            metrics.VIDEO_FRAMES.inc(video.frames)
            metrics.VIDEO_SECONDS.inc(clock.seconds)
        detections = review.stored(found)
        if target is not None:
            result_key = result_key_for(media, claimed)
            with timed(kind, "store"):
                ctx.storage.save_file(result_key, target)
            return Outcome(result_key, detections, plan, rendered=True)
        if not media.review:
            return Outcome(None, detections, plan)
        hidden = review.hidden_of(media, detections, plan)  # not stored yet: the job's outcome stores them
        preview_key = _store_preview(ctx, media, hidden, source, Path(tmp), claimed)
        return Outcome(None, detections, plan, preview_key)


def _store_preview(ctx: ServiceContext, media: Media, hidden: Hidden, source: Path, tmp: Path, claimed: Claim) -> str:
    """Render the low-resolution preview of what ``hidden`` hides, and store it."""
    target = tmp / ("preview.jpg" if media.media_type == MediaType.IMAGE.value else "preview.mp4")
    obfuscation, fixed = ObfuscationType(media.obfuscation_type), fixed_regions_of(media)
    with timed(media.media_type, "preview"):
        codecs = video_codecs(ctx.settings)
        render(source, target, media.file_format, hidden, obfuscation, fixed, codecs, preview=True)
        key = f"previews/{media.account_id}/{media.id}-{claimed.attempt}.{target.suffix[1:]}"
        ctx.storage.save_file(key, target)
    return key


def _render(ctx: ServiceContext, media: Media, claimed: Claim) -> Outcome:
    """Render the stored (reviewed) detections into a new version of the redacted file."""
    assert media.original_key is not None
    extension = media.original_key.rsplit(".", 1)[-1]
    obfuscation, fixed = ObfuscationType(media.obfuscation_type), fixed_regions_of(media)
    kind = media.media_type
    with tempfile.TemporaryDirectory(dir=ctx.settings.scratch_dir()) as tmp, ExitStack() as held:
        with timed(kind, "fetch"):
            source = held.enter_context(ctx.storage.local_copy(media.original_key))
        target = Path(tmp) / f"redacted.{extension}"
        with timed(kind, "render"):
            render(
                source,
                target,
                media.file_format,
                review.hidden_of(media),
                obfuscation,
                fixed,
                video_codecs(ctx.settings),
            )
        key = f"results/{media.account_id}/{media.id}-v{media.renders + 1}-{claimed.attempt}.{extension}"
        with timed(kind, "store"):
            ctx.storage.save_file(key, target)
    return Outcome(key, list(media.detections or []), media.video_plan, rendered=True, job=RENDER_JOB)


def video_codecs(settings: Settings) -> VideoCodecs:
    """The FFmpeg codecs the settings choose (software unless a GPU's are configured)."""
    return VideoCodecs(settings.video_hwaccel, settings.video_h264_encoder)


class _Clock:
    seconds = 0.0


@contextmanager
def timed(media_type: str, stage: str) -> Iterator[_Clock]:
    clock = _Clock()
    started = time.perf_counter()
    try:
        yield clock
    finally:
        clock.seconds = time.perf_counter() - started
        metrics.STAGE_SECONDS.labels(media_type, stage).observe(clock.seconds)


class _ProgressWriter:
    """Writes video progress (0-100) to the row, at most once per whole percent."""

    def __init__(self, ctx: ServiceContext, claimed: Claim) -> None:
        self.ctx, self.claimed, self.last = ctx, claimed, 0

    def __call__(self, fraction: float) -> None:
        percent = min(99, int(fraction * 100))
        if percent > self.last:
            self.last = percent
            with self.ctx.sessions() as session:
                session.execute(
                    update(Media)
                    .where(Media.id == self.claimed.media_id, Media.attempts == self.claimed.attempt)
                    .values(progress=percent)
                )
                session.commit()


def finish_completed(ctx: ServiceContext, session: Session, claimed: Claim, account: Account, outcome: Outcome) -> None:
    """Release: the redacted file (or, detection only, the detections), the webhook, retention."""
    now = utcnow()
    previous = session.get(Media, claimed.media_id)
    old_keys = [k for k in (previous.result_key, previous.preview_key) if k] if previous is not None else []
    values: dict[str, object] = {
        "status": MediaStatus.COMPLETED.value,
        "processed_at": now,
        "progress": 100,
        "detections": outcome.detections,
        "video_plan": outcome.video_plan,
        "error_message": None,
        "render_requested": False,
        "preview_key": None,
    }
    if outcome.rendered:
        values |= {"result_key": outcome.result_key, "renders": Media.renders + 1, "mode": MediaMode.REDACT.value}
    if not settle(session, claimed, **values):  # deleted by its owner meanwhile, or finished by a worker that retook it
        session.rollback()
        if outcome.result_key is not None:
            ctx.storage.delete(outcome.result_key)
        return
    session.expire_all()
    media = session.get(Media, claimed.media_id)
    assert media is not None
    _audit_finished(session, media, outcome)
    if media.mode == MediaMode.DETECT.value:
        webhooks.enqueue(session, account.id, "media.detected", webhooks.detected_payload(media, ctx.settings.base_url))
    else:
        webhooks.enqueue(
            session, account.id, "media.processed", webhooks.processed_payload(media, ctx.settings.base_url)
        )
    if account.retention_hours == 0 and media.original_key is not None:
        ctx.storage.delete(media.original_key)
        mark_original_deleted(media)
        audit.record(session, media.id, audit.SYSTEM, "original_deleted", retention_hours=0)
        webhooks.enqueue(session, account.id, "media.source_deleted", webhooks.source_deleted_payload(media))
    else:
        media.original_delete_after = now + timedelta(hours=account.retention_hours)
    session.commit()
    for key in old_keys:  # the previous version, once the new one is released
        if key != media.result_key:
            ctx.storage.delete(key)


def _audit_finished(session: Session, media: Media, outcome: Outcome) -> None:
    if outcome.job != RENDER_JOB:
        audit.record(session, media.id, audit.DETECTOR, "detected", counts=object_counts(media))
    if outcome.rendered:
        audit.record(session, media.id, audit.SYSTEM, "rendered", version=media.renders, result_key=media.result_key)
    audit.record(session, media.id, audit.SYSTEM, "released", mode=media.mode)


def finish_awaiting_review(
    ctx: ServiceContext, session: Session, claimed: Claim, account: Account, outcome: Outcome
) -> None:
    """Hold the item: detections and preview stored, nothing released, the original kept."""
    done = settle(
        session,
        claimed,
        status=MediaStatus.AWAITING_REVIEW.value,
        processed_at=utcnow(),
        progress=100,
        detections=outcome.detections,
        video_plan=outcome.video_plan,
        preview_key=outcome.preview_key,
        original_delete_after=None,
        error_message=None,
    )
    if not done:
        session.rollback()
        if outcome.preview_key is not None:
            ctx.storage.delete(outcome.preview_key)
        return
    session.expire_all()
    media = session.get(Media, claimed.media_id)
    assert media is not None
    audit.record(session, media.id, audit.DETECTOR, "detected", counts=object_counts(media))
    audit.record(session, media.id, audit.SYSTEM, "held_for_review")
    webhooks.enqueue(
        session, account.id, "media.awaiting_review", webhooks.awaiting_review_payload(media, ctx.settings.base_url)
    )
    session.commit()


def failure_message(error: BaseException) -> str:
    """What the user reads on a failed job: the cause, where it is one they can act on or wait out."""
    if getattr(error, "errno", None) in DISK_FULL:
        return "Processing failed: the server's disk is full, so the result could not be written; retry later"
    return PROCESSING_FAILED


def finish_failed(session: Session, claimed: Claim, message: str = PROCESSING_FAILED) -> None:
    if not settle(session, claimed, status=MediaStatus.FAILED.value, error_message=message, processed_at=None):
        session.rollback()
        return
    media = session.get(Media, claimed.media_id)
    assert media is not None
    session.refresh(media)
    webhooks.enqueue(session, media.account_id, "media.failed", webhooks.failed_payload(media))
    session.commit()
