"""Rendering realistic test scenes: objects drawn with real fonts and real symbologies, warped in
perspective and composited into real photographs that installed packages ship (scikit-image)."""

from __future__ import annotations

import cv2
import numpy as np
import zxingcpp
from PIL import Image, ImageDraw, ImageFont
from skimage import data as skdata

Array = np.ndarray

PASSPORT_MRZ = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")
ID_CARD_MRZ = ("I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6", "ERIKSSON<<ANNA<MARIA<<<<<<<<<<")


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def photo(name: str = "coffee", size: tuple[int, int] = (1280, 720)) -> Array:
    """A real photo from scikit-image, resized to ``size`` (width, height), as RGB."""
    pixels = np.asarray(getattr(skdata, name)())
    if pixels.ndim == 2:
        pixels = np.dstack([pixels] * 3)
    return np.asarray(Image.fromarray(pixels[..., :3]).resize(size))


def card(
    size: tuple[int, int],
    colour: tuple[int, int, int],
    lines: list[tuple[str, int, tuple[int, int]]],
    text_colour: tuple[int, int, int] = (20, 20, 20),
) -> Array:
    """A flat card or panel with text lines given as (text, font size, (x, y))."""
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    for text, size_px, position in lines:
        draw.text(position, text, fill=text_colour, font=font(size_px))
    return np.asarray(image)


def code_image(content: str, symbology: zxingcpp.BarcodeFormat, scale: int = 5) -> Array:
    """The symbol with a quiet zone of two modules: tests measure coverage of this whole image."""
    symbol = np.asarray(zxingcpp.write_barcode_to_image(zxingcpp.create_barcode(content, symbology), scale=scale))
    quiet = np.pad(symbol, 2 * scale, constant_values=255)
    return np.dstack([quiet] * 3)


def place(
    background: Array, obj: Array, at: tuple[int, int], tilt: float = 0.06
) -> tuple[Array, tuple[int, int, int, int]]:
    """Warp ``obj`` in slight perspective and paste it with its top-left near ``at``.

    Returns the scene and the object's enclosing box (x, y, w, h) in it.
    """
    h, w = obj.shape[:2]
    x, y = at
    source = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dx, dy = tilt * w, tilt * h
    target = np.float32([[x, y + dy], [x + w, y], [x + w - dx, y + h], [x + dx, y + h - dy]])
    matrix = cv2.getPerspectiveTransform(source, target)
    size = (background.shape[1], background.shape[0])
    warped = cv2.warpPerspective(obj, matrix, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), matrix, size) > 127
    scene = background.copy()
    scene[mask] = warped[mask]
    ys, xs = np.nonzero(mask)
    return scene, (int(xs.min()), int(ys.min()), int(xs.max() - xs.min()), int(ys.max() - ys.min()))


def passport_page() -> Array:
    page = card(
        (880, 620),
        (226, 232, 236),
        [
            ("PASSPORT  PASSEPORT", 34, (300, 30)),
            ("Surname: ERIKSSON", 30, (300, 110)),
            ("Given names: ANNA MARIA", 30, (300, 160)),
            ("Date of birth: 12 AUG 1974", 30, (300, 210)),
            (PASSPORT_MRZ[0], 31, (24, 470)),
            (PASSPORT_MRZ[1], 31, (24, 530)),
        ],
    )
    face = np.asarray(Image.fromarray(np.asarray(skdata.astronaut())[20:260, 150:330]).resize((220, 290)))
    page = page.copy()
    page[90:380, 40:260] = face
    return page


def id_card() -> Array:
    return card(
        (856, 540),
        (214, 228, 240),
        [
            ("IDENTITY CARD", 40, (40, 30)),
            (ID_CARD_MRZ[0], 46, (30, 350)),
            (ID_CARD_MRZ[1], 46, (30, 410)),
            (ID_CARD_MRZ[2], 46, (30, 470)),
        ],
    )


def credit_card() -> Array:
    return card(
        (856, 540),
        (40, 70, 160),
        [("BANK", 50, (50, 40)), ("4111 1111 1111 1111", 64, (60, 280)), ("JANE DOE   12/29", 40, (60, 400))],
        text_colour=(245, 245, 245),
    )


def receipt() -> Array:
    items = ["SUPERMARKET 42", "12 Baker Street", "Order 113533  Cashier: Eric"]
    items += [f"{n} x Item number {n:02d}        {n * 1.25:6.2f}" for n in range(1, 10)]
    items += ["TOTAL                  56.25", "VISA ****8425", "Thank you!"]
    return card((620, 820), (246, 244, 238), [(line, 24, (30, 30 + 50 * i)) for i, line in enumerate(items)])


def street_sign() -> Array:
    sign = card((640, 200), (0, 110, 60), [("Main Street", 84, (60, 50))], text_colour=(250, 250, 250))
    sign = sign.copy()
    cv2.rectangle(sign, (8, 8), (631, 191), (250, 250, 250), 6)
    return sign


def speed_limit_sign(diameter: int = 120) -> Array:
    sign = np.full((diameter, diameter, 3), 255, np.uint8)
    sign[:] = (110, 140, 190)  # sky behind the round sign
    centre = (diameter // 2, diameter // 2)
    cv2.circle(sign, centre, diameter // 2 - 2, (255, 255, 255), -1)
    cv2.circle(sign, centre, diameter // 2 - 2, (210, 20, 30), diameter // 9)
    cv2.putText(
        sign, "50", (diameter // 4, int(diameter * 0.63)), cv2.FONT_HERSHEY_SIMPLEX, diameter / 90, (0, 0, 0), 4
    )
    return sign


def license_plate() -> Array:
    plate = card((520, 112), (250, 250, 250), [("AB 123 CD", 84, (40, 8))], text_colour=(10, 10, 10))
    plate = plate.copy()
    cv2.rectangle(plate, (3, 3), (516, 108), (10, 10, 10), 5)
    return plate


def monitor_showing_mail(width: int = 420, height: int = 260) -> Array:
    """A desktop monitor on its stand, showing an inbox: a dark bezel around a lit page."""
    image = np.full((height + 90, width, 3), 200, np.uint8)
    cv2.rectangle(image, (0, 0), (width - 1, height - 1), (25, 25, 28), -1)
    lines = [("Inbox", 28, (16, 10)), ("Jane Doe: lunch at 1?", 20, (16, 60)), ("Bank statement", 20, (16, 95))]
    image[12 : height - 12, 12 : width - 12] = card((width - 24, height - 24), (235, 240, 250), lines)
    cv2.rectangle(image, (width // 2 - 12, height), (width // 2 + 12, height + 60), (40, 40, 40), -1)
    cv2.rectangle(image, (width // 2 - 80, height + 60), (width // 2 + 80, height + 75), (40, 40, 40), -1)
    return image


def monitor_display_box(width: int = 420, height: int = 260) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the lit display inside ``monitor_showing_mail``."""
    return 12, 12, width - 24, height - 24


def phone_showing_a_page() -> Array:
    phone = np.full((560, 300, 3), 18, np.uint8)
    screen = card((260, 470), (250, 250, 252), [("Messages", 30, (20, 20)), ("Jane: see you at 6", 20, (20, 90))])
    phone[40:510, 20:280] = screen
    return phone


def tattoo_ink_boxes() -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of each drawing inside ``tattooed_skin``: the lettering and the ring."""
    left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((90, 150), "Forever", font=font(110))
    return [(int(left), int(top), int(right - left), int(bottom - top)), (250, 40, 120, 90)]


def tattooed_skin() -> Array:
    rng = np.random.default_rng(7)
    skin = np.full((420, 620, 3), (222, 170, 140), np.float32)
    skin += rng.normal(0, 4, skin.shape)
    image = Image.fromarray(np.clip(skin, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.text((90, 150), "Forever", fill=(55, 60, 70), font=font(110))
    draw.ellipse((250, 40, 370, 130), outline=(50, 55, 70), width=9)
    return np.asarray(image)


def business_card_with_code() -> Array:
    card_image = card((560, 360), (250, 250, 250), [("JANE DOE", 40, (30, 30)), ("Sales, ACME", 28, (30, 90))])
    code = code_image("BEGIN:VCARD\nFN:Jane Doe\nEND:VCARD", zxingcpp.BarcodeFormat.QRCode, scale=5)
    code = cv2.resize(code, (190, 190), interpolation=cv2.INTER_NEAREST)
    card_image = card_image.copy()
    card_image[150:340, 340:530] = code
    return card_image


def vanity_plate() -> Array:
    """A US-style plate: state name above, a registration of letters only, a slogan below."""
    plate = card(
        (520, 260),
        (235, 240, 250),
        [("CALIFORNIA", 40, (140, 10)), ("FZ RULZ", 110, (45, 62)), ("dmv.ca.gov", 32, (170, 200))],
        text_colour=(20, 30, 120),
    ).copy()
    cv2.rectangle(plate, (3, 3), (516, 256), (20, 20, 20), 5)
    return plate
