"""Faults, injected into a real server: killed mid-upload and mid-job, a full disk while the
result is written, the database unreachable for a moment, a webhook receiver that hangs."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from conftest import Server, astronaut, make_client, png_bytes, render_video
from piiblur.api.deps import release_session
from piiblur.db.session import make_engine, make_session_factory
from test_api import upload
from test_hostile import PATIENCE, spool_files, upload_head
from test_postgres import fresh_database
from test_webhooks import add_webhook


class TcpProxy:
    """Forwards a loopback port to ``target``. ``cut()`` drops every connection and refuses new
    ones (a database restarting, a network partition) until ``restore()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.open = threading.Event()
        self.open.set()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self.open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open.clear()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def proxied_postgres(tmp_path: Path) -> Iterator[tuple[Server, TcpProxy]]:
    with fresh_database("piiblur_faults") as url:
        proxy = TcpProxy(("127.0.0.1", 5432))
        through_proxy = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        server = Server(tmp_path / "data", env={"PIIBLUR_DATABASE_URL": through_proxy}).start()
        try:
            yield server, proxy
        finally:
            server.stop()
            proxy.close()


def test_the_database_briefly_unavailable_gives_503_then_recovers(proxied_postgres: tuple[Server, TcpProxy]) -> None:
    server, proxy = proxied_postgres
    client = make_client(server)
    assert client.http.get("/api/v1/usage").status_code == 200

    proxy.cut()
    for answer in (
        client.http.get("/api/v1/usage"),
        client.http.get("/api/v1/media"),
        upload(client, png_bytes(astronaut()), "during.png", "heads"),
    ):
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"error": "The database is unavailable; retry in a few seconds"}
        assert answer.headers["Retry-After"] == "5"

    proxy.restore()  # nothing restarts: the pool replaces its broken connections by itself
    assert client.http.get("/api/v1/usage").status_code == 200
    assert client.http.get("/api/v1/media").json()["total"] == 0, "the upload refused with 503 was not kept"
    after = upload(client, png_bytes(astronaut()), "after.png", "heads")
    assert after.status_code == 201, after.text
    assert client.wait(after.json()["media_id"])["status"] == "completed", "the worker recovered too"


def test_a_server_killed_mid_upload_keeps_no_trace_of_it(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    client = make_client(server)
    assert server.process is not None
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="half.png"\r\n\r\n'
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(upload_head(client, 10_000_000) + part + b"\0" * 3_000_000)
        deadline = time.monotonic() + PATIENCE
        while not spool_files(server.process.pid) and time.monotonic() < deadline:
            connection.sendall(b"\0" * 10_000)  # until the server is spooling the half-sent file
        assert spool_files(server.process.pid), "the upload never reached the server's spool"
        server.kill()
    restarted = Server(server.data_dir).start()
    try:
        client.point_to(restarted)
        assert client.http.get("/api/v1/media").json()["total"] == 0
        scratch = sorted(path.name for path in (server.data_dir / "tmp").iterdir())
        assert scratch == [], scratch
        assert not list((server.data_dir / "media").rglob("*.*")), "no original of the half upload is stored"
    finally:
        restarted.stop()


def test_a_job_killed_mid_way_completes_after_restart_once(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", env={"PIIBLUR_VIDEO_SEGMENT_SECONDS": "600"}).start()
    client = make_client(server)
    clip = render_video(tmp_path / "long.mp4", seconds=12, fps=10, size=(640, 360))
    media_id = upload(client, clip.path.read_bytes(), "long.mp4", "heads").json()["media_id"]
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        body = client.http.get(f"/api/v1/media/{media_id}").json()
        if body["status"] == "processing" and body.get("progress"):
            break
        time.sleep(0.1)  # polling the job's state: the only thing the server shows of its progress
    assert body["status"] == "processing", body
    server.kill()  # half-way through the video

    restarted = Server(server.data_dir, env=server.env).start()
    try:
        client.point_to(restarted)
        body = client.wait(media_id, timeout=120)
        assert body["status"] == "completed", body
        assert client.http.get("/api/v1/usage").json()["video_minutes"]["used"] == 1, "billed once"
        assert client.http.get(f"/api/v1/media/{media_id}/download").status_code == 200
        results = list((server.data_dir / "media" / "results").rglob("*.mp4"))
        assert len(results) == 1, results
    finally:
        restarted.stop()


def test_a_full_disk_while_writing_the_result_fails_the_job_cleanly(tmp_path: Path) -> None:
    """The server may write no file over 4 MB (``prlimit --fsize``: writes past it fail as on a
    full disk). The upload, a palette PNG of 2 MB, fits; its redacted copy, in RGB, takes 6 MB."""
    noise = np.random.default_rng(7).integers(0, 256, (1400, 1400), dtype=np.uint8)
    palette_png = io.BytesIO()
    Image.fromarray(noise, "L").convert("P").save(palette_png, format="PNG")
    assert palette_png.tell() < 2_500_000, palette_png.tell()
    picture = palette_png
    server = Server(tmp_path / "data", command_prefix=["prlimit", f"--fsize={4_000_000}", "--"]).start()
    try:
        client = make_client(server)
        answer = upload(client, picture.getvalue(), "noise.jpg", "heads")
        assert answer.status_code == 201, answer.text
        body = client.wait(answer.json()["media_id"])
        assert body["status"] == "failed", body
        assert "the server's disk is full" in str(body["error_message"]), body
        download = client.http.get(f"/api/v1/media/{body['media_id']}/download")
        assert download.status_code == 404, "nothing half-written is served"
        assert not list((server.data_dir / "media" / "results").rglob("*")), "no partial result is kept"
        assert not list((server.data_dir / "tmp").iterdir()), "no partial scratch file is kept"
    finally:
        server.stop()


def test_a_hanging_webhook_receiver_blocks_nothing_and_is_retried_on_schedule(tmp_path: Path) -> None:
    """A receiver that accepts the connection and never answers: jobs and requests go on, each
    attempt ends at the deadline and the next follows the retry schedule."""
    hanging = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    attempts = threading.Semaphore(0)

    def accept_and_hang() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = hanging.accept()
                held.append(connection)  # never answered
                attempts.release()

    threading.Thread(target=accept_and_hang, daemon=True).start()
    env = {
        "PIIBLUR_WEBHOOK_ALLOW_PRIVATE": "1",
        "PIIBLUR_WEBHOOK_TIMEOUT_SECONDS": "1",
        "PIIBLUR_WEBHOOK_RETRY_SCHEDULE": "[0.5, 0.5]",
        "PIIBLUR_WEBHOOK_POLL_SECONDS": "0.1",
    }
    server = Server(tmp_path / "data", env=env).start()
    try:
        client = make_client(server)
        hook = add_webhook(client, f"http://127.0.0.1:{hanging.getsockname()[1]}/hook", ["media.processed"])
        ids = [upload(client, png_bytes(astronaut()), f"p{i}.png", "heads").json()["media_id"] for i in range(2)]
        assert attempts.acquire(timeout=PATIENCE), "the first delivery never connected"
        for media_id in ids:  # while the sender waits on the receiver
            assert client.wait(media_id)["status"] == "completed"
        for _ in range(2):  # first delivery's two retries, then the second delivery's attempts
            assert attempts.acquire(timeout=PATIENCE), "a retry never came"
        deliveries = client.http.get(f"/api/v1/webhooks/{hook['webhook_id']}/deliveries").json()
        tried = [attempt for delivery in deliveries for attempt in delivery["attempts"]]
        assert tried and all(attempt["error"] == "timed out after 1 s" for attempt in tried), tried
        assert all(attempt["duration_ms"] < 5000 for attempt in tried), tried
    finally:
        server.stop()
        hanging.close()
        for connection in held:
            connection.close()


def test_a_session_whose_connection_died_after_the_answer_is_released_quietly() -> None:
    """Found by the test above, once in a fresh-clone run: the request's session is closed after
    its answer has started; when the database went away in between, the failed rollback raised
    there and reset the client's connection under a complete answer."""
    with fresh_database("piiblur_release") as url:
        proxy = TcpProxy(("127.0.0.1", 5432))
        engine = make_engine(url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"))
        try:
            sessions = make_session_factory(engine)
            session = sessions()
            session.execute(text("SELECT 1"))
            proxy.cut()
            release_session(session)  # a plain session.close() raises OperationalError here
            proxy.restore()
            with sessions() as again:
                assert again.execute(text("SELECT 1")).scalar() == 1, "the pool replaced the dead connection"
        finally:
            engine.dispose()
            proxy.close()
