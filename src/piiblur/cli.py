"""The ``piiblur`` command: run the service, administer accounts and keys, redact offline.

Every admin command takes ``--json`` and then prints exactly one JSON object, for scripts.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from piiblur.config import Settings, get_settings
from piiblur.domain import ObfuscationType, PiiCategory, Plan, parse_categories
from piiblur.services.errors import ServiceError

if TYPE_CHECKING:
    from rich.progress import Progress

    from piiblur.db.models import Account
    from piiblur.detect import DetectionEngine
    from piiblur.detect.base import Box
    from piiblur.profiling import StageClock
    from piiblur.redact.obfuscate import FixedRegions
    from piiblur.services.context import ServiceContext

# The database, the services and the models are imported by the commands that use them, not here:
# `piiblur detect` and `piiblur redact` then start without SQLAlchemy or Alembic (about 0.5 s).

app = typer.Typer(help="PiiBlur: find personal information in images and videos and hide it.", no_args_is_help=True)
accounts_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
webhooks_app = typer.Typer(help="Manage webhook endpoints.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
QuietFlag = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the new id (or key), for shell variables.")]
CategoriesOption = Annotated[
    str, typer.Option("--categories", "-c", help="Comma-separated PII categories, e.g. heads,license_plates")
]


def _emit(as_json: bool, payload: dict[str, Any], text: str, quiet: str | None = None) -> None:
    """One JSON object (``--json``), the one value a script wants (``--quiet``), or a line for people."""
    typer.echo(json.dumps(payload) if as_json else quiet if quiet is not None else text)


def _fail(message: str, as_json: bool = False) -> typer.Exit:
    if as_json:
        typer.echo(json.dumps({"error": message}))
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="State folder (database, media, server key). Default: PIIBLUR_DATA_DIR, else ./piiblur-data",
        show_default=False,
    ),
]


def _settings(data_dir: Path | None) -> Settings:
    return get_settings().with_data_dir(data_dir)


def _context(data_dir: Path | None, as_json: bool = False, create: bool = False) -> ServiceContext:
    """The installation's database and storage. Admin commands never create an empty one by
    accident (a typo in the folder would otherwise answer "account not found" from a new, empty
    database): only ``serve`` and ``init`` create it."""
    settings = _settings(data_dir)
    if not create and not settings.has_state():
        raise _fail(
            f"no PiiBlur installation in {settings.data_dir} (no piiblur.db there). Pass --data-dir or set "
            "PIIBLUR_DATA_DIR to the folder `piiblur serve` uses, or create one with `piiblur init`",
            as_json,
        )
    from piiblur.services.context import build_context

    return build_context(settings)


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
    data_dir: DataDirOption = None,
) -> None:
    """Run the API, the worker and the dashboard in one process (creates the state folder)."""
    import uvicorn

    from piiblur.api.app import create_app
    from piiblur.api.slow_clients import header_deadline_protocol
    from piiblur.logs import configure_logging

    defaults = _settings(data_dir)
    # Command-line options win; webhooks build their download links from the result too.
    settings = defaults.model_copy(update={"host": host or defaults.host, "port": port or defaults.port})
    configure_logging(settings.log_format, settings.log_level)
    _check_hardware(settings)
    typer.echo(f"PiiBlur state in {settings.data_dir}", err=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http=header_deadline_protocol(settings.request_header_timeout_seconds),
        log_config=None,
        access_log=False,
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs at once: worker processes, each with its models")] = 1,
    queues: Annotated[
        str, typer.Option(help="Queues to take jobs from: images, video, housekeeping (comma-separated)")
    ] = "images,video,housekeeping",
    name: Annotated[str | None, typer.Option(help="Worker name (default: piiblur-PID@host)")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve Prometheus metrics of this worker's jobs on this port (needs PROMETHEUS_MULTIPROC_DIR)"
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run a Celery worker for a fleet (PIIBLUR_BROKER_URL set): it takes jobs the API processes
    queue, from the shared database and storage. Stop it with SIGTERM: the job in hand is finished
    or handed back."""
    import os
    import socket

    from celery.signals import worker_process_init

    from piiblur.jobs.celery_app import QUEUES, create_celery, prepare_worker_process
    from piiblur.logs import configure_logging

    settings = _settings(data_dir)
    if not settings.broker_url:
        raise _fail("PIIBLUR_BROKER_URL is not set: without a broker, `piiblur serve` runs the jobs itself")
    unknown = sorted(set(queues.split(",")) - set(QUEUES))
    if unknown:
        raise _fail(f"unknown queue(s): {', '.join(unknown)} (known: {', '.join(QUEUES)})")
    configure_logging(settings.log_format, settings.log_level)
    _check_hardware(settings)
    if metrics_port is not None:
        _serve_worker_metrics(settings, metrics_port)

    def prepare(**_kwargs: object) -> None:
        prepare_worker_process(settings)

    worker_process_init.connect(prepare, weak=False)
    hostname = name or f"piiblur-{os.getpid()}@{socket.gethostname()}"
    argv = ["worker", f"--concurrency={concurrency}", f"--queues={queues}", f"--hostname={hostname}"]
    argv += ["--without-gossip", "--without-mingle", f"--loglevel={settings.log_level}"]
    create_celery(settings).worker_main(argv)


def _check_hardware(settings: Settings, as_json: bool = False) -> None:
    """Before any work is taken: an execution provider, a decoding device or an encoder that is not
    there stops the process with its reason (rather than failing every job later)."""
    from piiblur.detect.onnx import Inference, UnavailableProviderError

    try:
        Inference.of(settings.inference_threads, settings.execution_providers)
    except UnavailableProviderError as error:
        raise _fail(f"PIIBLUR_EXECUTION_PROVIDERS: {error}", as_json) from None
    _check_codecs(settings, as_json)


def _check_codecs(settings: Settings, as_json: bool) -> None:
    from piiblur.redact.video import UnavailableCodecError, VideoCodecs

    try:
        VideoCodecs(settings.video_hwaccel, settings.video_h264_encoder).check()
    except UnavailableCodecError as error:
        raise _fail(f"PIIBLUR_VIDEO_HWACCEL / PIIBLUR_VIDEO_H264_ENCODER: {error}", as_json) from None


def _serve_worker_metrics(settings: Settings, port: int) -> None:
    """Jobs run in the pool's child processes: their metrics reach this port only through the
    multiprocess folder, so a worker without one refuses rather than serve empty numbers."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    if settings.prometheus_multiproc_dir is None:
        raise _fail("--metrics-port needs PROMETHEUS_MULTIPROC_DIR (an empty folder for this worker's processes)")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(settings.prometheus_multiproc_dir))  # type: ignore[no-untyped-call]
    start_http_server(port, registry=registry)


@app.command()
def migrate(data_dir: DataDirOption = None, as_json: JsonFlag = False) -> None:
    """Bring the database (PIIBLUR_DATABASE_URL, or the embedded one) to the newest schema. Run
    once per release before starting a fleet's processes; `serve` and `init` also do it."""
    from piiblur.db.session import current_revision, upgrade_database

    settings = _settings(data_dir)
    url = settings.resolved_database_url
    if settings.uses_embedded_database:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    before = current_revision(url)
    upgrade_database(url)
    after = current_revision(url)
    _emit(
        as_json,
        {"from": before, "to": after},
        f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"),
    )


@app.command()
def init(data_dir: DataDirOption = None, as_json: JsonFlag = False) -> None:
    """Create the state folder and its database (or bring an existing one to the newest schema)."""
    from piiblur.services.context import build_context
    from piiblur.webhooks.secrets_at_rest import server_key

    settings = _settings(data_dir)
    existed = settings.has_state()
    ctx = build_context(settings)
    server_key(settings)
    ctx.close()
    verb = "up to date" if existed else "created"
    _emit(
        as_json,
        {"data_dir": str(settings.data_dir), "created": not existed},
        f"PiiBlur state in {settings.data_dir}: {verb}",
    )


def _account_row(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.id,
        "email": account.email,
        "plan": account.plan,
        "retention_hours": account.retention_hours,
        "created_at": account.created_at.isoformat(timespec="seconds"),
    }


AccountOption = Annotated[str, typer.Option("--account", help="Account id or owner's email")]


@accounts_app.command("create")
def accounts_create(
    email: Annotated[str, typer.Option(help="Owner's email address")],
    plan: Annotated[Plan, typer.Option(help="Plan")] = Plan.FREE,
    retention_hours: Annotated[int, typer.Option(help="Keep originals this long (0 = delete at once)")] = 0,
    data_dir: DataDirOption = None,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    from piiblur.services import accounts as account_service

    ctx = _context(data_dir, as_json)
    with ctx.sessions() as session:
        try:
            account = account_service.create_account(session, email, plan, retention_hours)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        _emit(
            as_json,
            {"account_id": account.id, "email": account.email, "plan": account.plan},
            f"account {account.id} ({account.email}, {account.plan})",
            account.id if quiet else None,
        )


@accounts_app.command("list")
def accounts_list(data_dir: DataDirOption = None, as_json: JsonFlag = False) -> None:
    from piiblur.services import accounts as account_service

    ctx = _context(data_dir, as_json)
    with ctx.sessions() as session:
        rows = [_account_row(a) for a in account_service.list_accounts(session)]
    lines = [f"{r['account_id']}  {r['email']}  {r['plan']}" for r in rows]
    _emit(as_json, {"accounts": rows}, "\n".join(lines) or "no accounts")


@accounts_app.command("show")
def accounts_show(
    email: Annotated[str | None, typer.Option(help="Owner's email address")] = None,
    account: Annotated[str | None, typer.Option(help="Account id")] = None,
    data_dir: DataDirOption = None,
    as_json: JsonFlag = False,
) -> None:
    """One account, looked up by email or id."""
    from piiblur.services import accounts as account_service

    reference = email or account
    if not reference:
        raise _fail("give --email or --account", as_json)
    ctx = _context(data_dir, as_json)
    with ctx.sessions() as session:
        try:
            found = account_service.find_account(session, reference)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        row = _account_row(found)
    text = "\n".join(f"{name}: {value}" for name, value in row.items())
    _emit(as_json, row, text)


@accounts_app.command("set")
def accounts_set(
    account: AccountOption,
    plan: Annotated[Plan | None, typer.Option(help="New plan")] = None,
    retention_hours: Annotated[int | None, typer.Option(help="Keep originals this long (0 = delete at once)")] = None,
    data_dir: DataDirOption = None,
    as_json: JsonFlag = False,
) -> None:
    from piiblur.services import accounts as account_service

    ctx = _context(data_dir, as_json)
    with ctx.sessions() as session:
        try:
            account_id = account_service.find_account(session, account).id
            updated = account_service.update_account(session, account_id, plan, retention_hours)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        payload = {"account_id": updated.id, "plan": updated.plan, "retention_hours": updated.retention_hours}
        _emit(as_json, payload, f"account {updated.id}: plan {updated.plan}, retention {updated.retention_hours} h")


@keys_app.command("create")
def keys_create(
    account: AccountOption,
    name: Annotated[str | None, typer.Option(help="A label for the key")] = None,
    data_dir: DataDirOption = None,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Create an API key. It is printed once and cannot be shown again."""
    from piiblur.services import accounts as account_service

    ctx = _context(data_dir, as_json)
    with ctx.sessions() as session:
        try:
            account_id = account_service.find_account(session, account).id
            new = account_service.create_api_key(session, account_id, name)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        payload = {"key_id": new.key.id, "api_key": new.plaintext}
        _emit(as_json, payload, f"key {new.key.id}: {new.plaintext}", new.plaintext if quiet else None)


@keys_app.command("list")
def keys_list(
    account: Annotated[str | None, typer.Option(help="Only this account's keys (id or email)")] = None,
    data_dir: DataDirOption = None,
    as_json: JsonFlag = False,
) -> None:
    from piiblur.services import accounts as account_service

    ctx = _context(data_dir, as_json)
    with ctx.sessions() as session:
        try:
            account_id = account_service.find_account(session, account).id if account else None
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        keys = account_service.list_api_keys(session, account_id)
        rows = [
            {
                "key_id": k.id,
                "account_id": k.account_id,
                "prefix": k.prefix,
                "name": k.name,
                "created_at": k.created_at.isoformat(timespec="seconds"),
                "last_used_at": k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else None,
                "revoked": k.revoked_at is not None,
            }
            for k in keys
        ]
        lines = [f"{r['key_id']}  {r['prefix']}…  {'revoked' if r['revoked'] else 'active'}" for r in rows]
        _emit(as_json, {"keys": rows}, "\n".join(lines) or "no keys")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id")], data_dir: DataDirOption = None, as_json: JsonFlag = False
) -> None:
    from piiblur.services import accounts as account_service

    ctx = _context(data_dir, as_json)
    with ctx.sessions() as session:
        try:
            key = account_service.revoke_api_key(session, key_id)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        _emit(as_json, {"key_id": key.id, "revoked": True}, f"key {key.id} revoked")


@webhooks_app.command("add")
def webhooks_add(
    account: AccountOption,
    url: Annotated[str, typer.Option(help="https:// URL that receives events")],
    events: Annotated[
        str | None,
        typer.Option(help="Comma-separated events (default: media.processed, media.failed, media.source_deleted)"),
    ] = None,
    data_dir: DataDirOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Add an endpoint. Its signing secret is printed once."""
    from piiblur.services import accounts as account_service
    from piiblur.services import webhooks as webhook_service

    ctx = _context(data_dir, as_json)
    chosen = [e.strip() for e in events.split(",") if e.strip()] if events else None
    with ctx.sessions() as session:
        try:
            account_id = account_service.find_account(session, account).id
            new = webhook_service.create_endpoint(session, ctx.settings, account_id, url, chosen)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        payload = {"webhook_id": new.endpoint.id, "secret": new.secret, "events": new.endpoint.events}
        _emit(as_json, payload, f"webhook {new.endpoint.id} -> {url}\nsecret (shown once): {new.secret}")


@webhooks_app.command("list")
def webhooks_list(
    account: Annotated[str | None, typer.Option(help="Only this account's endpoints (id or email)")] = None,
    data_dir: DataDirOption = None,
    as_json: JsonFlag = False,
) -> None:
    from piiblur.services import accounts as account_service
    from piiblur.services import webhooks as webhook_service

    ctx = _context(data_dir, as_json)
    with ctx.sessions() as session:
        try:
            account_id = account_service.find_account(session, account).id if account else None
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        rows = [
            {"webhook_id": e.id, "account_id": e.account_id, "url": e.url, "events": e.events, "enabled": e.enabled}
            for e in webhook_service.list_endpoints(session, account_id)
        ]
    lines = [f"{r['webhook_id']}  {r['url']}  {'enabled' if r['enabled'] else 'disabled'}" for r in rows]
    _emit(as_json, {"webhooks": rows}, "\n".join(lines) or "no webhooks")


@webhooks_app.command("remove")
def webhooks_remove(
    webhook_id: Annotated[str, typer.Argument(help="Webhook id")],
    data_dir: DataDirOption = None,
    as_json: JsonFlag = False,
) -> None:
    from piiblur.services import webhooks as webhook_service

    ctx = _context(data_dir, as_json)
    with ctx.sessions() as session:
        try:
            webhook_service.remove_endpoint(session, webhook_id)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
    _emit(as_json, {"webhook_id": webhook_id, "removed": True}, f"webhook {webhook_id} removed")


@webhooks_app.command("test")
def webhooks_test(
    webhook_id: Annotated[str, typer.Argument(help="Webhook id")],
    data_dir: DataDirOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Send a signed ``webhook.test`` event now and report the receiver's answer."""
    from piiblur.jobs.webhooks import WebhookDispatcher
    from piiblur.services import webhooks as webhook_service

    ctx = _context(data_dir, as_json)
    with ctx.sessions() as session:
        try:
            endpoint = webhook_service.get_endpoint(session, webhook_id)
        except ServiceError as error:
            raise _fail(str(error), as_json) from None
        delivery = webhook_service.enqueue_test(session, endpoint, claimed=True)
    # Claimed at creation: this process is the one sender of the first attempt.
    status = WebhookDispatcher(ctx).deliver(delivery.id)
    with ctx.sessions() as session:
        attempts = webhook_service.attempts_of(session, delivery.id)
    last = attempts[-1] if attempts else None
    payload = {
        "delivery_id": delivery.id,
        "status": status,
        "status_code": last.status_code if last else None,
        "error": last.error if last else None,
    }
    _emit(as_json, payload, f"{delivery.id}: {status} ({payload['status_code'] or payload['error']})")


AlwaysHideOption = Annotated[
    list[str] | None,
    typer.Option(
        metavar="X,Y,WIDTH,HEIGHT",
        help="Hidden on every picture and frame, found or not, in pixels of the upright picture (repeatable)",
    ),
]
NeverHideOption = Annotated[
    list[str] | None,
    typer.Option(
        metavar="X,Y,WIDTH,HEIGHT",
        help="Left as it is (a timestamp overlay), in pixels of the upright picture (repeatable)",
    ),
]


@dataclass(frozen=True)
class _RedactRequest:
    """What every file of one ``piiblur redact`` gets: the API's form fields, from the shell."""

    categories: list[PiiCategory]
    obfuscation: ObfuscationType
    fixed: FixedRegions


@app.command()
def redact(
    source: Annotated[Path, typer.Argument(exists=True, help="Image or video to redact, or a folder of them")],
    target: Annotated[Path, typer.Argument(help="Where to write the redacted file (a folder when SOURCE is one)")],
    categories: CategoriesOption,
    obfuscation: Annotated[ObfuscationType, typer.Option(help="blur or pixelation")] = ObfuscationType.BLUR,
    always_hide: AlwaysHideOption = None,
    never_hide: NeverHideOption = None,
    as_json: JsonFlag = False,
    profile: Annotated[
        bool,
        typer.Option("--profile", help="Also report where the time went, stage by stage"),
    ] = False,
) -> None:
    """Redact one file, or every image and video in a folder, offline, without the server.

    A folder is redacted into TARGET with the same relative paths; models load once for all its
    files. Files that are not images or videos are skipped; one that cannot be read is reported and
    the rest go on (exit code 1 at the end). With --json, one JSON object per file.

    --always-hide regions are hidden on every picture and frame whatever was found (a fixed
    window); --never-hide regions are kept as they are (a dash-cam's timestamp overlay), as the
    API's always_hide and never_hide fields."""
    from piiblur.profiling import StageClock
    from piiblur.redact.obfuscate import FixedRegions

    fixed = FixedRegions(
        _regions("--always-hide", always_hide or [], as_json), _regions("--never-hide", never_hide or [], as_json)
    )
    request = _RedactRequest(_categories(categories), obfuscation, fixed)
    clock = StageClock()
    with clock.active() if profile else contextlib.nullcontext():
        try:
            _redact(source, target, request, as_json)
        finally:
            if profile:
                _report_stages(clock, as_json)


def _regions(flag: str, values: list[str], as_json: bool) -> tuple[Box, ...]:
    """``X,Y,WIDTH,HEIGHT`` strings as boxes; anything else is a usage error naming the flag."""
    from piiblur.detect.base import Box

    boxes = []
    for value in values:
        try:
            numbers = [float(part) for part in value.split(",")]
        except ValueError:
            numbers = []
        if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers) or numbers[2] <= 0 or numbers[3] <= 0:
            message = f"{flag} {value!r}: give X,Y,WIDTH,HEIGHT in pixels (four numbers, width and height > 0)"
            raise _fail(message, as_json)
        boxes.append(Box(*numbers))
    return tuple(boxes)


def _report_stages(clock: StageClock, as_json: bool) -> None:
    """Seconds per stage, summed over threads (the pipeline's stages overlap on several cores)."""
    rows = clock.table()
    if as_json:
        typer.echo(json.dumps({"stages": {name: {"seconds": round(sec, 3), "calls": n} for name, sec, n in rows}}))
        return
    for name, seconds, calls in rows:
        typer.echo(f"{seconds:9.3f} s {calls:7d}x  {name}", err=True)


def _redact(source: Path, target: Path, request: _RedactRequest, as_json: bool) -> None:
    from rich.console import Console
    from rich.progress import Progress

    if target.resolve() == source.resolve():
        raise _fail("the target is the source: redacted files never replace the originals", as_json)
    if source.is_dir():
        _redact_folder(source, target, request, as_json)
        return
    if _is_video(source):  # photos never load FFmpeg
        _check_codecs(get_settings(), as_json)
    engine = _engine(get_settings(), as_json)
    if target.is_dir():
        raise _fail(f"{target} is a folder: give the redacted file's path", as_json)
    # The bar goes to stderr, so `--json` output on stdout stays one clean object.
    with Progress(console=Console(stderr=True), transient=as_json) as progress:
        try:
            payload = _redact_file(source, target, request, engine, progress)
        except ValueError as error:  # not media, or media that cannot be read
            raise _fail(str(error), as_json) from None
    _emit(as_json, payload, _redacted_line(payload))


def _redact_file(
    source: Path, target: Path, request: _RedactRequest, engine: DetectionEngine, progress: Progress
) -> dict[str, Any]:
    """Redact one image or video with the process's engine; what was hidden, counted per category
    (a video's counts are distinct tracked objects). Raises ``UnsupportedMediaError``."""
    from piiblur.domain import MediaType
    from piiblur.redact.image import redact_image
    from piiblur.redact.probe import probe
    from piiblur.redact.video import VideoCodecs, redact_video

    info = probe(source, get_settings().max_image_pixels)
    target.parent.mkdir(parents=True, exist_ok=True)
    looks: dict[str, int] = {}
    if info.media_type is MediaType.IMAGE:
        detections = redact_image(
            source, target, request.categories, request.obfuscation, engine, request.fixed
        ).detections
        counts = dict(Counter(d.category.value for d in detections))
    else:
        task = progress.add_task(f"redacting {source.name}", total=100)

        def advance(fraction: float) -> None:
            progress.update(task, completed=round(fraction * 100))

        settings = get_settings()
        codecs = VideoCodecs(settings.video_hwaccel, settings.video_h264_encoder)
        video = redact_video(
            source,
            target,
            info.file_format,
            request.categories,
            request.obfuscation,
            engine,
            advance,
            codecs=codecs,
            partial_looks=settings.video_partial_looks,
            fixed=request.fixed,
        )
        progress.update(task, completed=100)
        counts = {category.value: n for category, n in video.object_counts().items()}
        looks = {"frames": video.frames, "keyframes": len(video.keyframes)}  # frames any detector looked at
        looks["partial_keyframes"] = len(set(video.partial_keyframes))  # ... only in regions, for some
    payload: dict[str, Any] = {"output": str(target), "detections": sum(counts.values()), "counts": counts}
    return payload | looks


def _engine(settings: Settings, as_json: bool) -> DetectionEngine:
    from piiblur.detect import default_engine
    from piiblur.detect.onnx import UnavailableProviderError

    try:
        return default_engine(settings.inference_threads, settings.execution_providers)
    except UnavailableProviderError as error:
        raise _fail(f"PIIBLUR_EXECUTION_PROVIDERS: {error}", as_json) from None


def _redacted_line(payload: dict[str, Any]) -> str:
    summary = ", ".join(f"{n} {category}" for category, n in payload["counts"].items()) or "nothing found"
    return f"{payload['output']}: {payload['detections']} object(s) hidden ({summary})"


def _media_files(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Every visible file under ``folder`` by sniffed type (not by name), outside ``exclude``."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if exclude is not None and path.is_relative_to(exclude):
            continue
        if _sniffed(path) is not None:
            found.append(path)
    return found


def _print_beside(progress: Progress, line: str) -> None:
    """A result line on stdout while the bar is drawn on stderr: through the bar's console when
    both are the same terminal (so neither tears the other), else plainly, for a pipe or a file."""
    if sys.stdout.isatty() and progress.console.is_terminal:
        progress.console.print(line, highlight=False, markup=False, soft_wrap=True)
    else:
        typer.echo(line)


def _sniffed(path: Path) -> str | None:
    from piiblur.redact.probe import sniff_format

    with path.open("rb") as handle:
        return sniff_format(handle.read(64))


def _is_video(path: Path) -> bool:
    from piiblur.redact.probe import IMAGE_FORMATS

    return _sniffed(path) not in IMAGE_FORMATS.values()


def _redact_folder(source: Path, target: Path, request: _RedactRequest, as_json: bool) -> None:
    from rich.console import Console
    from rich.progress import Progress

    from piiblur.redact.probe import UnsupportedMediaError

    files = _media_files(source, target.resolve())
    if not files:
        raise _fail(f"no images or videos in {source}", as_json)
    if any(_is_video(path) for path in files):
        _check_codecs(get_settings(), as_json)
    engine = _engine(get_settings(), as_json)
    failed = 0
    # stdout is left alone (rich would route it through the bar's console, on stderr).
    with Progress(console=Console(stderr=True), transient=as_json, redirect_stdout=False) as progress:
        overall = progress.add_task(f"{len(files)} file(s)", total=len(files))
        for path in files:
            relative = path.relative_to(source)
            try:
                payload = {"file": str(path)} | _redact_file(path, target / relative, request, engine, progress)
                line = _redacted_line(payload)
            except UnsupportedMediaError as error:
                failed += 1
                payload = {"file": str(path), "error": str(error)}
                line = f"{path}: not redacted: {error}"
            _print_beside(progress, json.dumps(payload) if as_json else line)
            progress.advance(overall)
    if failed:
        typer.echo(f"error: {failed} of {len(files)} file(s) could not be redacted", err=True)
        raise typer.Exit(code=1)


@app.command()
def detect(
    images: Annotated[list[Path], typer.Argument(exists=True, help="Images, or folders of them")],
    categories: CategoriesOption,
    as_json: JsonFlag = False,
) -> None:
    """Print what would be hidden, one line (or JSON object) per image. Models load once for all
    the images given; a folder stands for every image under it."""
    from piiblur.redact.image import detect_image
    from piiblur.redact.probe import IMAGE_FORMATS

    wanted = _categories(categories)
    settings = get_settings()
    engine = _engine(settings, as_json)
    image_formats = set(IMAGE_FORMATS.values())
    expanded = [
        found
        for given in images
        for found in ([f for f in _media_files(given) if _sniffed(f) in image_formats] if given.is_dir() else [given])
    ]
    failed = 0
    for image in expanded:
        try:
            result = detect_image(image, wanted, engine)
        except OSError as error:  # one unreadable image does not stop the others
            failed += 1
            _emit_error(as_json, {"file": str(image), "error": str(error)}, f"{image}: {error}")
            continue
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
    if failed:
        raise typer.Exit(code=1)


def _emit_error(as_json: bool, payload: dict[str, Any], text: str) -> None:
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        typer.echo(f"error: {text}", err=True)


def main() -> None:
    app(sys.argv[1:])


if __name__ == "__main__":
    main()
