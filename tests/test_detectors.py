"""Each category found on rendered objects composited into real photographs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import zxingcpp
from PIL import Image, ImageDraw

import render
from conftest import astronaut
from piiblur.config import Settings
from piiblur.detect import Detection, default_engine
from piiblur.detect.faces import MODEL_FILE
from piiblur.detect.onnx import Inference, UnavailableProviderError, load_session
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
    C.SCREENS: (render.monitor_showing_mail, "gravel", (400, 200)),
    C.TATTOOS: (render.tattooed_skin, "astronaut", (620, 300)),  # beside her head: heads are not searched
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
    if category is C.SCREENS:  # the display, not the stand
        x, y, w, h = render.monitor_display_box()
        targets = [(box[0] + x, box[1] + y, w, h)]
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
        ("京A·12345", False, True),  # Chinese
        ("12가3456", False, True),  # Korean
        ("А123ВС 77", False, True),  # Cyrillic
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


def test_the_face_model_looks_only_in_the_regions_it_is_given() -> None:
    """A video keyframe's partial look: faces in the regions are found as the whole picture's look
    finds them (same box), and nothing outside the regions is seen by the face model."""
    from piiblur.detect import Box
    from piiblur.detect.base import Scene
    from piiblur.detect.faces import CenterFaceDetector

    face = astronaut()[10:230, 150:310]
    scene = render.photo("rocket").copy()
    scene[100:320, 100:260] = face
    scene[400:620, 900:1060] = face
    faces = CenterFaceDetector()
    whole = sorted(faces.detect(Scene(scene), frozenset({C.HEADS})), key=lambda d: d.box.x)
    assert len(whole) == 2
    left = Box(40.0, 40.0, 300.0, 340.0)
    (in_region,) = faces.detect(Scene(scene, [left]), frozenset({C.HEADS}))
    assert in_region.box.x >= left.x and in_region.box.x + in_region.box.w <= left.x + left.w
    a, b = in_region.box, whole[0].box
    assert a.intersection_area(b) / (a.area + b.area - a.intersection_area(b)) > 0.85, (a, b)
    assert faces.detect(Scene(scene, [Box(500.0, 50.0, 300.0, 300.0)]), frozenset({C.HEADS})) == []
    assert faces.detect(Scene(scene, []), frozenset({C.HEADS})) == []


def test_codes_are_searched_only_in_the_regions_given() -> None:
    """The code family's partial look: the same box in a region around the code, nothing
    outside the regions."""
    from piiblur.detect import Box
    from piiblur.detect.base import Scene
    from piiblur.detect.codes import CodeDetector

    image = render.code_image("ID 0053379497 JANE DOE", zxingcpp.BarcodeFormat.QRCode, scale=4)
    scene, (x, y, w, h) = render.place(render.photo("chelsea"), image, (500, 200), tilt=0.0)
    codes = CodeDetector()
    (whole,) = codes.detect(Scene(scene), frozenset({C.QR_CODES}))
    around = Box(float(x - w), float(y - h), 3.0 * w, 3.0 * h)
    (in_region,) = codes.detect(Scene(scene, [Box(0, 0, 50, 50), around]), frozenset({C.QR_CODES}))
    assert in_region.box == whole.box and in_region.category is C.QR_CODES
    assert codes.detect(Scene(scene, [Box(0.0, 0.0, 400.0, 150.0)]), frozenset({C.QR_CODES})) == []


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


def motorcycle() -> np.ndarray:
    """scikit-image's photo of a motorcycle in a garage: a real vehicle for the object model."""
    return np.asarray(Image.open(Path(skimage.data.__file__).parent / "motorcycle_left.png").convert("RGB"))


def test_a_plate_inside_a_dense_text_block_is_a_plate() -> None:
    """A rear plate among a dealer's sticker lines: the block is writing, the plate line is a plate."""
    panel = render.card(
        (300, 300),
        (245, 245, 245),
        [
            ("AUTO CENTER", 30, (40, 8)),
            ("SALES SERVICE", 24, (50, 48)),
            ("AB 123 CD", 52, (28, 92)),
            ("SINCE 1984", 24, (70, 168)),
            ("CALL US TODAY", 24, (44, 204)),
            ("WWW.AUTOCENTER.EXAMPLE", 18, (20, 246)),
        ],
        text_colour=(15, 15, 15),
    )
    scene = motorcycle().copy()
    small = cv2.resize(panel, (150, 150), interpolation=cv2.INTER_AREA)
    scene[230:380, 300:450] = small  # stickers on the bike's side
    left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox(
        (28, 92), "AB 123 CD", font=render.font(52)
    )
    plate_box = (300 + int(left / 2), 230 + int(top / 2), int((right - left) / 2), int((bottom - top) / 2))
    found = default_engine().detect(scene, [C.LICENSE_PLATES, C.WRITING])
    plates = [d for d in found if d.category is C.LICENSE_PLATES]
    assert covered(plate_box, plates, scene.shape) >= 0.7, [d.box for d in found]
    writing = [d for d in found if d.category is C.WRITING]
    assert covered((300, 230, 150, 150), writing, scene.shape) >= 0.5, "the stickers are writing"


def test_a_plate_on_a_vehicle_20_px_wide_in_1080p_is_found() -> None:
    """A motorcycle 200 px long in a 1080p street frame, its plate 20 px wide: the line detector's
    first look sees the frame at 960 px (the plate 10 px); the vehicle's second look finds it."""
    bike = motorcycle().copy()
    plate = cv2.resize(render.license_plate(), (96, 22), interpolation=cv2.INTER_AREA)
    bike[232:254, 52:148] = plate
    small = cv2.resize(bike, (200, 135), interpolation=cv2.INTER_AREA)
    frame = render.photo("gravel", (1920, 1080)).copy()
    x, y = 1100, 700
    frame[y : y + 135, x : x + 200] = small
    plate_box = (x + round(52 * 200 / 741), y + round(232 * 135 / 500), 26, 6)
    found = find(frame, C.LICENSE_PLATES)
    assert covered(plate_box, found, frame.shape) >= 0.7, [d.box for d in found]


def test_a_whole_frame_rule_box_is_impossible() -> None:
    """Sign-coloured walls around a small word, a lit frame-sized rectangle: the rules that find
    panels and lit screens cannot hide the picture."""
    wall = np.zeros((720, 1280, 3), np.uint8)
    wall[:] = (0, 110, 60)  # street-sign green, edge to edge
    cv2.putText(wall, "EXIT", (560, 380), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (250, 250, 250), 5)
    lit = np.full((720, 1280, 3), 20, np.uint8)
    lit[40:680, 60:1220] = 235
    for scene in (wall, lit):
        found = default_engine().detect(scene, list(C))
        assert all(d.box.area < 0.5 * 1280 * 720 for d in found), [(d.category, d.detector, d.box) for d in found]


def test_the_object_model_finds_vehicles_and_people() -> None:
    from piiblur.detect.objects import ObjectKind, ObjectModel

    model = ObjectModel()
    bike = max((o for o in model.find(motorcycle()) if o.kind is ObjectKind.VEHICLE), key=lambda o: o.score)
    assert bike.label == "motorcycle" and bike.score > 0.5
    assert covered((150, 100, 500, 320), [Detection(C.LICENSE_PLATES, bike.box, 1.0)], (500, 741)) >= 0.9
    person = max((o for o in model.find(astronaut()) if o.kind is ObjectKind.PERSON), key=lambda o: o.score)
    assert person.score > 0.5 and covered((170, 30, 120, 160), [Detection(C.HEADS, person.box, 1.0)], (512, 512)) == 1.0


def test_the_plate_detector_finds_a_plate_by_its_look() -> None:
    """HyperLPR's detector, trained on Chinese plates: a blue plate with white characters on the
    bike, found whatever its characters read."""
    from piiblur.detect.plate_ssd import PlateSsd

    plate = render.card((440, 140), (20, 60, 200), [("A·12345", 96, (30, 12))], text_colour=(250, 250, 250)).copy()
    cv2.rectangle(plate, (6, 6), (433, 133), (250, 250, 250), 4)
    bike = motorcycle().copy()
    bike[225:260, 40:150] = cv2.resize(plate, (110, 35), interpolation=cv2.INTER_AREA)
    (box, score), *_ = PlateSsd().find(np.ascontiguousarray(bike[150:350, 0:300]))
    assert score > 0.5
    assert covered((40, 75, 110, 35), [Detection(C.LICENSE_PLATES, box, score)], (200, 300)) >= 0.7


def test_a_two_row_plate_is_read_as_one() -> None:
    """A motorcycle plate in two rows: neither row alone reads as a registration."""
    plate = render.card((300, 200), (250, 250, 250), [("AB 12", 80, (40, 10)), ("345", 80, (80, 100))]).copy()
    cv2.rectangle(plate, (3, 3), (296, 196), (10, 10, 10), 5)
    scene, _ = render.place(render.photo("coffee"), plate, (500, 300), tilt=0.0)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    top, bottom = (
        draw.textbbox((40, 10), "AB 12", font=render.font(80)),
        draw.textbbox((80, 100), "345", font=render.font(80)),
    )
    rows = (
        500 + top[0],
        300 + top[1],
        bottom[2] - top[0] if bottom[2] > top[2] else top[2] - top[0],
        bottom[3] - top[1],
    )
    found = find(scene, C.LICENSE_PLATES)
    assert covered(rows, found, scene.shape) >= 0.7, [(d.detector, d.box) for d in found]


def test_execution_providers_are_chosen_in_order_with_the_cpu_last(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIIBLUR_EXECUTION_PROVIDERS", " CPUExecutionProvider , ")
    assert Settings().execution_providers == ["CPUExecutionProvider"]
    assert Inference.of(2, []).providers == ("CPUExecutionProvider",)
    assert Inference.of(2, ["CPUExecutionProvider"]).providers == ("CPUExecutionProvider",)
    session = load_session(MODEL_FILE, Inference.of(1, Settings().execution_providers))
    assert session.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(UnavailableProviderError, match="NoSuchExecutionProvider not available"):
        Inference.of(0, ["NoSuchExecutionProvider"])


def test_the_look_classifier_tells_a_display_from_a_cat() -> None:
    """EfficientNet-Lite0 on the crop NanoDet proposed: a monitor showing a page looks like a
    screen, a cat (NanoDet's low "tv" scores fall on animals too) does not."""
    from piiblur.detect.base import Box
    from piiblur.detect.imagenet import ImageNetClassifier

    classifier = ImageNetClassifier()
    scene, (x, y, w, h) = render.place(render.photo("gravel"), render.monitor_showing_mail(), (400, 200), tilt=0.0)
    cat = render.photo("chelsea", (451, 300))
    monitor, whole_cat = classifier.screen_likeness(scene, [Box(x, y, w, h)]) + classifier.screen_likeness(
        cat, [Box(0, 0, 451, 300)]
    )
    assert monitor > 0.15 and whole_cat < 0.01, (monitor, whole_cat)
    assert classifier.screen_likeness(cat, []) == []
