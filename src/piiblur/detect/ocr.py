"""Scene text: PP-OCRv6 detection and recognition models shipped in the ``rapidocr`` wheel (Apache-2.0).

One ``Ocr`` per process. Finding lines (detection) is the cheap, always-needed part; reading them
(recognition) is done only for the lines a detector family needs to read (plates, card numbers,
MRZ lines), and each line is read at most once per image through ``Scene.memo``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from piiblur.detect.base import Box, RgbImage, Scene, tile_origins
from piiblur.detect.onnx import CPU_ONLY, Inference, session_at
from piiblur.profiling import stage

if TYPE_CHECKING:  # rapidocr takes 0.9 s to import: only processes that read text pay for it
    from rapidocr import RapidOCR

Quad = npt.NDArray[np.float32]
SMALL_IMAGE = 1000  # long side up to which a second look is taken at twice the size
LARGE_IMAGE = 2000  # long side from which a second look is taken at DETAIL_SIDE
DETAIL_SIDE = 1920
SMALL_PRINT = 16  # line height in pixels of the first look: above it, the first look sees the line
TILE_OVERLAP = 160


@dataclass(frozen=True)
class TextLine:
    """A line of text as a 4-point polygon (clockwise from top-left) and its enclosing box."""

    quad: Quad
    score: float

    @property
    def box(self) -> Box:
        x0, y0 = (float(v) for v in self.quad.min(axis=0))
        x1, y1 = (float(v) for v in self.quad.max(axis=0))
        return Box(x0, y0, x1 - x0, y1 - y0)

    @property
    def height(self) -> float:
        """Thickness of the line across its direction (robust to rotation)."""
        top, bottom = self.quad[0:2], self.quad[[3, 2]]
        return float(np.linalg.norm((bottom - top).mean(axis=0)))

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.quad[1] - self.quad[0]))


def _seen(line: TextLine, others: list[TextLine]) -> bool:
    """Whether ``line`` mostly overlaps a line already found (the tiled pass finds them again)."""
    return any(line.box.overlaps(other.box, 0.5) for other in others)


class Ocr:
    def __init__(self, inference: Inference = CPU_ONLY, limit_side_len: int = 960) -> None:
        """``limit_side_len`` caps the long side the detector sees: 960 keeps small print legible
        to the model at about half a second per 720p frame on two cores."""
        self.inference = inference
        self.limit_side_len = limit_side_len
        self._engine: RapidOCR | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> RapidOCR:
        with self._lock:
            if self._engine is None:
                with stage("model loading"):
                    self._engine = self._load()
            return self._engine

    def _load(self) -> RapidOCR:
        from rapidocr import RapidOCR

        engine = RapidOCR(
            params={
                "Global.log_level": "critical",
                "Det.limit_side_len": self.limit_side_len,
                "Det.limit_type": "max",
                "Det.box_thresh": 0.5,
                "EngineConfig.onnxruntime.intra_op_num_threads": self.inference.threads or -1,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        # rapidocr builds its sessions with spinning worker threads; rebuild them with ours (same
        # model files, shipped in its wheel).
        for model in (engine._load_det_model(), engine._load_rec_model()):  # type: ignore[no-untyped-call]
            model.session.session = session_at(Path(model.session.session._model_path), self.inference)
        return engine

    def find_lines(self, pixels: RgbImage) -> list[TextLine]:
        """Text lines in image coordinates: one look at the whole picture within
        ``limit_side_len``, and for small and large pictures a second look in overlapping tiles.

        The model misses print under about ten pixels high. Small pictures (up to ``SMALL_IMAGE``)
        are where such print is: they are looked at again twice enlarged (measured: 2 more of 39
        text labels on the development set, no more false finds). Large pictures (from
        ``LARGE_IMAGE``: camera photos, 4K frames) are shrunk to ``limit_side_len`` for the first
        look, which turns a 30-pixel plate into a 7-pixel one: they are looked at again at
        ``DETAIL_SIDE`` (measured: a 90-pixel-wide plate in a 4000x3000 photo is missed by the
        first look and found by the second). In between (720p, 1080p) one look keeps within the
        speed budget.
        """
        lines = self._find_lines_once(pixels)
        return lines + [extra for extra in self._second_look(pixels) if not _seen(extra, lines)]

    def _second_look(self, pixels: RgbImage) -> list[TextLine]:
        long_side = max(pixels.shape[:2])
        if long_side <= SMALL_IMAGE:
            return self._find_lines_tiled(pixels, 2.0)
        if long_side >= LARGE_IMAGE:
            return self._small_print(pixels)
        return []

    def _small_print(self, pixels: RgbImage) -> list[TextLine]:
        """The large picture's second look, kept to small print: a line the first look would have
        seen over ``SMALL_PRINT`` pixels high and did not find is a ghost of texture or of a tile's
        edge (measured on the development set enlarged 3x: false finds 0.55 -> 0.23 per image)."""
        long_side = max(pixels.shape[:2])
        tallest = SMALL_PRINT * long_side / self.limit_side_len
        return [line for line in self._find_lines_tiled(pixels, DETAIL_SIDE / long_side) if line.height < tallest]

    def _find_lines_tiled(self, pixels: RgbImage, zoom: float) -> list[TextLine]:
        height, width = pixels.shape[:2]
        size = (round(width * zoom), round(height * zoom))
        interpolation = cv2.INTER_CUBIC if zoom > 1.0 else cv2.INTER_AREA
        big = np.asarray(cv2.resize(pixels, size, interpolation=interpolation), dtype=np.uint8)
        tile = self.limit_side_len
        found = []
        for x, y in tile_origins(big.shape[1], big.shape[0], tile, TILE_OVERLAP):
            crop = np.ascontiguousarray(big[y : y + tile, x : x + tile])
            offset = np.array([x, y], dtype=np.float32)
            found += [TextLine((line.quad + offset) / zoom, line.score) for line in self._find_lines_once(crop)]
        return found

    def _find_lines_once(self, pixels: RgbImage) -> list[TextLine]:
        """Small pictures are enlarged to ``limit_side_len`` first (print survives it better)."""
        height, width = pixels.shape[:2]
        scale = self.limit_side_len / max(height, width) if max(height, width) < self.limit_side_len else 1.0
        if scale == 1.0:
            return self.find_lines_at_size(pixels)
        size = (round(width * scale), round(height * scale))
        enlarged = np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
        return [TextLine(line.quad / scale, line.score) for line in self.find_lines_at_size(enlarged)]

    def find_lines_at_size(self, pixels: RgbImage) -> list[TextLine]:
        """Lines as the detector sees ``pixels`` itself (shrunk only beyond ``limit_side_len``): for
        crops already enlarged to the scale wanted, such as the vehicles of ``plates.py``."""
        result = self.engine._load_det_model()(cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))  # type: ignore[no-untyped-call]
        if result.boxes is None or result.scores is None:
            return []
        return [
            TextLine(np.asarray(quad, dtype=np.float32), float(score))
            for quad, score in zip(result.boxes, result.scores, strict=True)
        ]

    def read(self, pixels: RgbImage, lines: list[TextLine]) -> list[tuple[str, float]]:
        """Recognise each line's characters: (text, confidence) per line, in order."""
        if not lines:
            return []
        from rapidocr.utils.process_img import get_rotate_crop_image

        bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
        crops = [get_rotate_crop_image(bgr, line.quad.copy()) for line in lines]
        result = self.engine.recognize_txt(crops)
        texts = result.txts or ()
        scores = result.scores or ()
        return [(str(t), float(s)) for t, s in zip(texts, scores, strict=True)]

    def lines(self, scene: Scene) -> list[TextLine]:
        """The scene's text lines, found once whichever family asks first."""
        return scene.memo("ocr.lines", lambda: self.find_lines(scene.pixels))

    def readings(self, scene: Scene, lines: list[TextLine]) -> list[tuple[str, float]]:
        """(text, confidence) of lines of the scene, each line read at most once per scene."""
        cache: dict[int, tuple[str, float]] = scene.memo("ocr.readings", dict)
        todo = [line for line in lines if id(line) not in cache]
        for line, reading in zip(todo, self.read(scene.pixels, todo), strict=True):
            cache[id(line)] = reading
        return [cache[id(line)] for line in lines]

    def texts(self, scene: Scene, lines: list[TextLine]) -> list[str]:
        return [text for text, _ in self.readings(scene, lines)]
