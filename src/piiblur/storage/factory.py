"""Choose a storage backend from ``PIIBLUR_STORAGE_URL``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from piiblur.storage.base import Storage
from piiblur.storage.local import LocalStorage


def storage_from_url(url: str) -> Storage:
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalStorage(Path(unquote(parsed.path if parsed.scheme else url)))
    raise ValueError(f"unsupported storage URL scheme {parsed.scheme!r} (supported: file://)")
