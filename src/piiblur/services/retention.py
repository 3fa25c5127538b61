"""Deleting originals whose retention period has passed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from piiblur.db.models import Media, utcnow
from piiblur.services import webhooks
from piiblur.services.context import ServiceContext


def delete_due_originals(ctx: ServiceContext, now: datetime | None = None) -> list[str]:
    """Delete every original kept past its retention, and tell the account's webhooks; returns
    the media ids affected. ``now`` lets operators (and tests) run the janitor for a given time."""
    moment = now or utcnow()
    deleted: list[str] = []
    with ctx.sessions() as session:
        due = session.execute(
            select(Media.id, Media.original_key).where(
                Media.original_key.is_not(None), Media.original_delete_after <= moment
            )
        ).all()
        for media_id, key in due:
            assert key is not None
            # The file goes first (deletes are idempotent; a crash after it leaves the row to be
            # swept again, never a file without a row); then a conditional UPDATE: of several
            # janitors only one records it and reports it.
            ctx.storage.delete(key)
            taken = session.execute(
                update(Media)
                .where(Media.id == media_id, Media.original_key == key)
                .values(original_key=None, original_deleted_at=utcnow())
            )
            session.commit()
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                continue
            media = session.get(Media, media_id)
            if media is not None:
                webhooks.enqueue(
                    session, media.account_id, "media.source_deleted", webhooks.source_deleted_payload(media)
                )
                session.commit()
            deleted.append(media_id)
    return deleted
