"""Webhook endpoints and their deliveries: stored first, then sent, retried, recorded.

Every event is written as one ``WebhookDelivery`` per subscribed endpoint in the same transaction as
the change it reports (so an event is never lost, even if the process dies right after), and a
delivery loop (``jobs.webhooks``) sends what is due. Each attempt is recorded; retries follow
``settings.webhook_retry_schedule`` with ±20 % jitter; 410 disables the endpoint.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from piiblur.config import Settings
from piiblur.db.models import Media, WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from piiblur.services.errors import InvalidInputError, NotFoundError
from piiblur.webhooks.destinations import UnsafeDestinationError, resolve
from piiblur.webhooks.secrets_at_rest import decrypt, encrypt, server_key
from piiblur.webhooks.sender import AttemptOutcome
from piiblur.webhooks.signing import new_secret

EVENTS = (
    "media.processed",
    "media.failed",
    "media.source_deleted",
    # Ours, beside the contract's: held for review (review mode), and detections ready
    # (``/media/detect``, no file rendered).
    "media.awaiting_review",
    "media.detected",
)
# Endpoints created without a list of events get the contract's three (receivers written for
# the contract see only what it describes); the others are asked for by name.
DEFAULT_EVENTS = EVENTS[:3]
TEST_EVENT = "webhook.test"
SENDING_LEASE = timedelta(minutes=2)  # a delivery claimed by a worker that died is retried after this


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str


def create_endpoint(
    session: Session, settings: Settings, account_id: str, url: str, events: Sequence[str] | None = None
) -> NewEndpoint:
    chosen = list(dict.fromkeys(events or DEFAULT_EVENTS))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise InvalidInputError(f"Unknown webhook event(s): {', '.join(unknown)}. Allowed: {', '.join(EVENTS)}")
    try:
        resolve(url, settings.webhook_allow_private)
    except UnsafeDestinationError as error:
        raise InvalidInputError(str(error)) from None
    secret = new_secret()
    endpoint = WebhookEndpoint(
        account_id=account_id, url=url, events=chosen, secret_encrypted=encrypt(secret, server_key(settings))
    )
    session.add(endpoint)
    session.commit()
    return NewEndpoint(endpoint, secret)


def list_endpoints(session: Session, account_id: str | None = None) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)
    if account_id is not None:
        query = query.where(WebhookEndpoint.account_id == account_id)
    return list(session.scalars(query))


def get_endpoint(session: Session, endpoint_id: str, account_id: str | None = None) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or (account_id is not None and endpoint.account_id != account_id):
        raise NotFoundError("Webhook not found")
    return endpoint


def remove_endpoint(session: Session, endpoint_id: str, account_id: str | None = None) -> None:
    session.delete(get_endpoint(session, endpoint_id, account_id))
    session.commit()


def body_of(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _delivery(endpoint: WebhookEndpoint, event: str, body: str, claimed: bool = False) -> WebhookDelivery:
    """A new delivery, due now; a ``claimed`` one is already leased to its creator, so no
    delivery loop can take it first (the lease still hands it on if the creator dies)."""
    now = utcnow()
    return WebhookDelivery(
        id="msg_" + uuid.uuid4().hex,
        endpoint_id=endpoint.id,
        event=event,
        body=body,
        status="sending" if claimed else "pending",
        attempts=0,
        next_attempt_at=now + SENDING_LEASE if claimed else now,
    )


def enqueue(session: Session, account_id: str, event: str, payload: dict[str, Any]) -> list[WebhookDelivery]:
    """Queue ``event`` for every enabled endpoint of the account subscribed to it. The caller
    commits, together with the change the event reports."""
    deliveries = [
        _delivery(endpoint, event, body_of(payload))
        for endpoint in list_endpoints(session, account_id)
        if endpoint.enabled and event in endpoint.events
    ]
    session.add_all(deliveries)
    return deliveries


def enqueue_test(session: Session, endpoint: WebhookEndpoint, claimed: bool = False) -> WebhookDelivery:
    """A ``webhook.test`` event. ``claimed``: the caller sends it itself (``piiblur webhooks test``
    reports the receiver's answer), so a running server's delivery loop never races it."""
    payload = {"event": TEST_EVENT, "webhook_id": endpoint.id, "sent_at": utcnow().isoformat(timespec="seconds")}
    delivery = _delivery(endpoint, TEST_EVENT, body_of(payload), claimed)
    session.add(delivery)
    session.commit()
    return delivery


def processed_payload(media: Media, base_url: str) -> dict[str, Any]:
    return {
        "event": "media.processed",
        "media_id": media.id,
        "status": "completed",
        "processed_at": _timestamp(media.processed_at),
        "download_url": f"{base_url.rstrip('/')}/api/v1/media/{media.id}/download",
    }


def awaiting_review_payload(media: Media, base_url: str) -> dict[str, Any]:
    base = f"{base_url.rstrip('/')}/api/v1/media/{media.id}"
    return {
        "event": "media.awaiting_review",
        "media_id": media.id,
        "status": "awaiting_review",
        "processed_at": _timestamp(media.processed_at),
        "detections_url": f"{base}/detections",
        "preview_url": f"{base}/preview",
    }


def detected_payload(media: Media, base_url: str) -> dict[str, Any]:
    return {
        "event": "media.detected",
        "media_id": media.id,
        "status": "completed",
        "processed_at": _timestamp(media.processed_at),
        "detections_url": f"{base_url.rstrip('/')}/api/v1/media/{media.id}/detections",
    }


def failed_payload(media: Media) -> dict[str, Any]:
    return {
        "event": "media.failed",
        "media_id": media.id,
        "status": "failed",
        "processed_at": None,
        "error_message": media.error_message,
    }


def source_deleted_payload(media: Media) -> dict[str, Any]:
    return {"event": "media.source_deleted", "media_id": media.id, "deleted_at": _timestamp(media.original_deleted_at)}


def _timestamp(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


def requeue_abandoned(session: Session, now: datetime | None = None) -> int:
    """Deliveries left ``sending`` by a worker that died are due again once their lease ran out."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status == "sending", WebhookDelivery.next_attempt_at <= (now or utcnow()))
        .values(status="pending")
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def claim_due(session: Session, limit: int = 10) -> list[str]:
    """Claim due deliveries for this worker (conditional UPDATE, so no two workers send one)."""
    now = utcnow()
    due = session.scalars(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    ).all()
    claimed = []
    for delivery_id in due:
        result = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending")
            .values(status="sending", next_attempt_at=now + SENDING_LEASE)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(delivery_id)
    session.commit()
    return claimed


@dataclass(frozen=True)
class OutgoingDelivery:
    delivery_id: str
    url: str
    body: bytes
    secret: str


def outgoing(session: Session, settings: Settings, delivery_id: str) -> OutgoingDelivery | None:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return None
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None or not endpoint.enabled:
        delivery.status = "failed"
        session.commit()
        return None
    secret = decrypt(endpoint.secret_encrypted, server_key(settings))
    return OutgoingDelivery(delivery.id, endpoint.url, delivery.body.encode(), secret)


def record_attempt(session: Session, settings: Settings, delivery_id: str, outcome: AttemptOutcome) -> WebhookDelivery:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFoundError("Delivery not found")
    now = utcnow()
    session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            attempted_at=now,
            status_code=outcome.status_code,
            duration_ms=outcome.duration_ms,
            error=(outcome.error or None) and outcome.error[:500],
        )
    )
    delivery.attempts += 1
    delivery.last_status_code = outcome.status_code
    schedule = settings.webhook_retry_schedule
    if outcome.delivered:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
    elif outcome.retryable and delivery.attempts <= len(schedule):
        wait = schedule[delivery.attempts - 1] * random.uniform(0.8, 1.2)
        delivery.status, delivery.next_attempt_at = "pending", now + timedelta(seconds=wait)
    else:
        delivery.status, delivery.next_attempt_at = "failed", None
        if outcome.gone:
            endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
            if endpoint is not None:
                endpoint.enabled = False
                endpoint.disabled_reason = "Receiver answered 410 Gone"
    session.commit()
    return delivery


def deliveries(
    session: Session, endpoint_id: str, limit: int = 50
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.created_at.desc())
        .limit(limit)
    ).all()
    return [(delivery, attempts_of(session, delivery.id)) for delivery in rows]


def attempts_of(session: Session, delivery_id: str) -> list[WebhookAttempt]:
    """Every attempt of one delivery, oldest first."""
    query = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
    return list(session.scalars(query.order_by(WebhookAttempt.attempted_at)))


def resend(session: Session, delivery_id: str, account_id: str | None = None) -> WebhookDelivery:
    """Send a recorded delivery again as a new message with the same body (dashboard 're-send')."""
    original = session.get(WebhookDelivery, delivery_id)
    if original is None:
        raise NotFoundError("Delivery not found")
    try:
        endpoint = get_endpoint(session, original.endpoint_id, account_id)
    except NotFoundError:  # another account's delivery is as missing as none
        raise NotFoundError("Delivery not found") from None
    again = _delivery(endpoint, original.event, original.body)
    session.add(again)
    session.commit()
    return again
