"""A small Python client for the PiiBlur API, and webhook verification for receivers.

    from piiblur.client import Client, verify_webhook

    with Client("http://127.0.0.1:8000", api_key) as piiblur:
        media_id = piiblur.redact("photo.jpg", ["heads", "license_plates"])
        piiblur.wait(media_id)
        piiblur.download(media_id, "photo_redacted.jpg")

Errors raise ``PiiBlurError`` with the API's own message and status code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from piiblur.webhooks.signing import InvalidSignatureError, verify

__all__ = ["Client", "InvalidSignatureError", "PiiBlurError", "verify_webhook"]

FINAL_STATUSES = {"completed", "failed", "quota_exceeded"}


class PiiBlurError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class Client:
    def __init__(
        self, base_url: str, api_key: str, timeout: float = 60.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def redact(self, path: str | Path, categories: Sequence[str], obfuscation: str = "blur") -> str:
        """Upload a file for redaction; returns its ``media_id``."""
        source = Path(path)
        with source.open("rb") as handle:
            response = self._http.post(
                "/media/redact",
                files={"file": (source.name, handle)},
                data={"pii_categories[]": list(categories), "obfuscation_type": obfuscation},
            )
        return str(self._json(response)["media_id"])

    def get(self, media_id: str) -> dict[str, Any]:
        return self._json(self._http.get(f"/media/{media_id}"))

    def wait(self, media_id: str, timeout: float = 600.0, poll: float = 1.0) -> dict[str, Any]:
        """Poll until the media reaches a final status; returns its details."""
        deadline = time.monotonic() + timeout
        while True:
            media = self.get(media_id)
            if media["status"] in FINAL_STATUSES:
                return media
            if time.monotonic() > deadline:
                raise TimeoutError(f"media {media_id} still {media['status']} after {timeout:g} s")
            time.sleep(poll)

    def download(self, media_id: str, path: str | Path, original: bool = False) -> Path:
        """Stream the redacted file (or the original, while it is retained) to ``path``."""
        target = Path(path)
        with self._http.stream("GET", f"/media/{media_id}/{'original' if original else 'download'}") as response:
            if response.status_code != 200:
                response.read()
                self._json(response)
            with target.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        return target

    def list(self, status: str | None = None, media_type: str | None = None, page: int = 1) -> dict[str, Any]:
        params: dict[str, Any] = {"page": page}
        if status:
            params["status"] = status
        if media_type:
            params["media_type"] = media_type
        return self._json(self._http.get("/media", params=params))

    def delete(self, media_id: str) -> None:
        response = self._http.delete(f"/media/{media_id}")
        if response.status_code != 204:
            self._json(response)

    def usage(self) -> dict[str, Any]:
        return self._json(self._http.get("/usage"))

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text or response.reason_phrase}
        if response.status_code >= 400:
            raise PiiBlurError(response.status_code, str(body.get("error", "request failed")))
        result: dict[str, Any] = body
        return result


def verify_webhook(body: bytes, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """Check a webhook's signatures (and, with Standard Webhooks headers, its age) and return the
    parsed payload; raises ``InvalidSignatureError`` otherwise. Pass the raw body, unparsed."""
    verify(body, headers, secret)
    payload: dict[str, Any] = json.loads(body)
    return payload
