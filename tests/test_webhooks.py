"""Webhooks to a real receiver on loopback: signed, byte-identical, retried, durable, no SSRF;
and retention that deletes originals when promised."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import Client, Server, astronaut, make_client, png_bytes
from piiblur.client import InvalidSignatureError, verify_webhook
from piiblur.db.models import utcnow
from piiblur.services.retention import delete_due_originals
from piiblur.webhooks.destinations import UnsafeDestinationError, resolve
from piiblur.webhooks.sender import send
from test_api import upload
from test_cli import piiblur

FAST_RETRIES = {
    "PIIBLUR_WEBHOOK_ALLOW_PRIVATE": "1",
    "PIIBLUR_WEBHOOK_RETRY_SCHEDULE": "[0.3, 0.3, 0.3]",
    "PIIBLUR_WEBHOOK_POLL_SECONDS": "0.1",
}


class Receiver:
    """An HTTP server on loopback that records every request and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.script: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def events(self, name: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b in self.requests if json.loads(b)["event"] == name]

    def wait_for(self, count: int, name: str | None = None, timeout: float = 20) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name) if name else self.requests
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"received {len(self.requests)} requests, wanted {count} {name or ''}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("hooks") / "data", env=FAST_RETRIES).start()
    yield server
    server.stop()


def add_webhook(client: Client, url: str, events: list[str] | None = None) -> dict[str, str]:
    response = client.http.post("/api/v1/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_events_are_signed_and_sent_as_signed(hook_server: Server, receiver: Receiver) -> None:
    client = make_client(hook_server)
    hook = add_webhook(client, receiver.url)
    assert hook["secret"].startswith("whsec_") and hook["events"] == [
        "media.processed",
        "media.failed",
        "media.source_deleted",
    ]
    assert "secret" not in client.http.get("/api/v1/webhooks").json()[0], "the secret is shown once"

    media_id = upload(client, png_bytes(astronaut()), "a.png", "heads").json()["media_id"]
    client.wait(media_id)
    ((headers, body),) = receiver.wait_for(1, "media.processed")
    payload = verify_webhook(body, headers, hook["secret"])
    assert payload == {
        "event": "media.processed",
        "media_id": media_id,
        "status": "completed",
        "processed_at": client.http.get(f"/api/v1/media/{media_id}").json()["processed_at"],
        "download_url": f"{hook_server.url}/api/v1/media/{media_id}/download",
    }
    assert headers["x-piiblur-signature"].startswith("sha256=") and len(headers["x-piiblur-signature"]) == 71
    with pytest.raises(InvalidSignatureError):
        verify_webhook(body, headers, "whsec_" + "A" * 44)
    with pytest.raises(InvalidSignatureError):
        verify_webhook(body.replace(b"completed", b"Completed"), headers, hook["secret"])

    # Retention 0 (the default): the original went right after processing, and the receiver heard.
    ((headers, body),) = receiver.wait_for(1, "media.source_deleted")
    deleted = verify_webhook(body, headers, hook["secret"])
    assert set(deleted) == {"event", "media_id", "deleted_at"} and deleted["media_id"] == media_id
    assert client.http.get(f"/api/v1/media/{media_id}/original").status_code == 404


def test_failures_are_retried_with_one_id_then_never_again(hook_server: Server, receiver: Receiver) -> None:
    client = make_client(hook_server)
    hook = add_webhook(client, receiver.url)
    receiver.script = [500, 503]
    sent = client.http.post(f"/api/v1/webhooks/{hook['webhook_id']}/test").json()
    attempts = receiver.wait_for(3)
    assert {h["webhook-id"] for h, _ in attempts} == {sent["delivery_id"]}
    assert len({b for _, b in attempts}) == 1, "every attempt carries the same body"
    delivery = only_delivery_once(client, hook["webhook_id"], lambda d: d["status"] == "delivered")
    assert delivery["status"] == "delivered" and delivery["next_attempt_at"] is None, "nothing more is due"
    assert len(receiver.requests) == 3, "a delivered event is not sent again"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 200]
    assert all(a["duration_ms"] >= 0 for a in delivery["attempts"])


def test_gone_disables_the_endpoint(hook_server: Server, receiver: Receiver) -> None:
    client = make_client(hook_server)
    hook = add_webhook(client, receiver.url)
    receiver.script = [410]
    client.http.post(f"/api/v1/webhooks/{hook['webhook_id']}/test")
    receiver.wait_for(1)
    deadline = time.monotonic() + 10
    while client.http.get("/api/v1/webhooks").json()[0]["enabled"] and time.monotonic() < deadline:
        time.sleep(0.1)
    (endpoint,) = client.http.get("/api/v1/webhooks").json()
    assert endpoint["enabled"] is False and "410" in endpoint["disabled_reason"]


def only_delivery_once(client: Client, webhook_id: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The endpoint's single delivery, polled until ``ready`` holds (or 10 s passed)."""
    deadline = time.monotonic() + 10
    while True:
        (delivery,) = client.http.get(f"/api/v1/webhooks/{webhook_id}/deliveries").json()
        if ready(delivery) or time.monotonic() > deadline:
            return dict(delivery)
        time.sleep(0.05)


def test_a_restart_between_attempts_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    env = FAST_RETRIES | {"PIIBLUR_WEBHOOK_RETRY_SCHEDULE": "[3, 3]"}
    server = Server(tmp_path / "data", env=env).start()
    client = make_client(server)
    hook = add_webhook(client, receiver.url)
    receiver.script = [502]
    client.http.post(f"/api/v1/webhooks/{hook['webhook_id']}/test")
    receiver.wait_for(1)
    # Kill once the failed attempt is recorded: the retry is then pending in the database only.
    # (Killed between sending and recording, a delivery is retried when its 2-minute lease ends.)
    delivery = only_delivery_once(client, hook["webhook_id"], lambda d: bool(d["attempts"]))
    assert [a["status_code"] for a in delivery["attempts"]] == [502]
    server.kill()
    restarted = Server(server.data_dir, env=env).start()
    try:
        client.point_to(restarted)
        attempts = receiver.wait_for(2, timeout=20)
        assert attempts[0][0]["webhook-id"] == attempts[1][0]["webhook-id"]
        delivery = only_delivery_once(client, hook["webhook_id"], lambda d: d["status"] == "delivered")
        assert [a["status_code"] for a in delivery["attempts"]] == [502, 200]
    finally:
        restarted.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://192.168.0.10/x",
        "ftp://example.com/x",
        # IPv6 forms that lead to IPv4 loopback, metadata or private networks (transition mechanisms)
        "http://[::127.0.0.1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://[64:ff9b::7f00:1]/x",
        "http://[64:ff9b::a9fe:a9fe]/x",
        "http://[64:ff9b::a00:1]/x",
        "http://[2002:7f00:1::]/x",
        "http://[64:ff9b:1::7f00:1]/x",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x",
    ],
)
def test_private_and_odd_targets_are_refused(server: Server, url: str) -> None:
    """The main test server does not allow private targets; nothing is ever sent to these."""
    client = make_client(server)
    response = client.http.post("/api/v1/webhooks", json={"url": url})
    assert response.status_code == 422, response.text
    with pytest.raises(UnsafeDestinationError):
        resolve(url, allow_private=False)


def test_public_addresses_pass_the_check() -> None:
    destination = resolve("https://93.184.215.14/hook?x=1", allow_private=False)
    assert destination.connect_url == "https://93.184.215.14:443/hook?x=1"
    # A public IPv4 address behind NAT64 or 6to4 is public too.
    for literal in ("64:ff9b::808:808", "2002:808:808::1"):
        assert resolve(f"https://[{literal}]/hook", allow_private=False).connect_url.startswith(f"https://[{literal}]")


def test_retention_keeps_originals_until_the_clock_passes(hook_server: Server, receiver: Receiver) -> None:
    client = make_client(hook_server, retention_hours=48)
    hook = add_webhook(client, receiver.url, ["media.source_deleted"])
    media_id = upload(client, png_bytes(astronaut()), "keep.png", "heads").json()["media_id"]
    client.wait(media_id)
    assert client.http.get(f"/api/v1/media/{media_id}/original").status_code == 200
    ctx = hook_server.context()
    try:
        assert media_id not in delete_due_originals(ctx, now=utcnow() + timedelta(hours=47))
        assert client.http.get(f"/api/v1/media/{media_id}/original").status_code == 200
        assert media_id in delete_due_originals(ctx, now=utcnow() + timedelta(hours=49))
    finally:
        ctx.close()
    assert client.http.get(f"/api/v1/media/{media_id}/original").status_code == 404
    assert client.http.get(f"/api/v1/media/{media_id}/download").status_code == 200, "the result stays"
    ((headers, body),) = receiver.wait_for(1, "media.source_deleted")
    assert verify_webhook(body, headers, hook["secret"])["media_id"] == media_id
    assert not list((hook_server.data_dir / "media" / "originals").rglob(f"{media_id}.*"))


def test_a_delivery_claimed_at_creation_has_one_sender(hook_server: Server, receiver: Receiver) -> None:
    """``piiblur webhooks test`` sends its event itself: no delivery loop may claim it first."""
    from piiblur.services import webhooks as webhook_service

    client = make_client(hook_server)
    hook = add_webhook(client, receiver.url)
    ctx = hook_server.context()
    try:
        with ctx.sessions() as session:
            endpoint = webhook_service.get_endpoint(session, hook["webhook_id"])
            delivery = webhook_service.enqueue_test(session, endpoint, claimed=True)
            assert delivery.id not in webhook_service.claim_due(session, limit=10_000)
            assert delivery.status == "sending"
    finally:
        ctx.close()


def test_cli_manages_webhooks(hook_server: Server, receiver: Receiver) -> None:
    client = make_client(hook_server)
    data = hook_server.data_dir
    env = FAST_RETRIES
    added = json.loads(
        piiblur(
            data,
            "webhooks",
            "add",
            "--account",
            client.account_id,
            "--url",
            receiver.url,
            "--events",
            "media.processed",
            "--json",
            env=env,
        ).stdout
    )
    assert set(added) == {"webhook_id", "secret", "events"} and added["events"] == ["media.processed"]
    listed = json.loads(piiblur(data, "webhooks", "list", "--account", client.account_id, "--json").stdout)
    assert [w["webhook_id"] for w in listed["webhooks"]] == [added["webhook_id"]]
    # The running server polls every 0.1 s: it used to claim the event first now and then.
    for _ in range(3):
        tested = json.loads(piiblur(data, "webhooks", "test", added["webhook_id"], "--json", env=env).stdout)
        assert tested["status"] == "delivered" and tested["status_code"] == 200, tested
    tests = receiver.wait_for(3, "webhook.test")
    assert len(tests) == 3, "each test event is sent once"
    for headers, body in tests:
        verify_webhook(body, headers, added["secret"])
    removed = json.loads(piiblur(data, "webhooks", "remove", added["webhook_id"], "--json").stdout)
    assert removed == {"webhook_id": added["webhook_id"], "removed": True}
    refused = piiblur(
        data, "webhooks", "add", "--account", client.account_id, "--url", "http://10.0.0.1/x", "--json", check=False
    )
    assert refused.returncode == 1 and "non-public" in json.loads(refused.stdout)["error"]


def test_readme_verification_snippet_works() -> None:
    """The snippet users copy from the README accepts our signatures and refuses others."""
    from conftest import REPO
    from piiblur.webhooks.signing import new_secret, signed_headers

    readme = (REPO / "README.md").read_text()
    snippet = readme.split("Verify in Python")[1].split("```python\n")[1].split("```")[0]
    namespace: dict[str, object] = {}
    exec(snippet, namespace)
    verify = namespace["verify"]
    secret, body = new_secret(), b'{"event":"media.failed"}'
    headers = signed_headers("msg_1", body, secret)
    verify(body, headers, secret)  # type: ignore[operator]
    with pytest.raises(AssertionError):
        verify(body, headers, new_secret())  # type: ignore[operator]


def test_failed_processing_sends_media_failed(tmp_path: Path, receiver: Receiver) -> None:
    """The original vanishes from storage before the worker gets to it: processing fails."""
    queued = Server(tmp_path / "data", env=FAST_RETRIES | {"PIIBLUR_WORKERS": "0"}).start()
    client = make_client(queued)
    hook = add_webhook(client, receiver.url, ["media.failed"])
    media_id = upload(client, png_bytes(astronaut()), "a.png", "heads").json()["media_id"]
    queued.stop()
    for path in (queued.data_dir / "media" / "originals").rglob(f"{media_id}.*"):
        path.unlink()
    working = Server(queued.data_dir, env=FAST_RETRIES).start()
    try:
        client.point_to(working)
        body = client.wait(media_id)
        assert body["status"] == "failed" and body["error_message"] == "Processing failed"
        ((headers, raw),) = receiver.wait_for(1, "media.failed")
        assert verify_webhook(raw, headers, hook["secret"]) == {
            "event": "media.failed",
            "media_id": media_id,
            "status": "failed",
            "processed_at": None,
            "error_message": "Processing failed",
        }
    finally:
        working.stop()


class RawReceiver:
    """A TCP server on loopback that answers every connection with a script of its own: to play
    receivers that trickle or flood."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.sent = 0
        self.finished = threading.Event()

        def serve() -> None:
            connection, _ = self.listener.accept()
            with connection:
                connection.recv(65536)
                with contextlib.suppress(OSError):  # the sender hung up, as it should
                    answer(connection)
            self.finished.set()

        threading.Thread(target=serve, daemon=True).start()


def test_a_receiver_that_trickles_holds_the_sender_no_longer_than_the_deadline() -> None:
    """A byte every 0.2 s used to keep the single sender busy for a minute (each read was within
    its own timeout); the attempt now has one deadline."""
    stop = threading.Event()

    def trickle(connection: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
            if stop.wait(0.2):
                return
            connection.sendall(bytes([byte]))

    receiver = RawReceiver(trickle)
    outcome = send(receiver.url, "msg_1", b"{}", "whsec_test", timeout=1.0, allow_private=True)
    stop.set()
    assert not outcome.delivered and outcome.retryable
    assert outcome.error == "timed out after 1 s"
    assert outcome.duration_ms < 5000, "the 8 s trickle was cut at the deadline"


def test_a_huge_answer_is_not_read() -> None:
    """A receiver answering 200 with 300 MB: the sender reads 64 KB and hangs up."""

    def flood(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 300000000\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(300_000_000 // len(chunk)):
            connection.sendall(chunk)
            receiver.sent += len(chunk)

    receiver = RawReceiver(flood)
    outcome = send(receiver.url, "msg_2", b"{}", "whsec_test", timeout=10.0, allow_private=True)
    assert outcome.delivered and outcome.status_code == 200
    assert receiver.finished.wait(10)
    assert receiver.sent < 50_000_000, "the sender stopped reading long before the end"
