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

    settings = get_settings()
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port, log_level="info")


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
