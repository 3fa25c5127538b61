"""The same service on PostgreSQL: ``PIIBLUR_DATABASE_URL`` is configuration, not a fork."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory

from conftest import Server, astronaut, make_client, png_bytes
from piiblur.db.session import alembic_config
from test_api import upload

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new database on the local PostgreSQL server, dropped afterwards; skips without a server."""
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL server on 127.0.0.1:5432 ({error})")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_database("piiblur_test") as url:
        yield url


def test_service_runs_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    server = Server(tmp_path / "data", env={"PIIBLUR_DATABASE_URL": postgres_url}).start()
    try:
        client = make_client(server)
        media_id = upload(client, png_bytes(astronaut()), "pg.png", "heads").json()["media_id"]
        body = client.wait(media_id)
        assert body["status"] == "completed" and body["detection_counts"] == {"heads": 1}
        assert client.http.get("/api/v1/media").json()["total"] == 1
        assert client.http.get("/api/v1/usage").json()["images"]["used"] == 1
        assert client.http.delete(f"/api/v1/media/{media_id}").status_code == 204
        assert not (tmp_path / "data" / "piiblur.db").exists(), "nothing went to SQLite"
        with psycopg.connect(postgres_url.replace("postgresql+psycopg", "postgresql")) as conn:
            assert conn.execute("select count(*) from accounts").fetchone() == (1,)
            head = ScriptDirectory.from_config(alembic_config(postgres_url)).get_current_head()
            assert conn.execute("select version_num from alembic_version").fetchone() == (head,)
    finally:
        server.stop()
