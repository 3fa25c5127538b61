"""Webhook signing secrets encrypted at rest with the server key (AES-256-GCM).

The server key is ``PIIBLUR_SECRET_KEY`` when set (any string; it is stretched with SHA-256), or a
random key generated once into ``<data dir>/secret.key`` (mode 0600). A database dump alone then
does not reveal the secrets receivers trust.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from piiblur.config import Settings

NONCE_BYTES = 12


def server_key(settings: Settings) -> bytes:
    if settings.secret_key:
        return hashlib.sha256(settings.secret_key.encode()).digest()
    path = settings.data_dir / "secret.key"
    if not path.exists():
        _write_private(path, base64.b64encode(secrets.token_bytes(32)))
    return base64.b64decode(path.read_bytes().strip())


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def encrypt(plaintext: str, key: bytes) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), b"piiblur-webhook-secret")
    return base64.b64encode(nonce + sealed).decode()


def decrypt(token: str, key: bytes) -> str:
    raw = base64.b64decode(token)
    return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], b"piiblur-webhook-secret").decode()
