"""The Python client against a real server: the README's calls, and the API's own errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import Server, astronaut, make_client, png_bytes
from piiblur.client import Client, PiiBlurError


def test_client_round_trip(server: Server, tmp_path: Path) -> None:
    account = make_client(server)
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes(astronaut()))
    with Client(server.url, account.api_key) as piiblur:
        media_id = piiblur.redact(photo, ["heads"], obfuscation="pixelation")
        done = piiblur.wait(media_id, timeout=60, poll=0.2)
        assert done["status"] == "completed" and done["obfuscation_type"] == "pixelation"
        out = piiblur.download(media_id, tmp_path / "out.png")
        assert Image.open(out).size == (512, 512)
        listed = piiblur.list(status="completed")
        assert [m["media_id"] for m in listed["data"]] == [media_id]
        assert piiblur.usage()["images"]["used"] == 1
        with pytest.raises(PiiBlurError) as gone:
            piiblur.download(media_id, tmp_path / "original.png", original=True)
        assert (gone.value.status_code, gone.value.message) == (404, "Original file has been deleted")
        with pytest.raises(PiiBlurError) as bad:
            piiblur.redact(photo, ["faces"])
        assert bad.value.status_code == 422 and "Unknown PII category 'faces'" in bad.value.message
        piiblur.delete(media_id)
        with pytest.raises(PiiBlurError) as missing:
            piiblur.get(media_id)
        assert missing.value.status_code == 404
    with Client(server.url, "pb_wrong") as stranger, pytest.raises(PiiBlurError) as denied:
        stranger.usage()
    assert (denied.value.status_code, denied.value.message) == (401, "Invalid or missing API key")
