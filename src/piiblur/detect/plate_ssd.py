"""HyperLPR's MobileNet-SSD plate detector (Apache-2.0), converted to ONNX up to its heads.

A second net for plates beside the text lines: it finds a plate by its look (a bright, bordered
rectangle) even where the characters are too blurred for the line detector. It was trained on
Chinese plates and is best on a vehicle crop enlarged to its 512 x 512 input, which is how
``plates.py`` uses it. The anchors (Caffe PriorBox layers) come from ``hyperlpr-ssd.json``,
written by ``scripts/convert_models.py`` from the model's own prototxt.
"""

from __future__ import annotations

import json
from functools import cached_property

import cv2
import numpy as np
import numpy.typing as npt

from piiblur.detect.base import Box, RgbImage
from piiblur.detect.onnx import CPU_ONLY, Inference, LazySession, weights_path

MODEL_FILE = "hyperlpr-ssd.onnx"
LAYOUT_FILE = "hyperlpr-ssd.json"
# ImageNet RGB statistics, as HyperLPR normalises its input.
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
FLOOR_SCORE = 0.05
NMS_OVERLAP = 0.45  # the model's own DetectionOutput setting

FloatArray = npt.NDArray[np.float32]


class PlateSsd:
    def __init__(self, inference: Inference = CPU_ONLY) -> None:
        self._model = LazySession(MODEL_FILE, inference)

    @cached_property
    def _layout(self) -> tuple[int, FloatArray, FloatArray]:
        layout = json.loads(weights_path(LAYOUT_FILE).read_text())
        side = int(layout["input_side"])
        return side, _anchors(side, layout["priors"]), np.array(layout["variances"], np.float32)

    def find(self, crop: RgbImage) -> list[tuple[Box, float]]:
        """Plates in ``crop`` (any size: it is resized to the model's square input), in crop pixels,
        with their scores, above ``FLOOR_SCORE``."""
        side, anchors, variances = self._layout
        height, width = crop.shape[:2]
        square = cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC if width < side else cv2.INTER_AREA)
        blob = ((square.astype(np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1)[None]
        offsets, scores = self._model.get().run(None, {"data_input": np.ascontiguousarray(blob)})
        offsets = offsets.reshape(-1, 4)
        plate = scores.reshape(-1, 2)[:, 1]
        centre = anchors[:, :2] + offsets[:, :2] * variances[:2] * anchors[:, 2:]
        size = anchors[:, 2:] * np.exp(offsets[:, 2:] * variances[2:])
        boxes = np.concatenate([centre - size / 2, size], axis=1) * np.array([width, height, width, height])
        keep = cv2.dnn.NMSBoxes(boxes.tolist(), plate.tolist(), FLOOR_SCORE, NMS_OVERLAP)
        return [(Box(*(float(v) for v in boxes[i])), float(plate[i])) for i in np.array(keep, dtype=int).reshape(-1)]


def _anchors(side: int, layers: list[dict[str, object]]) -> FloatArray:
    """Caffe SSD PriorBox anchors (centre x, centre y, width, height as fractions of the input), in
    the order the heads emit them: per layer, per cell (row-major), the min-size square, the
    sqrt(min*max) square, then one box per extra aspect ratio (wider than tall)."""
    anchors = []
    for layer in layers:
        cells, offset = int(str(layer["cells"])), float(str(layer["offset"]))
        low, high = float(str(layer["min_size"])), float(str(layer["max_size"]))
        ratios = [float(r) for r in layer["aspect_ratios"]]  # type: ignore[attr-defined]
        shapes = [(low, low), (np.sqrt(low * high),) * 2] + [(low * np.sqrt(r), low / np.sqrt(r)) for r in ratios]
        step = side / cells
        for row in range(cells):
            for column in range(cells):
                centre = ((column + offset) * step, (row + offset) * step)
                anchors += [(centre[0], centre[1], w, h) for w, h in shapes]
    return (np.array(anchors, np.float32) / side).astype(np.float32)
