"""The ``piiblur`` command: run the service, administer accounts and keys, redact offline.

Every admin command takes ``--json`` and then prints exactly one JSON object, for scripts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from piiblur.config import get_settings
from piiblur.domain import ObfuscationType, PiiCategory, Plan, parse_categories
from piiblur.services import accounts as account_service
from piiblur.services.context import ServiceContext, build_context
from piiblur.services.errors import ServiceError

app = typer.Typer(help="PiiBlur: find personal information in images and videos and hide it.", no_args_is_help=True)
accounts_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
webhooks_app = typer.Typer(help="Manage webhook endpoints.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
CategoriesOption = Annotated[
    str, typer.Option("--categories", "-c", help="Comma-separated PII categories, e.g. heads,license_plates")
]


def _emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(payload) if as_json else text)


def _fail(message: str, as_json: bool = False) -> typer.Exit:
    if as_json:
        typer.echo(json.dumps({"error": message}))
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _context() -> ServiceContext:
    return build_context(get_settings())


def _categories(raw: str) -> list[PiiCategory]:
    try:
        categories = parse_categories([raw])
    except ValueError as error:
        raise _fail(str(error)) from None
    if not categories:
        raise _fail("give at least one category with --categories")
    return categories


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default PIIBLUR_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PIIBLUR_PORT or 8000)")] = None,
) -> None:
    """Run the API, the worker and the dashboard in one process."""
    import uvicorn

    from piiblur.api.app import create_app

    defaults = get_settings()
    # Command-line options win; webhooks build their download links from the result too.
    settings = defaults.model_copy(update={"host": host or defaults.host, "port": port or defaults.port})
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


@accounts_app.command("create")
def accounts_create(
    email: Annotated[str, typer.Option(help="Owner's email address")],
    plan: Annotated[Plan, typer.Option(help="Plan")] = Plan.FREE,
    retention_hours: Annotated[int, typer.Option(help="Keep originals this long (0 = delete at once)")] = 0,
    as_json: JsonFlag = False,
) -> None:
    ctx = _context()
    with ctx.sessions() as session:
        try:
            account = account_service.create_account(session, email, plan, retention_hours)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        _emit(
            as_json,
            {"account_id": account.id, "email": account.email, "plan": account.plan},
            f"account {account.id} ({account.email}, {account.plan})",
        )


@accounts_app.command("set")
def accounts_set(
    account: Annotated[str, typer.Option(help="Account id")],
    plan: Annotated[Plan | None, typer.Option(help="New plan")] = None,
    retention_hours: Annotated[int | None, typer.Option(help="Keep originals this long (0 = delete at once)")] = None,
    as_json: JsonFlag = False,
) -> None:
    ctx = _context()
    with ctx.sessions() as session:
        try:
            updated = account_service.update_account(session, account, plan, retention_hours)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        payload = {"account_id": updated.id, "plan": updated.plan, "retention_hours": updated.retention_hours}
        _emit(as_json, payload, f"account {updated.id}: plan {updated.plan}, retention {updated.retention_hours} h")


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option(help="Account id")],
    name: Annotated[str | None, typer.Option(help="A label for the key")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key. It is printed once and cannot be shown again."""
    ctx = _context()
    with ctx.sessions() as session:
        try:
            new = account_service.create_api_key(session, account, name)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        _emit(as_json, {"key_id": new.key.id, "api_key": new.plaintext}, f"key {new.key.id}: {new.plaintext}")


@keys_app.command("list")
def keys_list(
    account: Annotated[str | None, typer.Option(help="Only this account's keys")] = None,
    as_json: JsonFlag = False,
) -> None:
    ctx = _context()
    with ctx.sessions() as session:
        keys = account_service.list_api_keys(session, account)
        rows = [
            {
                "key_id": k.id,
                "account_id": k.account_id,
                "prefix": k.prefix,
                "created_at": k.created_at.isoformat(timespec="seconds"),
                "last_used_at": k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else None,
                "revoked": k.revoked_at is not None,
            }
            for k in keys
        ]
        lines = [f"{r['key_id']}  {r['prefix']}…  {'revoked' if r['revoked'] else 'active'}" for r in rows]
        _emit(as_json, {"keys": rows}, "\n".join(lines) or "no keys")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id")], as_json: JsonFlag = False) -> None:
    ctx = _context()
    with ctx.sessions() as session:
        try:
            key = account_service.revoke_api_key(session, key_id)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        _emit(as_json, {"key_id": key.id, "revoked": True}, f"key {key.id} revoked")


@webhooks_app.command("add")
def webhooks_add(
    account: Annotated[str, typer.Option(help="Account id")],
    url: Annotated[str, typer.Option(help="https:// URL that receives events")],
    events: Annotated[str | None, typer.Option(help="Comma-separated events (default: all)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add an endpoint. Its signing secret is printed once."""
    from piiblur.services import webhooks as webhook_service

    ctx = _context()
    chosen = [e.strip() for e in events.split(",") if e.strip()] if events else None
    with ctx.sessions() as session:
        try:
            account_service.get_account(session, account)
            new = webhook_service.create_endpoint(session, ctx.settings, account, url, chosen)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        payload = {"webhook_id": new.endpoint.id, "secret": new.secret, "events": new.endpoint.events}
        _emit(as_json, payload, f"webhook {new.endpoint.id} -> {url}\nsecret (shown once): {new.secret}")


@webhooks_app.command("list")
def webhooks_list(
    account: Annotated[str | None, typer.Option(help="Only this account's endpoints")] = None,
    as_json: JsonFlag = False,
) -> None:
    from piiblur.services import webhooks as webhook_service

    ctx = _context()
    with ctx.sessions() as session:
        rows = [
            {"webhook_id": e.id, "account_id": e.account_id, "url": e.url, "events": e.events, "enabled": e.enabled}
            for e in webhook_service.list_endpoints(session, account)
        ]
    lines = [f"{r['webhook_id']}  {r['url']}  {'enabled' if r['enabled'] else 'disabled'}" for r in rows]
    _emit(as_json, {"webhooks": rows}, "\n".join(lines) or "no webhooks")


@webhooks_app.command("remove")
def webhooks_remove(webhook_id: Annotated[str, typer.Argument(help="Webhook id")], as_json: JsonFlag = False) -> None:
    from piiblur.services import webhooks as webhook_service

    ctx = _context()
    with ctx.sessions() as session:
        try:
            webhook_service.remove_endpoint(session, webhook_id)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
    _emit(as_json, {"webhook_id": webhook_id, "removed": True}, f"webhook {webhook_id} removed")


@webhooks_app.command("test")
def webhooks_test(webhook_id: Annotated[str, typer.Argument(help="Webhook id")], as_json: JsonFlag = False) -> None:
    """Send a signed ``webhook.test`` event now and report the receiver's answer."""
    from piiblur.jobs.webhooks import WebhookDispatcher
    from piiblur.services import webhooks as webhook_service

    ctx = _context()
    with ctx.sessions() as session:
        try:
            delivery = webhook_service.enqueue_test(session, webhook_service.get_endpoint(session, webhook_id))
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        claimed = webhook_service.claim_due(session)
    status = WebhookDispatcher(ctx).deliver(delivery.id) if delivery.id in claimed else "pending"
    with ctx.sessions() as session:
        attempts = webhook_service.deliveries(session, webhook_id, limit=1)[0][1]
    last = attempts[-1] if attempts else None
    payload = {
        "delivery_id": delivery.id,
        "status": status,
        "status_code": last.status_code if last else None,
        "error": last.error if last else None,
    }
    _emit(as_json, payload, f"{delivery.id}: {status} ({payload['status_code'] or payload['error']})")


@app.command()
def redact(
    source: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Image or video to redact")],
    target: Annotated[Path, typer.Argument(dir_okay=False, help="Where to write the redacted file")],
    categories: CategoriesOption,
    obfuscation: Annotated[ObfuscationType, typer.Option(help="blur or pixelation")] = ObfuscationType.BLUR,
    as_json: JsonFlag = False,
) -> None:
    """Redact one file offline, without the server."""
    from piiblur.detect import default_engine
    from piiblur.domain import MediaType
    from piiblur.redact.image import redact_image
    from piiblur.redact.probe import UnsupportedMediaError, probe
    from piiblur.redact.video import redact_video

    wanted = _categories(categories)
    try:
        info = probe(source)
    except UnsupportedMediaError as error:
        raise _fail(str(error), as_json) from None
    engine = default_engine(get_settings().inference_threads)
    if info.media_type is MediaType.IMAGE:
        found = len(redact_image(source, target, wanted, obfuscation, engine).detections)
    else:
        from rich.progress import Progress

        # The bar goes to stderr, so `--json` output on stdout stays one clean object.
        with Progress(console=Console(stderr=True), transient=as_json) as progress:
            task = progress.add_task(f"redacting {source.name}", total=100)

            def advance(fraction: float) -> None:
                progress.update(task, completed=round(fraction * 100))

            video = redact_video(source, target, info.file_format, wanted, obfuscation, engine, advance)
            progress.update(task, completed=100)
        found = len(video.detections)
    _emit(as_json, {"output": str(target), "detections": found}, f"{target}: {found} region(s) hidden")


@app.command()
def detect(
    images: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="One or more images")],
    categories: CategoriesOption,
    as_json: JsonFlag = False,
) -> None:
    """Print what would be hidden. Models load once for all the images given."""
    from piiblur.detect import default_engine
    from piiblur.redact.image import detect_image

    wanted = _categories(categories)
    engine = default_engine(get_settings().inference_threads)
    for image in images:
        try:
            result = detect_image(image, wanted, engine)
        except OSError as error:
            raise _fail(f"{image}: {error}", as_json) from None
        payload: dict[str, Any] = {
            "file": str(image),
            "width": result.width,
            "height": result.height,
            "detections": [d.as_dict() for d in result.detections],
        }
        if as_json:
            typer.echo(json.dumps(payload))
        else:
            typer.echo(f"{image}: {result.width}x{result.height}")
            for d in result.detections:
                typer.echo(f"  {d.category.value:15} {d.box.as_list()} {d.score:.2f}")


def main() -> None:
    app(sys.argv[1:])


if __name__ == "__main__":
    main()
