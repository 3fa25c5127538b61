"""Turning a submitted form into queued media: shared by the API and the dashboard's upload box."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from piiblur.api.slow_clients import RequestBodyTooSlowError
from piiblur.config import Settings
from piiblur.db.models import Account, Media
from piiblur.domain import MAX_CATEGORY_ENTRIES, MediaMode, ObfuscationType, PiiCategory, parse_categories
from piiblur.jobs import JobQueue
from piiblur.services import media as media_service
from piiblur.services.errors import InvalidInputError, PayloadTooLargeError
from piiblur.storage import Storage

log = logging.getLogger(__name__)

MULTIPART_OVERHEAD = 1024 * 1024
# A url-encoded form is parsed too, so that a form without a file gets the precise 422 "file is required".
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# Fields the parser accepts before it stops reading: far more than a real form has (file, up to
# MAX_CATEGORY_ENTRIES categories, obfuscation_type, a CSRF token), few enough to bound the work.
MAX_FORM_FIELDS = 4 * MAX_CATEGORY_ENTRIES


@dataclass(frozen=True)
class Intake:
    """Everything an upload route needs to turn a form into queued media (the API's two upload
    routes and the dashboard's upload box), as one dependency."""

    session: Session
    storage: Storage
    settings: Settings
    queue: JobQueue
    supported: Collection[PiiCategory]

    async def read_form(self, request: Request) -> FormData:
        return await read_upload_form(request, self.settings)

    async def submit(self, form: FormData, account: Account, actor: str, mode: MediaMode = MediaMode.REDACT) -> Media:
        """Store the upload, queue it and wake a worker; the form's spooled file is closed either way."""
        try:
            media = await submit_form(
                form, account, self.session, self.storage, self.settings, self.supported, actor, mode
            )
        finally:
            await form.close()
        self.queue.notify(media.id, media.media_type)
        return media


async def read_upload_form(request: Request, settings: Settings) -> FormData:
    """The upload form, parsed with bounds; every way it can be wrong becomes a precise error
    (and a log line carrying the request id, since the parser's own message names no request)."""
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        raise HTTPException(400, "Request body must be multipart/form-data")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes + MULTIPART_OVERHEAD:
        raise PayloadTooLargeError(f"File is larger than the {settings.max_upload_bytes // 1024**2} MB limit")
    try:
        return await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
    except Exception as error:
        raise _form_error(error) from None


def _form_error(error: Exception) -> Exception:
    """Starlette reports the parser's bounds as a 400 whose text says which; a broken body as
    "Invalid multipart data.", with the parser's own reason only in the exception chain."""
    if (too_slow := _too_slow(error)) is not None:
        log.info("upload refused while arriving: %s", too_slow.detail)
        return too_slow
    if _body_too_large(error):  # the app's body limit stopped the body while it arrived (chunked too)
        log.info("upload refused while arriving: over the body limit")
        return PayloadTooLargeError("File is larger than the limit")
    if (bound := _bound_exceeded(error)) is not None:
        log.info("upload form refused: %s", bound)
        return InvalidInputError(bound)
    log.warning("malformed multipart body: %s", _root_cause(error))
    return HTTPException(400, "Malformed multipart body")


def _bound_exceeded(error: Exception) -> str | None:
    """Which of the parser's bounds the form went past, in the user's terms; None for none."""
    detail = str(error.detail) if isinstance(error, StarletteHTTPException) else ""
    if detail.startswith("Too many fields"):
        return (
            f"Too many form fields: at most {MAX_FORM_FIELDS} "
            f"(pii_categories takes at most {MAX_CATEGORY_ENTRIES} entries)"
        )
    if detail.startswith("Too many files"):
        return "Send one file per request (field 'file')"
    if "exceeded maximum size" in detail:
        return f"A form field other than the file is too large: {detail}"
    if "Maximum header size exceeded" in str(_root_cause(error)):  # python-multipart's bound per part header
        return "A form part's header is too long (a file name takes at most 4,000 characters)"
    return None


def _body_too_large(error: BaseException) -> bool:
    """Somewhere in the chain: Starlette's 413 from counting the body as it is received."""
    return any(isinstance(link, StarletteHTTPException) and link.status_code == 413 for link in _chain(error))


def _too_slow(error: BaseException) -> RequestBodyTooSlowError | None:
    """Somewhere in the chain: the body deadline, raised by ``receive`` inside the parser."""
    return next((link for link in _chain(error) if isinstance(link, RequestBodyTooSlowError)), None)


def _root_cause(error: BaseException) -> BaseException:
    *_, last = _chain(error)
    return last


def _chain(error: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = error
    while current is not None:
        yield current
        current = current.__cause__ or current.__context__


async def submit_form(
    form: FormData,
    account: Account,
    session: Session,
    storage: Storage,
    settings: Settings,
    supported: Collection[PiiCategory],
    actor: str,
    mode: MediaMode = MediaMode.REDACT,
) -> Media:
    """``file``, ``pii_categories[]`` or ``pii_categories`` (repeated or comma-separated),
    ``obfuscation_type``, and our additions ``review`` (true/false), ``always_hide`` and
    ``never_hide`` (JSON lists of [x, y, w, h] boxes); raises ``InvalidInputError`` with the
    user-facing reason."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInputError("file is required")
    raw = [str(v) for v in form.getlist("pii_categories[]") + form.getlist("pii_categories")]
    try:
        categories = parse_categories(raw)
    except ValueError as error:
        raise InvalidInputError(str(error)) from None
    request = media_service.MediaRequest(
        upload.filename or "upload",
        categories,
        _obfuscation(form.get("obfuscation_type")),
        review=_flag("review", form.get("review")),
        mode=mode,
        always_hide=_boxes("always_hide", form.get("always_hide")),
        never_hide=_boxes("never_hide", form.get("never_hide")),
    )
    return await run_in_threadpool(
        media_service.submit_media, session, storage, settings, account, upload.file, request, supported, actor
    )


TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _flag(name: str, value: object) -> bool | None:
    if value is None or value == "":
        return None
    word = str(value).strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise InvalidInputError(f"{name} must be true or false")


def _boxes(name: str, value: object) -> list[list[float]]:
    """A JSON list of boxes: ``[[x, y, w, h], ...]`` or ``[{"box": [x, y, w, h]}, ...]``."""
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a JSON list of [x, y, width, height] boxes")
    try:
        parsed = json.loads(value)
    except ValueError:
        raise InvalidInputError(f"{name} is not valid JSON: give a list of [x, y, width, height] boxes") from None
    if not isinstance(parsed, list):
        raise InvalidInputError(f"{name} must be a JSON list of [x, y, width, height] boxes")
    boxes = []
    for item in parsed:
        box = item.get("box") if isinstance(item, dict) else item
        if (
            not isinstance(box, list)
            or len(box) != 4
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box)
        ):
            raise InvalidInputError(f"{name}: every box must be [x, y, width, height], four numbers")
        boxes.append([float(v) for v in box])
    return boxes


def _obfuscation(value: object) -> ObfuscationType:
    if value is None:  # not sent: the contract's default. Sent empty is no method at all.
        return ObfuscationType.BLUR
    try:
        return ObfuscationType(str(value))
    except ValueError:
        raise InvalidInputError("obfuscation_type must be blur or pixelation") from None
