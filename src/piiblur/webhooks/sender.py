"""One delivery attempt over HTTP: 10 s timeout, no redirects, outcome classified for retries."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from piiblur.webhooks.destinations import UnsafeDestinationError, resolve
from piiblur.webhooks.signing import signed_headers

RETRYABLE_STATUSES = {408, 425, 429}


@dataclass(frozen=True)
class AttemptOutcome:
    status_code: int | None
    duration_ms: int
    error: str | None
    delivered: bool
    retryable: bool
    gone: bool  # 410: the receiver asks us to stop


def send(url: str, message_id: str, body: bytes, secret: str, timeout: float, allow_private: bool) -> AttemptOutcome:
    started = time.monotonic()

    def outcome(
        code: int | None, error: str | None, delivered: bool, retryable: bool, gone: bool = False
    ) -> AttemptOutcome:
        elapsed = int((time.monotonic() - started) * 1000)
        return AttemptOutcome(code, elapsed, error, delivered, retryable, gone)

    try:
        destination = resolve(url, allow_private)
    except UnsafeDestinationError as error:
        return outcome(None, str(error), delivered=False, retryable=False)
    headers = signed_headers(message_id, body, secret) | {"Host": destination.host}
    extensions = {"sni_hostname": urlsplit(url).hostname or ""}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.post(destination.connect_url, content=body, headers=headers, extensions=extensions)
    except httpx.TimeoutException:
        return outcome(None, f"timed out after {timeout:g} s", delivered=False, retryable=True)
    except httpx.HTTPError as error:
        return outcome(None, f"connection failed: {type(error).__name__}", delivered=False, retryable=True)
    code = response.status_code
    if 200 <= code < 300:
        return outcome(code, None, delivered=True, retryable=False)
    if code == 410:
        return outcome(
            code, "receiver answered 410 Gone: endpoint disabled", delivered=False, retryable=False, gone=True
        )
    retryable = code >= 500 or code in RETRYABLE_STATUSES
    reason = "redirects are not followed" if 300 <= code < 400 else f"receiver answered {code}"
    return outcome(code, reason, delivered=False, retryable=retryable)
