"""Monthly quotas: what an account has used in the current calendar month (UTC).

Counting rules (documented in the README):
- an image counts once it is accepted (queued, processing or completed); failed and
  quota-exceeded media are not billed;
- a video is billed in whole minutes, rounded up per video (a 61 s clip costs 2 minutes).
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from piiblur.config import Settings
from piiblur.db.models import Account, Media, utcnow
from piiblur.domain import MediaStatus, MediaType, Plan
from piiblur.services.errors import QuotaExceededError

BILLED_STATUSES = (MediaStatus.QUEUED, MediaStatus.PROCESSING, MediaStatus.COMPLETED, MediaStatus.AWAITING_REVIEW)


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive, as the contract shows it

    @property
    def start_at(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)


@dataclass(frozen=True)
class Usage:
    plan: Plan
    period: Period
    images_used: int
    images_limit: int
    video_minutes_used: int
    video_minutes_limit: int


def billing_period(now: datetime) -> Period:
    last_day = calendar.monthrange(now.year, now.month)[1]
    return Period(date(now.year, now.month, 1), date(now.year, now.month, last_day))


def billed_minutes(duration_seconds: float) -> int:
    return max(1, math.ceil(duration_seconds / 60 - 1e-9))


def account_limits(account: Account, settings: Settings) -> tuple[int, int, int]:
    """(requests/minute, images/month, video minutes/month), per-account overrides first."""
    plan = settings.limits_for(Plan(account.plan))
    return (
        account.requests_per_minute or plan.requests_per_minute,
        account.images_per_month if account.images_per_month is not None else plan.images_per_month,
        account.video_minutes_per_month
        if account.video_minutes_per_month is not None
        else plan.video_minutes_per_month,
    )


def usage_for(session: Session, account: Account, settings: Settings, now: datetime | None = None) -> Usage:
    period = billing_period(now or utcnow())
    images, minutes = _used(session, account.id, period)
    _, image_limit, minute_limit = account_limits(account, settings)
    return Usage(Plan(account.plan), period, images, image_limit, minutes, minute_limit)


def _used(session: Session, account_id: str, period: Period, before: datetime | None = None) -> tuple[int, int]:
    conditions = [
        Media.account_id == account_id,
        Media.created_at >= period.start_at,
        Media.status.in_([s.value for s in BILLED_STATUSES]),
    ]
    if before is not None:
        conditions.append(Media.created_at < before)
    images = session.scalar(
        select(func.count()).select_from(Media).where(*conditions, Media.media_type == MediaType.IMAGE.value)
    )
    minutes = session.scalar(
        select(func.coalesce(func.sum(Media.billed_video_minutes), 0)).where(
            *conditions, Media.media_type == MediaType.VIDEO.value
        )
    )
    return int(images or 0), int(minutes or 0)


def check_quota(
    session: Session, account: Account, settings: Settings, media_type: MediaType, minutes: int = 0
) -> None:
    """Raise ``QuotaExceededError`` if one more item of this type would pass the monthly limit."""
    usage = usage_for(session, account, settings)
    _raise_if_over(usage, media_type, usage.images_used, usage.video_minutes_used, minutes)


def still_within_quota(session: Session, account: Account, settings: Settings, media: Media) -> bool:
    """Re-check at processing time against what was accepted before this item: concurrent uploads
    can all pass the upload-time check, and the later ones end as ``quota_exceeded``."""
    period = billing_period(media.created_at)
    images, minutes = _used(session, account.id, period, before=media.created_at)
    _, image_limit, minute_limit = account_limits(account, settings)
    usage = Usage(Plan(account.plan), period, images, image_limit, minutes, minute_limit)
    try:
        _raise_if_over(usage, MediaType(media.media_type), images, minutes, media.billed_video_minutes)
    except QuotaExceededError:
        return False
    return True


def _raise_if_over(usage: Usage, media_type: MediaType, images: int, minutes: int, new_minutes: int) -> None:
    if media_type is MediaType.IMAGE and images + 1 > usage.images_limit:
        raise QuotaExceededError("Monthly image quota exceeded")
    if media_type is MediaType.VIDEO and minutes + new_minutes > usage.video_minutes_limit:
        raise QuotaExceededError("Monthly video minutes quota exceeded")
