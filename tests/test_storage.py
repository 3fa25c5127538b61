"""Both storage backends behind one protocol, against real servers: files on disk, and an
S3 API on loopback (moto's server)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import httpx
import pytest

from piiblur.config import Settings
from piiblur.storage import StorageError, storage_from_settings
from piiblur.storage.base import Storage
from piiblur.storage.s3 import PART_SIZE
from services import S3Server, s3_server

__all__ = ["s3_server"]


def s3_storage(server: S3Server, tmp_path: Path, prefix: str = "tenant-a") -> Storage:
    return storage_from_settings(Settings(data_dir=tmp_path, **_settings_of(server.env(prefix))))


def _settings_of(env: dict[str, str]) -> dict[str, str]:
    return {key.removeprefix("PIIBLUR_").lower(): value for key, value in env.items()}


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return storage_from_settings(Settings(data_dir=tmp_path))
    return s3_storage(request.getfixturevalue("s3_server"), tmp_path)


def test_blobs_round_trip_and_delete(storage: Storage, tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    assert storage.save("originals/a/1.jpg", io.BytesIO(payload)) == len(payload)
    assert storage.exists("originals/a/1.jpg")
    assert b"".join(storage.iter_chunks("originals/a/1.jpg")) == payload
    assert storage.size("originals/a/1.jpg") == len(payload)
    start, end = 1024 * 1024 - 3, 2 * 1024 * 1024 + 5  # across chunk boundaries
    assert b"".join(storage.iter_chunks("originals/a/1.jpg", start, end)) == payload[start : end + 1]
    assert b"".join(storage.iter_chunks("originals/a/1.jpg", len(payload) - 7)) == payload[-7:]
    with storage.local_copy("originals/a/1.jpg") as path:
        assert path.read_bytes() == payload
    storage.check()
    storage.delete("originals/a/1.jpg")
    storage.delete("originals/a/1.jpg")  # deleting twice is not an error
    assert not storage.exists("originals/a/1.jpg")
    with pytest.raises(StorageError):
        storage.iter_chunks("originals/a/1.jpg")
    with pytest.raises(StorageError):
        storage.size("originals/a/1.jpg")
    with pytest.raises(StorageError):
        storage.save("../escape.jpg", io.BytesIO(b"x"))


def test_s3_uploads_large_files_in_parts_and_cleans_its_scratch_copies(s3_server: S3Server, tmp_path: Path) -> None:
    storage = s3_storage(s3_server, tmp_path, prefix="big")
    payload = os.urandom(PART_SIZE * 2 + 1234)  # three parts
    assert storage.save("results/x.mp4", io.BytesIO(payload)) == len(payload)
    assert "big/results/x.mp4" in s3_server.keys("big/")
    with storage.local_copy("results/x.mp4") as path:
        assert path.stat().st_size == len(payload)
        assert path.is_relative_to(tmp_path / "tmp"), "scratch copies stay in the state folder"
    assert not path.exists()
    assert not list((tmp_path / "tmp").iterdir())


def test_s3_presigned_links_download_with_our_name(s3_server: S3Server, tmp_path: Path) -> None:
    storage = s3_storage(s3_server, tmp_path)
    storage.save("results/y.png", io.BytesIO(b"png bytes"))
    url = storage.presigned_url("results/y.png", 60, 'attachment; filename="photo_redacted.png"', "image/png")
    assert url is not None
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200 and answer.content == b"png bytes"
    assert "photo_redacted.png" in answer.headers["content-disposition"]
    assert storage_from_settings(Settings(data_dir=tmp_path)).presigned_url("k", 60, "n", "t") is None


def test_s3_without_a_reachable_bucket_is_not_ready(s3_server: S3Server, tmp_path: Path) -> None:
    env = s3_server.env("p") | {"PIIBLUR_STORAGE_URL": "s3://no-such-bucket/p"}
    with pytest.raises(StorageError):
        storage_from_settings(Settings(data_dir=tmp_path, **_settings_of(env))).check()
