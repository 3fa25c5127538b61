"""Each category found on rendered objects composited into real photographs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import zxingcpp
from PIL import Image

import render
from conftest import astronaut
from piiblur.detect import Detection, default_engine
from piiblur.detect.plates import looks_like_plate
from piiblur.domain import PiiCategory as C


def covered(box: tuple[int, int, int, int], detections: list[Detection], shape: tuple[int, ...]) -> float:
    """Fraction of ``box`` covered by the detections' boxes (the benchmark's "found" measure)."""
    x, y, w, h = box
    mask = np.zeros(shape[:2], bool)
    for d in detections:
        b = d.box
        mask[int(b.y) : int(np.ceil(b.y + b.h)), int(b.x) : int(np.ceil(b.x + b.w))] = True
    return float(mask[y : y + h, x : x + w].mean())


def find(scene: np.ndarray, category: C) -> list[Detection]:
    found = default_engine().detect(scene, [category])
    assert all(d.category is category for d in found)
    return found


CASES = {
    C.PASSPORTS: (render.passport_page, "coffee", (180, 60)),
    C.ID_CARDS: (render.id_card, "chelsea", (200, 90)),
    C.CREDIT_CARDS: (render.credit_card, "coffee", (260, 100)),
    C.DOCUMENTS: (render.receipt, "rocket", (420, 40)),
    C.STREET_SIGNS: (render.street_sign, "rocket", (300, 150)),
    C.LICENSE_PLATES: (render.license_plate, "coffee", (420, 420)),
    C.SCREENS: (render.phone_showing_a_page, "gravel", (700, 80)),
    C.TATTOOS: (render.tattooed_skin, "rocket", (300, 150)),
    C.NAME_BADGES: (render.business_card_with_code, "chelsea", (380, 200)),
}


@pytest.mark.parametrize("category", list(CASES), ids=lambda c: c.value)
def test_rendered_object_is_found(category: C) -> None:
    make, background, at = CASES[category]
    tilt = 0.0 if category is C.TATTOOS else 0.06
    scene, box = render.place(render.photo(background), make(), at, tilt=tilt)
    targets = [box]
    if category is C.TATTOOS:  # the drawings, not the whole arm
        targets = [(box[0] + x, box[1] + y, w, h) for x, y, w, h in render.tattoo_ink_boxes()]
    found = find(scene, category)
    assert found, f"no {category.value} found"
    for target in targets:
        assert covered(target, found, scene.shape) >= 0.7, (target, [d.box for d in found])


def test_vanity_plate_between_state_and_slogan_is_found() -> None:
    """Letters only and three rows: still a plate (the registration is not a paragraph line)."""
    scene, box = render.place(render.photo("coffee"), render.vanity_plate(), (420, 380))
    found = find(scene, C.LICENSE_PLATES)
    assert found and covered(box, found, scene.shape) >= 0.5, [d.box for d in found]


@pytest.mark.parametrize(
    ("size", "width"),
    [((640, 480), 24), ((1920, 1080), 32), ((4000, 3000), 40)],
    ids=["VGA-24px", "1080p-32px", "12MP-40px"],
)
def test_small_head_is_found_at_any_picture_size(size: tuple[int, int], width: int) -> None:
    """Each was missed by a single look: in a small picture the head is too small for the model
    until the picture is enlarged; 1080p shrunk to 1280 px lost it (now seen whole); a 12 MP photo
    shrunk for the first look loses it (second look in native-resolution tiles)."""
    height = round(width * 210 / 180)
    head = cv2.resize(astronaut()[20:230, 150:330], (width, height), interpolation=cv2.INTER_AREA)
    scene = render.photo("coffee", size).copy()
    x, y = size[0] // 2, size[1] // 2
    scene[y : y + height, x : x + width] = head
    found = find(scene, C.HEADS)
    assert covered((x, y, width, height), found, scene.shape) >= 0.7, [d.box for d in found]


def test_small_plate_in_a_camera_sized_photo_is_found() -> None:
    """A 90 x 19 px plate in a 4000 x 3000 photo: shrunk to the line detector's 960 px it would
    be 4 px high; the second look at large pictures must find it."""
    plate = cv2.resize(render.license_plate(), (90, 19), interpolation=cv2.INTER_AREA)
    scene, box = render.place(render.photo("coffee", (4000, 3000)), plate, (1700, 2000))
    found = find(scene, C.LICENSE_PLATES)
    assert covered(box, found, scene.shape) >= 0.7, [d.box for d in found]


@pytest.mark.parametrize(
    ("text", "tiny", "plate"),
    [
        ("AB 123 CD", False, True),
        ("FZ RULZ", False, True),  # vanity
        ("KIOSK", False, False),  # one word, no digit
        ("Bcon", False, False),
        ("Bcon", True, True),  # a distant plate reads as smudges
        ("Music is the best.", False, False),
    ],
)
def test_plate_reading_rules(text: str, tiny: bool, plate: bool) -> None:
    assert looks_like_plate(text, tiny=tiny) is plate


@pytest.mark.parametrize(
    ("symbology", "category"),
    [
        (zxingcpp.BarcodeFormat.QRCode, C.QR_CODES),
        (zxingcpp.BarcodeFormat.EAN13, C.BARCODES),
        (zxingcpp.BarcodeFormat.Code128, C.BARCODES),
        (zxingcpp.BarcodeFormat.DataMatrix, C.BARCODES),
    ],
    ids=lambda v: getattr(v, "name", getattr(v, "value", str(v))),
)
def test_codes_are_found(symbology: zxingcpp.BarcodeFormat, category: C) -> None:
    content = "590123412345" if symbology == zxingcpp.BarcodeFormat.EAN13 else "ID 0053379497 JANE DOE"
    # Linear codes are read along scan lines: they are tested with a milder perspective.
    tilt = 0.06 if category is C.QR_CODES or symbology == zxingcpp.BarcodeFormat.DataMatrix else 0.02
    image = render.code_image(content, symbology, scale=4)
    scene, (x, y, w, h) = render.place(render.photo("chelsea"), image, (500, 200), tilt=tilt)
    quiet = 8 / image.shape[1], 8 / image.shape[0]  # the 2-module quiet zone is not the symbol
    box = (int(x + quiet[0] * w), int(y + quiet[1] * h), int(w * (1 - 2 * quiet[0])), int(h * (1 - 2 * quiet[1])))
    found = find(scene, category)
    assert covered(box, found, scene.shape) >= 0.7, (box, [d.box for d in found])


def test_speed_limit_sign_without_text_is_found() -> None:
    scene, box = render.place(render.photo("rocket"), render.speed_limit_sign(), (900, 120), tilt=0.0)
    assert covered(box, find(scene, C.STREET_SIGNS), scene.shape) >= 0.7


def test_writing_on_a_wall_is_found() -> None:
    wall = render.card((760, 150), (190, 180, 170), [("Call Jane: 555 0199", 64, (30, 40))])
    scene, box = render.place(render.photo("brick"), wall, (200, 300))
    text_box = (box[0] + 20, box[1] + 30, box[2] - 60, box[3] - 60)
    assert covered(text_box, find(scene, C.WRITING), scene.shape) >= 0.7


def test_small_faces_are_found() -> None:
    """A 32-pixel face (a crowd's background) and a full-size one, in one picture."""
    face = astronaut()[10:230, 150:310]
    scene = render.photo("rocket").copy()
    scene[100:320, 100:260] = face
    small = np.asarray(Image.fromarray(face).resize((29, 40)))
    scene[500:540, 900:929] = small
    found = find(scene, C.HEADS)
    assert covered((120, 140, 120, 140), found, scene.shape) >= 0.7
    assert covered((902, 505, 25, 30), found, scene.shape) >= 0.7


def test_nothing_is_found_on_plain_photos() -> None:
    """No category fires on photos without personal information: a rocket, a wall, grass, gravel."""
    for name in ("rocket", "brick", "grass", "gravel"):
        found = default_engine().detect(render.photo(name), list(C))
        assert found == [], (name, found)


def test_each_shared_model_runs_once_per_image() -> None:
    """The OCR line detector serves seven categories but runs once for an image."""
    engine = default_engine()
    ocr = next(d.ocr for d in engine.detectors if hasattr(d, "ocr"))
    calls = []
    original = ocr.find_lines
    ocr.find_lines = lambda pixels: calls.append(1) or original(pixels)
    try:
        engine.detect(render.photo("coffee"), list(C))
    finally:
        ocr.find_lines = original
    assert len(calls) == 1


def test_pose_model_places_heads() -> None:
    """MoveNet finds the person and her head from keypoints, independently of the face detector."""
    from piiblur.detect.base import Scene
    from piiblur.detect.poses import PoseHeadDetector

    (head,) = PoseHeadDetector().detect(Scene(astronaut()), frozenset({C.HEADS}))
    assert covered((190, 60, 70, 110), [head], (512, 512)) >= 0.9


def test_head_box_from_keypoints_without_a_face() -> None:
    """Seen from behind: no nose or eyes, only ears or only shoulders; the head is still boxed."""
    from piiblur.detect.poses import head_from_keypoints

    points = np.zeros((17, 3), np.float32)
    points[5], points[6] = (300, 400, 0.9), (180, 400, 0.9)  # shoulders, 120 px apart
    only_shoulders = head_from_keypoints(points)
    assert only_shoulders is not None
    assert only_shoulders.y + only_shoulders.h <= 400 and only_shoulders.x < 240 < only_shoulders.x + only_shoulders.w
    points[3], points[4] = (265, 300, 0.8), (215, 300, 0.8)  # the ears
    with_ears = head_from_keypoints(points)
    assert with_ears is not None and with_ears.x < 215 and with_ears.x + with_ears.w > 265
    assert head_from_keypoints(np.zeros((17, 3), np.float32)) is None


def test_model_files_match_their_manifest() -> None:
    """Shipped weights are exactly what scripts/convert_models.py recorded."""
    import hashlib
    import json

    from piiblur.detect.onnx import weights_path

    manifest = json.loads(weights_path("MANIFEST.json").read_text())
    for entry in manifest["models"]:
        digest = hashlib.sha256(weights_path(entry["file"]).read_bytes()).hexdigest()
        assert digest == entry["sha256"], entry["file"]
        assert entry["licence"] and entry["source_package"]
