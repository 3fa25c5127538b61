"""The FastAPI application: API routes, error handlers, rate-limit headers and, in the same
process, the worker pool that processes uploads."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from piiblur import __version__, dashboard
from piiblur.api.errors import install_error_handlers
from piiblur.api.methods import AllowedMethods
from piiblur.api.ratelimit import RateLimiter, RateLimitHeadersMiddleware
from piiblur.api.request_log import RequestLogMiddleware
from piiblur.api.routes import account, health, media, review, usage, webhooks
from piiblur.api.slow_clients import BodyDeadlineMiddleware
from piiblur.config import Settings, get_settings
from piiblur.dashboard import routes as dashboard_routes
from piiblur.detect import DetectionEngine, default_engine
from piiblur.jobs import InProcessWorkers, JobQueue
from piiblur.jobs.housekeeping import Housekeeper
from piiblur.jobs.webhooks import WebhookDispatcher
from piiblur.services.context import ServiceContext, build_context, clear_scratch

API_PREFIX = "/api/v1"
FORM_FIELDS_ALLOWANCE = 1024 * 1024  # multipart headers and the fields beside the file
STATIC_DIR = Path(dashboard.__file__).parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = await run_in_threadpool(build_context, settings)
        # Uploads over a megabyte are spooled by Starlette's form parser to the temporary folder:
        # make that the state folder's scratch, so personal data stays where the operator put it.
        tempfile.tempdir = str(settings.scratch_dir())
        app.state.session_slots = anyio.Semaphore(settings.request_sessions)
        detection_engine = default_engine(settings.inference_threads, settings.execution_providers)
        queue, housekeeper = await run_in_threadpool(_start_jobs, settings, context, detection_engine)
        dispatcher = WebhookDispatcher(context)
        dispatcher.start()
        app.state.context = context
        app.state.detection_engine = detection_engine
        app.state.queue = queue
        app.state.rate_limiter = RateLimiter(settings.ratelimit_storage_url or "memory://")
        app.state.webhooks = dispatcher
        try:
            yield
        finally:
            if housekeeper is not None:
                await run_in_threadpool(housekeeper.stop)
            await run_in_threadpool(queue.stop)
            await run_in_threadpool(dispatcher.stop)
            context.close()

    # Bodies are counted as they arrive, chunked ones too: an upload far over the limit is refused
    # once the limit (plus room for the form's other fields) has been read, not after spooling it all.
    body_limit = settings.max_upload_bytes + FORM_FIELDS_ALLOWANCE
    app = FastAPI(title="PiiBlur", version=__version__, lifespan=lifespan, max_body_size=body_limit)
    install_error_handlers(app)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(
        BodyDeadlineMiddleware,
        idle_seconds=settings.request_body_idle_seconds,
        min_bytes_per_second=settings.min_upload_bytes_per_second,
    )
    app.add_middleware(RequestLogMiddleware)  # added last: outermost, so it times and tags everything
    app.state.allowed_methods = allowed = AllowedMethods()
    api_routers = [(module.router, API_PREFIX) for module in (media, review, usage, webhooks, account)]
    for router, prefix in [(health.router, ""), *api_routers, (dashboard_routes.router, "")]:
        app.include_router(router, prefix=prefix)
        allowed.add(router, prefix)
    install_dashboard(app)
    allowed.add(app.router)  # the app's own routes: /, /favicon.ico, the OpenAPI document
    return app


def _start_jobs(
    settings: Settings, context: ServiceContext, detection_engine: DetectionEngine
) -> tuple[JobQueue, Housekeeper | None]:
    """One machine: worker threads in this process, models loaded here. A fleet (a broker is
    configured): jobs go to Celery workers, and this process only sends them and keeps house."""
    if settings.broker_url:
        from piiblur.jobs.celery_app import CeleryQueue  # Celery is loaded only where it is used

        queue = CeleryQueue(settings)
        housekeeper = Housekeeper(context, queue)
        housekeeper.start()
        return queue, housekeeper
    clear_scratch(settings)
    detection_engine.warm_up()
    workers = InProcessWorkers(context, detection_engine, settings.workers)
    workers.start()
    return workers, None


def install_dashboard(app: FastAPI) -> None:
    """The dashboard's static files, its login redirect, and ``/`` leading to its pages."""
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="static")

    async def to_login(_request: Request, _exc: Exception) -> Response:
        return RedirectResponse("/dashboard/login", status_code=303)

    app.add_exception_handler(dashboard_routes.LoginRequiredError, to_login)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard", status_code=307)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        """Browsers ask for it on every page (the API's too) whatever the pages link to."""
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")
