"""Response bodies, field for field as in the public API reference."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field

from piiblur.db.models import Media, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from piiblur.domain import MediaType
from piiblur.services.accounts import MAX_RETENTION_HOURS
from piiblur.services.media import keyframe_counts, object_counts
from piiblur.services.usage import Usage


def timestamp(moment: datetime | None) -> str | None:
    """``2026-03-17T10:30:15+00:00``: the contract's format, second precision, UTC offset."""
    return moment.isoformat(timespec="seconds") if moment is not None else None


class MediaCreated(BaseModel):
    media_id: str
    status: str


class MediaSummary(BaseModel):
    media_id: str
    status: str
    original_filename: str
    media_type: str
    created_at: str | None

    @classmethod
    def of(cls, media: Media) -> MediaSummary:
        return cls(
            media_id=media.id,
            status=media.status,
            original_filename=media.original_filename,
            media_type=media.media_type,
            created_at=timestamp(media.created_at),
        )


class MediaDetail(MediaSummary):
    pii_categories: list[str]
    obfuscation_type: str
    error_message: str | None
    processed_at: str | None
    download_url: str | None = Field(default=None, description="Only present when status is completed")
    progress: int = Field(description="0-100; videos report progress while processing")
    detection_counts: dict[str, int] = Field(
        description="Objects found and hidden per category, once processed (for a video: distinct tracked objects)"
    )
    keyframe_detection_counts: dict[str, int] | None = Field(
        default=None, description="Videos only: detections per category summed over every keyframe"
    )

    @classmethod
    def of_media(cls, media: Media, download_url: str | None) -> MediaDetail:
        fields = MediaSummary.of(media).model_dump() | {
            "pii_categories": media.pii_categories,
            "obfuscation_type": media.obfuscation_type,
            "error_message": media.error_message,
            "processed_at": timestamp(media.processed_at),
            "progress": media.progress,
            "detection_counts": object_counts(media),
        }
        if media.media_type == MediaType.VIDEO.value:
            fields["keyframe_detection_counts"] = keyframe_counts(media)
        if download_url is not None:
            fields["download_url"] = download_url
        return cls(**fields)


class DetectionItem(BaseModel):
    category: str
    box: list[float] = Field(description="[x, y, width, height] in pixels of the (upright) input")
    score: float
    frame: int | None = Field(default=None, description="Frame index, for videos")
    track: int | None = Field(default=None, description="Videos: the tracked object this detection belongs to")


class MediaDetections(BaseModel):
    media_id: str
    status: str
    detections: list[DetectionItem]
    counts: dict[str, int] = Field(description="Objects per category (for a video: distinct tracks)")

    @classmethod
    def of(cls, media: Media) -> MediaDetections:
        items = [DetectionItem.model_validate(d) for d in media.detections or []]
        return cls(media_id=media.id, status=media.status, detections=items, counts=object_counts(media))


class MediaList(BaseModel):
    data: list[MediaSummary]
    current_page: int
    last_page: int
    per_page: int
    total: int


class UsageCounter(BaseModel):
    used: int
    limit: int


class UsageResponse(BaseModel):
    plan: str
    period_start: str
    period_end: str
    images: UsageCounter
    video_minutes: UsageCounter

    @classmethod
    def of(cls, usage: Usage) -> UsageResponse:
        return cls(
            plan=usage.plan.value,
            period_start=usage.period.start.isoformat(),
            period_end=usage.period.end.isoformat(),
            images=UsageCounter(used=usage.images_used, limit=usage.images_limit),
            video_minutes=UsageCounter(used=usage.video_minutes_used, limit=usage.video_minutes_limit),
        )


class ErrorBody(BaseModel):
    """Every error answer of the API: one human-readable message."""

    error: str


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the error statuses a route can answer, all with ``ErrorBody``."""
    reasons = {
        400: "Malformed request",
        401: "Invalid or missing API key",
        404: "Not found (or another account's)",
        408: "Request body arrived too slowly (paused, or under the minimum rate)",
        413: "Upload larger than the limit",
        422: "Invalid input",
        429: "Rate limit or monthly quota exceeded",
        503: "The database is unavailable for a moment (Retry-After)",
    }
    return {code: {"model": ErrorBody, "description": reasons[code]} for code in codes}


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str  # "ok" or "unavailable"
    checks: dict[str, str]  # database, storage, jobs: "ok" or what failed


class WebhookCreate(BaseModel):
    url: str
    events: list[str] | None = None


class WebhookOut(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: str | None

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookOut:
        return cls(
            webhook_id=endpoint.id,
            url=endpoint.url,
            events=endpoint.events,
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            created_at=timestamp(endpoint.created_at),
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown once: store it to verify signatures")


class AttemptOut(BaseModel):
    attempted_at: str | None
    status_code: int | None
    duration_ms: int
    error: str | None


class DeliveryOut(BaseModel):
    delivery_id: str
    event: str
    status: str
    attempts: list[AttemptOut]
    created_at: str | None
    delivered_at: str | None
    next_attempt_at: str | None

    @classmethod
    def of(cls, delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryOut:
        return cls(
            delivery_id=delivery.id,
            event=delivery.event,
            status=delivery.status,
            attempts=[
                AttemptOut(
                    attempted_at=timestamp(a.attempted_at),
                    status_code=a.status_code,
                    duration_ms=a.duration_ms,
                    error=a.error,
                )
                for a in attempts
            ],
            created_at=timestamp(delivery.created_at),
            delivered_at=timestamp(delivery.delivered_at),
            next_attempt_at=timestamp(delivery.next_attempt_at) if delivery.status == "pending" else None,
        )


class AccountOut(BaseModel):
    account_id: str
    email: str
    plan: str
    retention_hours: int


def _json_integer(value: object) -> object:
    """What JSON Schema calls an integer: a number with no fraction (12 or 12.0). JSON false/true
    or "12" are not hours (false used to be taken as 0)."""
    if isinstance(value, bool | str):
        raise ValueError("Input should be a valid integer")
    return value


class AccountUpdate(BaseModel):
    # The bounds are checked by the service (one message for the API, the dashboard and the CLI)
    # and documented here.
    retention_hours: Annotated[int, BeforeValidator(_json_integer)] = Field(
        json_schema_extra={"minimum": 0, "maximum": MAX_RETENTION_HOURS}
    )
