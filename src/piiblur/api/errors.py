"""Every error leaves the API as JSON ``{"error": "..."}`` with the contract's status code."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from piiblur import metrics
from piiblur.api.methods import AllowedMethods
from piiblur.api.request_log import HEADER, STATE_KEY
from piiblur.db.session import DATABASE_UNAVAILABLE
from piiblur.services.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaExceededError,
    ServiceError,
)

log = logging.getLogger(__name__)

SERVICE_STATUS: dict[type[ServiceError], int] = {
    NotFoundError: 404,
    InvalidInputError: 422,
    PayloadTooLargeError: 413,
    QuotaExceededError: 429,
    ConflictError: 409,
}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        return _method_not_allowed(request)
    return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))


def _method_not_allowed(request: Request) -> Response:
    """Every method of the path in ``Allow``; ``OPTIONS`` answered with it and no error (RFC 9110)."""
    allowed: AllowedMethods = request.app.state.allowed_methods
    allow = {"Allow": ", ".join(allowed.for_path(request.url.path))}
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=allow)
    return error_response(405, "Method Not Allowed", allow)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
        problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return error_response(422, "; ".join(problems) or "Validation error")


async def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if isinstance(exc, QuotaExceededError):
        metrics.REFUSALS.labels("quota").inc()
    return error_response(SERVICE_STATUS.get(type(exc), 400), str(exc))


# The request did nothing, and the same request succeeds once the database is back.
RETRY_AFTER_SECONDS = 5


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
    metrics.REFUSALS.labels("database_unavailable").inc()
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return error_response(503, "The database is unavailable; retry in a few seconds", headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """Runs outside the request-log middleware (Starlette calls it last), so the request id comes
    from the request's state, for the log line and for the user to quote."""
    request_id = str(getattr(request.state, STATE_KEY, ""))
    log.error(
        "unhandled error on %s %s", request.method, request.url.path, exc_info=exc, extra={"request_id": request_id}
    )
    return error_response(500, "Internal server error", {HEADER: request_id} if request_id else None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ServiceError, _service_error)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
