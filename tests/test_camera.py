"""The camera's own move (``redact/camera.py``): measured on real photos moved by known amounts,
and followed by the boxes between keyframes, so a shaking camera shows no face."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import skimage.data
from PIL import Image

from conftest import RenderedClip, astronaut
from piiblur.detect import Box, Detection, default_engine
from piiblur.domain import ObfuscationType, PiiCategory
from piiblur.redact.camera import NOT_MOVED, CameraPath
from piiblur.redact.muxing import planes_of
from piiblur.redact.obfuscate import obfuscate_yuv420
from piiblur.redact.timeline import Timeline, TrackedBox, VideoPlan
from piiblur.redact.tracking import Keyframe, Pairing, TrackLedger, between, pair
from piiblur.redact.video import redact_video
from test_video import uncovered_frames

VIEW = (320, 240)


def shifted(photo: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The photo's Y plane as a camera moved by (-dx, -dy) sees it: content moves by (dx, dy)."""
    grey = np.asarray(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    return np.asarray(
        cv2.warpAffine(grey, matrix, grey.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    )


def test_a_moving_camera_is_measured_to_a_pixel() -> None:
    photo = np.asarray(Image.fromarray(skimage.data.coffee()).resize((1280, 720)))
    moves = [(0.0, 0.0), (12.0, -7.5), (-30.25, 18.0), (5.0, 40.0), (-22.0, -3.0)]
    path = CameraPath()
    at = np.zeros(2)
    for dx, dy in moves:
        at += (dx, dy)
        path.follow(shifted(photo, *at), cut=False)
    expected = np.cumsum(np.array(moves), axis=0)
    assert np.abs(np.array(path.offsets) - expected).max() < 1.0


def test_a_still_camera_does_not_move_and_a_cut_starts_again() -> None:
    photo = np.asarray(Image.fromarray(skimage.data.coffee()).resize((1280, 720)))
    rng = np.random.default_rng(3)
    path = CameraPath()
    for _ in range(4):  # sensor noise and a little compression: no move
        noisy = shifted(photo, 0, 0).astype(np.int16) + rng.integers(-6, 7, (720, 1280))
        path.follow(np.clip(noisy, 0, 255).astype(np.uint8), cut=False)
    path.follow(shifted(photo, 25, 0), cut=False)
    path.follow(shifted(np.asarray(Image.fromarray(skimage.data.rocket()).resize((1280, 720))), 0, 0), cut=True)
    assert path.offsets[:4] == [NOT_MOVED] * 4
    assert abs(path.offsets[4][0] - 25) < 1.0
    assert path.offsets[5] == NOT_MOVED


def test_between_keyframes_a_box_moves_with_the_camera() -> None:
    face = Detection(PiiCategory.HEADS, Box(100, 100, 40, 40), 0.9)
    later = Detection(PiiCategory.HEADS, Box(104, 100, 40, 40), 0.9)
    pairing = Pairing(matched=[(face, later)], leaving=[], entering=[])
    shake = [(0.0, 0.0), (30.0, -20.0), (4.0, 0.0)]  # the camera jumps at frame 1 and comes back
    boxes = [d.box for d in between(Keyframe(0, [face]), Keyframe(2, [later]), pairing, 1, 640, 480, shake)]
    assert any(abs(b.x + b.w / 2 - (132 + 20)) < 3 and abs(b.y + b.h / 2 - (80 + 20)) < 3 for b in boxes)
    assert any(abs(b.x + b.w / 2 - (102 + 20)) < 3 for b in boxes), "where it moves on its own, too"
    steady = between(
        Keyframe(0, [face]), Keyframe(2, [later]), pairing, 1, 640, 480, [(0.0, 0.0), (2.0, 0.0), (4.0, 0.0)]
    )
    assert len(steady) == 1, "a steady pan is what interpolation already follows: one box"


def render_shaky_video(path: Path, frames: int, jitter: float, fps: int = 25) -> RenderedClip:
    """A hand-held camera over a photo with the astronaut's face on it: the view jumps by about
    ``jitter`` pixels (standard deviation, each axis) from one frame to the next."""
    scene = np.asarray(Image.fromarray(skimage.data.coffee()).resize((480, 360))).copy()
    face = np.asarray(Image.fromarray(astronaut()[20:230, 160:310]).resize((64, 90)))
    fx, fy = 208, 135
    scene[fy : fy + 90, fx : fx + 64] = face
    rng = np.random.default_rng(11)
    boxes = []
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = *VIEW, "yuv420p"
        for index in range(frames):
            wx, wy = (np.clip(rng.normal(0, jitter, 2), -3 * jitter, 3 * jitter) + np.array([80, 60])).astype(int)
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(scene[wy : wy + VIEW[1], wx : wx + VIEW[0]]), format="rgb24"
            )
            frame.pts = index
            container.mux(video.encode(frame))
            boxes.append((int(fx - wx), int(fy - wy), 64, 90))
        container.mux(video.encode(None))
    return RenderedClip(path, boxes, fps)


def covered(face: tuple[int, int, int, int], regions: list[Box]) -> float:
    """The share of the face's pixels inside a hidden region."""
    x, y, w, h = face
    mask = np.zeros((h, w), bool)
    for b in regions:
        x0, y0, x1, y1 = b.pixel_bounds(x + w, y + h)
        mask[max(0, y0 - y) : max(0, y1 - y), max(0, x0 - x) : max(0, x1 - x)] = True
    return float(mask.mean())


def test_a_shaking_camera_shows_the_face_on_no_frame(tmp_path: Path) -> None:
    """Keyframes come every few frames while the face keeps its size; between them only the
    camera's measured move puts the box where the face jumped to (interpolation alone leaves a
    third of it visible)."""
    clip = render_shaky_video(tmp_path / "shaky.mp4", 50, jitter=14.0)
    out = tmp_path / "out.mp4"
    result = redact_video(clip.path, out, "mp4", [PiiCategory.HEADS], ObfuscationType.BLUR, default_engine())
    keyframes = set(result.keyframes)
    assert len(keyframes) < 25, "keyframes are not every frame: frames in between are followed"
    cover = [covered(face, regions) for face, regions in zip(clip.face_boxes, result.regions_per_frame, strict=True)]
    as_detected = min(cover[i] for i in keyframes)  # the detector's box against the pasted face
    assert as_detected > 0.8
    assert min(c for i, c in enumerate(cover) if i not in keyframes) >= as_detected
    assert uncovered_frames(clip, out) == []
    # An unedited render from the stored plan (what a review renders) hides the same boxes.
    assert result.plan is not None
    plan = VideoPlan.from_json(result.plan.as_json())
    timeline = Timeline(plan, [TrackedBox(d.frame, d.track, d.detection) for d in result.detections])
    rendered = [sorted(d.box.as_list() for d in timeline.regions(i)) for i in range(result.frames)]
    assert rendered == [sorted(box.as_list() for box in frame) for frame in result.regions_per_frame]


def test_a_crowd_shaken_by_the_camera_is_paired_face_to_same_face() -> None:
    """The camera jumps by about one face: without its move, each face pairs with its neighbour."""
    faces = [Detection(PiiCategory.HEADS, Box(x, 100, 50, 50), 0.9) for x in (100, 160, 220)]
    jumped = [Detection(PiiCategory.HEADS, Box(x + 55, 100, 50, 50), 0.9) for x in (100, 160, 220)]
    earlier, later = Keyframe(0, faces), Keyframe(5, jumped)
    followed = pair(earlier, later, camera_move=(55.0, 0.0))
    assert [(a.box.x, b.box.x) for a, b in followed.matched] == [(100, 155), (160, 215), (220, 275)]
    assert len(pair(earlier, later).matched) < 3, "what the camera's move is needed for"


def carried_after_a_miss(found: Detection, camera_move: tuple[float, float]) -> Detection:
    """The box a track found at one keyframe is carried with when the next keyframe (1280x720)
    misses it and the camera moved by ``camera_move`` in between."""
    ids = iter(range(1, 10))
    ledger = TrackLedger(lambda: next(ids))
    first = Keyframe(0, [found])
    ledger.assign(first, None)
    (carried,) = ledger.coasting(first, Keyframe(5, []), camera_move, (1280, 720))
    return carried


def test_a_box_cut_by_the_frame_edge_stays_at_the_edge_when_carried() -> None:
    """Text running out of the picture: the camera moves right, the box's visible part stays."""
    carried = carried_after_a_miss(Detection(PiiCategory.WRITING, Box(0, 300, 110, 90), 0.9), (-40.0, 0.0))
    assert (carried.box.x, carried.box.x + carried.box.w) == (0, 70)


def test_a_face_missed_at_a_keyframe_is_carried_where_the_camera_took_it() -> None:
    carried = carried_after_a_miss(Detection(PiiCategory.HEADS, Box(100, 100, 50, 50), 0.9), (-30.0, 12.0))
    assert (carried.box.x, carried.box.y) == (70, 112)


def test_a_box_the_camera_carried_out_of_the_frame_hides_nothing_and_breaks_nothing() -> None:
    """A carried box can leave the picture with the camera's move: hiding clips it to nothing
    (it once reached past the edge and failed the encoder)."""
    frame = av.VideoFrame.from_ndarray(
        np.asarray(Image.fromarray(skimage.data.coffee()).resize((640, 360))), format="rgb24"
    )
    planes = planes_of(frame.reformat(format="yuv420p"))
    before = [plane.copy() for plane in planes]
    outside = [
        Detection(PiiCategory.LICENSE_PLATES, Box(646.8, 200.5, 0.0, 32.2), 0.9),
        Detection(PiiCategory.WRITING, Box(700.0, 380.0, 40.0, 20.0), 0.9),
        Detection(PiiCategory.HEADS, Box(-90.0, 10.0, 60.0, 60.0), 0.9),
    ]
    obfuscate_yuv420(planes, outside, ObfuscationType.BLUR)
    assert all(np.array_equal(a, b) for a, b in zip(planes, before, strict=True))
    assert all(d.box.grown(0.1, 640, 360).area == 0 for d in outside)
