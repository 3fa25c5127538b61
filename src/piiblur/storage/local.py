"""Blobs as files under one directory: the embedded default."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from piiblur.storage.base import CHUNK_SIZE, StorageError


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError(f"storage key escapes the root: {key!r}")
        return path

    def save(self, key: str, source: BinaryIO) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK_SIZE):
                    out.write(chunk)
                    written += len(chunk)
            Path(tmp_name).replace(target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return written

    def save_file(self, key: str, path: Path) -> int:
        with path.open("rb") as source:
            return self.save(key, source)

    def iter_chunks(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():  # checked now, before a response has started, not on first read
            raise StorageError(f"no blob {key!r}")
        return _read_chunks(path, start, end)

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"no blob {key!r}")
        return path.stat().st_size

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        # Already local: hand out the file itself; readers must not modify it.
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"no blob {key!r}")
        yield path

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def presigned_url(self, key: str, seconds: int, disposition: str, content_type: str) -> str | None:
        return None  # files on this host are streamed by the API itself

    def check(self) -> None:
        if not (self.root.is_dir() and os.access(self.root, os.W_OK)):
            raise StorageError(f"storage folder {self.root} is not writable")


def _read_chunks(path: Path, start: int, end: int | None) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        left = None if end is None else end - start + 1
        while left is None or left > 0:
            chunk = handle.read(CHUNK_SIZE if left is None else min(CHUNK_SIZE, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
