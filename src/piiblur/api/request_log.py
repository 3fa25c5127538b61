"""One log line per request (method, path, status, duration, request id), and the id returned as
``X-Request-ID`` so a user reporting a problem can quote it.

A client's own ``X-Request-ID`` is kept when it is a short token (a proxy's id ties both logs
together); anything else is replaced, so log lines cannot be forged through the header.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from piiblur.logs import log_context

log = logging.getLogger("piiblur.request")

HEADER = "X-Request-ID"
STATE_KEY = "request_id"  # request.state.request_id
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _ACCEPTED_ID.fullmatch(text) else None
    return None


class RequestLogMiddleware:
    """Pure ASGI, so streamed downloads pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        # Also in the request's state: the 500 handler runs outside this middleware and needs it.
        scope.setdefault("state", {})[STATE_KEY] = request_id
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaping the app becomes a 500
        logged = False

        def log_once() -> None:
            nonlocal logged
            if not logged:
                logged = True
                duration_ms = round((time.perf_counter() - started) * 1000, 1)
                fields = {"method": scope["method"], "path": scope["path"], "status": status}
                log.info("request", extra=fields | {"duration_ms": duration_ms})

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                log_once()  # before the last byte leaves: whoever saw the answer can find its line
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                log_once()
