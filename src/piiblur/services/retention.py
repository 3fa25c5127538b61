"""Deleting originals whose retention period has passed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from piiblur.db.models import Media, utcnow
from piiblur.services import webhooks
from piiblur.services.context import ServiceContext
from piiblur.services.media import mark_original_deleted


def delete_due_originals(ctx: ServiceContext, now: datetime | None = None) -> list[str]:
    """Delete every original kept past its retention, and tell the account's webhooks; returns
    the media ids affected. ``now`` lets operators (and tests) run the janitor for a given time."""
    moment = now or utcnow()
    deleted: list[str] = []
    with ctx.sessions() as session:
        due = session.scalars(
            select(Media).where(Media.original_key.is_not(None), Media.original_delete_after <= moment)
        )
        for media in due:
            assert media.original_key is not None
            ctx.storage.delete(media.original_key)
            mark_original_deleted(media)
            webhooks.enqueue(session, media.account_id, "media.source_deleted", webhooks.source_deleted_payload(media))
            deleted.append(media.id)
        session.commit()
    return deleted
