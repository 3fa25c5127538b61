"""Per-account request limits per minute (``limits`` library) and the ``X-RateLimit-*`` headers.

The limiter is consulted by the authentication dependency, which stores the headers in the
request's state; ``RateLimitHeadersMiddleware`` copies them onto whatever response leaves the app,
so they are present on successes, errors and 429s alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATE_KEY = "rate_limit_headers"  # set as request.state.rate_limit_headers


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


class RateLimiter:
    def __init__(self, storage_uri: str = "memory://") -> None:
        self._limiter = FixedWindowRateLimiter(storage_from_string(storage_uri))

    def hit(self, key: str, per_minute: int) -> RateLimitDecision:
        item = RateLimitItemPerMinute(per_minute)
        allowed = self._limiter.hit(item, key)
        stats = self._limiter.get_window_stats(item, key)
        return RateLimitDecision(allowed, per_minute, max(0, stats.remaining), int(stats.reset_time) + 1)


class RateLimitHeadersMiddleware:
    """Pure ASGI, so streamed downloads are passed through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra: dict[str, str] = scope.get("state", {}).get(STATE_KEY) or {}
                if extra:
                    headers = list(message.get("headers", []))
                    headers.extend((k.lower().encode(), v.encode()) for k, v in extra.items())
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
