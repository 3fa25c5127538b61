"""How fast the command line starts and how much a folder saves: whole processes, as users run them.

    .venv/bin/python bench/startup.py [--repeat 5]

- ``piiblur --help`` (the command's own start, no model), ``piiblur detect`` of one photo with
  heads, with heads + license_plates and with all 13 categories: median wall time of
  ``--repeat`` fresh processes (models load in each: that is the point).
- ``piiblur detect DIR`` over 100 photos against 100 processes of one photo each (run once:
  it takes minutes), heads: models load once in the folder's process.
The photos are skimage's (``astronaut``, ``coffee``, ``chelsea``...), saved as JPEG, so the
benchmark needs nothing outside the installed packages. Writes ``bench/results/startup.md``/``.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import skimage.data
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import report  # noqa: E402

PIIBLUR = [str(REPO / ".venv" / "bin" / "piiblur")]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
ALL = "heads,license_plates,screens,writing,street_signs,id_cards,passports,credit_cards,name_badges,"
ALL += "qr_codes,barcodes,documents,tattoos"
COMMANDS = {
    "piiblur --help": ["--help"],
    "detect 1 photo, heads": ["detect", "{photo}", "-c", "heads"],
    "detect 1 photo, heads+license_plates": ["detect", "{photo}", "-c", "heads,license_plates"],
    "detect 1 photo, all 13": ["detect", "{photo}", "-c", ALL],
}


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def photos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        pixels = np.asarray(getattr(skimage.data, PHOTOS[index % len(PHOTOS)])())
        image = Image.fromarray(pixels).convert("RGB")
        path = folder / f"photo_{index:03d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        paths = photos(folder, 100)
        astronaut = str(paths[0])
        rows: dict[str, Any] = {}
        for name, arguments in COMMANDS.items():
            command = PIIBLUR + [a.replace("{photo}", astronaut) for a in arguments]
            runs = [seconds(command) for _ in range(args.repeat)]
            rows[name] = {"median_s": round(statistics.median(runs), 3), "runs": [round(r, 3) for r in runs]}
        one_by_one = sum(seconds([*PIIBLUR, "detect", str(p), "-c", "heads"]) for p in paths)
        in_one = seconds([*PIIBLUR, "detect", str(folder), "-c", "heads"])
    result = {
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
        "commands": rows,
        "folder_of_100": {"one_process_s": round(in_one, 2), "100_processes_s": round(one_by_one, 2)},
    }
    lines = [
        "# Start-up (bench/startup.py)",
        "",
        f"{os.cpu_count()} CPUs; fresh processes, median of {args.repeat}; photo: skimage's astronaut, 512x512 JPEG.",
        "",
        "| command | median s | runs |",
        "|---|---:|---|",
    ]
    lines += [f"| `{name}` | {r['median_s']} | {', '.join(map(str, r['runs']))} |" for name, r in rows.items()]
    lines += [
        "",
        f"100 photos, heads: `piiblur detect DIR` {in_one:.1f} s in one process (models load once), "
        f"against {one_by_one:.1f} s for 100 processes of one photo each.",
    ]
    report.write("startup", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
