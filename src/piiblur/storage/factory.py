"""Choose a storage backend from ``PIIBLUR_STORAGE_URL``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from piiblur.config import Settings
from piiblur.storage.base import Storage
from piiblur.storage.local import LocalStorage


def storage_from_settings(settings: Settings) -> Storage:
    """``file:///path`` (or a bare path): files on this host; ``s3://bucket/prefix``: a bucket
    every host can reach, with the ``PIIBLUR_S3_*`` options."""
    url = settings.resolved_storage_url
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalStorage(Path(unquote(parsed.path if parsed.scheme else url)))
    if parsed.scheme == "s3":
        from piiblur.storage.s3 import S3Storage  # boto3 is loaded only where it is used

        if not parsed.netloc:
            raise ValueError(f"storage URL {url!r} names no bucket (s3://bucket/prefix)")
        return S3Storage(
            parsed.netloc,
            unquote(parsed.path),
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            scratch_dir=settings.scratch_dir(),
        )
    raise ValueError(f"unsupported storage URL scheme {parsed.scheme!r} (supported: file://, s3://)")
