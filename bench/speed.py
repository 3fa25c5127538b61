"""Detection speed on a 1280x720 photo carrying all 13 categories, models already loaded.

The same scene enlarged to 4000x2250 (a camera-sized photo) is timed too, without a target:
large pictures get a second, tiled look for small faces and small print, and this shows its cost.
A street scene with three vehicles is held to the same targets: vehicles are looked at again for
their plates, the plate family's extra cost.

    .venv/bin/python bench/speed.py [--repeat 5]

The scene is rendered (tests/render.py: real fonts and symbologies warped into a real photo), so
the benchmark needs nothing outside the repository. Reports the median of ``--repeat`` runs per
category set and writes ``bench/results/speed.md`` and ``speed.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import render  # noqa: E402
import report  # noqa: E402
from piiblur.detect import DetectionEngine, default_engine  # noqa: E402
from piiblur.domain import PiiCategory as C  # noqa: E402

TARGETS = {"heads": 0.25, "heads+license_plates": 0.6, "all 13 categories": 1.5}
SETS = {"heads": [C.HEADS], "heads+license_plates": [C.HEADS, C.LICENSE_PLATES], "all 13 categories": list(C)}


def scene_with_everything() -> np.ndarray:
    """1280x720: a face, a plate, a sign, a card, a passport, a receipt, a code, a phone, a tattoo."""
    scene = render.photo("coffee")
    objects = [
        (render.passport_page(), (20, 20), 0.45),
        (render.credit_card(), (450, 30), 0.3),
        (render.receipt(), (720, 20), 0.35),
        (render.street_sign(), (980, 40), 0.4),
        (render.license_plate(), (450, 240), 0.45),
        (render.business_card_with_code(), (30, 360), 0.45),
        (render.phone_showing_a_page(), (330, 360), 0.5),
        (render.tattooed_skin(), (560, 420), 0.45),
        (render.code_image("https://example.com/jane", render.zxingcpp.BarcodeFormat.QRCode), (1000, 300), 1.0),
        (np.asarray(Image.fromarray(np.asarray(render.skdata.astronaut())).resize((220, 220))), (1030, 480), 1.0),
    ]
    for image, at, scale in objects:
        size = (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale)))
        scene, _ = render.place(scene, np.asarray(Image.fromarray(image).resize(size)), at, tilt=0.03)
    return scene


def street_with_vehicles() -> np.ndarray:
    """1280x720: three motorcycles (scikit-image's photo, plates added) at three distances, so the
    plate family looks at vehicles again (the costly part on dash-cam and street pictures)."""
    bike = np.asarray(Image.open(Path(render.skdata.__file__).parent / "motorcycle_left.png").convert("RGB")).copy()
    bike[232:254, 52:148] = np.asarray(Image.fromarray(render.license_plate()).resize((96, 22)))
    scene = render.photo("gravel").copy()
    for (x, y), width in (((40, 300), 520), ((640, 380), 300), ((1000, 420), 160)):
        height = round(width * bike.shape[0] / bike.shape[1])
        scene[y : y + height, x : x + width] = np.asarray(Image.fromarray(bike).resize((width, height)))
    return scene


def timed(engine: DetectionEngine, scene: np.ndarray, categories: list[C], repeat: int) -> tuple[float, dict[str, int]]:
    """Median seconds of ``repeat`` detections of ``categories`` on ``scene``, and what was found."""
    engine.detect(scene, categories)  # warm caches and allocators for this input size
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        found = engine.detect(scene, categories)
        times.append(time.perf_counter() - started)
    counts: dict[str, int] = {}
    for d in found:
        counts[d.category.value] = counts.get(d.category.value, 0) + 1
    return round(statistics.median(times), 3), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    engine = default_engine()
    engine.warm_up()
    scene = scene_with_everything()
    large = np.asarray(Image.fromarray(scene).resize((4000, 2250), Image.Resampling.BICUBIC))
    rows: list[dict[str, object]] = []
    no_targets: dict[str, float] = {}  # the camera-sized photo is timed to show the cost, not held to one
    scenes = (
        ("1280x720", scene, TARGETS),
        ("1280x720 street, 3 vehicles", street_with_vehicles(), TARGETS),
        ("4000x2250", large, no_targets),
    )
    for image, pixels, targets in scenes:
        for name, categories in SETS.items():
            median, counts = timed(engine, pixels, categories, args.repeat)
            target = targets.get(name)
            rows.append({"image": image, "set": name, "median_s": median, "target_s": target, "found": counts})
    result = {"scene": "rendered, all 13 categories", "cpus": os.cpu_count(), "repeat": args.repeat, "rows": rows}
    lines = [
        "# Detection speed, models loaded",
        "",
        f"{os.cpu_count()} CPUs, median of {args.repeat} runs.",
        "",
    ]
    lines += ["| image | categories | median s | target s | found |", "|---|---|---:|---:|---|"]
    lines += [f"| {r['image']} | {r['set']} | {r['median_s']} | {r['target_s'] or '-'} | {r['found']} |" for r in rows]
    report.write("speed", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
