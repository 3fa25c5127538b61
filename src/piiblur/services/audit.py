"""The audit record of a media item: every step from upload to release, who or what took it.

Actors: ``detector`` (the pipeline), ``api_key:<prefix>`` (a client), ``dashboard:<email>`` (a
person in the dashboard), ``system`` (retention). The record is kept with the item and deleted
with it; it never holds pixels of the original (the report's thumbnails come from the redacted
output only).
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from piiblur.db.models import AuditEntry, Media
from piiblur.domain import MediaStatus, MediaType
from piiblur.storage import Storage

DETECTOR = "detector"
SYSTEM = "system"
THUMBNAILS = 24  # at most, in the report: one per hidden object, largest first
THUMBNAIL_SIDE = 96


def record(session: Session, media_id: str, actor: str, action: str, **details: Any) -> None:
    """Add a step (committed with the caller's transaction)."""
    session.add(AuditEntry(media_id=media_id, actor=actor, action=action, details=details))


def entries(session: Session, media: Media) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.media_id == media.id).order_by(AuditEntry.id)))


def as_json(media: Media, steps: list[AuditEntry]) -> dict[str, Any]:
    """The record as the API returns it."""
    return {
        "media_id": media.id,
        "status": media.status,
        "original_filename": media.original_filename,
        "media_type": media.media_type,
        "renders": media.renders,
        "counts": _counts(media),
        "detections_by_source": _by_source(media),
        "steps": [
            {"at": step.at.isoformat(timespec="seconds"), "actor": step.actor, "action": step.action}
            | {"details": step.details}
            for step in steps
        ],
    }


def _counts(media: Media) -> dict[str, int]:
    from piiblur.services.media import object_counts

    return object_counts(media)


def _by_source(media: Media) -> dict[str, int]:
    return dict(Counter(str(d.get("source", "detector")) for d in media.detections or []))


@dataclass(frozen=True)
class Thumbnail:
    category: str
    source: str
    png: bytes


def thumbnails(redacted: Path, media: Media) -> list[Thumbnail]:
    """Crops of the redacted output around the hidden objects (the largest box of each track),
    showing that they are hidden: from the output only, never from the original."""
    chosen = _largest_per_object(media.detections or [])[:THUMBNAILS]
    if media.media_type == MediaType.IMAGE.value:
        with Image.open(redacted) as image:
            picture = image.convert("RGB")
        return [_crop(picture, item) for item in chosen]
    wanted: dict[int, list[dict[str, Any]]] = {}
    for item in chosen:
        wanted.setdefault(int(item.get("frame", 0)), []).append(item)
    found = []
    for index, frame in _frames(redacted):
        for item in wanted.pop(index, []):
            found.append(_crop(frame, item))
        if not wanted:
            break
    return found


def _largest_per_object(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[object, dict[str, Any]] = {}
    for number, item in enumerate(items):
        key = (item["category"], item.get("track", f"#{number}"))
        area = float(item["box"][2]) * float(item["box"][3])
        if key not in best or area > float(best[key]["box"][2]) * float(best[key]["box"][3]):
            best[key] = item
    return sorted(best.values(), key=lambda d: -float(d["box"][2]) * float(d["box"][3]))


def _frames(path: Path) -> Iterator[tuple[int, Image.Image]]:
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            yield index, Image.fromarray(frame.to_ndarray(format="rgb24"))


def _crop(picture: Image.Image, item: dict[str, Any]) -> Thumbnail:
    x, y, w, h = (float(v) for v in item["box"])
    margin = 0.25 * max(w, h)
    crop = picture.crop((max(0, int(x - margin)), max(0, int(y - margin)), int(x + w + margin), int(y + h + margin)))
    crop.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    crop.save(buffer, format="PNG")
    return Thumbnail(str(item["category"]), str(item.get("source", "detector")), buffer.getvalue())


def report(storage: Storage, media: Media, record_json: dict[str, Any]) -> str:
    """The HTML report, with thumbnails once a redacted output exists."""
    shown: list[Thumbnail] = []
    if media.result_key is not None and media.status == MediaStatus.COMPLETED.value:
        with storage.local_copy(media.result_key) as redacted:
            shown = thumbnails(redacted, media)
    return report_html(record_json, shown)


def report_html(record_json: dict[str, Any], shown: list[Thumbnail]) -> str:
    """A one-page report, printable (the browser's Save as PDF): counts per category, the
    thumbnails of hidden regions, and every step."""
    esc = html.escape
    counts = "".join(f"<tr><td>{esc(k)}</td><td>{v}</td></tr>" for k, v in sorted(record_json["counts"].items()))
    pictures = "".join(
        f'<figure><img alt="{esc(t.category)} hidden" src="data:image/png;base64,{base64.b64encode(t.png).decode()}">'
        f"<figcaption>{esc(t.category)} · {esc(t.source)}</figcaption></figure>"
        for t in shown
    )
    steps = "".join(
        f"<tr><td>{esc(s['at'])}</td><td>{esc(s['actor'])}</td><td>{esc(s['action'])}</td>"
        f"<td><code>{esc(_brief(s['details']))}</code></td></tr>"
        for s in record_json["steps"]
    )
    no_pictures = "<p>Not rendered yet: no redacted output to show.</p>" if not shown else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Redaction audit · {esc(record_json["original_filename"])}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}}
figure{{display:inline-block;margin:.3em;text-align:center;font-size:12px}}code{{font-size:11px}}</style></head>
<body><h1>Redaction audit</h1>
<p>Media <code>{esc(record_json["media_id"])}</code> · {esc(record_json["original_filename"])} ·
{esc(record_json["media_type"])} · status {esc(record_json["status"])} · renders {record_json["renders"]}</p>
<h2>Hidden per category</h2><table><tr><th>category</th><th>objects</th></tr>{counts}</table>
<h2>Hidden regions (from the redacted output)</h2>{no_pictures}{pictures}
<h2>Steps</h2><table><tr><th>time (UTC)</th><th>actor</th><th>action</th><th>details</th></tr>{steps}</table>
</body></html>"""


def _brief(details: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in details.items())
    return text if len(text) <= 300 else text[:297] + "..."
