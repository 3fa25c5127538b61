"""Signatures a receiver can check: PiiBlur's own header and the Standard Webhooks headers.

- ``X-PiiBlur-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret string>``
  (the public contract).
- ``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256 of
  "id.timestamp.body", keyed with the base64-decoded part of the secret after "whsec_">``
  (standardwebhooks.com), so receivers can reject replays (old timestamps) and deduplicate (id).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignatureError(ValueError):
    pass


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def piiblur_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(message_id: str, timestamp: int, body: bytes, secret: str) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(message_id: str, body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    moment = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "User-Agent": "PiiBlur-Webhooks/1",
        "X-PiiBlur-Signature": piiblur_signature(body, secret),
        "webhook-id": message_id,
        "webhook-timestamp": str(moment),
        "webhook-signature": standard_signature(message_id, moment, body, secret),
    }


def verify(body: bytes, headers: Mapping[str, str], secret: str, tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> None:
    """Raise ``InvalidSignatureError`` unless the request was signed with ``secret``.

    Checks the Standard Webhooks signature and timestamp (replays older than ``tolerance``
    seconds are refused) when those headers are present, and the ``X-PiiBlur-Signature`` always.
    Header names are matched case-insensitively.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    given = lower.get("x-piiblur-signature", "")
    if not hmac.compare_digest(given, piiblur_signature(body, secret)):
        raise InvalidSignatureError("X-PiiBlur-Signature does not match")
    if "webhook-signature" not in lower:
        return
    try:
        timestamp = int(lower.get("webhook-timestamp", ""))
    except ValueError:
        raise InvalidSignatureError("webhook-timestamp is missing or not a number") from None
    if abs(time.time() - timestamp) > tolerance:
        raise InvalidSignatureError("webhook-timestamp is outside the tolerance (a replay?)")
    expected = standard_signature(lower.get("webhook-id", ""), timestamp, body, secret)
    offered = lower["webhook-signature"].split()
    if not any(hmac.compare_digest(candidate, expected) for candidate in offered):
        raise InvalidSignatureError("webhook-signature does not match")
