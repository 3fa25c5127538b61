"""Dependencies for routes, as ``Annotated`` aliases: ``SessionDep``, ``CurrentAccount``, ..."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from piiblur import metrics
from piiblur.api.files import Delivery
from piiblur.api.ratelimit import RateLimiter
from piiblur.api.uploads import Intake
from piiblur.config import Settings
from piiblur.db.models import Account
from piiblur.db.session import DATABASE_UNAVAILABLE
from piiblur.detect import DetectionEngine
from piiblur.domain import Plan
from piiblur.jobs import JobQueue
from piiblur.services.accounts import DISPLAY_PREFIX_LENGTH, authenticate
from piiblur.services.context import ServiceContext
from piiblur.services.usage import account_limits
from piiblur.storage import Storage

log = logging.getLogger(__name__)


def get_context(request: Request) -> ServiceContext:
    context: ServiceContext = request.app.state.context
    return context


ContextDep = Annotated[ServiceContext, Depends(get_context)]


def get_settings(ctx: ContextDep) -> Settings:
    return ctx.settings


def get_storage(ctx: ContextDep) -> Storage:
    return ctx.storage


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A database session for one request, taken only when a connection is sure to be free.

    Sync routes and dependencies hop between pool threads, and a request's session keeps its
    connection across those hops; with more requests in flight than connections, requests would
    wait on each other for connections until the pool times out (500s under load). So requests
    wait here, in the event loop, for one of ``Settings.request_sessions`` slots."""
    ctx: ServiceContext = request.app.state.context
    async with request.app.state.session_slots:
        session = ctx.sessions()
        try:
            yield session
        finally:
            await run_in_threadpool(release_session, session)


def release_session(session: Session) -> None:
    """Give the session's connection back. This runs after the answer has started; a connection
    that died meanwhile (the database went away) is dropped, not raised: an error here would reset
    the client's connection under a complete answer. The pool replaces it (pre-ping)."""
    try:
        session.close()
    except DATABASE_UNAVAILABLE as error:
        log.warning("database connection lost while releasing a request's session: %s", error.__class__.__name__)
        session.invalidate()


def get_queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.queue
    return queue


def get_detection_engine(request: Request) -> DetectionEngine:
    engine: DetectionEngine = request.app.state.detection_engine
    return engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
SessionDep = Annotated[Session, Depends(get_session)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]
DetectionEngineDep = Annotated[DetectionEngine, Depends(get_detection_engine)]


def get_intake(
    session: SessionDep, storage: StorageDep, settings: SettingsDep, queue: QueueDep, engine: DetectionEngineDep
) -> Intake:
    return Intake(session, storage, settings, queue, engine.supported_categories)


IntakeDep = Annotated[Intake, Depends(get_intake)]


def get_delivery(request: Request, storage: StorageDep, settings: SettingsDep) -> Delivery:
    return Delivery(request, storage, settings)


DeliveryDep = Annotated[Delivery, Depends(get_delivery)]


# Declares the Bearer scheme in the OpenAPI document (clients and fuzzers learn how to
# authenticate); errors stay ours: a missing or wrong key is the contract's 401 JSON.
bearer_scheme = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer pb_...`")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


def get_current_account(request: Request, session: SessionDep, settings: SettingsDep, bearer: BearerDep) -> Account:
    """Authenticate the Bearer key, then count the request against the account's minute limit.

    Requests without a valid key are limited too, per client address at the free plan's rate, so
    key guessing is throttled and every response carries rate-limit headers.
    """
    limiter: RateLimiter = request.app.state.rate_limiter
    token = bearer.credentials.strip() or None if bearer is not None else None
    account = authenticate(session, token) if token else None
    if account is None:
        client = request.client.host if request.client else "unknown"
        per_minute = settings.limits_for(Plan.FREE).requests_per_minute
        decision = limiter.hit(f"anonymous:{client}", per_minute)
    else:
        decision = limiter.hit(f"account:{account.id}", account_limits(account, settings)[0])
    request.state.rate_limit_headers = decision.headers()
    if not decision.allowed:
        metrics.REFUSALS.labels("rate_limit").inc()
        raise HTTPException(429, "Rate limit exceeded", headers={"Retry-After": "60"})
    if account is None:
        raise HTTPException(401, "Invalid or missing API key", headers={"WWW-Authenticate": "Bearer"})
    return account


CurrentAccount = Annotated[Account, Depends(get_current_account)]


def get_actor(bearer: BearerDep) -> str:
    """Who makes the request, in audit records: the API key, by its shown prefix."""
    token = bearer.credentials.strip() if bearer is not None else ""
    return f"api_key:{token[:DISPLAY_PREFIX_LENGTH]}"


ActorDep = Annotated[str, Depends(get_actor)]
