from __future__ import annotations

from fastapi import APIRouter

from piiblur.api.schemas import Health

router = APIRouter()


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Answers once start-up (migrations, model loading, workers) has finished."""
    return Health(status="ok")
