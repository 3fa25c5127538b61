"""Review before release: editing a media item's detections, and asking for a render.

Stored detections are dicts in the API's shape plus what editing needs: ``id`` (stable, ``d1``,
``d2``...), ``source`` (``detector`` or ``reviewer``), ``detector`` (the family that found it) and,
for a reviewer's video box, ``frame_end`` (the box covers ``frame`` to ``frame_end``; boxes of one
track are interpolated between the frames the reviewer set). Removing a video track on a frame
range is a suppression (``video_plan["suppressed"]``), whatever made the track's boxes.

Edits are allowed while the item is held for review, and after release while its original is
kept (a correction renders a new version). Every edit holds the original until the next render
is done, whatever the retention setting, and every edit is in the audit record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from piiblur.db.models import Media, utcnow
from piiblur.detect import Box
from piiblur.domain import MediaMode, MediaStatus, MediaType, PiiCategory
from piiblur.redact.obfuscate import FixedRegions
from piiblur.redact.render import Hidden
from piiblur.redact.timeline import Span, Suppression, Timeline, TrackedBox, VideoPlan, tracked_box
from piiblur.services import audit
from piiblur.services.errors import ConflictError, InvalidInputError

MAX_DETECTIONS = 20_000  # per item, after an edit: bounds the row and the render's work
EDITABLE = (MediaStatus.AWAITING_REVIEW.value, MediaStatus.COMPLETED.value)
REVIEWER = "reviewer"


# --- stored detections -----------------------------------------------------------------------


def stored(found: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A pipeline's detections as stored: numbered, marked as the detector's."""
    return [{"id": f"d{n}"} | item | {"source": "detector"} for n, item in enumerate(found, 1)]


def _next_id(items: Sequence[dict[str, Any]]) -> int:
    numbers = [
        int(str(i["id"])[1:]) for i in items if str(i.get("id", "")).startswith("d") and str(i["id"])[1:].isdigit()
    ]
    return max(numbers, default=0) + 1


def _next_track(media: Media, items: Sequence[dict[str, Any]]) -> int:
    carried = (media.video_plan or {}).get("carried", [])
    tracks = [int(i["track"]) for i in [*items, *carried] if i.get("track") is not None]
    return max(tracks, default=0) + 1


# --- what the reviewer sends -----------------------------------------------------------------


@dataclass(frozen=True)
class DetectionInput:
    """One detection as a client sends it (``PUT`` items, ``PATCH`` add/update)."""

    category: str | None = None
    box: Sequence[float] | None = None
    frame: int | None = None
    frame_end: int | None = None
    track: int | None = None
    id: str | None = None


@dataclass(frozen=True)
class Operation:
    """One ``PATCH`` change: ``add`` (``detection``), ``remove`` (``id``), ``update`` (``id`` and the
    fields to change, in ``detection``), ``remove_track`` (``track``, optionally a frame range)."""

    op: str
    id: str | None = None
    detection: DetectionInput | None = None
    track: int | None = None
    frame_start: int | None = None
    frame_end: int | None = None


def check_editable(media: Media) -> None:
    if media.status not in EDITABLE:
        raise ConflictError(
            f"Detections can be edited once detection is done (status is {media.status}); "
            "wait for awaiting_review or completed"
        )
    if media.original_key is None:
        raise ConflictError("The original has been deleted (retention), so a corrected version cannot be rendered")


def replace_detections(session: Session, media: Media, items: Sequence[DetectionInput], actor: str) -> None:
    """``PUT``: the list replaces the old one. Items with a known ``id`` keep it (and their
    source); others are new reviewer boxes."""
    check_editable(media)
    old = {str(d["id"]): d for d in media.detections or []}
    result: list[dict[str, Any]] = []
    next_id, next_track = _next_id(list(old.values())), _next_track(media, list(old.values()))
    changes = {"added": 0, "changed": 0, "removed": 0}
    for item in items:
        known = old.pop(item.id, None) if item.id is not None else None
        if known is None:
            new = _new_item(media, item, f"d{next_id}", next_track)
            next_id += 1
            next_track = max(next_track, int(new.get("track", 0))) + 1
            changes["added"] += 1
            result.append(new)
        else:
            updated = _updated_item(media, known, item)
            changes["changed"] += updated != known
            result.append(updated)
    changes["removed"] = len(old)
    _store(session, media, result, actor, "detections_replaced", **changes)


def apply_operations(session: Session, media: Media, operations: Sequence[Operation], actor: str) -> None:
    """``PATCH``: the changes in order; none is applied if one is invalid."""
    check_editable(media)
    items = [dict(d) for d in media.detections or []]
    suppressed = list((media.video_plan or {}).get("suppressed", []))
    steps: list[dict[str, Any]] = []
    for operation in operations:
        steps.append(_apply(media, items, suppressed, operation))
    if suppressed != (media.video_plan or {}).get("suppressed", []):
        media.video_plan = (media.video_plan or {}) | {"suppressed": suppressed}
    _store(session, media, items, actor, "detections_edited", operations=steps)


def _apply(
    media: Media, items: list[dict[str, Any]], suppressed: list[dict[str, Any]], operation: Operation
) -> dict[str, Any]:
    if operation.op == "add":
        if operation.detection is None:
            raise InvalidInputError("add needs a detection")
        new = _new_item(media, operation.detection, f"d{_next_id(items)}", _next_track(media, items))
        items.append(new)
        return {"op": "add", "id": new["id"], "after": new}
    if operation.op in ("remove", "update"):
        position = next((n for n, d in enumerate(items) if d["id"] == operation.id), None)
        if position is None:
            raise InvalidInputError(f"No detection with id {operation.id!r}")
        before = items[position]
        if operation.op == "remove":
            del items[position]
            return {"op": "remove", "id": operation.id, "before": before}
        items[position] = _updated_item(media, before, operation.detection or DetectionInput())
        return {"op": "update", "id": operation.id, "before": before, "after": items[position]}
    if operation.op == "remove_track":
        return _remove_track(media, items, suppressed, operation)
    raise InvalidInputError(f"Unknown op {operation.op!r}: add, remove, update or remove_track")


def _remove_track(
    media: Media, items: list[dict[str, Any]], suppressed: list[dict[str, Any]], operation: Operation
) -> dict[str, Any]:
    if media.media_type != MediaType.VIDEO.value or operation.track is None:
        raise InvalidInputError("remove_track needs a video and a track")
    if not any(d.get("track") == operation.track for d in items):
        raise InvalidInputError(f"No track {operation.track} in this video's detections")
    start, end = operation.frame_start, operation.frame_end
    if start is not None and end is not None and end < start:
        raise InvalidInputError("frame_end must not be before frame_start")
    suppressed.append({"track": operation.track, "frame_start": start, "frame_end": end})
    if start is None and end is None:  # the whole track: its boxes go from the list too
        items[:] = [d for d in items if d.get("track") != operation.track]
    return {"op": "remove_track", "track": operation.track, "frame_start": start, "frame_end": end}


def _store(
    session: Session, media: Media, items: list[dict[str, Any]], actor: str, action: str, **details: Any
) -> None:
    if len(items) > MAX_DETECTIONS:
        raise InvalidInputError(f"At most {MAX_DETECTIONS} detections per item")
    media.detections = items
    media.original_delete_after = None  # held until the next render is done
    audit.record(session, media.id, actor, action, **details)
    session.commit()


def _new_item(media: Media, item: DetectionInput, identifier: str, track: int) -> dict[str, Any]:
    if item.category is None or item.box is None:
        raise InvalidInputError("A new detection needs a category and a box")
    new: dict[str, Any] = {
        "id": identifier,
        "category": _category(item.category),
        "box": _box(media, item.box),
        "score": 1.0,
        "source": REVIEWER,
    }
    if media.media_type == MediaType.VIDEO.value:
        frame = _frame(media, item.frame if item.frame is not None else 0)
        frame_end = _frame(media, item.frame_end if item.frame_end is not None else frame)
        if frame_end < frame:
            raise InvalidInputError("frame_end must not be before frame")
        new |= {"frame": frame, "frame_end": frame_end, "track": item.track if item.track is not None else track}
    return new


def _updated_item(media: Media, known: dict[str, Any], item: DetectionInput) -> dict[str, Any]:
    updated = dict(known)
    if item.category is not None:
        updated["category"] = _category(item.category)
    if item.box is not None:
        updated["box"] = _box(media, item.box)
    if media.media_type == MediaType.VIDEO.value:
        if item.frame is not None:
            updated["frame"] = _frame(media, item.frame)
        if item.frame_end is not None:
            updated["frame_end"] = _frame(media, item.frame_end)
        if "frame_end" in updated and updated["frame_end"] < updated.get("frame", 0):
            raise InvalidInputError("frame_end must not be before frame")
        if item.track is not None:
            updated["track"] = item.track
    if updated != known and known.get("source") == "detector":
        updated["edited"] = True
    return updated


def _category(value: str) -> str:
    try:
        return PiiCategory(value).value
    except ValueError:
        allowed = ", ".join(c.value for c in PiiCategory)
        raise InvalidInputError(f"Unknown category {value[:64]!r}. Allowed: {allowed}") from None


def _box(media: Media, values: Sequence[float]) -> list[float]:
    """[x, y, w, h] clipped to the picture; an empty or outside box is refused."""
    if len(values) != 4 or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        raise InvalidInputError("box must be [x, y, width, height]: four finite numbers")
    x, y, w, h = (float(v) for v in values)
    width, height = media.width or 0, media.height or 0
    x0, y0, x1, y1 = max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h)
    if w <= 0 or h <= 0 or x1 - x0 < 1 or y1 - y0 < 1:
        raise InvalidInputError(f"box {list(values)} has no area inside the {width}x{height} picture")
    return [round(x0, 1), round(y0, 1), round(x1 - x0, 1), round(y1 - y0, 1)]


def _frame(media: Media, frame: int) -> int:
    frames = int((media.video_plan or {}).get("frames", 0)) or None
    if frame < 0 or (frames is not None and frame >= frames):
        raise InvalidInputError(f"frame {frame} is outside the video (frames 0 to {(frames or 1) - 1})")
    return frame


# --- rendering ---------------------------------------------------------------------------------


def request_render(session: Session, media: Media, actor: str) -> None:
    """Approve: queue a render of the stored detections (the item goes back to ``queued``)."""
    check_editable(media) if media.mode == MediaMode.REDACT.value else _check_detected(media)
    media.status = MediaStatus.QUEUED.value
    media.render_requested = True
    media.progress = 0
    media.original_delete_after = None
    media.dispatched_at = utcnow()
    audit.record(session, media.id, actor, "render_requested", detections=len(media.detections or []))
    session.commit()


def _check_detected(media: Media) -> None:
    if media.status != MediaStatus.COMPLETED.value:
        raise ConflictError(f"Detection is not done yet (status is {media.status})")
    if media.original_key is None:
        raise ConflictError("The original has been deleted (retention), so it cannot be rendered")


def fixed_regions_of(media: Media) -> FixedRegions:
    regions = media.fixed_regions or {}
    return FixedRegions(
        tuple(Box(*b) for b in regions.get("always_hide", [])), tuple(Box(*b) for b in regions.get("never_hide", []))
    )


def hidden_of(
    media: Media, items: list[dict[str, Any]] | None = None, plan_json: dict[str, Any] | None = None
) -> Hidden:
    """What a render of the item hides: the stored detections (or ``items`` and ``plan_json``,
    not stored yet), as a photo's boxes or a video's timeline."""
    if items is None:
        items = media.detections or []
    if media.media_type == MediaType.IMAGE.value:
        return [tracked_box(item).detection for item in items]
    if plan_json is None:
        plan_json = media.video_plan or {}
    return _timeline(media, items, plan_json)


def _timeline(media: Media, items: list[dict[str, Any]], plan_json: dict[str, Any]) -> Timeline:
    """What each frame of the video hides, from the stored detections and edits."""
    keyed = [tracked_box(i) for i in items if i.get("frame_end") is None]
    plan = VideoPlan.from_json(plan_json) if "channels" in plan_json else _fallback_plan(media, keyed)
    spans = [
        Span(
            int(i.get("track", 0)),
            PiiCategory(i["category"]),
            Box(*(float(v) for v in i["box"])),
            int(i["frame"]),
            int(i["frame_end"]),
        )
        for i in items
        if i.get("frame_end") is not None
    ]
    suppressed = [
        Suppression(int(s["track"]), s.get("frame_start"), s.get("frame_end")) for s in plan_json.get("suppressed", [])
    ]
    return Timeline(plan, keyed, spans, suppressed)


FALLBACK_STRIDE = 10  # the pipeline's longest stride for the fast channel (``video.MAX_STRIDE``)


def _fallback_plan(media: Media, keyed: list[TrackedBox]) -> VideoPlan:
    """Items redacted in segments (or before plans were kept) have no plan: every detection frame
    is a keyframe, on a grid of the shortest longest-stride, so a track's box is held at most that
    long past its last detection."""
    from piiblur.redact.timeline import ChannelPlan

    last = max((k.frame for k in keyed), default=0) + FALLBACK_STRIDE
    grid = list(range(0, last + 1, FALLBACK_STRIDE))
    categories = sorted({PiiCategory(c) for c in media.pii_categories} | {k.detection.category for k in keyed})
    return VideoPlan(media.width or 0, media.height or 0, last + 1, [ChannelPlan(categories, grid)])
