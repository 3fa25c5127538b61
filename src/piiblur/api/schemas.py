"""Response bodies, field for field as in the public API reference."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from piiblur.db.models import Media, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from piiblur.domain import MediaType, PiiCategory
from piiblur.services.accounts import MAX_RETENTION_HOURS
from piiblur.services.media import keyframe_counts, object_counts
from piiblur.services.review import MAX_DETECTIONS, DetectionInput, Operation
from piiblur.services.usage import Usage


def timestamp(moment: datetime | None) -> str | None:
    """``2026-03-17T10:30:15+00:00``: the contract's format, second precision, UTC offset."""
    return moment.isoformat(timespec="seconds") if moment is not None else None


class MediaCreated(BaseModel):
    media_id: str
    status: str


STATUS_DESCRIPTION = (
    "queued, processing, completed, failed, quota_exceeded (the contract's), or awaiting_review "
    "(ours: detected and held for review until POST /media/{id}/render)"
)


class MediaSummary(BaseModel):
    media_id: str
    status: str = Field(description=STATUS_DESCRIPTION)
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
    mode: str = Field(description="redact (POST /media/redact) or detect (POST /media/detect: no file rendered)")
    review: bool = Field(description="Held at awaiting_review after detection until rendered (review mode)")
    renders: int = Field(description="Versions of the redacted file rendered so far (corrections render new ones)")
    original_retained: bool = Field(description="Whether the original is still kept (needed to edit and render)")

    @classmethod
    def of_media(cls, media: Media, download_url: str | None) -> MediaDetail:
        fields = MediaSummary.of(media).model_dump() | {
            "pii_categories": media.pii_categories,
            "obfuscation_type": media.obfuscation_type,
            "error_message": media.error_message,
            "processed_at": timestamp(media.processed_at),
            "progress": media.progress,
            "detection_counts": object_counts(media),
            "mode": media.mode,
            "review": media.review,
            "renders": media.renders,
            "original_retained": media.original_key is not None,
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
    id: str | None = Field(default=None, description="Stable id, for edits (PUT and PATCH)")
    source: str | None = Field(default=None, description="detector, or reviewer (added by a person)")
    detector: str | None = Field(default=None, description="The detector family that found it")
    frame_end: int | None = Field(
        default=None, description="Videos, reviewer boxes: the box covers frames frame to frame_end"
    )
    edited: bool | None = Field(default=None, description="A detector's box a reviewer changed")


class SuppressedTrack(BaseModel):
    track: int
    frame_start: int | None = None
    frame_end: int | None = None


class MediaDetections(BaseModel):
    media_id: str
    status: str
    detections: list[DetectionItem]
    counts: dict[str, int] = Field(description="Objects per category (for a video: distinct tracks)")
    suppressed: list[SuppressedTrack] | None = Field(
        default=None, description="Videos: tracks removed on a frame range (PATCH remove_track)"
    )
    frames: int | None = Field(default=None, description="Videos: frames in the video")

    @classmethod
    def of(cls, media: Media) -> MediaDetections:
        items = [DetectionItem.model_validate(d) for d in media.detections or []]
        plan = media.video_plan or {}
        suppressed = [SuppressedTrack.model_validate(s) for s in plan.get("suppressed", [])] or None
        return cls(
            media_id=media.id,
            status=media.status,
            detections=items,
            counts=object_counts(media),
            suppressed=suppressed,
            frames=plan.get("frames"),
        )


Coordinate = Annotated[float, Field(allow_inf_nan=False)]


class DetectionIn(BaseModel):
    """A detection as a client sends it: new ones need ``category`` and ``box``; an ``id`` names
    an existing one (PUT keeps it; PATCH update changes the fields given)."""

    model_config = ConfigDict(extra="ignore")  # the GET shape (score, source...) is accepted as is

    id: str | None = Field(default=None, max_length=40)
    category: PiiCategory | None = None
    box: list[Coordinate] | None = Field(default=None, min_length=4, max_length=4)
    frame: int | None = Field(default=None, ge=0)
    frame_end: int | None = Field(default=None, ge=0)
    track: int | None = Field(default=None, ge=0)

    def as_input(self) -> DetectionInput:
        return DetectionInput(self.category, self.box, self.frame, self.frame_end, self.track, self.id)


class DetectionsReplace(BaseModel):
    detections: list[DetectionIn] = Field(max_length=MAX_DETECTIONS)


class DetectionOperation(BaseModel):
    op: Literal["add", "remove", "update", "remove_track"]
    id: str | None = Field(default=None, max_length=40)
    detection: DetectionIn | None = None
    track: int | None = Field(default=None, ge=0)
    frame_start: int | None = Field(default=None, ge=0)
    frame_end: int | None = Field(default=None, ge=0)

    def as_operation(self) -> Operation:
        detection = self.detection.as_input() if self.detection is not None else None
        return Operation(self.op, self.id, detection, self.track, self.frame_start, self.frame_end)


class DetectionsPatch(BaseModel):
    operations: list[DetectionOperation] = Field(min_length=1, max_length=1000)


class EditSaved(BaseModel):
    media_id: str
    status: str
    detections: int
    original_retained_until_render: bool = Field(
        description="Edits keep the original, whatever the retention setting, until the next render is done"
    )


class AuditStep(BaseModel):
    at: str
    actor: str
    action: str
    details: dict[str, Any]


class AuditRecord(BaseModel):
    media_id: str
    status: str
    original_filename: str
    media_type: str
    renders: int
    counts: dict[str, int]
    detections_by_source: dict[str, int]
    steps: list[AuditStep]


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
        409: "Not possible in the item's state (still processing, or its original is deleted)",
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
    review_mode: bool = Field(description="New uploads are held for review unless they send review=false")


def _json_integer(value: object) -> object:
    """What JSON Schema calls an integer: a number with no fraction (12 or 12.0). JSON false/true,
    "12" or null are not hours (false used to be taken as 0)."""
    if value is None or isinstance(value, bool | str):
        raise ValueError("Input should be a valid integer")
    return value


def _json_boolean(value: object) -> object:
    """Only JSON true and false (not 0, 1, "yes" or null)."""
    if not isinstance(value, bool):
        raise ValueError("Input should be true or false")
    return value


class AccountUpdate(BaseModel):
    """Give the settings to change (at least one); the others stay as they are."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    # The bounds are checked by the service (one message for the API, the dashboard and the CLI)
    # and documented here. Omitted is None; an explicit null is refused (not nullable).
    retention_hours: Annotated[
        int | None,
        BeforeValidator(_json_integer),
        WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_RETENTION_HOURS}),
    ] = None
    review_mode: Annotated[
        bool | None,
        BeforeValidator(_json_boolean),
        WithJsonSchema({"type": "boolean", "description": "Hold new uploads for review by default"}),
    ] = None

    @model_validator(mode="after")
    def _something_to_change(self) -> AccountUpdate:
        if self.retention_hours is None and self.review_mode is None:
            raise ValueError("Give retention_hours or review_mode")
        return self
