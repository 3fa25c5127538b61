"""Vocabulary shared by every layer: the values the public contract names.

These enums are the only thing ``detect/`` and ``redact/`` share with the HTTP and database layers,
so they live at the centre of the package and import nothing from it.
"""

from __future__ import annotations

from enum import StrEnum


class PiiCategory(StrEnum):
    """The 13 kinds of personal information the contract lets a user ask for."""

    HEADS = "heads"
    LICENSE_PLATES = "license_plates"
    SCREENS = "screens"
    WRITING = "writing"
    STREET_SIGNS = "street_signs"
    ID_CARDS = "id_cards"
    PASSPORTS = "passports"
    CREDIT_CARDS = "credit_cards"
    NAME_BADGES = "name_badges"
    QR_CODES = "qr_codes"
    BARCODES = "barcodes"
    DOCUMENTS = "documents"
    TATTOOS = "tattoos"


class ObfuscationType(StrEnum):
    BLUR = "blur"
    PIXELATION = "pixelation"


class MediaType(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


class MediaStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    QUOTA_EXCEEDED = "quota_exceeded"
    # Added to the contract's statuses: detected, held for a person to review (review mode).
    AWAITING_REVIEW = "awaiting_review"


class MediaMode(StrEnum):
    """What a media item is for: a redacted file (the contract's ``/media/redact``), or only the
    detections (``/media/detect``: boxes for audits and dataset curation, no file rendered)."""

    REDACT = "redact"
    DETECT = "detect"


class Plan(StrEnum):
    FREE = "free"
    STARTER = "starter"
    PRO = "pro"
    SCALE = "scale"
    ENTERPRISE = "enterprise"


# There are 13 categories; repeats are accepted (and dropped) up to this many entries in all.
MAX_CATEGORY_ENTRIES = 100


SHOWN_VALUE_CHARS = 64  # of a bad value, echoed in the error: enough to recognise it, not a megabyte


def parse_categories(raw: list[str]) -> list[PiiCategory]:
    """Turn user input into categories, keeping order and dropping repeats.

    Accepts repeated values and comma-separated lists (``heads,license_plates``) alike, because
    both shapes are what shell users and HTML forms naturally send. Raises ``ValueError`` naming the
    first unknown value, or the limit when there are more than ``MAX_CATEGORY_ENTRIES`` entries.
    """
    names = [part.strip() for item in raw for part in item.split(",") if part.strip()]
    if len(names) > MAX_CATEGORY_ENTRIES:
        raise ValueError(
            f"pii_categories has {len(names)} entries; at most {MAX_CATEGORY_ENTRIES} are accepted "
            f"({len(PiiCategory)} distinct categories exist)"
        )
    categories: list[PiiCategory] = []
    for name in names:
        try:
            category = PiiCategory(name)
        except ValueError:
            allowed = ", ".join(c.value for c in PiiCategory)
            shown = (
                name if len(name) <= SHOWN_VALUE_CHARS else f"{name[:SHOWN_VALUE_CHARS]}... ({len(name)} characters)"
            )
            raise ValueError(f"Unknown PII category '{shown}'. Allowed values: {allowed}") from None
        if category not in categories:
            categories.append(category)
    return categories
