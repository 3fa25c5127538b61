"""Hiding regions so that nothing can be read back.

Both methods first throw information away by shrinking the region to a handful of cells (about
eight across its long side, whatever its size), so the strength scales with the region: a large
face is hidden as thoroughly as a small one, and neither a sharpening filter nor a super-resolution
model can restore detail that is no longer there. Blur then smooths the cells; pixelation shows them.
Heads are hidden inside a feathered ellipse (a natural look); everything else inside its grown box.
Pixels outside the masks are not touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from piiblur.detect.base import Box, Detection, RgbImage
from piiblur.domain import ObfuscationType, PiiCategory

CELLS_ACROSS = 8
"""Samples kept along the region's long side: a face or a word reduced to 8 cells is not legible."""

MARGIN = {PiiCategory.HEADS: 0.10}
DEFAULT_MARGIN = 0.12

IntMask = npt.NDArray[np.uint8]
Plane = npt.NDArray[np.uint8]  # H x W x channels, or one H x W plane


@dataclass(frozen=True)
class FixedRegions:
    """A request's own regions, in pixels of the upright picture, on every frame: ``always_hide``
    is hidden whatever was found (a fixed window, a name painted on a wall), exactly the box, no
    margin; ``never_hide`` is left as it was (a dash-cam's timestamp overlay the user must keep):
    its pixels are put back after the detections are hidden, and a detection wholly inside it is
    dropped. ``always_hide`` wins where the two overlap: it is the explicit order to hide."""

    always_hide: tuple[Box, ...] = ()
    never_hide: tuple[Box, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.always_hide or self.never_hide)

    def keeps(self, detection: Detection) -> bool:
        """False for a detection wholly inside a never-hide region (nothing of it would be hidden)."""
        box = detection.box
        return not any(region.intersection_area(box) >= box.area * 0.999 for region in self.never_hide)


NO_FIXED_REGIONS = FixedRegions()


def obfuscate(
    image: RgbImage,
    detections: Iterable[Detection],
    method: ObfuscationType,
    fixed: FixedRegions = NO_FIXED_REGIONS,
) -> RgbImage:
    """Return a copy of ``image`` with every detection hidden (and ``fixed`` applied)."""
    out = image.copy()
    height, width = out.shape[:2]
    kept = _kept_pixels(out, fixed.never_hide, 1.0)
    _hide_all(out, _regions(detections, width, height), method, 1.0)
    _restore(out, kept)
    _hide_all(out, [(False, box) for box in fixed.always_hide], method, 1.0)
    return out


def _kept_pixels(image: Plane, boxes: Sequence[Box], scale: float) -> list[tuple[tuple[int, int, int, int], Plane]]:
    """Copies of what ``boxes`` (scaled to this plane) cover, to be put back after hiding."""
    height, width = image.shape[:2]
    kept = []
    for box in boxes:
        x0, y0, x1, y1 = _int_bounds(Box(box.x * scale, box.y * scale, box.w * scale, box.h * scale))
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        if x1 > x0 and y1 > y0:
            kept.append(((x0, y0, x1, y1), image[y0:y1, x0:x1].copy()))
    return kept


def _restore(image: Plane, kept: list[tuple[tuple[int, int, int, int], Plane]]) -> None:
    for (x0, y0, x1, y1), pixels in kept:
        image[y0:y1, x0:x1] = pixels


def obfuscate_yuv420(
    planes: Sequence[Plane],
    detections: Iterable[Detection],
    method: ObfuscationType,
    fixed: FixedRegions = NO_FIXED_REGIONS,
) -> None:
    """Hide every detection in place in the Y, U and V planes of a YUV 4:2:0 frame (chroma planes
    half the size, rounded up), so video frames need no conversion to RGB.

    Each plane is hidden on its own with the same shapes (halved for chroma); blur, pixelation and
    the feathered blend are linear, so this equals hiding the RGB image, at half the pixels.
    """
    luma = planes[0]
    height, width = luma.shape[:2]
    regions = _regions(detections, width, height)
    always = [(False, box) for box in fixed.always_hide]
    for plane in planes:
        scale = plane.shape[1] / width
        kept = _kept_pixels(plane, fixed.never_hide, scale)
        _hide_all(plane, regions, method, scale)
        _restore(plane, kept)
        _hide_all(plane, always, method, scale)


def _regions(detections: Iterable[Detection], width: int, height: int) -> list[tuple[bool, Box]]:
    """(is a head, area to hide) per detection: boxes grown by their category's margin."""
    return [
        (d.category is PiiCategory.HEADS, d.box.grown(MARGIN.get(d.category, DEFAULT_MARGIN), width, height))
        for d in detections
    ]


def _hide_all(image: Plane, regions: list[tuple[bool, Box]], method: ObfuscationType, scale: float) -> None:
    for is_head, region in regions:
        scaled = Box(region.x * scale, region.y * scale, region.w * scale, region.h * scale)
        if is_head:
            _hide_ellipse(image, scaled, method)
        else:
            _hide_rectangle(image, scaled, method)


def _int_bounds(box: Box) -> tuple[int, int, int, int]:
    return int(np.floor(box.x)), int(np.floor(box.y)), int(np.ceil(box.x + box.w)), int(np.ceil(box.y + box.h))


def _scrambled(roi: Plane, method: ObfuscationType) -> Plane:
    height, width = roi.shape[:2]
    cell = max(2.0, max(width, height) / CELLS_ACROSS)
    small_w, small_h = max(1, round(width / cell)), max(1, round(height / cell))
    small = cv2.resize(_halved_towards(roi, small_w, small_h), (small_w, small_h), interpolation=cv2.INTER_AREA)
    if method is ObfuscationType.PIXELATION:
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST).astype(np.uint8, copy=False)
    # Smooth the cells at a small intermediate size (cheap whatever the region's size), then
    # enlarge: the result is a soft blur with no information beyond the 8-cell grid.
    step = 4
    middle = cv2.resize(small, (small_w * step, small_h * step), interpolation=cv2.INTER_LINEAR)
    middle = cv2.GaussianBlur(middle, (0, 0), sigmaX=step / 1.5, sigmaY=step / 1.5, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(middle, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.uint8, copy=False)


def _halved_towards(roi: Plane, width: int, height: int) -> Plane:
    """Halve ``roi`` (Gaussian pyramid: every pixel still counts) while it stays at least four
    times the target size: OpenCV's area averaging is slow for large, non-integer ratios."""
    while roi.shape[1] >= 8 * width and roi.shape[0] >= 8 * height:
        roi = np.asarray(cv2.pyrDown(roi), dtype=np.uint8)
    return roi


def _hide_rectangle(image: Plane, region: Box, method: ObfuscationType) -> None:
    x0, y0, x1, y1 = _int_bounds(region)
    x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    image[y0:y1, x0:x1] = _scrambled(image[y0:y1, x0:x1], method)


def _hide_ellipse(image: Plane, region: Box, method: ObfuscationType) -> None:
    """Hide the ellipse inscribed in ``region`` (grown so it contains the whole box's content),
    feathered outwards so the edge blends into the surroundings."""
    height, width = image.shape[:2]
    placed = _ellipse(region, width, height)
    if placed is None:
        return
    (x0, y0, x1, y1), alpha = placed
    roi = image[y0:y1, x0:x1]
    hidden = _scrambled(roi, method)
    # Integer blend: where alpha is 0 the result is exactly the original pixel.
    weight = (alpha[..., None] if roi.ndim == 3 else alpha).astype(np.uint16)
    mixed = (roi.astype(np.uint16) * (255 - weight) + hidden.astype(np.uint16) * weight + 127) // 255
    roi[:] = mixed.astype(np.uint8)


ELLIPSE_AXES = 1.2  # of the region's half-size: the face box inside a head box lies well within the ellipse
FEATHER = 0.15  # of the axes, outside the ellipse, over which the hiding fades out


def _ellipse(region: Box, width: int, height: int) -> tuple[tuple[int, int, int, int], IntMask] | None:
    """Where a head's ellipse lands in a ``width`` x ``height`` picture: its bounds and its
    0-255 weight there (None when it falls outside)."""
    cx, cy = region.x + region.w / 2, region.y + region.h / 2
    ax, ay = region.w / 2 * ELLIPSE_AXES, region.h / 2 * ELLIPSE_AXES
    spread = 1 + FEATHER
    outer = Box(cx - ax * spread, cy - ay * spread, 2 * ax * spread, 2 * ay * spread)
    x0, y0, x1, y1 = _int_bounds(outer)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return (x0, y0, x1, y1), _feathered_ellipse(x1 - x0, y1 - y0, cx - x0, cy - y0, ax, ay, FEATHER)


def hidden_mask(detections: Iterable[Detection], width: int, height: int) -> npt.NDArray[np.bool_]:
    """Which pixels hiding ``detections`` changes (the feathered rim of an ellipse included): what
    a redaction costs the picture, measured by ``bench/quality.py`` as collateral."""
    mask = np.zeros((height, width), bool)
    for is_head, region in _regions(detections, width, height):
        if is_head:
            placed = _ellipse(region, width, height)
            if placed is not None:
                (x0, y0, x1, y1), alpha = placed
                mask[y0:y1, x0:x1] |= alpha > 0
        else:
            x0, y0, x1, y1 = _int_bounds(region)
            mask[max(0, y0) : y1, max(0, x0) : x1] = True
    return mask


MASK_STEP = 4  # the mask is computed on a 4x coarser grid, then enlarged: same shape, 16x less work


def _feathered_ellipse(width: int, height: int, cx: float, cy: float, ax: float, ay: float, feather: float) -> IntMask:
    """255 inside the ellipse, falling smoothly to 0 over ``feather`` of the axes outside it."""
    small_w, small_h = max(1, -(-width // MASK_STEP)), max(1, -(-height // MASK_STEP))
    ys, xs = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    xs = (xs + 0.5) * MASK_STEP - cx
    ys = (ys + 0.5) * MASK_STEP - cy
    radius = np.sqrt((xs / max(ax, 1e-3)) ** 2 + (ys / max(ay, 1e-3)) ** 2)
    ramp = np.clip((1 + feather - radius) / feather, 0.0, 1.0)
    smooth = np.rint(ramp * ramp * (3 - 2 * ramp) * 255).astype(np.uint8)
    mask = cv2.resize(smooth, (small_w * MASK_STEP, small_h * MASK_STEP), interpolation=cv2.INTER_LINEAR)
    result: IntMask = np.ascontiguousarray(mask[:height, :width])
    return result
