"""Database tables. Plain SQLAlchemy 2 typed mappings; no behaviour beyond what a row knows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    plan: Mapped[str] = mapped_column(String(20))
    # 0 = originals are deleted right after processing (the contract's default).
    retention_hours: Mapped[int] = mapped_column(Integer, default=0)
    # argon2id hash for the dashboard; None for accounts that only use API keys.
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Per-account overrides of the plan's limits ("Enterprise: custom").
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    images_per_month: Mapped[int | None] = mapped_column(Integer, nullable=True)
    video_minutes_per_month: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Every upload of the account is held for review (``awaiting_review``) unless it says otherwise.
    review_by_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="account")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the whole key: keys carry 256 random bits, so a fast hash is safe and lookups are O(1).
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    account: Mapped[Account] = relationship(back_populates="api_keys")


class Media(Base):
    __tablename__ = "media"
    __table_args__ = (
        Index("ix_media_account_created", "account_id", "created_at"),
        Index("ix_media_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20))
    original_filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(10))
    # The real container/codec family sniffed from the bytes (jpeg, png, webp, mp4, mov, webm).
    file_format: Mapped[str] = mapped_column(String(10))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    billed_video_minutes: Mapped[int] = mapped_column(Integer, default=0)
    pii_categories: Mapped[list[str]] = mapped_column(JSON)
    obfuscation_type: Mapped[str] = mapped_column(String(20))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    detections: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    original_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    result_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    original_delete_after: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    original_deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Job bookkeeping for many workers: claims so far (a job that kills its worker every time
    # fails after a bounded number), the claimant's last sign of life (a silent claim is retaken),
    # and when the job was last handed to the broker (a message lost with the broker is resent).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Review and rendering (``services.review``): ``mode`` redact or detect; ``review`` holds the
    # item at ``awaiting_review`` after detection; ``fixed_regions`` are the request's
    # always_hide / never_hide boxes; ``video_plan`` what rendering needs besides the detections
    # (each channel's keyframes and scene cuts, tracks carried over missed keyframes);
    # ``render_requested``: the next claim renders the stored detections instead of detecting;
    # ``renders``: versions rendered so far; ``preview_key``: the low-resolution review preview.
    mode: Mapped[str] = mapped_column(String(10), default="redact", server_default="redact")
    review: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    fixed_regions: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    video_plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    render_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    renders: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    preview_key: Mapped[str | None] = mapped_column(String(255), nullable=True)


class AuditEntry(Base):
    """One step in a media item's life, for its audit record: who or what did it (``actor``:
    ``detector``, ``api_key:<prefix>``, ``dashboard:<email>``, ``system``), what (``action``)
    and the details (counts, the edited detection before and after, the render's version)."""

    __tablename__ = "media_audit"
    __table_args__ = (Index("ix_media_audit_media_at", "media_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(400))
    action: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The signing secret, encrypted with the server key (AES-GCM); shown in clear once, at creation.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint. Stored before it is sent; its id is the ``webhook-id`` header,
    the same on every attempt, so receivers can deduplicate."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    # The exact body, as sent and signed on every attempt.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # pending, sending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class DashboardSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie token
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Lease(Base):
    """A named role that one process at a time holds for a while (the housekeeper of a fleet of
    workers): taken and renewed by conditional UPDATE, so it needs no broker and no lock server."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class VideoSegment(Base):
    """One part of a long video redacted on its own worker (``redact.segments``), for one claim
    (``attempt``) of its media item: a retaken item plans its segments anew."""

    __tablename__ = "video_segments"

    media_id: Mapped[str] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    start_pts: Mapped[int] = mapped_column(BigInteger)
    end_pts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    margin_pts: Mapped[int] = mapped_column(BigInteger)
    first_frame: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending, running, done
    claims: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    result_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    detections: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
