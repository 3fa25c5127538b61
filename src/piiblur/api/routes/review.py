"""Review before release (our addition to the contract): edit an item's detections, render them,
see the low-resolution preview, read the audit record."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from piiblur.api.deps import ActorDep, CurrentAccount, QueueDep, SessionDep, StorageDep
from piiblur.api.files import download_response
from piiblur.api.schemas import (
    AuditRecord,
    DetectionsPatch,
    DetectionsReplace,
    EditSaved,
    MediaCreated,
    error_responses,
)
from piiblur.db.models import Media
from piiblur.services import audit, review
from piiblur.services import media as media_service

router = APIRouter(prefix="/media", responses=error_responses(401, 404, 422, 429, 503))

CONFLICT = error_responses(400, 409)


def _saved(media: Media) -> EditSaved:
    return EditSaved(
        media_id=media.id,
        status=media.status,
        detections=len(media.detections or []),
        original_retained_until_render=True,
    )


@router.put("/{media_id}/detections", response_model=EditSaved, responses=CONFLICT)
def replace_detections(
    media_id: str, body: DetectionsReplace, account: CurrentAccount, session: SessionDep, actor: ActorDep
) -> EditSaved:
    """The list replaces the stored one (send it in the shape ``GET`` returns): items with a
    known ``id`` keep it, items without one are added (for video: ``frame`` to ``frame_end``),
    missing ones are removed. Nothing is rendered until ``POST .../render``."""
    media = media_service.get_media(session, account, media_id)
    review.replace_detections(session, media, [item.as_input() for item in body.detections], actor)
    return _saved(media)


@router.patch("/{media_id}/detections", response_model=EditSaved, responses=CONFLICT)
def edit_detections(
    media_id: str, body: DetectionsPatch, account: CurrentAccount, session: SessionDep, actor: ActorDep
) -> EditSaved:
    """Single changes, applied in order (all or none): ``add``, ``remove`` (``id``), ``update``
    (``id`` and ``detection`` with the fields to change), ``remove_track`` (video: ``track``,
    optionally ``frame_start`` / ``frame_end``)."""
    media = media_service.get_media(session, account, media_id)
    review.apply_operations(session, media, [op.as_operation() for op in body.operations], actor)
    return _saved(media)


@router.post("/{media_id}/render", status_code=202, response_model=MediaCreated, responses=CONFLICT)
def render(
    media_id: str, account: CurrentAccount, session: SessionDep, queue: QueueDep, actor: ActorDep
) -> MediaCreated:
    """Approve and render the stored detections (as edited) into the redacted file: the item
    goes back to ``queued``, then ``completed`` with ``media.processed``. On a released item it
    renders a new version (the original must still be kept)."""
    media = media_service.get_media(session, account, media_id)
    review.request_render(session, media, actor)
    queue.notify(media.id, media.media_type)
    return MediaCreated(media_id=media.id, status=media.status)


PREVIEW_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "JPEG (photos) or MP4 (videos), at most 960 px across",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}, "video/mp4": {}},
    }
}


@router.get("/{media_id}/preview", response_class=Response, responses=PREVIEW_RESPONSES)
def preview(
    media_id: str, request: Request, account: CurrentAccount, session: SessionDep, storage: StorageDep
) -> Response:
    """The low-resolution redacted preview of an item held for review."""
    media = media_service.get_media(session, account, media_id)
    key = media_service.preview_key(media)
    content_type = media_service.preview_content_type(key)
    name = media_service.download_name(media, "_preview").rsplit(".", 1)[0] + "." + key.rsplit(".", 1)[-1]
    return download_response(request, storage, key, content_type, name)


@router.get(
    "/{media_id}/audit",
    response_model=AuditRecord,
    responses={200: {"content": {"text/html": {}}, "description": "JSON, or (format=html) a one-page report"}},
)
async def audit_record(
    media_id: str,
    account: CurrentAccount,
    session: SessionDep,
    storage: StorageDep,
    format: Annotated[Literal["json", "html"], Query()] = "json",
) -> AuditRecord | HTMLResponse:
    """Who or what created each detection, every edit with time and actor, every render. The
    HTML report shows thumbnails of the hidden regions, cut from the redacted output only."""
    media = media_service.get_media(session, account, media_id)
    record = audit.as_json(media, audit.entries(session, media))
    if format == "json":
        return AuditRecord.model_validate(record)
    html = await run_in_threadpool(audit.report, storage, media, record)
    return HTMLResponse(html)
