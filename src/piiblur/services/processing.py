"""The job body: take one queued media item through the redaction pipeline.

Queue adapters (``piiblur.jobs``) decide *when* this runs and on which worker; this module decides
*what* happens: claim, re-check the quota, redact, store the result, apply retention.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from piiblur.db.models import Account, Media, utcnow
from piiblur.detect import DetectionEngine
from piiblur.domain import MediaStatus, MediaType, ObfuscationType, PiiCategory
from piiblur.logs import log_context
from piiblur.redact.image import redact_image
from piiblur.redact.video import redact_video
from piiblur.services import webhooks
from piiblur.services.context import ServiceContext
from piiblur.services.media import mark_original_deleted
from piiblur.services.usage import still_within_quota

log = logging.getLogger(__name__)

PROCESSING_FAILED = "Processing failed"


def claim_next(session: Session) -> str | None:
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
        claimed = session.execute(
            update(Media)
            .where(Media.id == media_id, Media.status == MediaStatus.QUEUED.value)
            .values(status=MediaStatus.PROCESSING.value, started_at=utcnow(), progress=0)
        )
        session.commit()
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return media_id


def requeue_interrupted(session: Session) -> int:
    """At start-up: work left in ``processing`` by a process that died is queued again."""
    result = session.execute(
        update(Media).where(Media.status == MediaStatus.PROCESSING.value).values(status=MediaStatus.QUEUED.value)
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def process_media(ctx: ServiceContext, engine: DetectionEngine, media_id: str) -> None:
    """Every line logged while the job runs names the media it is about."""
    with log_context(media_id=media_id):
        _process(ctx, engine, media_id)


def _process(ctx: ServiceContext, engine: DetectionEngine, media_id: str) -> None:
    with ctx.sessions() as session:
        media = session.get(Media, media_id)
        if media is None:
            return
        account = session.get(Account, media.account_id)
        assert account is not None
        if not still_within_quota(session, account, ctx.settings, media):
            media.status = MediaStatus.QUOTA_EXCEEDED.value
            media.error_message = "Monthly quota exceeded"
            session.commit()
            return
        try:
            result_key, detections = _run_pipeline(ctx, engine, media)
        except Exception:
            log.exception("processing %s failed", media_id)
            session.rollback()
            _finish_failed(session, media_id)
            return
        _finish_completed(ctx, session, media_id, account, result_key, detections)


def _run_pipeline(ctx: ServiceContext, engine: DetectionEngine, media: Media) -> tuple[str, list[dict[str, object]]]:
    """Redact into a scratch file and store it; returns the result's key and the detections."""
    assert media.original_key is not None
    categories = [PiiCategory(c) for c in media.pii_categories]
    obfuscation = ObfuscationType(media.obfuscation_type)
    extension = media.original_key.rsplit(".", 1)[-1]
    result_key = f"results/{media.account_id}/{media.id}.{extension}"
    with ctx.storage.local_copy(media.original_key) as source, tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"redacted.{extension}"
        if media.media_type == MediaType.IMAGE.value:
            found = [d.as_dict() for d in redact_image(source, target, categories, obfuscation, engine).detections]
        else:
            progress = _ProgressWriter(ctx, media.id)
            video = redact_video(source, target, media.file_format, categories, obfuscation, engine, progress)
            found = [d.detection.as_dict() | {"frame": d.frame, "track": d.track} for d in video.detections]
        ctx.storage.save_file(result_key, target)
    return result_key, found


class _ProgressWriter:
    """Writes video progress (0-100) to the row, at most once per whole percent."""

    def __init__(self, ctx: ServiceContext, media_id: str) -> None:
        self.ctx, self.media_id, self.last = ctx, media_id, 0

    def __call__(self, fraction: float) -> None:
        percent = min(99, int(fraction * 100))
        if percent > self.last:
            self.last = percent
            with self.ctx.sessions() as session:
                session.execute(update(Media).where(Media.id == self.media_id).values(progress=percent))
                session.commit()


def _finish_completed(
    ctx: ServiceContext,
    session: Session,
    media_id: str,
    account: Account,
    result_key: str,
    detections: list[dict[str, object]],
) -> None:
    session.expire_all()  # re-read: the owner may have deleted it while it was processing
    media = session.get(Media, media_id)
    if media is None:
        ctx.storage.delete(result_key)
        return
    now = utcnow()
    media.status = MediaStatus.COMPLETED.value
    media.result_key = result_key
    media.processed_at = now
    media.progress = 100
    media.detections = detections
    media.error_message = None
    webhooks.enqueue(session, account.id, "media.processed", webhooks.processed_payload(media, ctx.settings.base_url))
    if account.retention_hours == 0 and media.original_key is not None:
        ctx.storage.delete(media.original_key)
        mark_original_deleted(media)
        webhooks.enqueue(session, account.id, "media.source_deleted", webhooks.source_deleted_payload(media))
    else:
        media.original_delete_after = now + timedelta(hours=account.retention_hours)
    session.commit()


def _finish_failed(session: Session, media_id: str) -> None:
    media = session.get(Media, media_id)
    if media is None:
        return
    media.status = MediaStatus.FAILED.value
    media.error_message = PROCESSING_FAILED
    media.processed_at = None
    webhooks.enqueue(session, media.account_id, "media.failed", webhooks.failed_payload(media))
    session.commit()
