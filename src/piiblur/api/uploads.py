"""Turning a submitted form into queued media: shared by the API and the dashboard's upload box."""

from __future__ import annotations

from collections.abc import Collection

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from piiblur.config import Settings
from piiblur.db.models import Account, Media
from piiblur.domain import ObfuscationType, PiiCategory, parse_categories
from piiblur.services import media as media_service
from piiblur.services.errors import InvalidInputError
from piiblur.storage import Storage


async def submit_form(
    form: FormData,
    account: Account,
    session: Session,
    storage: Storage,
    settings: Settings,
    supported: Collection[PiiCategory],
) -> Media:
    """``file``, ``pii_categories[]`` or ``pii_categories`` (repeated or comma-separated) and
    ``obfuscation_type``; raises ``InvalidInputError`` with the user-facing reason."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInputError("file is required")
    raw = [str(v) for v in form.getlist("pii_categories[]") + form.getlist("pii_categories")]
    try:
        categories = parse_categories(raw)
    except ValueError as error:
        raise InvalidInputError(str(error)) from None
    request = media_service.MediaRequest(
        upload.filename or "upload", categories, _obfuscation(form.get("obfuscation_type"))
    )
    return await run_in_threadpool(
        media_service.submit_media, session, storage, settings, account, upload.file, request, supported
    )


def _obfuscation(value: object) -> ObfuscationType:
    if value is None or value == "":
        return ObfuscationType.BLUR
    try:
        return ObfuscationType(str(value))
    except ValueError:
        raise InvalidInputError("obfuscation_type must be blur or pixelation") from None
