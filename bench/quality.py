"""Detection quality on the labelled development set (``../shared/eval``).

    .venv/bin/python bench/quality.py [--eval-dir DIR] [--categories heads,writing] [--scale 3]

A labelled box is *found* when at least 70 % of its area is covered by detections: by detections
of any category ("any") and by detections of its own category ("right"). Boxes marked ``ignore``
count neither way. A detection is *false* when less than 10 % of its area overlaps any label box
(ignore boxes included); unmatched detections in images marked ``partial`` are not counted, and on
``negative`` images every detection is false. Seconds per image are measured with models loaded.
Writes ``bench/results/quality.md`` and ``quality.json``.

``--scale S`` enlarges every photo and its labels S times first (results in ``quality-xS``): the
same scenes as a high-resolution camera would deliver them. Recall should not fall when the
pixels grow; this run shows whether it does.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import report
from piiblur.detect import Detection, default_engine
from piiblur.domain import PiiCategory
from piiblur.redact.image import load_rgb

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EVAL = REPO.parent / "shared" / "eval"
COVERED = 0.7
OVERLAP = 0.1

LABEL_TO_CATEGORY = {
    "face": PiiCategory.HEADS,
    "license_plate": PiiCategory.LICENSE_PLATES,
    "screen": PiiCategory.SCREENS,
    "text": PiiCategory.WRITING,
    "street_sign": PiiCategory.STREET_SIGNS,
    "id_card": PiiCategory.ID_CARDS,
    "passport": PiiCategory.PASSPORTS,
    "credit_card": PiiCategory.CREDIT_CARDS,
    "name_badge": PiiCategory.NAME_BADGES,
    "qr_code": PiiCategory.QR_CODES,
    "barcode": PiiCategory.BARCODES,
    "document": PiiCategory.DOCUMENTS,
    "tattoo": PiiCategory.TATTOOS,
}


@dataclass
class Tally:
    labelled: int = 0
    found_any: int = 0
    found_right: int = 0
    missed: list[str] = field(default_factory=list)


def coverage(label: dict[str, Any], boxes: list[Detection], height: int, width: int) -> float:
    x0, y0 = max(0, int(label["x"])), max(0, int(label["y"]))
    x1, y1 = min(width, int(label["x"] + label["w"])), min(height, int(label["y"] + label["h"]))
    if x1 <= x0 or y1 <= y0:
        return 0.0
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for d in boxes:
        bx0, by0 = max(x0, int(d.box.x)), max(y0, int(d.box.y))
        bx1, by1 = min(x1, int(np.ceil(d.box.x + d.box.w))), min(y1, int(np.ceil(d.box.y + d.box.h)))
        if bx1 > bx0 and by1 > by0:
            mask[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] = True
    return float(mask.mean())


def overlaps_a_label(detection: Detection, labels: list[dict[str, Any]]) -> bool:
    b = detection.box
    for label in labels:
        ix = min(b.x + b.w, label["x"] + label["w"]) - max(b.x, label["x"])
        iy = min(b.y + b.h, label["y"] + label["h"]) - max(b.y, label["y"])
        if ix > 0 and iy > 0 and ix * iy >= OVERLAP * max(b.area, 1.0):
            return True
    return False


def evaluate(eval_dir: Path, categories: list[PiiCategory], scale: float = 1.0) -> dict[str, Any]:
    labels = json.loads((eval_dir / "labels.json").read_text())
    engine = default_engine()
    engine.warm_up()
    tallies: dict[PiiCategory, Tally] = defaultdict(Tally)
    per_image: list[dict[str, Any]] = []
    false_total, seconds_total = 0, 0.0
    ignored: list[dict[str, Any]] = []
    for original in labels["images"]:
        image, entry = _scaled(np.asarray(load_rgb(eval_dir / original["file"]).convert("RGB")), original, scale)
        height, width = image.shape[:2]
        started = time.perf_counter()
        detections = engine.detect(image, categories)
        elapsed = time.perf_counter() - started
        seconds_total += elapsed
        for label in entry["boxes"]:
            category = LABEL_TO_CATEGORY[label["category"]]
            if category not in categories:
                continue
            if label.get("ignore"):
                right = [d for d in detections if d.category is category]
                ignored.append(_ignored_row(entry["file"], label, coverage(label, right, height, width)))
                continue
            tally = tallies[category]
            tally.labelled += 1
            right = [d for d in detections if d.category is category]
            if coverage(label, detections, height, width) >= COVERED:
                tally.found_any += 1
            if coverage(label, right, height, width) >= COVERED:
                tally.found_right += 1
            else:
                tally.missed.append(f"{entry['file']}@{label['x']},{label['y']},{label['w']},{label['h']}")
        if entry.get("negative"):
            false = detections
        elif entry.get("partial"):
            false = []
        else:
            false = [d for d in detections if not overlaps_a_label(d, entry["boxes"])]
        false_total += len(false)
        per_image.append(
            {
                "file": entry["file"],
                "seconds": round(elapsed, 3),
                "detections": len(detections),
                "false": [d.as_dict() for d in false],
            }
        )
    count = len(labels["images"])
    return {
        "eval_dir": str(eval_dir),
        "scale": scale,
        "images": count,
        "categories": {
            c.value: {
                "labelled": t.labelled,
                "recall_any": round(t.found_any / t.labelled, 3) if t.labelled else None,
                "recall_right": round(t.found_right / t.labelled, 3) if t.labelled else None,
                "missed": t.missed,
            }
            for c, t in sorted(tallies.items(), key=lambda kv: list(PiiCategory).index(kv[0]))
        },
        "false_per_image": round(false_total / count, 3),
        "false_on_negatives": sum(
            len(p["false"]) for p, e in zip(per_image, labels["images"], strict=True) if e.get("negative")
        ),
        "seconds_per_image": round(seconds_total / count, 3),
        "ignored_labels": ignored,
        "per_image": per_image,
    }


def _scale_note(scale: float) -> list[str]:
    return [f"Photos and labels enlarged {scale:g} times (bicubic) before detection.", ""] if scale != 1.0 else []


def _scaled(image: np.ndarray, entry: dict[str, Any], scale: float) -> tuple[np.ndarray, dict[str, Any]]:
    """The photo and its label boxes enlarged ``scale`` times (bicubic)."""
    if scale == 1.0:
        return image, entry
    height, width = image.shape[:2]
    size = (round(width * scale), round(height * scale))
    boxes = [{**box, **{k: round(box[k] * scale) for k in ("x", "y", "w", "h")}} for box in entry["boxes"]]
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), {**entry, "boxes": boxes}


def _ignored_row(file: str, label: dict[str, Any], covered: float) -> dict[str, Any]:
    """An ambiguous label (seen from behind, too small, drawn): not scored, but worth knowing."""
    return {
        "label": f"{file}@{label['x']},{label['y']},{label['w']},{label['h']}",
        "category": label["category"],
        "note": label.get("note", ""),
        "covered": round(covered, 2),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Detection quality on the development set",
        "",
        f"{result['images']} images from `{result['eval_dir']}`. Found = at least 70 % of a labelled box covered.",
        "",
        *_scale_note(result["scale"]),
        "| category | labelled | recall (any category) | recall (right category) |",
        "|---|---:|---:|---:|",
    ]
    for name, row in result["categories"].items():
        lines.append(f"| {name} | {row['labelled']} | {row['recall_any']} | {row['recall_right']} |")
    lines += [
        "",
        f"False detections per image: {result['false_per_image']} "
        f"(on negative images: {result['false_on_negatives']}). "
        f"Seconds per image: {result['seconds_per_image']}.",
        "",
        "## Misses (right category)",
        "",
    ]
    for name, row in result["categories"].items():
        lines += [f"- {name}: {miss}" for miss in row["missed"]]
    lines += [
        "",
        "## Ignored labels (not scored): share covered by the right category",
        "",
        "Ambiguous boxes (heads seen from behind or cut by the border, drawn faces, unreadable text)",
        "count neither as hits nor as false detections; how much of each is hidden anyway:",
        "",
    ]
    lines += [f"- {row['label']} ({row['note']}): {row['covered']}" for row in result["ignored_labels"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--categories", default=",".join(c.value for c in PiiCategory))
    parser.add_argument("--scale", type=float, default=1.0, help="enlarge photos and labels this many times")
    args = parser.parse_args()
    if not (args.eval_dir / "labels.json").is_file():
        print(f"no labelled set at {args.eval_dir} (../shared/eval is absent): nothing measured")
        return
    supported = default_engine().supported_categories
    categories = [PiiCategory(c) for c in args.categories.split(",") if PiiCategory(c) in supported]
    result = evaluate(args.eval_dir, categories, args.scale)
    name = "quality" if args.scale == 1.0 else f"quality-x{args.scale:g}"
    report.write(name, result, markdown(result))


if __name__ == "__main__":
    main()
