"""The FastAPI application: API routes, error handlers, rate-limit headers and, in the same
process, the worker pool that processes uploads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from piiblur import __version__
from piiblur.api.errors import install_error_handlers
from piiblur.api.ratelimit import RateLimiter, RateLimitHeadersMiddleware
from piiblur.api.routes import account, health, media, usage, webhooks
from piiblur.config import Settings, get_settings
from piiblur.detect import default_engine
from piiblur.jobs import InProcessWorkers
from piiblur.jobs.webhooks import WebhookDispatcher
from piiblur.services.context import build_context

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = await run_in_threadpool(build_context, settings)
        detection_engine = default_engine(settings.inference_threads)
        await run_in_threadpool(detection_engine.warm_up)
        workers = InProcessWorkers(context, detection_engine, settings.workers)
        workers.start()
        dispatcher = WebhookDispatcher(context)
        dispatcher.start()
        app.state.context = context
        app.state.detection_engine = detection_engine
        app.state.queue = workers
        app.state.rate_limiter = RateLimiter()
        app.state.webhooks = dispatcher
        try:
            yield
        finally:
            await run_in_threadpool(workers.stop)
            await run_in_threadpool(dispatcher.stop)
            context.close()

    app = FastAPI(title="PiiBlur", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.include_router(health.router)
    app.include_router(media.router, prefix=API_PREFIX)
    app.include_router(usage.router, prefix=API_PREFIX)
    app.include_router(webhooks.router, prefix=API_PREFIX)
    app.include_router(account.router, prefix=API_PREFIX)
    return app
