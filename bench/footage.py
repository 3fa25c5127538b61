"""Real footage for the video benchmark, and where each clip comes from.

- ``vtest``: ``examples/data/vtest.avi`` of Debian's ``opencv-doc`` package (``apt-get install
  opencv-doc``; OpenCV's sample data, BSD/Apache licensed): a real street camera over pedestrians,
  768x576 at 10 fps. Its first frames are cropped to 16:9 and scaled to the size asked for.
- ``camera moves``: the real street photos of ``../shared/eval`` (faces, plates, signs, writing),
  filmed by a virtual camera that pans, zooms and shakes over each in turn, 2 s per photo at
  30 fps, with a cut between photos. Their hand labels move with the camera, so every frame of
  the clip is labelled: recall is measured on video, frame by frame, for every category.
- ``squats``: the hand-labelled clip of ``../shared/eval/videos`` as it is.

Nothing here is copied into the repository: clips are written to a scratch folder per run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image, ImageOps

SHARED = Path(__file__).resolve().parents[2] / "shared"
EVAL = SHARED / "eval"
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
# Street scenes with people, vehicles, plates, signs and writing, each filmed with one move.
CAMERA_SHOTS = (
    ("images/street_motorcade.jpg", "pan"),
    ("images/plate_truck_penske.jpg", "zoom"),
    ("images/city_crossing.jpg", "shake"),
    ("images/plate_br_window_ad.jpg", "pan"),
    ("images/plate_street_sign_eu10.jpg", "zoom"),
)
SHOT_SECONDS = 2.0
FPS = 30
VISIBLE = 0.6  # a label counts in a frame when this share of it is inside the frame


@dataclass
class Clip:
    name: str
    path: Path
    fps: float
    frames: int
    width: int
    height: int
    source: str
    # Per frame: the labels visible in it (quality.py's label dicts, in frame coordinates).
    labels: list[list[dict[str, Any]]] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


class _ClipWriter:
    """An H.264 MP4 written frame by frame from RGB arrays (crf 18: the source, not the test)."""

    def __init__(self, path: Path, size: tuple[int, int], fps: int) -> None:
        self.out = av.open(str(path), "w", format="mp4")
        stream = self.out.add_stream("libx264", rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        self.stream = stream

    def add(self, rgb: np.ndarray) -> None:
        self.out.mux(self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))

    def close(self) -> None:
        self.out.mux(self.stream.encode(None))
        self.out.close()


def vtest(work: Path, size: tuple[int, int], frames: int = 300) -> Clip | None:
    if not VTEST.is_file():
        print(f"{VTEST} is absent (apt-get install opencv-doc): the street-camera clip is not measured")
        return None
    path = work / f"vtest_{size[1]}p.mp4"
    with av.open(str(VTEST)) as inp:
        fps = int(inp.streams.video[0].average_rate or 10)
        writer = _ClipWriter(path, size, fps)
        written = 0
        for frame in inp.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            height, width = rgb.shape[:2]
            crop_h = round(width * 9 / 16)
            top = (height - crop_h) // 2
            scaled = cv2.resize(rgb[top : top + crop_h], size, interpolation=cv2.INTER_CUBIC)
            writer.add(scaled)
            written += 1
            if written >= frames:
                break
        writer.close()
    return Clip(
        f"street camera (vtest.avi) {size[0]}x{size[1]}",
        path,
        fps,
        written,
        size[0],
        size[1],
        f"opencv-doc {VTEST.name}: real footage, 768x576 at {fps} fps, cropped to 16:9 and scaled",
    )


def _window(move: str, t: float, photo: tuple[int, int], aspect: float, rng: np.random.Generator) -> tuple[float, ...]:
    """The camera's view of the photo at time ``t`` (0-1 through the shot): x, y, w, h."""
    pw, ph = photo
    full_w = min(pw, ph * aspect)
    if move == "pan":  # 80 % of the photo, left to right
        w = 0.8 * full_w
        return ((pw - w) * t, (ph - w / aspect) / 2, w, w / aspect)
    if move == "zoom":  # from the whole frame to the middle 60 %
        w = full_w * (1.0 - 0.4 * t)
        return ((pw - w) / 2, (ph - w / aspect) / 2, w, w / aspect)
    # shake: a hand-held camera at 85 %, a few per cent of jitter
    w = 0.85 * full_w
    jitter = rng.normal(0.0, 0.012 * full_w, 2)
    x = float(np.clip((pw - w) / 2 + jitter[0], 0, pw - w))
    y = float(np.clip((ph - w / aspect) / 2 + jitter[1], 0, ph - w / aspect))
    return (x, y, w, w / aspect)


def _moved_labels(
    boxes: list[dict[str, Any]], window: tuple[float, ...], size: tuple[int, int]
) -> list[dict[str, Any]]:
    x0, y0, w, h = window
    sx, sy = size[0] / w, size[1] / h
    moved = []
    for box in boxes:
        bx0, by0 = (box["x"] - x0) * sx, (box["y"] - y0) * sy
        bx1, by1 = bx0 + box["w"] * sx, by0 + box["h"] * sy
        cx0, cy0, cx1, cy1 = max(0.0, bx0), max(0.0, by0), min(size[0], bx1), min(size[1], by1)
        if cx1 <= cx0 or cy1 <= cy0 or (cx1 - cx0) * (cy1 - cy0) < VISIBLE * (bx1 - bx0) * (by1 - by0):
            continue
        moved.append(box | {"x": cx0, "y": cy0, "w": cx1 - cx0, "h": cy1 - cy0})
    return moved


def camera_moves(work: Path, size: tuple[int, int]) -> Clip | None:
    labels_path = EVAL / "labels.json"
    if not labels_path.is_file():
        print(f"no labelled photos at {EVAL}: the camera-move clip is not measured")
        return None
    entries = {e["file"]: e for e in json.loads(labels_path.read_text())["images"]}
    path = work / f"camera_moves_{size[1]}p.mp4"
    writer = _ClipWriter(path, size, FPS)
    rng = np.random.default_rng(7)
    per_frame: list[list[dict[str, Any]]] = []
    shot_frames = round(SHOT_SECONDS * FPS)
    for file, move in CAMERA_SHOTS:
        photo = np.asarray(ImageOps.exif_transpose(Image.open(EVAL / file)).convert("RGB"))
        height, width = photo.shape[:2]
        for index in range(shot_frames):
            window = _window(move, index / (shot_frames - 1), (width, height), size[0] / size[1], rng)
            x0, y0, w, h = window
            # One affine warp maps the view onto the frame (sub-pixel, so moves are smooth).
            matrix = np.array([[size[0] / w, 0, -x0 * size[0] / w], [0, size[1] / h, -y0 * size[1] / h]])
            frame = cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            writer.add(frame)
            per_frame.append(_moved_labels(entries[file]["boxes"], window, size))
    writer.close()
    return Clip(
        f"camera moves over street photos {size[0]}x{size[1]}",
        path,
        FPS,
        len(per_frame),
        size[0],
        size[1],
        "../shared/eval photos "
        + ", ".join(f"{Path(f).stem} ({m})" for f, m in CAMERA_SHOTS)
        + f", {SHOT_SECONDS:g} s each",
        per_frame,
    )


def squats() -> Clip | None:
    labels_path = EVAL / "labels.json"
    if not labels_path.is_file():
        return None
    entry = json.loads(labels_path.read_text())["videos"][0]
    path = EVAL / entry["file"]
    per_frame: list[list[dict[str, Any]]] = [[] for _ in range(entry["frames"])]
    labelled = {key["frame"]: key["boxes"] for key in entry["keyframes"]}
    for frame, boxes in labelled.items():
        per_frame[frame] = boxes
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or entry["fps"])
        width, height = stream.codec_context.width, stream.codec_context.height
    clip = Clip(
        f"labelled clip ({Path(entry['file']).name}) {width}x{height}",
        path,
        fps,
        entry["frames"],
        width,
        height,
        "../shared/eval/videos, hand-labelled faces in " + f"{len(labelled)} frames",
        per_frame,
    )
    clip.notes.append("only the labelled frames count for recall")
    return clip
