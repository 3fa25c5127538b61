"""Detection quality on every labelled set: ``../shared/eval`` and each folder of ``../shared/eval-ext``.

    .venv/bin/python bench/quality.py [--sets eval,faces] [--categories heads,writing] [--scale 3]

All 13 categories are asked for unless ``--categories`` says otherwise. Per set and per category:

- **recall**: a labelled box is *found* when at least 70 % of its area is hidden by the redaction
  (``redact.obfuscate.hidden_mask``: grown boxes, head ellipses) of detections of any category
  ("any") and of its own ("right"). ``ignore`` boxes count neither way.
- **false detections**: a detection covering a label box by less than 10 % of its own area. They
  are counted where the set says every instance is boxed: on images that are not ``partial`` (every
  category), on ``negative`` images (every detection is false), and for the categories a partial
  image lists as ``exhaustive`` (COCO boxes every screen). Reported per image and per category.
- **collateral**: the share of an image's unlabelled area (outside every label box grown by half its
  size on each side) that the redaction hides (`redact.obfuscate.hidden_mask`: the grown boxes and
  head ellipses actually blurred), mean and worst image, on images that are not partial.

``--calibrate`` fits the calibration file (``src/piiblur/detect/calibration.json``) first, on every
set present, then reports with it: each family's candidates are collected above its floor, heads
as bare face boxes. Each source's threshold is the highest at which no set loses more than
``RECALL_SLACK`` of its labels of that category (sources tried in turn, twice), lowered by
``SAFETY`` (scores of photos not yet seen spread wider than these); a source that finds nothing
the others miss is switched off if it is known to be wrong somewhere, kept otherwise. The head
growth is then the smallest scale of the face-to-head shape that hides, on every set, as many
labelled heads as the best one (less the same slack); rule-based boxes are capped at 1.5 times the
largest share of its frame that a labelled object of their category covers. ``--candidates FILE``
keeps what the families reported (with ``--calibrate``: bare face boxes) and reuses it, so that
the fit can be studied without running the models again.

Seconds per image are measured with models loaded. Writes ``bench/results/quality.md`` and
``quality.json``; a set that is absent is reported as such. ``--scale S`` enlarges the photos of
``eval`` and their labels S times first (``quality-xS``): the same scenes as a high-resolution camera
delivers them; recall should not fall when the pixels grow.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import report
from piiblur.detect import Detection, DetectionEngine
from piiblur.detect.calibration import CALIBRATION_FILE, Calibration, HeadGrowth, shipped_calibration
from piiblur.detect.faces import head_from_face
from piiblur.detect.registry import build_engine
from piiblur.domain import PiiCategory
from piiblur.redact.image import load_rgb
from piiblur.redact.obfuscate import hidden_mask

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SET_DIRS = {
    "eval": SHARED / "eval",
    "faces": SHARED / "eval-ext" / "faces",
    "coco128": SHARED / "eval-ext" / "coco128",
    "bivtatt": SHARED / "eval-ext" / "bivtatt",
    "icdar2015": SHARED / "eval-ext" / "icdar2015",
}
COVERED = 0.7
OVERLAP = 0.1
CONTEXT = 0.5  # label boxes grown by half their size on each side before collateral is measured
SAFETY = 0.2  # thresholds are set this share below the lowest score that was needed
HEAD_SCALES = tuple(round(0.1 * n, 1) for n in range(0, 21))  # growth scales tried, 0 to 2x the default
RECALL_SLACK = 0.005  # a threshold may lose at most this share of a set's labels of its category
RULE_SHARE_MARGIN = 1.5
BARE_FACES = HeadGrowth(left=0.0, right=0.0, top=0.0, bottom=0.0, small_face_extra=0.0)
HEAD_SOURCE = "heads/centerface"

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


@dataclass
class SetTally:
    categories: dict[PiiCategory, Tally] = field(default_factory=lambda: defaultdict(Tally))
    false_total: int = 0
    false_by_category: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    exhaustive_images: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    collateral: list[tuple[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    negatives_false: int = 0
    ignored: list[dict[str, Any]] = field(default_factory=list)
    per_image: list[dict[str, Any]] = field(default_factory=list)


def coverage(label: dict[str, Any], hidden: np.ndarray) -> float:
    """Share of a label box that the redaction hides (``hidden``: the image's hidden mask)."""
    height, width = hidden.shape
    x0, y0 = max(0, int(label["x"])), max(0, int(label["y"]))
    x1, y1 = min(width, int(label["x"] + label["w"])), min(height, int(label["y"] + label["h"]))
    if x1 <= x0 or y1 <= y0:
        return 0.0
    return float(hidden[y0:y1, x0:x1].mean())


def overlaps_a_label(detection: Detection, labels: list[dict[str, Any]]) -> bool:
    b = detection.box
    for label in labels:
        ix = min(b.x + b.w, label["x"] + label["w"]) - max(b.x, label["x"])
        iy = min(b.y + b.h, label["y"] + label["h"]) - max(b.y, label["y"])
        if ix > 0 and iy > 0 and ix * iy >= OVERLAP * max(b.area, 1.0):
            return True
    return False


def exhaustive_categories(entry: dict[str, Any]) -> set[PiiCategory]:
    """The categories whose every instance in this image is boxed."""
    if entry.get("negative") or not entry.get("partial"):
        return set(PiiCategory)
    return {LABEL_TO_CATEGORY[name] for name in entry.get("exhaustive", [])}


def collateral(entry: dict[str, Any], detections: list[Detection], height: int, width: int) -> float:
    """Share of the unlabelled area that the redaction hides."""
    free = np.ones((height, width), bool)
    for label in entry["boxes"]:
        dx, dy = label["w"] * CONTEXT, label["h"] * CONTEXT
        x0, y0 = max(0, int(label["x"] - dx)), max(0, int(label["y"] - dy))
        x1, y1 = int(np.ceil(label["x"] + label["w"] + dx)), int(np.ceil(label["y"] + label["h"] + dy))
        free[y0:y1, x0:x1] = False
    if not free.any():
        return 0.0
    return float((hidden_mask(detections, width, height) & free).sum() / free.sum())


@dataclass
class Record:
    """One labelled image and what the families reported on it."""

    entry: dict[str, Any]
    height: int
    width: int
    candidates: list[Detection]
    seconds: float


def collect(set_dir: Path, engine: DetectionEngine, categories: list[PiiCategory], scale: float) -> list[Record]:
    labels = json.loads((set_dir / "labels.json").read_text())
    records = []
    for original in labels["images"]:
        image, entry = _scaled(np.asarray(load_rgb(set_dir / original["file"]).convert("RGB")), original, scale)
        started = time.perf_counter()
        candidates = engine.candidates(image, categories)
        records.append(Record(entry, image.shape[0], image.shape[1], candidates, time.perf_counter() - started))
    return records


def score_set(
    set_dir: Path,
    records: list[Record],
    engine: DetectionEngine,
    calibration: Calibration,
    categories: list[PiiCategory],
    scale: float,
) -> dict[str, Any]:
    tally = SetTally()
    for record in records:
        entry, height, width = record.entry, record.height, record.width
        detections = engine.finalize(record.candidates, calibration, width, height)
        tally.seconds += record.seconds
        _score_labels(tally, entry, detections, categories, height, width)
        exhaustive = exhaustive_categories(entry) & set(categories)
        for category in exhaustive:
            tally.exhaustive_images[category.value] += 1
        false = [d for d in detections if d.category in exhaustive and not overlaps_a_label(d, entry["boxes"])]
        if entry.get("negative"):
            false = detections
            tally.negatives_false += len(false)
        tally.false_total += len(false)
        for d in false:
            tally.false_by_category[d.category.value] += 1
        row: dict[str, Any] = {
            "file": entry["file"],
            "seconds": round(record.seconds, 3),
            "detections": len(detections),
            "false": [d.as_dict() | {"detector": d.detector} for d in false],
        }
        if not entry.get("partial"):
            row["collateral"] = round(collateral(entry, detections, height, width), 4)
            tally.collateral.append((entry["file"], row["collateral"]))
        tally.per_image.append(row)
    return _summary(set_dir, len(records), tally, scale)


def _score_labels(
    tally: SetTally,
    entry: dict[str, Any],
    detections: list[Detection],
    categories: list[PiiCategory],
    height: int,
    width: int,
) -> None:
    hidden_any = hidden_mask(detections, width, height)
    for category in {LABEL_TO_CATEGORY[label["category"]] for label in entry["boxes"]} & set(categories):
        hidden_right = hidden_mask([d for d in detections if d.category is category], width, height)
        for label in entry["boxes"]:
            if LABEL_TO_CATEGORY[label["category"]] is not category:
                continue
            if label.get("ignore"):
                tally.ignored.append(_ignored_row(entry["file"], label, coverage(label, hidden_right)))
                continue
            counts = tally.categories[category]
            counts.labelled += 1
            if coverage(label, hidden_any) >= COVERED:
                counts.found_any += 1
            if coverage(label, hidden_right) >= COVERED:
                counts.found_right += 1
            else:
                counts.missed.append(f"{entry['file']}@{label['x']:g},{label['y']:g},{label['w']:g},{label['h']:g}")


def _summary(set_dir: Path, count: int, tally: SetTally, scale: float) -> dict[str, Any]:
    values = [c for _, c in tally.collateral]
    worst = max(tally.collateral, key=lambda fc: fc[1], default=None)
    return {
        "dir": str(set_dir),
        "scale": scale,
        "images": count,
        "categories": {
            c.value: {
                "labelled": t.labelled,
                "recall_any": round(t.found_any / t.labelled, 3) if t.labelled else None,
                "recall_right": round(t.found_right / t.labelled, 3) if t.labelled else None,
                "missed": t.missed,
            }
            for c, t in sorted(tally.categories.items(), key=lambda kv: list(PiiCategory).index(kv[0]))
        },
        "false_per_image": round(tally.false_total / count, 3),
        "false_per_image_by_category": {
            name: round(tally.false_by_category.get(name, 0) / images, 3)
            for name, images in sorted(tally.exhaustive_images.items())
        },
        "false_on_negatives": tally.negatives_false,
        "collateral_mean": round(float(np.mean(values)), 4) if values else None,
        "collateral_worst": {"file": worst[0], "share": worst[1]} if worst else None,
        "seconds_per_image": round(tally.seconds / count, 3),
        "ignored_labels": tally.ignored,
        "per_image": tally.per_image,
    }


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
        "label": f"{file}@{label['x']:g},{label['y']:g},{label['w']:g},{label['h']:g}",
        "category": label["category"],
        "note": label.get("note", ""),
        "covered": round(covered, 2),
    }


# --- calibration -------------------------------------------------------------------------------


def fit_head_growth(records: dict[str, list[Record]]) -> tuple[HeadGrowth, dict[str, Any]]:
    """The smallest growth that hides, on every set, as many labelled heads as the best growth tried
    less ``RECALL_SLACK`` (none on small sets): the face-to-head shape (``HeadGrowth()``'s
    proportions) scaled by ``s`` in ``HEAD_SCALES``."""

    def found(rs: list[Record], scale: float) -> int:
        total = 0
        for r in regrown(rs, _scaled_growth(scale)):
            hidden = hidden_mask([d for d in r.candidates if d.category is PiiCategory.HEADS], r.width, r.height)
            faces = [b for b in r.entry["boxes"] if b["category"] == "face" and not b.get("ignore")]
            total += sum(coverage(label, hidden) >= COVERED for label in faces)
        return total

    with_heads = {
        name: [r for r in rs if any(b["category"] == "face" for b in r.entry["boxes"])] for name, rs in records.items()
    }
    counts = {name: {scale: found(rs, scale) for scale in HEAD_SCALES} for name, rs in with_heads.items() if rs}
    needed = {
        name: max(by_scale.values()) - int(RECALL_SLACK * _labelled(with_heads[name], PiiCategory.HEADS))
        for name, by_scale in counts.items()
    }
    chosen = min(s for s in HEAD_SCALES if all(counts[name][s] >= needed[name] for name in counts))
    return _scaled_growth(chosen), {"scale": chosen, "heads_found_by_scale": counts}


def _scaled_growth(scale: float) -> HeadGrowth:
    shape = HeadGrowth()
    return HeadGrowth(
        left=round(shape.left * scale, 3),
        right=round(shape.right * scale, 3),
        top=round(shape.top * scale, 3),
        bottom=round(shape.bottom * scale, 3),
        small_face_pixels=shape.small_face_pixels,
        small_face_extra=round(shape.small_face_extra * scale, 3),
    )


def regrown(records: list[Record], growth: HeadGrowth) -> list[Record]:
    """The records with bare face boxes grown into heads."""
    out = []
    for r in records:
        candidates = [
            Detection(d.category, head_from_face(d.box, growth, r.width, r.height), d.score, d.detector)
            if Calibration.source(d) == HEAD_SOURCE
            else d
            for d in r.candidates
        ]
        out.append(Record(r.entry, r.height, r.width, candidates, r.seconds))
    return out


def fit_thresholds(records: dict[str, list[Record]], categories: list[PiiCategory]) -> dict[str, float]:
    """Per source, the highest threshold at which no set loses more than ``RECALL_SLACK`` of its
    labels of the source's category (less than one label on small sets: none), compared with every
    candidate kept (coordinate ascent over sources, two rounds); then ``SAFETY`` lower (``_settled``)."""
    every = [r for rs in records.values() for r in rs]
    sources = sorted({Calibration.source(d) for r in every for d in r.candidates})
    thresholds = dict.fromkeys(sources, 0.0)
    allowed = {
        (name, c): _found(rs, c, thresholds) - int(RECALL_SLACK * _labelled(rs, c))
        for name, rs in records.items()
        for c in categories
    }
    for _ in range(2):
        for source in sources:
            category = PiiCategory(source.split("/", 1)[0])
            scores = sorted({d.score for r in every for d in r.candidates if Calibration.source(d) == source})
            options = [*scores, max(scores, default=0.0) + 0.01]  # the last one switches the source off

            def keeps_recall(threshold: float, source: str = source, category: PiiCategory = category) -> bool:
                trial = thresholds | {source: threshold}
                return all(_found(rs, category, trial) >= allowed[name, category] for name, rs in records.items())

            # Recall only falls as a threshold rises: the highest that keeps it, by bisection.
            low, high = 0, len(options) - 1
            if keeps_recall(options[high]):
                low = high
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if keeps_recall(options[middle]) else (low, middle)
            thresholds[source] = max(thresholds[source], options[low] if keeps_recall(options[low]) else 0.0)
    return {source: _settled(t, every, source) for source, t in thresholds.items()}


def _settled(threshold: float, records: list[Record], source: str) -> float:
    """``SAFETY`` below the fitted threshold (scores of photos not yet seen spread wider). A source
    the others make useless on these sets (``threshold`` above all its scores) is switched off only
    if it is known to be wrong somewhere (a false candidate on a set that boxes every instance);
    if it never is, it stays on for what these sets do not show."""
    scores = [d.score for r in records for d in r.candidates if Calibration.source(d) == source]
    if threshold <= max(scores, default=0.0):
        return round(threshold * (1 - SAFETY), 4)
    known_false = any(Calibration.source(d) == source for r in records for d in _known_false(r))
    return round(threshold, 4) if known_false else 0.0


def _known_false(record: Record) -> list[Detection]:
    """Candidates the labels show to be false (where the set boxes every instance of the category)."""
    exhaustive = exhaustive_categories(record.entry)
    if record.entry.get("negative"):
        return record.candidates
    return [d for d in record.candidates if d.category in exhaustive and not overlaps_a_label(d, record.entry["boxes"])]


def _labelled(records: list[Record], category: PiiCategory) -> int:
    return sum(
        LABEL_TO_CATEGORY[b["category"]] is category and not b.get("ignore") for r in records for b in r.entry["boxes"]
    )


def _found(records: list[Record], category: PiiCategory, thresholds: dict[str, float]) -> int:
    calibration = Calibration(thresholds=thresholds)
    found = 0
    for r in records:
        labels = [b for b in r.entry["boxes"] if LABEL_TO_CATEGORY[b["category"]] is category and not b.get("ignore")]
        if not labels:
            continue
        kept = [d for d in r.candidates if d.category is category and calibration.keeps(d)]
        hidden = hidden_mask(kept, r.width, r.height)
        found += sum(coverage(label, hidden) >= COVERED for label in labels)
    return found


def calibrate(records: dict[str, list[Record]], categories: list[PiiCategory]) -> Calibration:
    """Thresholds first (heads grown as today), then the head growth with them."""
    every = [r for rs in records.values() for r in rs]
    provisional = {name: regrown(rs, HeadGrowth()) for name, rs in records.items()}
    thresholds = fit_thresholds(provisional, categories)
    kept = Calibration(thresholds=thresholds)
    filtered = {
        name: [Record(r.entry, r.height, r.width, [d for d in r.candidates if kept.keeps(d)], r.seconds) for r in rs]
        for name, rs in records.items()
    }
    growth, growth_note = fit_head_growth(filtered)
    shares = max_label_shares(every)
    measured = {
        "by": "bench/quality.py --calibrate",
        "sets": {name: len(rs) for name, rs in records.items()},
        "images": len(every),
        "head_growth": growth_note,
        "thresholds": (
            f"highest losing at most {RECALL_SLACK:.1%} of a set's labels (none on small sets), then {SAFETY:.0%} "
            "lower; off = above every score"
        ),
    }
    measured["max_rule_share"] = f"{RULE_SHARE_MARGIN}x the largest labelled object's share of its frame"
    caps = {c: round(min(1.0, RULE_SHARE_MARGIN * share), 3) for c, share in shares.items()}
    return Calibration(thresholds=thresholds, max_rule_share=caps, head=growth, measured=measured)


def max_label_shares(records: list[Record]) -> dict[str, float]:
    """Per category, the largest share of its frame a labelled object covers, on any set."""
    shares: dict[str, float] = defaultdict(float)
    for r in records:
        for b in r.entry["boxes"]:
            if not b.get("ignore"):
                category = LABEL_TO_CATEGORY[b["category"]].value
                shares[category] = max(shares[category], b["w"] * b["h"] / max(1, r.width * r.height))
    return dict(shares)


def markdown(results: dict[str, Any], absent: list[str]) -> str:
    lines = ["# Detection quality on the labelled sets", ""]
    lines += [
        "Found = at least 70 % of a labelled box covered. False detections are counted only where a set boxes",
        "every instance (not partial; or the categories a partial image lists as exhaustive). Collateral = the",
        "share of the unlabelled area (outside label boxes grown by half their size) that the redaction hides,",
        "on images that are not partial.",
        "",
    ]
    if absent:
        lines += [f"Not measured (set absent): {', '.join(absent)}.", ""]
    lines += ["| set | images | false / image | false / image by category | collateral mean | worst | s / image |"]
    lines += ["|---|---:|---:|---|---:|---|---:|"]
    for name, result in results.items():
        by_category = ", ".join(f"{c} {v}" for c, v in result["false_per_image_by_category"].items() if v) or "0"
        worst = result["collateral_worst"]
        worst_text = f"{worst['share']} ({Path(worst['file']).name})" if worst else "—"
        mean = result["collateral_mean"] if result["collateral_mean"] is not None else "—"
        lines.append(
            f"| {name} | {result['images']} | {result['false_per_image']} | {by_category} | {mean} | {worst_text} "
            f"| {result['seconds_per_image']} |"
        )
    lines += ["", "| set | category | labelled | recall (any category) | recall (right category) |"]
    lines += ["|---|---|---:|---:|---:|"]
    for name, result in results.items():
        for category, row in result["categories"].items():
            lines.append(f"| {name} | {category} | {row['labelled']} | {row['recall_any']} | {row['recall_right']} |")
    for name, result in results.items():
        lines += ["", f"## {name}: misses (right category)", ""]
        for category, row in result["categories"].items():
            shown = row["missed"][:40]
            lines += [f"- {category}: {miss}" for miss in shown]
            if len(row["missed"]) > len(shown):
                lines.append(f"- {category}: … {len(row['missed']) - len(shown)} more in quality.json")
        if result["false_on_negatives"]:
            lines.append(f"- false detections on negative images: {result['false_on_negatives']}")
        if result["ignored_labels"] and name == "eval":
            lines += ["", "Ignored labels (not scored): share covered by the right category", ""]
            lines += [f"- {r['label']} ({r['note']}): {r['covered']}" for r in result["ignored_labels"]]
    return "\n".join(lines) + "\n"


def _stored(path: Path, names: list[str]) -> dict[str, list[Record]]:
    if not path.is_file():
        return {}
    stored: dict[str, list[Record]] = pickle.loads(path.read_bytes())
    return {name: rs for name, rs in stored.items() if name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SET_DIRS), help="comma-separated: " + ", ".join(SET_DIRS))
    parser.add_argument("--categories", default=",".join(c.value for c in PiiCategory))
    parser.add_argument("--scale", type=float, default=1.0, help="enlarge eval photos and labels S times")
    parser.add_argument("--calibrate", action="store_true", help="fit and write calibration.json first")
    parser.add_argument(
        "--candidates",
        type=Path,
        help="keep the collected candidates in this file and reuse them when it exists (tuning the fit)",
    )
    args = parser.parse_args()
    # Calibrating, faces are collected bare; the shipped thresholds still say which pose heads the
    # tattoo family leaves out (candidates are otherwise collected before any threshold).
    calibration = replace(shipped_calibration(), head=BARE_FACES) if args.calibrate else shipped_calibration()
    engine = build_engine(calibration=calibration)
    engine.warm_up()
    categories = [PiiCategory(c) for c in args.categories.split(",") if PiiCategory(c) in engine.supported_categories]
    chosen = [name.strip() for name in args.sets.split(",") if name.strip()]
    if args.scale != 1.0:
        chosen = ["eval"]
    present = [name for name in chosen if (SET_DIRS[name] / "labels.json").is_file()]
    absent = [name for name in chosen if name not in present]
    if not present:
        print(f"no labelled set found ({', '.join(absent)} absent under {SHARED}): nothing measured")
        return
    records = _stored(args.candidates, present) if args.candidates else {}
    for name in present:
        if name not in records:
            print(f"measuring {name} …", flush=True)
            records[name] = collect(SET_DIRS[name], engine, categories, args.scale)
    if args.candidates:
        args.candidates.write_bytes(pickle.dumps(records))
    if args.calibrate:
        calibration = calibrate(records, categories)
        CALIBRATION_FILE.write_text(calibration.to_json())
        print(f"wrote {CALIBRATION_FILE}")
        records = {name: regrown(rs, calibration.head) for name, rs in records.items()}
    results = {
        name: score_set(SET_DIRS[name], rs, engine, calibration, categories, args.scale) for name, rs in records.items()
    }
    payload = {"categories_asked": [c.value for c in categories], "absent": absent, "sets": results}
    report.write("quality" if args.scale == 1.0 else f"quality-x{args.scale:g}", payload, markdown(results, absent))


if __name__ == "__main__":
    main()
