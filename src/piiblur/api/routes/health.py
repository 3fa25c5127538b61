"""Probes and metrics for operators: ``/healthz`` (the process answers), ``/readyz`` (what it
depends on answers too), ``/metrics`` (Prometheus)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from piiblur import metrics
from piiblur.api.deps import ContextDep, QueueDep
from piiblur.api.schemas import Health, Readiness

router = APIRouter()


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Alive: answers once start-up has finished, and checks nothing else (restart me if not)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(ctx: ContextDep, queue: QueueDep) -> Response:
    """Ready for traffic: the database, the storage and (in a fleet) the broker answer now."""
    checks: dict[str, str] = {}
    probes: dict[str, Callable[[], None]] = {
        "database": lambda: _ping_database(ctx),
        "storage": ctx.storage.check,
        "jobs": queue.check,
    }
    for name, probe in probes.items():
        try:
            probe()
            checks[name] = "ok"
        except Exception as error:  # a probe reports every failure, whatever its kind
            checks[name] = f"error: {type(error).__name__}: {error}"[:300]
    ready = all(value == "ok" for value in checks.values())
    body = Readiness(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _ping_database(ctx: ContextDep) -> None:
    with ctx.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request, ctx: ContextDep) -> Response:
    body = metrics.render(ctx.sessions, ctx.settings.prometheus_multiproc_dir)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
