"""How the camera moved from frame to frame, so that boxes between keyframes follow it.

Between two keyframes an object is placed by linear interpolation (``tracking.between``): right
for a steady pan or a walking person, wrong for a hand-held, body-worn or dashboard camera, whose
shake moves everything in the picture by tens of pixels from one frame to the next and back. So the
camera's own move is measured on every frame -- phase correlation of consecutive grey frames at
``WORK_WIDTH`` (about 1 ms a frame) -- and summed into a path of offsets; between keyframes an
object is also hidden where it is if it moved with the camera (``tracking.between``).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from piiblur.redact.obfuscate import Plane

Offset = tuple[float, float]
NOT_MOVED: Offset = (0.0, 0.0)

WORK_WIDTH = 320
# A camera that stands still still measures as moving, by up to 1.34 working pixels a frame (the
# street camera vtest.avi at 720p, 299 frame pairs: people walking through the picture pull the
# correlation peak); a moving one measures within 0.9 px of its true move at 720p (the camera-move
# clip of ``bench/footage.py``: pan 0.4 px, shake 0.9 px at most). Moves below this are no move, so
# a still camera's noise adds no boxes and does not add up along the path.
STILL_NOISE = 1.5  # working pixels


class CameraPath:
    """The camera's offset at every frame pushed so far: where a point that is still in the world
    has moved to since the first frame, in pixels of the frame. Offsets restart at a scene cut
    (nothing is interpolated across one) and are rounded to 0.01 px, so that a plan that stores
    them (``timeline.VideoPlan``) renders the boxes the pipeline hid."""

    def __init__(self) -> None:
        self.offsets: list[Offset] = []
        self._previous: npt.NDArray[np.float32] | None = None
        self._window: npt.NDArray[np.float32] | None = None

    def follow(self, luma: Plane, cut: bool) -> None:
        """Add the next frame (its Y plane); ``cut``: it starts a new scene."""
        height, width = luma.shape[:2]
        scale = width / WORK_WIDTH
        # Every other pixel first: a third of the resizing time, the same moves to 0.1 px.
        halved = luma[::2, ::2] if width >= 2 * WORK_WIDTH else luma
        small = np.asarray(
            cv2.resize(halved, (WORK_WIDTH, max(1, round(height / scale))), interpolation=cv2.INTER_AREA),
            dtype=np.float32,
        )
        move = NOT_MOVED
        if self._previous is not None and not cut and self._previous.shape == small.shape:
            move = self._move(self._previous, small, scale)
        last = self.offsets[-1] if self.offsets and not cut else NOT_MOVED
        self.offsets.append((round(last[0] + move[0], 2), round(last[1] + move[1], 2)))
        self._previous = small

    def _move(self, previous: npt.NDArray[np.float32], current: npt.NDArray[np.float32], scale: float) -> Offset:
        if self._window is None or self._window.shape != current.shape:
            # A Hann window keeps the frame's borders (which differ after any move) out of the peak.
            self._window = np.asarray(cv2.createHanningWindow(current.shape[::-1], cv2.CV_32F), dtype=np.float32)
        (dx, dy), _response = cv2.phaseCorrelate(previous, current, self._window)
        if max(abs(dx), abs(dy)) < STILL_NOISE:
            return NOT_MOVED
        return (dx * scale, dy * scale)

    def move(self, earlier: int, later: int) -> Offset:
        """How far a point still in the world moved from frame ``earlier`` to ``later``."""
        a, b = offset_at(self.offsets, earlier), offset_at(self.offsets, later)
        return (b[0] - a[0], b[1] - a[1])


def offset_at(offsets: list[Offset] | tuple[Offset, ...], index: int) -> Offset:
    """The camera's offset at frame ``index``; none where the path does not reach (an old plan)."""
    return offsets[index] if 0 <= index < len(offsets) else NOT_MOVED
