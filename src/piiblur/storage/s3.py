"""Blobs in an S3-compatible bucket (AWS, MinIO, Ceph...): what many hosts share.

Uploads go up as multipart in parts of ``PART_SIZE`` straight from the stream, downloads are
streamed back in chunks (or handed out as presigned URLs), and decoders that need a file get a
scratch copy that is removed when they are done: no process reads a path on another host.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from piiblur.storage.base import CHUNK_SIZE, StorageError

PART_SIZE = 16 * 1024 * 1024  # S3 allows at most 10,000 parts: 16 MiB parts carry 156 GiB


class S3Storage:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        scratch_dir: Path | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.scratch_dir = scratch_dir
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, signature_version="s3v4"),
        )
        self._transfer = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE)

    def _key(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"storage key escapes the prefix: {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def save(self, key: str, source: BinaryIO) -> int:
        """S3 replaces an object only when its upload completes: readers never see half a blob."""
        counted = _CountingReader(source)
        try:
            self._client.upload_fileobj(counted, self.bucket, self._key(key), Config=self._transfer)
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"could not store {key!r}: {error}") from error
        return counted.count

    def save_file(self, key: str, path: Path) -> int:
        with path.open("rb") as source:
            return self.save(key, source)

    def iter_chunks(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        request: dict[str, str] = {"Bucket": self.bucket, "Key": self._key(key)}
        if start or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:  # opened now, so a missing blob is known before a response has started
            body = self._client.get_object(**request)["Body"]
        except ClientError as error:
            raise StorageError(f"no blob {key!r}: {error}") from error
        return _stream_body(body)

    def size(self, key: str) -> int:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            raise StorageError(f"no blob {key!r}: {error}") from error
        return int(head["ContentLength"])

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(dir=self.scratch_dir, prefix="s3-") as folder:
            path = Path(folder) / Path(key).name
            try:
                self._client.download_file(self.bucket, self._key(key), str(path), Config=self._transfer)
            except ClientError as error:
                raise StorageError(f"no blob {key!r}: {error}") from error
            yield path

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise StorageError(f"could not delete {key!r}: {error}") from error

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError:
            return False
        return True

    def presigned_url(self, key: str, seconds: int, disposition: str, content_type: str) -> str:
        """A time-limited link the client downloads from directly, with our file name on it
        (``disposition``: the Content-Disposition the bucket answers with)."""
        params = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "ResponseContentDisposition": disposition,
            "ResponseContentType": content_type,
        }
        return str(self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds))

    def check(self) -> None:
        """Reachable and the bucket exists (for readiness probes)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"bucket {self.bucket!r} not reachable: {error}") from error


class _CountingReader:
    """A read-only file object that counts what passes through it."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.count += len(data)
        return data


def _stream_body(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_SIZE)
    finally:
        body.close()
