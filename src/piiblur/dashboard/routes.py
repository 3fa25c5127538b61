"""Dashboard pages under ``/dashboard``. HTTP only: the work is done by ``services``."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from piiblur.api.deps import IntakeDep, QueueDep, SessionDep, SettingsDep, StorageDep
from piiblur.api.files import download_response, file_response
from piiblur.api.schemas import DetectionsPatch, MediaDetections
from piiblur.domain import MediaStatus, PiiCategory
from piiblur.redact.probe import content_type_for
from piiblur.services import accounts as account_service
from piiblur.services import audit, review
from piiblur.services import media as media_service
from piiblur.services import webhooks as webhook_service
from piiblur.services.dashboard_auth import SignedIn, check_password, end_session, resume, sign_up, start_session
from piiblur.services.errors import ServiceError
from piiblur.services.usage import account_limits, usage_for

router = APIRouter(prefix="/dashboard", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
SESSION_COOKIE = "piiblur_session"
FORM_CSRF_COOKIE = "piiblur_form_csrf"
LOGIN_ATTEMPTS_PER_MINUTE = 10


class LoginRequiredError(Exception):
    """Raised by pages that need a signed-in user; the app answers with a redirect to log-in."""


def current_user(request: Request, session: SessionDep) -> SignedIn:
    token = request.cookies.get(SESSION_COOKIE)
    user = resume(session, token) if token else None
    if user is None:
        raise LoginRequiredError
    return user


UserDep = Annotated[SignedIn, Depends(current_user)]


def render(request: Request, template: str, user: SignedIn | None, **context: Any) -> HTMLResponse:
    context |= {"user": user, "csrf_token": user.csrf_token if user else None, "path": request.url.path}
    return templates.TemplateResponse(request, template, context)


async def checked_form(request: Request, expected: str | None, form: FormData | None = None) -> FormData:
    """Every form post carries the CSRF token it was rendered with; anything else is refused."""
    form = form if form is not None else await request.form()
    given = str(form.get("csrf_token") or request.headers.get("x-csrf-token") or "")
    if not expected or not hmac.compare_digest(given, expected):
        await form.close()
        raise HTTPException(403, "CSRF token missing or invalid")
    return form


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/")


# --- sign-up, log-in, log-out ----------------------------------------------------------------


def _public_form(request: Request, template: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = request.cookies.get(FORM_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request,
        template,
        {"user": None, "csrf_token": token, "error": error, "path": request.url.path},
        status_code=status,
    )
    _set_cookie(request, response, FORM_CSRF_COOKIE, token, 3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _public_form(request, "login.html")


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request) -> HTMLResponse:
    return _public_form(request, "signup.html")


@router.post("/login")
async def login(request: Request, session: SessionDep) -> Response:
    form = await checked_form(request, request.cookies.get(FORM_CSRF_COOKIE))
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    client = request.client.host if request.client else "unknown"
    if not request.app.state.rate_limiter.hit(f"login:{client}", LOGIN_ATTEMPTS_PER_MINUTE).allowed:
        return _public_form(request, "login.html", "Too many attempts. Wait a minute and try again.", 429)
    account = await run_in_threadpool(check_password, session, email, password)
    if account is None:
        return _public_form(request, "login.html", "Wrong email or password.", 401)
    return _signed_in(request, session, account)


@router.post("/signup")
async def signup(request: Request, session: SessionDep) -> Response:
    form = await checked_form(request, request.cookies.get(FORM_CSRF_COOKIE))
    try:
        account = await run_in_threadpool(sign_up, session, str(form.get("email", "")), str(form.get("password", "")))
    except ServiceError as error:
        return _public_form(request, "signup.html", str(error), 422)
    return _signed_in(request, session, account)


def _signed_in(request: Request, session: Session, account: Any) -> Response:
    user = start_session(session, account)
    response = RedirectResponse("/dashboard", status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, user.token, 7 * 24 * 3600)
    response.delete_cookie(FORM_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, user: UserDep, session: SessionDep) -> Response:
    await checked_form(request, user.csrf_token)
    end_session(session, user.token)
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- overview, usage and settings --------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def overview(request: Request, user: UserDep, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    usage = usage_for(session, user.account, settings)
    per_minute, _, _ = account_limits(user.account, settings)
    daily = media_service.daily_counts(session, user.account, usage.period.start_at, usage.period.end)
    return render(request, "overview.html", user, usage=usage, per_minute=per_minute, daily=daily)


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, user: UserDep, settings: SettingsDep, saved: bool = False) -> HTMLResponse:
    per_minute, images, minutes = account_limits(user.account, settings)
    limits = {"requests_per_minute": per_minute, "images_per_month": images, "video_minutes_per_month": minutes}
    return render(request, "settings.html", user, limits=limits, saved=saved)


@router.post("/settings")
async def save_settings(request: Request, user: UserDep, session: SessionDep) -> Response:
    form = await checked_form(request, user.csrf_token)
    try:
        hours = int(str(form.get("retention_hours", user.account.retention_hours)))
        review_mode = form.get("review_mode") == "on" if "review_form" in form else None
        account_service.update_account(session, user.account.id, retention_hours=hours, review_mode=review_mode)
    except (ValueError, ServiceError) as error:
        raise HTTPException(422, str(error)) from None
    return RedirectResponse("/dashboard/settings?saved=1", status_code=303)


# --- API keys ------------------------------------------------------------------------------------


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request, user: UserDep, session: SessionDep) -> HTMLResponse:
    keys = account_service.list_api_keys(session, user.account.id)
    return render(request, "keys.html", user, keys=keys, new_key=None)


@router.post("/keys", response_class=HTMLResponse)
async def create_key(request: Request, user: UserDep, session: SessionDep) -> HTMLResponse:
    form = await checked_form(request, user.csrf_token)
    new = account_service.create_api_key(session, user.account.id, str(form.get("name") or "") or None)
    keys = account_service.list_api_keys(session, user.account.id)
    return render(request, "keys.html", user, keys=keys, new_key=new.plaintext)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: str, request: Request, user: UserDep, session: SessionDep) -> Response:
    await checked_form(request, user.csrf_token)
    account_service.revoke_api_key(session, key_id, user.account.id)
    return RedirectResponse("/dashboard/keys", status_code=303)


# --- webhooks ------------------------------------------------------------------------------------


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request, user: UserDep, session: SessionDep) -> HTMLResponse:
    return _webhooks(request, user, session)


def _webhooks(request: Request, user: SignedIn, session: Session, **extra: Any) -> HTMLResponse:
    endpoints = webhook_service.list_endpoints(session, user.account.id)
    recent = {e.id: webhook_service.deliveries(session, e.id, limit=10) for e in endpoints}
    return render(
        request, "webhooks.html", user, endpoints=endpoints, recent=recent, events=webhook_service.EVENTS, **extra
    )


@router.post("/webhooks", response_class=HTMLResponse)
async def add_webhook(request: Request, user: UserDep, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    form = await checked_form(request, user.csrf_token)
    events = [str(e) for e in form.getlist("events")]
    try:
        new = webhook_service.create_endpoint(session, settings, user.account.id, str(form.get("url", "")), events)
    except ServiceError as error:
        return _webhooks(request, user, session, error=str(error))
    return _webhooks(request, user, session, new_secret=new.secret)


@router.post("/webhooks/{webhook_id}/test")
async def test_webhook(webhook_id: str, request: Request, user: UserDep, session: SessionDep) -> Response:
    await checked_form(request, user.csrf_token)
    webhook_service.enqueue_test(session, webhook_service.get_endpoint(session, webhook_id, user.account.id))
    request.app.state.webhooks.notify()
    return RedirectResponse("/dashboard/webhooks", status_code=303)


@router.post("/webhooks/{webhook_id}/remove")
async def remove_webhook(webhook_id: str, request: Request, user: UserDep, session: SessionDep) -> Response:
    await checked_form(request, user.csrf_token)
    webhook_service.remove_endpoint(session, webhook_id, user.account.id)
    return RedirectResponse("/dashboard/webhooks", status_code=303)


@router.post("/webhooks/deliveries/{delivery_id}/resend")
async def resend_delivery(delivery_id: str, request: Request, user: UserDep, session: SessionDep) -> Response:
    await checked_form(request, user.csrf_token)
    webhook_service.resend(session, delivery_id, user.account.id)
    request.app.state.webhooks.notify()
    return RedirectResponse("/dashboard/webhooks", status_code=303)


# --- media ---------------------------------------------------------------------------------------


@router.get("/media", response_class=HTMLResponse)
def media_page(
    request: Request,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    status: str | None = None,
    page: int = 1,
) -> HTMLResponse:
    chosen = MediaStatus(status) if status in {s.value for s in MediaStatus} else None
    result = media_service.list_media(session, user.account, chosen, None, max(1, page))
    return render(
        request,
        "media.html",
        user,
        result=result,
        status=chosen.value if chosen else "",
        statuses=list(MediaStatus),
        categories=list(PiiCategory),
        max_upload_bytes=settings.max_upload_bytes,
    )


@router.post("/media/upload")
async def upload(request: Request, user: UserDep, intake: IntakeDep) -> JSONResponse:
    form = await checked_form(request, user.csrf_token, await intake.read_form(request))
    media = await intake.submit(form, user.account, user.actor)
    return JSONResponse({"media_id": media.id, "status": media.status}, status_code=201)


@router.get("/media/{media_id}/status")
def media_status(media_id: str, user: UserDep, session: SessionDep) -> dict[str, Any]:
    media = media_service.get_media(session, user.account, media_id)
    return {"media_id": media.id, "status": media.status, "progress": media.progress}


@router.get("/media/{media_id}", response_class=HTMLResponse)
def media_detail(media_id: str, request: Request, user: UserDep, session: SessionDep) -> HTMLResponse:
    media = media_service.get_media(session, user.account, media_id)
    counts = media_service.object_counts(media)
    return render(request, "media_detail.html", user, media=media, counts=counts, categories=list(PiiCategory))


@router.get("/media/{media_id}/file/{which}")
def media_file(
    media_id: str,
    which: str,
    request: Request,
    user: UserDep,
    session: SessionDep,
    storage: StorageDep,
    download: bool = False,
) -> Response:
    """The original, the result or the review preview, with byte ranges so the editor's video
    player can seek."""
    media = media_service.get_media(session, user.account, media_id)
    if which not in ("result", "original", "preview"):
        raise HTTPException(404, "Not found")
    if which == "preview":
        key = media_service.preview_key(media)
        return file_response(request, storage, key, media_service.preview_content_type(key))
    key = media_service.result_key(media) if which == "result" else media_service.original_key(media)
    content_type = content_type_for(media.file_format)
    if download:
        name = media_service.download_name(media, "_redacted" if which == "result" else "")
        return download_response(request, storage, key, content_type, name)
    return file_response(request, storage, key, content_type)


@router.get("/media/{media_id}/detections")
def media_detections(media_id: str, user: UserDep, session: SessionDep) -> dict[str, Any]:
    """The editor's data: the API's detections shape."""
    media = media_service.get_media(session, user.account, media_id)
    return MediaDetections.of(media).model_dump(exclude_none=True)


@router.post("/media/{media_id}/detections")
async def edit_media_detections(media_id: str, request: Request, user: UserDep, session: SessionDep) -> dict[str, Any]:
    """The editor's changes, as the API's ``PATCH .../detections`` body (CSRF header)."""
    await checked_form(request, user.csrf_token, FormData())
    try:
        body = DetectionsPatch.model_validate_json(await request.body())
    except ValidationError as error:
        raise HTTPException(422, str(error.errors()[0]["msg"])) from None
    media = media_service.get_media(session, user.account, media_id)
    operations = [op.as_operation() for op in body.operations]
    await run_in_threadpool(review.apply_operations, session, media, operations, user.actor)
    return {"media_id": media.id, "detections": len(media.detections or [])}


@router.post("/media/{media_id}/render")
async def render_media(
    media_id: str, request: Request, user: UserDep, session: SessionDep, queue: QueueDep
) -> dict[str, Any]:
    """Approve: render the (edited) detections."""
    await checked_form(request, user.csrf_token, FormData())
    media = media_service.get_media(session, user.account, media_id)
    await run_in_threadpool(review.request_render, session, media, user.actor)
    queue.notify(media.id, media.media_type)
    return {"media_id": media.id, "status": media.status}


@router.get("/media/{media_id}/audit", response_class=HTMLResponse)
async def media_audit(media_id: str, user: UserDep, session: SessionDep, storage: StorageDep) -> HTMLResponse:
    media = media_service.get_media(session, user.account, media_id)
    record = audit.as_json(media, audit.entries(session, media))
    return HTMLResponse(await run_in_threadpool(audit.report, storage, media, record))


@router.post("/media/{media_id}/delete")
async def delete_media(
    media_id: str, request: Request, user: UserDep, session: SessionDep, storage: StorageDep
) -> Response:
    await checked_form(request, user.csrf_token)
    media_service.delete_media(session, storage, user.account, media_id)
    return RedirectResponse("/dashboard/media", status_code=303)


__all__ = ["LoginRequiredError", "router"]
