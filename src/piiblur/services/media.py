"""Submitting, reading, listing and deleting media for one account."""

from __future__ import annotations

import math
import tempfile
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from piiblur.config import Settings
from piiblur.db.models import Account, Media, new_id, utcnow
from piiblur.domain import MediaMode, MediaStatus, MediaType, ObfuscationType, PiiCategory
from piiblur.redact.probe import MediaInfo, UnsupportedMediaError, probe
from piiblur.services import audit
from piiblur.services.errors import InvalidInputError, NotFoundError, PayloadTooLargeError, QuotaExceededError
from piiblur.services.usage import billed_minutes, check_quota
from piiblur.storage import Storage
from piiblur.storage.base import CHUNK_SIZE

PER_PAGE = 20


@dataclass(frozen=True)
class MediaRequest:
    """``review``: hold for review (None: the account's setting); ``mode``: redact or detect only;
    ``always_hide`` / ``never_hide``: [x, y, w, h] boxes in pixels, on every frame."""

    filename: str
    categories: Sequence[PiiCategory]
    obfuscation: ObfuscationType
    review: bool | None = None
    mode: MediaMode = MediaMode.REDACT
    always_hide: Sequence[Sequence[float]] = ()
    never_hide: Sequence[Sequence[float]] = ()


@dataclass(frozen=True)
class MediaPage:
    items: list[Media]
    current_page: int
    last_page: int
    per_page: int
    total: int


def submit_media(
    session: Session,
    storage: Storage,
    settings: Settings,
    account: Account,
    upload: BinaryIO,
    request: MediaRequest,
    supported: Collection[PiiCategory],
    actor: str = "api",
) -> Media:
    """Validate an upload, store the original and queue it. Nothing is stored if any check fails."""
    if not request.categories:
        raise InvalidInputError("pii_categories is required: give at least one category")
    unsupported = [c.value for c in request.categories if c not in supported]
    if unsupported:
        raise InvalidInputError(f"No detector is installed for: {', '.join(unsupported)}")
    with tempfile.NamedTemporaryFile(dir=settings.scratch_dir(), prefix="upload-") as spooled:
        _copy_limited(upload, spooled, settings.max_upload_bytes)  # type: ignore[arg-type]
        spooled.flush()
        size = spooled.tell()
        info = _probe_upload(Path(spooled.name), settings)
        minutes = billed_minutes(info.duration_seconds or 0) if info.media_type is MediaType.VIDEO else 0
        check_quota(session, account, settings, info.media_type, minutes)  # early: before storing
        session.rollback()  # no transaction held open while the bytes are stored
        media_id = new_id()
        key = f"originals/{account.id}/{media_id}.{info.extension}"
        spooled.seek(0)
        storage.save(key, spooled)  # type: ignore[arg-type]
    # The account row is locked from the final check to the insert: concurrent uploads of one
    # account (on any API process) pass this one at a time, so the quota is never overspent.
    session.execute(select(Account.id).where(Account.id == account.id).with_for_update())
    try:
        check_quota(session, account, settings, info.media_type, minutes)
    except QuotaExceededError:
        session.rollback()
        storage.delete(key)
        raise
    media = Media(
        id=media_id,
        account_id=account.id,
        status=MediaStatus.QUEUED.value,
        original_filename=_clean_filename(request.filename),
        media_type=info.media_type.value,
        file_format=info.file_format,
        size_bytes=size,
        width=info.width,
        height=info.height,
        duration_seconds=info.duration_seconds,
        billed_video_minutes=minutes,
        pii_categories=[c.value for c in request.categories],
        obfuscation_type=request.obfuscation.value,
        original_key=key,
        dispatched_at=utcnow(),  # handed to the job queue right after this commit
        mode=request.mode.value,
        review=request.review if request.review is not None else account.review_by_default,
        fixed_regions=_fixed_regions(request, info),
    )
    session.add(media)
    session.flush()
    audit.record(
        session,
        media.id,
        actor,
        "uploaded",
        categories=media.pii_categories,
        mode=media.mode,
        review=media.review,
        size_bytes=size,
    )
    session.commit()
    return media


MAX_FIXED_REGIONS = 100  # per list


def _fixed_regions(request: MediaRequest, info: MediaInfo) -> dict[str, list[list[float]]] | None:
    """The request's always/never-hide boxes, checked against the picture's size."""
    if not request.always_hide and not request.never_hide:
        return None
    width, height = info.width or 0, info.height or 0
    regions = {}
    for name, boxes in (("always_hide", request.always_hide), ("never_hide", request.never_hide)):
        if len(boxes) > MAX_FIXED_REGIONS:
            raise InvalidInputError(f"{name} takes at most {MAX_FIXED_REGIONS} boxes")
        regions[name] = [_fixed_box(name, box, width, height) for box in boxes]
    return regions


def _fixed_box(name: str, box: Sequence[float], width: int, height: int) -> list[float]:
    x, y, w, h = box
    x0, y0, x1, y1 = max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h)
    if w <= 0 or h <= 0 or x1 - x0 < 1 or y1 - y0 < 1:
        raise InvalidInputError(f"{name} box {list(box)} has no area inside the {width}x{height} picture")
    return [x0, y0, x1 - x0, y1 - y0]


def _copy_limited(source: BinaryIO, target: BinaryIO, limit: int) -> None:
    written = 0
    while chunk := source.read(CHUNK_SIZE):
        written += len(chunk)
        if written > limit:
            raise PayloadTooLargeError(f"File is larger than the {limit // 1024**2} MB limit")
        target.write(chunk)


def _probe_upload(path: Path, settings: Settings) -> MediaInfo:
    try:
        info = probe(path, settings.max_image_pixels)
    except UnsupportedMediaError as error:
        raise InvalidInputError(str(error)) from None
    if info.duration_seconds is not None and info.duration_seconds > settings.max_video_seconds:
        limit = settings.max_video_seconds / 60
        raise InvalidInputError(f"Video is longer than the {limit:g} minute limit ({info.duration_seconds:.0f} s)")
    return info


def _clean_filename(name: str) -> str:
    """Keep the user's name for display, without any path a browser or client may have sent, and
    without characters that break headers or mislead readers: control characters (a NUL makes
    every later download's Content-Disposition illegal) and bidirectional overrides."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if not _hidden_character(ch)).strip()
    return (base or "upload")[:255]


def _hidden_character(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf") or ch in "\u2028\u2029"


def get_media(session: Session, account: Account, media_id: str) -> Media:
    """Another account's media is reported exactly like a missing one: existence never leaks."""
    media = session.get(Media, media_id)
    if media is None or media.account_id != account.id:
        raise NotFoundError("Media not found")
    return media


def list_media(
    session: Session,
    account: Account,
    status: MediaStatus | None = None,
    media_type: MediaType | None = None,
    page: int = 1,
) -> MediaPage:
    conditions = [Media.account_id == account.id]
    if status is not None:
        conditions.append(Media.status == status.value)
    if media_type is not None:
        conditions.append(Media.media_type == media_type.value)
    total = int(session.scalar(select(func.count()).select_from(Media).where(*conditions)) or 0)
    last_page = max(1, math.ceil(total / PER_PAGE))
    items = session.scalars(
        select(Media)
        .where(*conditions)
        .order_by(Media.created_at.desc(), Media.id.desc())
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE)
    )
    return MediaPage(list(items), page, last_page, PER_PAGE, total)


def result_key(media: Media) -> str:
    if media.status == MediaStatus.AWAITING_REVIEW.value:
        raise NotFoundError("Media is held for review: nothing is released until it is rendered (POST .../render)")
    if media.status == MediaStatus.COMPLETED.value and media.mode == MediaMode.DETECT.value:
        raise NotFoundError("Detection only: no redacted file was rendered (see .../detections, or POST .../render)")
    if media.status != MediaStatus.COMPLETED.value or media.result_key is None:
        raise NotFoundError("Media has not been processed yet")
    return media.result_key


def preview_key(media: Media) -> str:
    if media.preview_key is None:
        raise NotFoundError("No preview: previews are made for items held for review, until they are rendered")
    return media.preview_key


def preview_content_type(key: str) -> str:
    """Previews are JPEG for photos and MP4 for videos (``processing._store_preview``)."""
    return "image/jpeg" if key.endswith(".jpg") else "video/mp4"


def original_key(media: Media) -> str:
    if media.original_key is None:
        raise NotFoundError("Original file has been deleted")
    return media.original_key


def delete_media(session: Session, storage: Storage, account: Account, media_id: str) -> None:
    """Remove the row and both files. Files go first: a crash in between leaves a row pointing at
    nothing (harmless, deletable again) rather than orphaned personal data on disk."""
    media = get_media(session, account, media_id)
    for key in (media.original_key, media.result_key, media.preview_key):
        if key is not None:
            storage.delete(key)
    session.delete(media)
    session.commit()


def download_name(media: Media, suffix: str = "") -> str:
    stem = _clean_filename(media.original_filename).rsplit(".", 1)[0] or "media"  # rows stored before cleaning
    extension = "jpg" if media.file_format == "jpeg" else media.file_format
    return f"{stem}{suffix}.{extension}"


def mark_original_deleted(media: Media) -> None:
    media.original_key = None
    media.original_deleted_at = utcnow()


def object_counts(media: Media) -> dict[str, int]:
    """Objects found per category: detections of a photo; distinct tracks of a video (a face seen
    on 40 keyframes is one face). Rows stored before videos had tracks count each detection."""
    seen: set[tuple[str, object]] = set()
    counts: dict[str, int] = {}
    for index, detection in enumerate(media.detections or []):
        category = str(detection["category"])
        identity = (category, detection.get("track", f"#{index}"))
        if identity not in seen:
            seen.add(identity)
            counts[category] = counts.get(category, 0) + 1
    return counts


def keyframe_counts(media: Media) -> dict[str, int]:
    """Detections per category summed over a video's keyframes (how often things were seen)."""
    counts: dict[str, int] = {}
    for detection in media.detections or []:
        category = str(detection["category"])
        counts[category] = counts.get(category, 0) + 1
    return counts


def daily_counts(session: Session, account: Account, since: datetime, until: date) -> list[tuple[str, int]]:
    """Media accepted per day from ``since`` to ``until`` inclusive (the dashboard's chart shows the
    whole month, days to come included), oldest first."""
    rows = session.scalars(select(Media.created_at).where(Media.account_id == account.id, Media.created_at >= since))
    counts: dict[str, int] = {}
    for created in rows:
        day = created.date().isoformat()
        counts[day] = counts.get(day, 0) + 1
    days = [(since.date() + timedelta(days=n)) for n in range((until - since.date()).days + 1)]
    return [(day.isoformat(), counts.get(day.isoformat(), 0)) for day in days]
