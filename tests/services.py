"""Real backing services for the fleet tests, started on loopback by the tests themselves: a
Redis server of our own (so a test may restart it), and an S3 API (moto's server). Each fixture
skips, saying why, where the service cannot be started on this machine."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import free_port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early (code {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


@dataclass
class RedisServer:
    """``redis-server`` on a port of its own, keeping nothing on disk (a restart loses every
    message, the harshest case for the job queue)."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        log = (self.folder / f"redis-{self.port}.log").open("wb")
        self.process = subprocess.Popen([*command, "--dir", str(self.folder)], stdout=log, stderr=log)
        _wait_for_port(self.port, self.process, "redis-server")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on this machine (Debian package redis-server): fleet tests not run")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@dataclass
class S3Server:
    """moto's S3-compatible server on loopback, with one bucket made for the test."""

    endpoint: str
    bucket: str
    access_key: str = "testing"
    secret_key: str = "testing"

    def env(self, prefix: str) -> dict[str, str]:
        return {
            "PIIBLUR_STORAGE_URL": f"s3://{self.bucket}/{prefix}",
            "PIIBLUR_S3_ENDPOINT_URL": self.endpoint,
            "PIIBLUR_S3_REGION": "us-east-1",
            "PIIBLUR_S3_ACCESS_KEY_ID": self.access_key,
            "PIIBLUR_S3_SECRET_ACCESS_KEY": self.secret_key,
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def keys(self, prefix: str = "") -> list[str]:
        found: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return found


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    moto = Path(sys.executable).parent / "moto_server"
    if not moto.exists():
        pytest.skip("moto[server] is not installed: S3 tests not run")
    port = free_port()
    log = (tmp_path_factory.mktemp("s3") / "moto.log").open("wb")
    process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        _wait_for_port(port, process, "moto_server")
        server = S3Server(f"http://127.0.0.1:{port}", f"piiblur-{uuid.uuid4().hex[:8]}")
        server.client().create_bucket(Bucket=server.bucket)
        assert httpx.get(server.endpoint, timeout=5).status_code == 200
        yield server
    finally:
        process.terminate()
        process.wait(10)
