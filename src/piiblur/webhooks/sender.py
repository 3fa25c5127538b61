"""One delivery attempt over HTTP: one deadline for the whole attempt (connect, send, headers and
body), at most ``MAX_RESPONSE_BYTES`` of the answer read, no redirects, outcome classified for
retries. A receiver that trickles a byte at a time, or answers with a huge body, holds the sender
no longer than the deadline and costs no memory."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpx

from piiblur.webhooks.destinations import UnsafeDestinationError, resolve
from piiblur.webhooks.signing import signed_headers

RETRYABLE_STATUSES = {408, 425, 429}
MAX_RESPONSE_BYTES = 64 * 1024  # what a receiver says beyond this is not read


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
        code = anyio.run(_post, destination.connect_url, body, headers, extensions, timeout)
    except (TimeoutError, httpx.TimeoutException):
        return outcome(None, f"timed out after {timeout:g} s", delivered=False, retryable=True)
    except httpx.HTTPError as error:
        return outcome(None, f"connection failed: {type(error).__name__}", delivered=False, retryable=True)
    if 200 <= code < 300:
        return outcome(code, None, delivered=True, retryable=False)
    if code == 410:
        return outcome(
            code, "receiver answered 410 Gone: endpoint disabled", delivered=False, retryable=False, gone=True
        )
    retryable = code >= 500 or code in RETRYABLE_STATUSES
    reason = "redirects are not followed" if 300 <= code < 400 else f"receiver answered {code}"
    return outcome(code, reason, delivered=False, retryable=retryable)


async def _post(url: str, body: bytes, headers: dict[str, str], extensions: dict[str, str], timeout: float) -> int:
    """The status code, within ``timeout`` for everything (httpx's own timeouts are per read)."""
    with anyio.fail_after(timeout):
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response,
        ):
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= MAX_RESPONSE_BYTES:
                    break
            return response.status_code
