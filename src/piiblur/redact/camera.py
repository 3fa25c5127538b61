"""How the camera moved from frame to frame, so that boxes between keyframes follow it.

Between two keyframes an object is placed by linear interpolation (``tracking.between``): right
for a steady pan or a walking person, wrong for a hand-held, body-worn or dashboard camera, whose
shake moves everything in the picture by tens of pixels from one frame to the next and back. So the
camera's own move is measured on every frame -- phase correlation of consecutive grey frames at
``WORK_SIZE`` px on the longer side (1-4 ms a frame), kept only where it explains the change between the frames
(``EXPLAINED``: a still camera, or a zoom, has no move) -- and summed into a path of offsets.
Between keyframes an object is also hidden where it is if it moved with the camera
(``tracking.between``), and keyframes are paired with the camera's move taken out.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from piiblur.redact.obfuscate import Plane

Offset = tuple[float, float]
NOT_MOVED: Offset = (0.0, 0.0)

WORK_SIZE = 320  # the longer side of the frames correlated, so a portrait phone video costs the same
# A measured move is taken only where it explains the change between the frames: shifting the
# earlier frame by it must leave less than this share of their difference. Measured on 299 frame
# pairs each (``bench/footage.py`` clips at 720p): a panning or shaking camera leaves 0.02-0.46 of
# it, a camera standing still 1.07-3.99 (its "move", up to 1.2 working px, is people walking
# through the picture), a zoom 0.90-0.99 (no translation explains it).
EXPLAINED = 2 / 3


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
        scale = max(width, height) / WORK_SIZE
        # Every other pixel first: a third of the resizing time, the same moves to 0.1 px.
        halved = luma[::2, ::2] if max(width, height) >= 2 * WORK_SIZE else luma
        small = np.asarray(
            cv2.resize(
                halved, (max(1, round(width / scale)), max(1, round(height / scale))), interpolation=cv2.INTER_AREA
            ),
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
        # Copies: OpenCV 5 multiplies its inputs by the window in place.
        (dx, dy), _response = cv2.phaseCorrelate(previous.copy(), current.copy(), self._window)
        if _misfit(previous, current, (dx, dy)) >= EXPLAINED * _misfit(previous, current, NOT_MOVED):
            return NOT_MOVED
        return (dx * scale, dy * scale)

    def move(self, earlier: int, later: int) -> Offset:
        """How far a point still in the world moved from frame ``earlier`` to ``later``."""
        a, b = offset_at(self.offsets, earlier), offset_at(self.offsets, later)
        return (b[0] - a[0], b[1] - a[1])


def offset_at(offsets: list[Offset] | tuple[Offset, ...], index: int) -> Offset:
    """The camera's offset at frame ``index``; none where the path does not reach (an old plan)."""
    return offsets[index] if 0 <= index < len(offsets) else NOT_MOVED


def _misfit(previous: npt.NDArray[np.float32], current: npt.NDArray[np.float32], move: Offset) -> float:
    """Mean grey difference between ``current`` and ``previous`` shifted by ``move``, away from
    the borders the shift uncovers."""
    height, width = previous.shape
    shifted = previous
    if move != NOT_MOVED:
        matrix = np.array([[1.0, 0.0, move[0]], [0.0, 1.0, move[1]]], dtype=np.float32)
        warped = cv2.warpAffine(
            previous, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        shifted = np.asarray(warped, dtype=np.float32)
    bx, by = int(abs(move[0])) + 2, int(abs(move[1])) + 2
    if width <= 2 * bx or height <= 2 * by:
        return float("inf")
    inner = (slice(by, height - by), slice(bx, width - bx))
    return float(np.abs(shifted[inner] - current[inner]).mean())
