"""Irreversibility measured with a face recogniser: does dlib still match a redacted face to its
original at its usual threshold (0.6)?

    .venv/bin/python bench/irreversibility.py [--max-faces 200]

The attacker is as strong as it gets: dlib's ResNet descriptor (``face-recognition-models``) is
computed on the redacted picture at the exact place of the original face, aligned with the
landmarks found on the original. Distances are measured, per face width, for
- ``recompressed``: the original saved again as a JPEG (quality 75): the recogniser still knows the
  face, so the size is one it works at;
- ``blur`` and ``pixelation``: the photo as PiiBlur returns it (heads found and hidden by the service);
- ``flat``: the head region filled with its mean colour (the most a hiding of the face can remove:
  what remains is the context around it).

A distance under 0.6 to the original does not by itself mean the person can be told: a hidden face
reduced to a few cells gets a nearly generic descriptor, close to many people at once. So each set
is also attacked as a gallery: every variant is compared with the originals of every face in the set
(the attacker holds a photo of each of them), and counted **re-identified** when its own original
is the nearest one; **strangers matched** is the share of other people's originals it is within 0.6
of. Chance is one in the gallery's size.

Faces: the astronaut (shipped with scikit-image) scaled from 24 px wide to full frame, and the
labelled faces of ``../shared/eval`` and ``../shared/eval-ext/faces`` when present (said when absent).
Writes ``bench/results/irreversibility.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlib
import face_recognition_models
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import report  # noqa: E402
from conftest import ASTRONAUT_FACE, astronaut  # noqa: E402
from piiblur.detect import default_engine  # noqa: E402
from piiblur.detect.base import Box, Detection  # noqa: E402
from piiblur.domain import ObfuscationType, PiiCategory  # noqa: E402
from piiblur.redact.image import redact_image  # noqa: E402

THRESHOLD = 0.6  # dlib's own: below it, two faces are the same person
SHARED = REPO.parent / "shared"
SETS = {"eval": SHARED / "eval", "faces": SHARED / "eval-ext" / "faces"}
BUCKETS = [(24, 48), (48, 96), (96, 192), (192, 400), (400, 100_000)]
VARIANTS = ("recompressed", "blur", "pixelation", "flat")

shapes = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
recogniser = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())


@dataclass
class Face:
    source: str
    pixels: np.ndarray
    box: tuple[int, int, int, int]  # x, y, w, h


def descriptor(pixels: np.ndarray, landmarks: Any) -> np.ndarray:
    return np.asarray(recogniser.compute_face_descriptor(np.ascontiguousarray(pixels), landmarks))


def astronaut_faces() -> list[Face]:
    """The astronaut's face at widths from 24 px to the whole frame (a crop filling 512 px)."""
    photo = astronaut()
    x0, y0, x1, y1 = ASTRONAUT_FACE
    faces = []
    for width in (24, 32, 48, 64, 96, 128, 192, 256, 384):
        scale = width / (x1 - x0)
        size = max(1, round(photo.shape[1] * scale))
        scaled = np.asarray(Image.fromarray(photo).resize((size, size), Image.Resampling.LANCZOS))
        box = (round(x0 * scale), round(y0 * scale), width, round((y1 - y0) * scale))
        faces.append(Face(f"astronaut {width} px", scaled, box))
    crop = photo[y0 - 20 : y1 + 20, x0 - 20 : x1 + 20]
    full = np.asarray(Image.fromarray(crop).resize((512, round(512 * crop.shape[0] / crop.shape[1]))))
    factor = 512 / crop.shape[1]
    faces.append(
        Face(
            "astronaut full frame",
            full,
            (round(20 * factor), round(20 * factor), round(120 * factor), round(160 * factor)),
        )
    )
    return faces


def labelled_faces(set_dir: Path, limit: int) -> list[Face]:
    import json

    labels = json.loads((set_dir / "labels.json").read_text())
    faces = []
    for entry in labels["images"]:
        boxes = [b for b in entry.get("boxes", []) if b["category"] == "face" and not b.get("ignore") and b["w"] >= 24]
        if not boxes:
            continue
        pixels = np.asarray(Image.open(set_dir / entry["file"]).convert("RGB"))
        faces += [Face(entry["file"], pixels, tuple(round(b[k]) for k in "xywh")) for b in boxes]
        if len(faces) >= limit:
            break
    return faces[:limit]


def flat_head(pixels: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The face's head region (the box grown as the service grows it) in its mean colour."""
    from piiblur.detect.calibration import shipped_calibration
    from piiblur.detect.faces import head_from_face
    from piiblur.redact.obfuscate import obfuscate

    x, y, w, h = box
    head = head_from_face(Box(x, y, w, h), shipped_calibration().head, pixels.shape[1], pixels.shape[0])
    out = obfuscate(pixels, [Detection(PiiCategory.HEADS, head, 1.0)], ObfuscationType.BLUR)
    x0, y0, x1, y1 = (int(v) for v in (head.x, head.y, head.x + head.w, head.y + head.h))
    changed = np.any(out != pixels, axis=2)
    region = out[y0:y1, x0:x1]
    region[changed[y0:y1, x0:x1]] = pixels[y0:y1, x0:x1][changed[y0:y1, x0:x1]].mean(axis=0).astype(np.uint8)
    return out


def measure(faces: list[Face], engine: Any, folder: Path) -> list[dict[str, Any]]:
    """Distances of every variant of every face to its original, and (``gallery``) how each
    variant fares against the originals of all the faces measured."""
    rows = []
    originals: list[np.ndarray] = []
    seen: dict[str, list[np.ndarray]] = {name: [] for name in VARIANTS}
    redacted: dict[tuple[str, ObfuscationType], np.ndarray] = {}
    for face in faces:
        x, y, w, h = face.box
        landmarks = shapes(face.pixels, dlib.rectangle(x, y, x + w, y + h))
        original = descriptor(face.pixels, landmarks)
        again = io.BytesIO()
        Image.fromarray(face.pixels).save(again, format="JPEG", quality=75)
        variants = {
            "recompressed": np.asarray(Image.open(again).convert("RGB")),
            "flat": flat_head(face.pixels, face.box),
        }
        for method in (ObfuscationType.BLUR, ObfuscationType.PIXELATION):
            key = (face.source + str(face.pixels.shape), method)
            if key not in redacted:
                source, target = folder / "in.png", folder / "out.png"
                Image.fromarray(face.pixels).save(source)
                redact_image(source, target, [PiiCategory.HEADS], method, engine)
                redacted[key] = np.asarray(Image.open(target).convert("RGB"))
            variants[method.value] = redacted[key]
        described = {name: descriptor(p, landmarks) for name, p in variants.items()}
        distances = {name: round(float(np.linalg.norm(d - original)), 3) for name, d in described.items()}
        # A face the detector missed comes back as it was: that is a recall failure, not a weak hiding.
        changed = np.any(variants["blur"][y : y + h, x : x + w] != face.pixels[y : y + h, x : x + w], axis=2)
        rows.append({"face": face.source, "width": w, "hidden": bool(changed.mean() > 0.5), **distances})
        originals.append(original)
        for name in VARIANTS:
            seen[name].append(described[name])
    for name in VARIANTS:
        for row, attack in zip(rows, gallery(np.asarray(originals), np.asarray(seen[name])), strict=True):
            row[f"{name}_gallery"] = attack
    return rows


def gallery(originals: np.ndarray, variants: np.ndarray) -> list[dict[str, Any]]:
    """Per variant: is its own original the nearest of all originals, and what share of the other
    originals it matches at the threshold (dlib's answer for strangers)."""
    attacks = []
    for index, variant in enumerate(variants):
        distances = np.linalg.norm(originals - variant, axis=1)
        others = np.delete(distances, index)
        attacks.append(
            {
                "reidentified": bool(len(others) > 0 and distances[index] < others.min()),
                "strangers_matched": round(float((others < THRESHOLD).mean()), 3) if len(others) else 0.0,
            }
        )
    return attacks


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    grouped: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        bucket = next(b for b in BUCKETS if b[0] <= row["width"] < b[1])
        grouped[bucket].append(row)
    out = []
    for (low, high), members in sorted(grouped.items()):
        entry: dict[str, Any] = {
            "widths": f"{low}-{high if high < 100_000 else '…'} px",
            "faces": len(members),
            "not_hidden": sum(not m["hidden"] for m in members),
        }
        for name in VARIANTS:
            values = np.asarray([m[name] for m in members])
            attacks = [m[f"{name}_gallery"] for m in members]
            entry[name] = {
                "min": round(float(values.min()), 3),
                "median": round(float(np.median(values)), 3),
                "matched": int((values < THRESHOLD).sum()),
                "reidentified": sum(a["reidentified"] for a in attacks),
                "strangers_matched": round(float(np.mean([a["strangers_matched"] for a in attacks])), 3),
            }
        out.append(entry)
    return out


def _hidden_summary(rows: list[dict[str, Any]], size: int) -> list[str]:
    """Re-identification of the faces the service did hide, against what chance gives."""
    hidden = [r for r in rows if r["hidden"]]
    counts = ", ".join(f"{name} {sum(r[f'{name}_gallery']['reidentified'] for r in hidden)}" for name in VARIANTS)
    return [
        f"Of the {len(hidden)} faces the service hid, re-identified in the gallery: {counts} "
        f"(chance: about {len(hidden) / size:.1f}; {len(rows) - len(hidden)} face(s) the detector missed are left out)."
    ]


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Irreversibility: dlib face recognition on redacted faces (bench/irreversibility.py)",
        "",
        "Distance of each face's dlib descriptor, on the picture as returned, to the original's (aligned",
        f"with the original's landmarks: the strongest attacker). Below {THRESHOLD} dlib calls it the same person.",
        "Each cell: median distance (smallest) · how many faces were matched to their own original at that",
        "threshold · how many were **re-identified** in the set's gallery (their own original the nearest of",
        "all) · the mean share of **strangers** (other people's originals) they match at the threshold too.",
        "A match that strangers share as often is no identification: see the control column for what a",
        "face that can be told looks like. **Missed by the detector**: faces the service did not hide",
        "(under half of the face box changed): they come back as they were, and count in the blur and",
        "pixelation columns as the leaks they are.",
        "",
    ]
    for name, table in result["sets"].items():
        size = sum(entry["faces"] for entry in table)
        # The astronaut set is one person at many sizes: its gallery tells nothing.
        about = "one person: no gallery" if name == "astronaut" else f"gallery of {size}: chance 1 in {size}"
        lines += [
            f"## {name} ({about})",
            "",
            "| face width | faces | missed by the detector | recompressed (control) | blur | pixelation | flat fill |",
            "|---|---|---|---|---|---|---|",
        ]
        for entry in table:
            cells = [
                f"{entry[v]['median']} ({entry[v]['min']}) · {entry[v]['matched']} matched"
                + ("" if name == "astronaut" else f" · {entry[v]['reidentified']} re-identified")
                + ("" if name == "astronaut" else f" · strangers {entry[v]['strangers_matched']}")
                for v in VARIANTS
            ]
            head = f"| {entry['widths']} | {entry['faces']} | {entry['not_hidden']} | "
            lines.append(head + " | ".join(cells) + " |")
        lines += ["", *_hidden_summary(result["rows"][name], size)] if name != "astronaut" else []
        lines.append("")
    lines += [f"Sets absent: {', '.join(result['absent'])}" if result["absent"] else "All labelled sets present.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-faces", type=int, default=200, help="labelled faces measured per set")
    args = parser.parse_args()
    engine = default_engine(0)
    result: dict[str, Any] = {"threshold": THRESHOLD, "sets": {}, "rows": {}, "absent": []}
    with tempfile.TemporaryDirectory() as folder:
        chosen = {"astronaut": astronaut_faces()}
        for name, set_dir in SETS.items():
            if (set_dir / "labels.json").is_file():
                chosen[name] = labelled_faces(set_dir, args.max_faces)
            else:
                result["absent"].append(name)
        for name, faces in chosen.items():
            print(f"measuring {name}: {len(faces)} faces", flush=True)
            rows = measure(faces, engine, Path(folder))
            result["rows"][name] = rows
            result["sets"][name] = summary(rows)
    report.write("irreversibility", result, markdown(result))


if __name__ == "__main__":
    main()
