"""Scale-out as configuration: two API processes and two Celery workers sharing PostgreSQL, a
Redis broker and rate-limit store, and S3 storage, all real and on loopback. The embedded default
is tested everywhere else; here only what a fleet adds: no job lost or done twice, one charge and
one webhook per item, a worker killed mid-video, a limit shared by every API process, a broker
restart."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from conftest import Client, Server, astronaut, make_client, png_bytes, render_video
from piiblur.config import Settings
from piiblur.db.models import Media, WebhookDelivery, utcnow
from piiblur.services.context import build_context
from piiblur.services.processing import claim
from services import RedisServer, S3Server, redis_server, s3_server
from test_api import upload
from test_postgres import fresh_database, postgres_url
from test_segments import timestamps
from test_video import stream_facts, uncovered_frames
from test_webhooks import Receiver, add_webhook, receiver

__all__ = ["postgres_url", "receiver", "redis_server", "s3_server"]

UNLIMITED = 100_000  # requests a minute, for accounts that poll many items
LEASE_SECONDS = 4.0  # a silent job is retaken this soon: the kill tests wait for it
SEGMENT_SECONDS = 2.0  # videos over 4 s are split, when they have keyframes to cut at


@dataclass
class Worker:
    """``piiblur worker`` in its own process group, so the test can kill it whole, as a host
    crash or the OOM killer would."""

    name: str
    env: dict[str, str]
    log_path: Path
    queues: str = "images,video,housekeeping"
    process: subprocess.Popen[bytes] | None = None
    started: float = field(default=0.0)

    def start(self) -> Worker:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "piiblur", "worker", "--concurrency", "1", "--queues", self.queues,
                 "--name", f"{self.name}@fleet-test"],
                env=self.env, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        self._wait_for_log(f"{self.name}@fleet-test ready", 90)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited early:\n{self.log()[-3000:]}")
            if text in self.log():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker {self.name} not ready:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Fleet:
    env: dict[str, str]
    apis: list[Server]
    workers: list[Worker]
    s3: S3Server
    redis: RedisServer
    prefix: str

    def settings(self) -> Settings:
        values = {key.removeprefix("PIIBLUR_").lower(): value for key, value in self.env.items()}
        return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fleet_database() -> Iterator[str]:
    with fresh_database("piiblur_fleet") as url:
        yield url


@pytest.fixture(scope="module")
def fleet(
    fleet_database: str, redis_server: RedisServer, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    prefix = f"fleet-{uuid.uuid4().hex[:6]}"
    env = {
        "PIIBLUR_DATABASE_URL": fleet_database,
        "PIIBLUR_BROKER_URL": redis_server.url(0),
        "PIIBLUR_RATELIMIT_STORAGE_URL": redis_server.url(1),
        "PIIBLUR_SECRET_KEY": "fleet-test-secret-key-0123456789abcdef",
        "PIIBLUR_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "PIIBLUR_WORKER_POLL_SECONDS": "0.5",
        "PIIBLUR_WEBHOOK_ALLOW_PRIVATE": "1",
        "PIIBLUR_WEBHOOK_POLL_SECONDS": "0.2",
        "PIIBLUR_INFERENCE_THREADS": "1",
        "PIIBLUR_VIDEO_SEGMENT_SECONDS": str(SEGMENT_SECONDS),
        **s3_server.env(prefix),
    }
    metrics_dir = root / "metrics"  # shared by every process of this "host"
    metrics_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    full_env = os.environ | env
    migrated = subprocess.run(
        [sys.executable, "-m", "piiblur", "migrate", "--json"], env=full_env | {"PIIBLUR_DATA_DIR": str(root / "m")},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(migrated.stdout)["from"] is None
    apis = [Server(root / f"api{i}", env=env).start() for i in (1, 2)]
    workers = [
        Worker(f"w{i}", full_env | {"PIIBLUR_DATA_DIR": str(root / f"w{i}")}, root / f"w{i}.log").start()
        for i in (1, 2)
    ]
    yield Fleet(env, apis, workers, s3_server, redis_server, prefix)
    for worker in workers:
        worker.stop()
    for api in apis:
        api.stop()


def wait_all(client: Client, media_ids: list[str], timeout: float = 240) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, object]] = {}
    while time.monotonic() < deadline and len(done) < len(media_ids):
        for media_id in media_ids:
            if media_id not in done:
                answer = client.http.get(f"/api/v1/media/{media_id}")
                assert answer.status_code == 200, answer.text
                body = answer.json()
                if body["status"] not in ("queued", "processing"):
                    done[media_id] = body
        time.sleep(0.3)
    assert len(done) == len(media_ids), f"{len(media_ids) - len(done)} items not finished in {timeout}s"
    return done


def photo(index: int) -> bytes:
    """The astronaut, shifted so each upload is a different file."""
    return png_bytes(astronaut()[index % 7 :, index % 5 :])


def test_two_apis_and_two_workers_lose_nothing_and_do_nothing_twice(
    fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    client = make_client(fleet.apis[0], requests_per_minute=UNLIMITED)
    second = Client(client.account_id, client.api_key, httpx.Client(timeout=60))
    second.point_to(fleet.apis[1])
    add_webhook(client, receiver.url, ["media.processed"])
    clips = [render_video(tmp_path / f"clip{i}.mp4", seconds=2, fps=10) for i in (1, 2)]
    media_ids = []
    for index in range(40):
        via = client if index % 2 else second
        answer = upload(via, photo(index), f"p{index}.png", "heads")
        assert answer.status_code == 201, answer.text
        media_ids.append(answer.json()["media_id"])
    for index, clip in enumerate(clips):
        answer = upload(client if index else second, clip.path.read_bytes(), f"clip{index}.mp4", "heads")
        assert answer.status_code == 201, answer.text
        media_ids.append(answer.json()["media_id"])

    finished = wait_all(client, media_ids)
    assert {body["status"] for body in finished.values()} == {"completed"}
    assert all(body["detection_counts"] == {"heads": 1} for body in finished.values())
    usage = second.http.get("/api/v1/usage").json()
    assert usage["images"]["used"] == 40 and usage["video_minutes"]["used"] == 2
    ctx = build_context(fleet.settings(), migrate=False)
    try:
        with ctx.sessions() as session:
            rows = session.scalars(select(Media).where(Media.id.in_(media_ids))).all()
            assert {row.attempts for row in rows} == {1}, "every job ran once"
            events = session.scalars(select(WebhookDelivery).where(WebhookDelivery.event == "media.processed")).all()
            assert sorted(json.loads(e.body)["media_id"] for e in events) == sorted(media_ids)
    finally:
        ctx.close()
    received = receiver.wait_for(len(media_ids), "media.processed", timeout=60)
    assert sorted(json.loads(body)["media_id"] for _, body in received) == sorted(media_ids)
    for worker in fleet.workers:
        assert "succeeded" in worker.log(), f"{worker.name} took no job"
    # Results and originals live in the bucket, under the configured prefix.
    keys = fleet.s3.keys(fleet.prefix + "/results/")
    assert len(keys) == len(media_ids)
    # Retention 0 (the default): every original was deleted from the bucket once processed.
    assert [key for key in fleet.s3.keys(fleet.prefix + "/originals/") if client.account_id in key] == []
    download = client.http.get(f"/api/v1/media/{media_ids[-1]}/download")
    assert download.status_code == 200 and download.content[4:8] == b"ftyp"


def test_a_worker_killed_mid_video_leaves_it_to_the_other(fleet: Fleet, tmp_path: Path) -> None:
    client = make_client(fleet.apis[0], requests_per_minute=UNLIMITED)
    clip = render_video(tmp_path / "long.mp4", seconds=12, fps=15, size=(480, 360), crossings=3)
    media_id = upload(client, clip.path.read_bytes(), "long.mp4", "heads").json()["media_id"]
    victim = _worker_that_claims(fleet, media_id)
    deadline = time.monotonic() + 60
    while client.http.get(f"/api/v1/media/{media_id}").json()["progress"] < 10:  # in the middle of it
        assert time.monotonic() < deadline, "the video made no progress"
        time.sleep(0.1)
    victim.kill()
    try:
        body = wait_all(client, [media_id], timeout=180)[media_id]
        assert body["status"] == "completed", body
        survivor = next(w for w in fleet.workers if w is not victim)
        assert f"media {media_id} claimed (attempt 2)" in survivor.log()
        result = tmp_path / "result.mp4"
        result.write_bytes(client.http.get(f"/api/v1/media/{media_id}/download").content)
        assert uncovered_frames(clip, result) == [], "every frame of the face is hidden"
    finally:
        victim.start()


def test_a_long_video_is_split_across_workers_and_survives_a_killed_one(fleet: Fleet, tmp_path: Path) -> None:
    """Segments on both workers; one worker killed in the middle of its segment: that segment is
    redone by the other, the parts are joined without re-encoding, every frame is hidden, the
    audio and the timestamps are the original's, and the face crossing every border is one face."""
    client = make_client(fleet.apis[0], requests_per_minute=UNLIMITED)
    clip = render_video(tmp_path / "split.mp4", seconds=10, fps=15, size=(480, 360), crossings=3, keyframe_every=15)
    media_id = upload(client, clip.path.read_bytes(), "split.mp4", "heads").json()["media_id"]
    victim = _worker_that_claims(fleet, media_id, what="segment")
    victim.kill()
    try:
        body = wait_all(client, [media_id], timeout=240)[media_id]
        assert body["status"] == "completed", body
        assert body["detection_counts"] == {"heads": 1}, "one face across the borders"
        survivor = next(w for w in fleet.workers if w is not victim)
        assert re.search(rf"media {media_id} segment \d+ claimed \(claim 2\)", survivor.log()), (
            "the lost segment was redone"
        )
        assert f"media {media_id} split into" in victim.log() + survivor.log()
        result = tmp_path / "split-result.mp4"
        result.write_bytes(client.http.get(f"/api/v1/media/{media_id}/download").content)
        assert timestamps(result) == timestamps(clip.path)
        assert stream_facts(result).keys() == {"video", "audio"}
        assert uncovered_frames(clip, result) == [], "every frame of the face is hidden"
        assert not [key for key in fleet.s3.keys(fleet.prefix + "/segments/") if media_id in key], "parts removed"
    finally:
        victim.start()


def _worker_that_claims(fleet: Fleet, media_id: str, timeout: float = 60, what: str = "") -> Worker:
    pattern = re.compile(rf"media {media_id} {what}.*claimed" if what else rf"media {media_id} claimed")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in fleet.workers:
            if pattern.search(worker.log()):
                return worker
        time.sleep(0.1)
    raise AssertionError(f"no worker claimed {media_id}")


def test_one_rate_limit_across_api_processes(fleet: Fleet) -> None:
    client = make_client(fleet.apis[0], requests_per_minute=10)
    second = Client(client.account_id, client.api_key, httpx.Client(timeout=60))
    second.point_to(fleet.apis[1])
    refused_before = rate_limit_refusals(fleet.apis[0])
    answers = [(client if i % 2 else second).http.get("/api/v1/usage") for i in range(14)]
    assert [a.status_code for a in answers].count(200) == 10
    assert [a.status_code for a in answers].count(429) == 4
    remaining = [int(a.headers["X-RateLimit-Remaining"]) for a in answers[:10]]
    assert remaining == list(range(9, -1, -1)), "both processes count in one window"
    # Multiprocess metrics: a scrape of either process counts the refusals of both.
    assert rate_limit_refusals(fleet.apis[0]) - refused_before == 4
    assert rate_limit_refusals(fleet.apis[1]) - refused_before == 4


def rate_limit_refusals(api: Server) -> float:
    text = httpx.get(f"{api.url}/metrics", timeout=10).text
    found = re.search(r'^piiblur_refusals_total\{reason="rate_limit"\} ([0-9.e+]+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_broker_restart_loses_no_job(fleet: Fleet) -> None:
    client = make_client(fleet.apis[1])
    for worker in fleet.workers:
        worker.stop()
    try:
        media_ids = [upload(client, photo(i), f"r{i}.png", "heads").json()["media_id"] for i in range(5)]
        fleet.redis.restart()  # keeps nothing on disk: the five messages are gone
    finally:
        for worker in fleet.workers:
            worker.start()
    finished = wait_all(client, media_ids, timeout=120)
    assert {body["status"] for body in finished.values()} == {"completed"}
    assert any(f"job for {media_ids[0]} sent again" in api.log_text() for api in fleet.apis)


def test_readiness_names_what_a_process_depends_on(fleet: Fleet) -> None:
    ready = httpx.get(f"{fleet.apis[0].url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "storage": "ok", "jobs": "ok"}}
    metrics = httpx.get(f"{fleet.apis[0].url}/metrics", timeout=10).text
    assert 'piiblur_media{status="completed"}' in metrics and "piiblur_queue_depth" in metrics


def test_a_job_that_kills_its_worker_every_time_ends_failed(fleet: Fleet) -> None:
    """Its claims run out: after the last attempt the next delivery marks it failed instead."""
    client = make_client(fleet.apis[0])
    for worker in fleet.workers:
        worker.stop()
    try:
        media_id = upload(client, photo(99), "doomed.png", "heads").json()["media_id"]
        settings = fleet.settings()
        ctx = build_context(settings, migrate=False)
        with ctx.sessions() as session:
            for attempt in range(1, settings.job_max_attempts + 1):
                claimed = claim(session, media_id, settings)
                assert claimed is not None and claimed.attempt == attempt
                # ...and its worker dies: no heartbeat, the lease runs out
                row = session.get(Media, media_id)
                assert row is not None
                row.heartbeat_at = utcnow() - timedelta(seconds=2 * LEASE_SECONDS)
                session.commit()
            assert claim(session, media_id, settings) is None
        ctx.close()
    finally:
        for worker in fleet.workers:
            worker.start()
    body = client.http.get(f"/api/v1/media/{media_id}").json()
    assert body["status"] == "failed" and body["error_message"] == "Processing failed"


def test_rabbitmq_by_url_works_too(postgres_url: str, tmp_path: Path) -> None:
    """The same fleet with RabbitMQ as the broker: only the URL changes."""
    url = "amqp://guest:guest@127.0.0.1:5672//"
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError as error:
        pytest.skip(f"no RabbitMQ on 127.0.0.1:5672 ({error})")
    env = {
        "PIIBLUR_DATABASE_URL": postgres_url,  # a database of its own: the Redis fleet does not see its jobs
        "PIIBLUR_BROKER_URL": url,
        "PIIBLUR_STORAGE_URL": (tmp_path / "shared-media").as_uri(),
        "PIIBLUR_INFERENCE_THREADS": "1",
        "PIIBLUR_SECRET_KEY": "fleet-test-secret-key-0123456789abcdef",
    }
    api = Server(tmp_path / "api", env=env).start()
    worker = Worker("rabbit", os.environ | env | {"PIIBLUR_DATA_DIR": str(tmp_path / "w")}, tmp_path / "rabbit.log")
    try:
        worker.start()
        client = make_client(api)
        media_id = upload(client, photo(7), "rabbit.png", "heads").json()["media_id"]
        body = wait_all(client, [media_id], timeout=120)[media_id]
        assert body["status"] == "completed" and body["detection_counts"] == {"heads": 1}
        assert f"media {media_id} claimed (attempt 1)" in worker.log()
    finally:
        worker.stop()
        api.stop()


def test_concurrent_uploads_on_both_apis_never_overspend_the_quota(fleet: Fleet) -> None:
    """Eight uploads at once, half on each API process, for an account with three images left:
    exactly three are accepted (the account row is locked from the quota check to the insert)."""
    client = make_client(fleet.apis[0], requests_per_minute=UNLIMITED, images_per_month=3)
    second = Client(client.account_id, client.api_key, httpx.Client(timeout=60))
    second.point_to(fleet.apis[1])
    barrier = threading.Barrier(8)

    def send(index: int) -> int:
        via = client if index % 2 else second
        content = photo(200 + index)
        barrier.wait()
        return upload(via, content, f"q{index}.png", "heads").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = sorted(pool.map(send, range(8)))
    assert codes == [201] * 3 + [429] * 5
    usage = client.http.get("/api/v1/usage").json()["images"]
    assert usage["used"] == 3 and usage["limit"] == 3
