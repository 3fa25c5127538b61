"""Deadlines for clients that send too slowly, so an unfinished request cannot hold a connection
(and the memory and file behind it) forever.

uvicorn bounds only the pause between two requests on a kept-alive connection. It has no deadline
for a request's headers (a client sending one byte every few seconds keeps its connection for good:
"slowloris"), nor for its body (a ``Content-Length`` larger than what is sent waits for ever).
Headers are bounded here in the protocol, before any ASGI code runs; bodies in an ASGI middleware
that times only the waits for the client, never the time the application takes to consume.
"""

from __future__ import annotations

import asyncio
import logging
import time

import anyio
import h11
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class RequestBodyTooSlowError(HTTPException):
    """408, and the connection closed: what is left of the body will not be read."""

    def __init__(self, reason: str) -> None:
        super().__init__(408, f"Request body {reason}; send it again", headers={"Connection": "close"})


def header_deadline_protocol(header_timeout_seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol whose connections close when a request's headers take longer than
    ``header_timeout_seconds`` to arrive (counted from the connection, or from the end of the
    previous response on a kept-alive one)."""

    class HeaderDeadlineProtocol(H11Protocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_deadline()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the headers are in (or the request was refused)
                self._cancel_header_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self._arm_header_deadline()  # the next request on this connection gets the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_deadline()
            super().connection_lost(exc)

        def _arm_header_deadline(self) -> None:
            self._cancel_header_deadline()
            self._header_deadline = self.loop.call_later(header_timeout_seconds, self._headers_too_slow)

        def _cancel_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            if not self.transport.is_closing():
                log.info("connection closed: request headers not complete after %ss", header_timeout_seconds)
                self.transport.close()

    return HeaderDeadlineProtocol


class BodyDeadlineMiddleware:
    """Pure ASGI. While a request's body is incomplete, each wait for more of it may last at most
    ``idle_seconds``, and once the waits add up to ``idle_seconds`` the body must have averaged at
    least ``min_bytes_per_second``; otherwise the application's ``receive`` raises
    ``RequestBodyTooSlowError`` (a 408). After the body is complete ``receive`` is passed through
    untouched: a streamed download listens on it for a disconnect for as long as it lasts."""

    def __init__(self, app: ASGIApp, idle_seconds: float, min_bytes_per_second: int) -> None:
        self.app = app
        self.idle_seconds = idle_seconds
        self.min_bytes_per_second = min_bytes_per_second

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, _BodyClock(receive, self.idle_seconds, self.min_bytes_per_second), send)


class _BodyClock:
    """The ``receive`` of one request, timed while it waits for the client."""

    def __init__(self, receive: Receive, idle_seconds: float, min_bytes_per_second: int) -> None:
        self._receive = receive
        self._idle_seconds = idle_seconds
        self._min_bytes_per_second = min_bytes_per_second
        self._body_complete = False
        self._waited = 0.0
        self._received = 0

    async def __call__(self) -> Message:
        if self._body_complete:
            return await self._receive()
        started = time.monotonic()
        with anyio.move_on_after(self._idle_seconds) as waiting:
            message = await self._receive()
        if waiting.cancelled_caught:
            raise RequestBodyTooSlowError(f"paused for more than {self._idle_seconds:g} s")
        self._waited += time.monotonic() - started
        self._received += len(message.get("body", b""))
        self._body_complete = message["type"] != "http.request" or not message.get("more_body", False)
        if not self._body_complete and self._waited >= self._idle_seconds:
            rate = self._received / self._waited
            if rate < self._min_bytes_per_second:
                raise RequestBodyTooSlowError(
                    f"arrived at {rate:.0f} bytes/s, under the {self._min_bytes_per_second} bytes/s minimum"
                )
        return message
