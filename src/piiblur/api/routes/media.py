"""``/media``: upload for redaction, status, list, download, original, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from piiblur.api.deps import ActorDep, CurrentAccount, DeliveryDep, IntakeDep, SessionDep, SettingsDep, StorageDep
from piiblur.api.schemas import (
    ErrorBody,
    MediaCreated,
    MediaDetail,
    MediaDetections,
    MediaList,
    MediaSummary,
    error_responses,
)
from piiblur.domain import MediaMode, MediaStatus, MediaType, ObfuscationType, PiiCategory
from piiblur.redact.probe import content_type_for
from piiblur.services import media as media_service

router = APIRouter(prefix="/media", responses=error_responses(401, 404, 422, 429, 503))


# The form is parsed by hand (bounded fields, precise errors), so FastAPI cannot infer it: described here.
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "pii_categories[]"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "jpg, png, webp, mp4, mov or webm"},
                    "pii_categories[]": {
                        "type": "array",
                        "items": {"type": "string", "enum": [c.value for c in PiiCategory]},
                        "minItems": 1,
                        "description": "Repeat the field, or give one comma-separated value (`pii_categories`)",
                    },
                    "obfuscation_type": {"type": "string", "enum": [o.value for o in ObfuscationType]},
                    "review": {
                        "type": "string",
                        "enum": ["true", "false"],
                        "description": "Hold at awaiting_review after detection (default: the account's review mode)",
                    },
                    "always_hide": {
                        "type": "string",
                        "description": "JSON list of [x, y, width, height] boxes (pixels) hidden on every frame",
                    },
                    "never_hide": {
                        "type": "string",
                        "description": "JSON list of [x, y, width, height] boxes (pixels) never hidden",
                    },
                },
            }
        }
    },
}


@router.post(
    "/redact",
    status_code=201,
    response_model=MediaCreated,
    responses=error_responses(400, 408, 413),
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def redact(request: Request, account: CurrentAccount, intake: IntakeDep, actor: ActorDep) -> MediaCreated:
    """Multipart upload: ``file``, ``pii_categories[]`` (or ``pii_categories``), ``obfuscation_type``;
    ours: ``review``, ``always_hide``, ``never_hide``."""
    media = await intake.submit(await intake.read_form(request), account, actor, MediaMode.REDACT)
    return MediaCreated(media_id=media.id, status=media.status)


@router.post(
    "/detect",
    status_code=201,
    response_model=MediaCreated,
    responses=error_responses(400, 408, 413),
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def detect(request: Request, account: CurrentAccount, intake: IntakeDep, actor: ActorDep) -> MediaCreated:
    """Detection only (our addition): the same form; detections are stored and nothing is
    rendered (``/download`` is 404; ``POST .../render`` can make the file later). Counted
    against the quota as an item."""
    media = await intake.submit(await intake.read_form(request), account, actor, MediaMode.DETECT)
    return MediaCreated(media_id=media.id, status=media.status)


@router.get("", response_model=MediaList)
def list_media(
    account: CurrentAccount,
    session: SessionDep,
    status: MediaStatus | None = None,
    media_type: MediaType | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> MediaList:
    result = media_service.list_media(session, account, status, media_type, page)
    return MediaList(
        data=[MediaSummary.of(m) for m in result.items],
        current_page=result.current_page,
        last_page=result.last_page,
        per_page=result.per_page,
        total=result.total,
    )


@router.get("/{media_id}", response_model=MediaDetail, response_model_exclude_unset=True)
def get_media(
    media_id: str, request: Request, account: CurrentAccount, session: SessionDep, settings: SettingsDep
) -> MediaDetail:
    media = media_service.get_media(session, account, media_id)
    download_url = None
    if media.status == MediaStatus.COMPLETED.value:
        base = (settings.public_base_url or str(request.base_url)).rstrip("/")
        download_url = f"{base}/api/v1/media/{media.id}/download"
    return MediaDetail.of_media(media, download_url)


@router.get("/{media_id}/detections", response_model=MediaDetections, response_model_exclude_none=True)
def detections(media_id: str, account: CurrentAccount, session: SessionDep) -> MediaDetections:
    """What was found and hidden, so users can audit a redaction (empty until processed)."""
    return MediaDetections.of(media_service.get_media(session, account, media_id))


# The file itself, in its own type (or, with presigned S3 downloads, a redirect to it).
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file",
        "content": {
            content_type_for(file_format): {"schema": {"type": "string", "format": "binary"}}
            for file_format in ("jpeg", "png", "webp", "mp4", "mov", "webm")
        },
    },
    206: {"description": "The byte range asked for with a `Range` header (`Content-Range` says which)"},
    307: {"description": "A short-lived presigned link to the file (S3 storage, presigned downloads on)"},
    416: {"description": "The `Range` starts past the end of the file", "model": ErrorBody},
}


@router.get("/{media_id}/download", response_class=Response, responses=FILE_RESPONSES)
def download(media_id: str, account: CurrentAccount, session: SessionDep, delivery: DeliveryDep) -> Response:
    media = media_service.get_media(session, account, media_id)
    return delivery.send(media_service.result_key(media), media, media_service.download_name(media, "_redacted"))


@router.get("/{media_id}/original", response_class=Response, responses=FILE_RESPONSES)
def original(media_id: str, account: CurrentAccount, session: SessionDep, delivery: DeliveryDep) -> Response:
    media = media_service.get_media(session, account, media_id)
    return delivery.send(media_service.original_key(media), media, media_service.download_name(media))


@router.delete("/{media_id}", status_code=204)
def delete(media_id: str, account: CurrentAccount, session: SessionDep, storage: StorageDep) -> Response:
    media_service.delete_media(session, storage, account, media_id)
    return Response(status_code=204)
