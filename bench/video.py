"""Video redaction speed and coverage.

    .venv/bin/python bench/video.py [--seconds 10] [--repeat 3] [--no-deface]

1. Speed on rendered 720p and 1080p clips (30 fps, a moving face, audio): frames per second for
   plain decode + encode (the floor), heads + license_plates, all 13 categories, and the
   ``deface`` CLI (PyPI, the best-known open tool) on the same clip, side by side. Ours are the
   median of ``--repeat`` runs (a 2-core machine's timings vary by about 10 %); the clip is long
   enough (10 s) that the first and last keyframes of a clip do not dominate. deface is
   installed into its own virtual environment (``bench/.deface-venv``) because it requires the
   non-headless OpenCV wheel, which must not share an environment with ours.
2. Coverage on the real labelled clip in ``../shared/eval/videos`` when present: every labelled
   face in every labelled frame must be covered (70 % of its area) by what was hidden.
3. Memory: peak resident memory of a process redacting a 1080p clip of 3 s and of 12 s; bounded
   memory means the longer clip needs no more.
Writes ``bench/results/video.md`` and ``video.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import report  # noqa: E402
from conftest import render_video  # noqa: E402
from piiblur.detect import Box, default_engine  # noqa: E402
from piiblur.domain import ObfuscationType, PiiCategory  # noqa: E402
from piiblur.redact.video import CONTAINER_FORMATS, VIDEO_CODECS, redact_video  # noqa: E402

EVAL = REPO.parent / "shared" / "eval"
DEFACE_VENV = REPO / "bench" / ".deface-venv"
SETS = {
    "heads": [PiiCategory.HEADS],
    "heads+license_plates": [PiiCategory.HEADS, PiiCategory.LICENSE_PLATES],
    "all 13 categories": list(PiiCategory),
}


def plain_transcode(source: Path, target: Path) -> None:
    """Decode and re-encode with the pipeline's encoder settings: the cost of touching every frame."""
    with av.open(str(source)) as inp, av.open(str(target), "w", format=CONTAINER_FORMATS["mp4"]) as out:
        video_in = inp.streams.video[0]
        stream = out.add_stream(VIDEO_CODECS["mp4"], rate=video_in.average_rate)
        stream.width, stream.height, stream.pix_fmt = video_in.width, video_in.height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for frame in inp.decode(video_in):
            rgb = frame.to_ndarray(format="rgb24")  # the pipeline works on RGB too
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")))
        out.mux(stream.encode(None))


def deface_command() -> list[str] | None:
    """The deface CLI from its own environment, installing it on first use; None if impossible."""
    executable = DEFACE_VENV / "bin" / "deface"
    if not executable.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(DEFACE_VENV)], check=True)
            pip = [str(DEFACE_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            subprocess.run([*pip, "deface==1.5.0", "onnx==1.23.2", "onnxruntime==1.32.0"], check=True, timeout=900)
        except (subprocess.SubprocessError, OSError) as error:
            print(f"deface could not be installed: {error}")
            return None
    return [str(executable)]


def timed(run: Any) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def speed(size: tuple[int, int], seconds: float, repeat: int, with_deface: bool, work: Path) -> dict[str, Any]:
    # One crossing of the frame every 2 s, whatever the length (~17 px a frame at 720p).
    clip = render_video(work / f"clip_{size[1]}p.mp4", seconds, fps=30, size=size, crossings=seconds / 2)
    frames = len(clip.face_boxes)
    engine = default_engine()
    engine.warm_up()
    row: dict[str, Any] = {"clip": f"{size[0]}x{size[1]}, {frames} frames at 30 fps", "fps": {}}
    plain = [timed(lambda: plain_transcode(clip.path, work / "plain.mp4")) for _ in range(repeat)]
    row["fps"]["decode+encode"] = frames / statistics.median(plain)
    for name, categories in SETS.items():
        out = work / f"ours_{size[1]}.mp4"
        runs = [
            timed(lambda c=categories, o=out: redact_video(clip.path, o, "mp4", c, ObfuscationType.BLUR, engine))
            for _ in range(repeat)
        ]
        row["fps"][name] = frames / statistics.median(runs)
    if with_deface and (command := deface_command()):
        out = work / f"deface_{size[1]}.mp4"
        run = [
            *command,
            str(clip.path),
            "-o",
            str(out),
            "--backend",
            "onnxrt",
            "--execution-provider",
            "CPUExecutionProvider",
        ]
        elapsed = timed(lambda: subprocess.run(run, check=True, capture_output=True, timeout=1800))
        row["fps"]["deface 1.5.0 (heads)"] = frames / elapsed
    row["fps"] = {k: round(v, 2) for k, v in row["fps"].items()}
    row["realtime_factor_heads_plates"] = round(row["fps"]["heads+license_plates"] / 30, 2)
    return row


PEAK_SCRIPT = """
import resource, sys
from pathlib import Path
from piiblur.detect import default_engine
from piiblur.domain import ObfuscationType, PiiCategory
from piiblur.redact.video import redact_video
redact_video(Path(sys.argv[1]), Path(sys.argv[2]), "mp4", [PiiCategory.HEADS, PiiCategory.LICENSE_PLATES],
             ObfuscationType.BLUR, default_engine())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory(work: Path) -> dict[str, float]:
    """Peak RSS (MiB) of a fresh process redacting 1080p clips of two lengths."""
    peaks = {}
    for seconds in (3.0, 12.0):
        clip = render_video(work / f"mem_{seconds:g}.mp4", seconds, fps=30, size=(1920, 1080), crossings=2)
        run = [sys.executable, "-c", PEAK_SCRIPT, str(clip.path), str(work / "mem_out.mp4")]
        output = subprocess.run(run, check=True, capture_output=True, text=True, timeout=1800).stdout
        peaks[f"1080p, {seconds:g} s"] = round(int(output.strip().splitlines()[-1]) / 1024, 1)
    return peaks


def covered(label: dict[str, Any], boxes: list[Box]) -> float:
    x, y, w, h = (int(label[k]) for k in ("x", "y", "w", "h"))
    mask = np.zeros((h, w), bool)
    for b in boxes:
        x0, y0 = max(0, int(b.x) - x), max(0, int(b.y) - y)
        x1, y1 = min(w, int(b.x + b.w) - x + 1), min(h, int(b.y + b.h) - y + 1)
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] = True
    return float(mask.mean())


def labelled_clip(work: Path) -> dict[str, Any] | None:
    labels_path = EVAL / "labels.json"
    if not labels_path.is_file():
        print(f"no labelled set at {EVAL} (../shared/eval is absent): real-clip coverage not measured")
        return None
    results = []
    for entry in json.loads(labels_path.read_text()).get("videos", []):
        out = work / "labelled.mp4"
        started = time.perf_counter()
        result = redact_video(
            EVAL / entry["file"], out, "mp4", [PiiCategory.HEADS], ObfuscationType.BLUR, default_engine()
        )
        elapsed = time.perf_counter() - started
        misses, total = [], 0
        for key in entry["keyframes"]:
            for label in key["boxes"]:
                if label["category"] != "face" or label.get("ignore"):
                    continue
                total += 1
                if covered(label, result.regions_per_frame[key["frame"]]) < 0.7:
                    misses.append(key["frame"])
        results.append(
            {
                "file": entry["file"],
                "frames": result.frames,
                "labelled_faces": total,
                "uncovered": misses,
                "keyframes": len(result.keyframes),
                "fps": round(result.frames / elapsed, 2),
            }
        )
    return {"clips": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-deface", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = [
            speed(size, args.seconds, args.repeat, not args.no_deface, work) for size in ((1280, 720), (1920, 1080))
        ]
        real = labelled_clip(work)
        memory = peak_memory(work)
    result = {"cpus": os.cpu_count(), "speed": rows, "labelled": real, "peak_rss_mib": memory}
    lines = [
        "# Video redaction",
        "",
        f"{os.cpu_count()} CPUs. Frames per second (higher is better); ours: median of {args.repeat} runs.",
        "",
    ]
    names = list(rows[0]["fps"])
    lines += ["| clip | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines += [f"| {r['clip']} | " + " | ".join(str(r["fps"].get(n, "-")) for n in names) + " |" for r in rows]
    if real:
        lines += ["", "## Labelled real clips", ""]
        for clip in real["clips"]:
            lines.append(
                f"- {clip['file']}: {clip['frames']} frames, {clip['labelled_faces']} labelled faces, "
                f"uncovered in frames {clip['uncovered'] or 'none'}, {clip['keyframes']} keyframes, {clip['fps']} fps"
            )
    lines += ["", "## Peak memory (heads + license_plates)", ""]
    lines += [f"- {name}: {mib} MiB" for name, mib in memory.items()]
    report.write("video", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
