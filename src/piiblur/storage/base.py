"""The storage interface: named blobs, streamed in and out, never loaded whole."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK_SIZE = 1024 * 1024


class StorageError(Exception):
    """A blob is missing or could not be written."""


class Storage(Protocol):
    def save(self, key: str, source: BinaryIO) -> int:
        """Copy a stream into ``key`` in chunks and return the byte count; replaces atomically."""
        ...

    def save_file(self, key: str, path: Path) -> int:
        """Store a local file under ``key``."""
        ...

    def iter_chunks(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream a blob out, for HTTP responses: bytes ``start`` to ``end`` inclusive (all of it
        by default), so players can seek in a video with ``Range`` requests."""
        ...

    def size(self, key: str) -> int:
        """The blob's length in bytes (raises ``StorageError`` when it is missing)."""
        ...

    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A local file with the blob's bytes for decoders that need a path; cleaned up on exit."""
        ...

    def delete(self, key: str) -> None:
        """Remove a blob; a missing blob is not an error (deletes are retried)."""
        ...

    def exists(self, key: str) -> bool: ...

    def presigned_url(self, key: str, seconds: int, disposition: str, content_type: str) -> str | None:
        """A time-limited direct link to the blob, where the backend has such links; else None."""
        ...

    def check(self) -> None:
        """Raise ``StorageError`` unless blobs can be written now (readiness probes)."""
        ...
