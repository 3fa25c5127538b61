"""Stored files as HTTP responses, with byte ranges (RFC 9110 §14) so that a browser's video
player can seek and a broken download can resume without fetching the whole file again."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from piiblur.api.errors import error_response
from piiblur.config import Settings
from piiblur.db.models import Media
from piiblur.redact.probe import content_type_for
from piiblur.storage import Storage

_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def file_response(
    request: Request, storage: Storage, key: str, content_type: str, headers: dict[str, str] | None = None
) -> Response:
    """The whole blob (200), or the one byte range the client asked for (206); a range that
    starts past the end is 416. Multiple ranges or a malformed header get the whole file, as the
    RFC allows: a client that cannot read multipart/byteranges is never broken by us."""
    size = storage.size(key)
    common = {"Accept-Ranges": "bytes", **(headers or {})}
    try:
        wanted = _requested_range(request.headers.get("range"), size)
    except _UnsatisfiableRangeError:
        message = f"range not satisfiable: the file has {size} bytes"
        return error_response(416, message, {"Content-Range": f"bytes */{size}"})
    if wanted is None:
        chunks = storage.iter_chunks(key)
        return StreamingResponse(chunks, media_type=content_type, headers=common | {"Content-Length": str(size)})
    start, end = wanted
    partial = common | {"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(end - start + 1)}
    return StreamingResponse(storage.iter_chunks(key, start, end), 206, media_type=content_type, headers=partial)


class _UnsatisfiableRangeError(Exception):
    """The range asks for bytes the file does not have."""


def _requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive, or None for "send it all"; ``_UnsatisfiableRangeError`` past the end."""
    match = _SINGLE_RANGE.fullmatch((header or "").replace(" ", ""))
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # a suffix: the last N bytes
        suffix = int(last)
        if not (suffix and size):
            raise _UnsatisfiableRangeError
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise _UnsatisfiableRangeError
    if end < start:
        return None  # syntactically invalid: ignored, as the RFC says
    return start, end


def download_response(request: Request, storage: Storage, key: str, content_type: str, filename: str) -> Response:
    """``file_response`` saved under ``filename`` by the client."""
    return file_response(request, storage, key, content_type, {"Content-Disposition": attachment(filename)})


def attachment(filename: str) -> str:
    """A Content-Disposition that every client reads: an ASCII fallback and the UTF-8 name."""
    return f"attachment; filename=\"{ascii_filename(filename)}\"; filename*=UTF-8''{quote(filename)}"


def ascii_filename(filename: str) -> str:
    return filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")


@dataclass(frozen=True)
class Delivery:
    """What the API's file routes need to hand a media item's file to the client, as one dependency."""

    request: Request
    storage: Storage
    settings: Settings

    def send(self, key: str, media: Media, filename: str) -> Response:
        """Stream the file through this process, or (S3, when configured) send the client to a
        short-lived presigned link, so large downloads never pass through the API."""
        content_type = content_type_for(media.file_format)
        if self.settings.s3_presigned_downloads:
            seconds = self.settings.s3_presign_seconds
            link = self.storage.presigned_url(key, seconds, attachment(filename), content_type)
            if link is not None:
                return RedirectResponse(link, status_code=307)
        return download_response(self.request, self.storage, key, content_type, filename)
