"""Hostile clients and hostile files, against a real server: every answer is a clean 4xx JSON error
or a ``failed`` job with a useful message; never a 5xx, a dead or stuck worker, a file outside the
data folder, or a connection held for ever."""

from __future__ import annotations

import io
import select
import socket
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import Client, Server, astronaut, jpeg_with_exif, make_client, png_bytes, render_video
from test_api import png_declaring, png_of, upload
from test_jobs import lying_webm

# Short deadlines, so that slow clients are cut off within the test's patience.
SLOW_CLIENT_ENV = {
    "PIIBLUR_REQUEST_HEADER_TIMEOUT_SECONDS": "1",
    "PIIBLUR_REQUEST_BODY_IDLE_SECONDS": "1",
    "PIIBLUR_MIN_UPLOAD_BYTES_PER_SECOND": "2000",
}
PATIENCE = 30.0  # seconds a test waits for the server to act before it fails


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own, whose system temporary folder is watched: nothing may land there."""
    root = tmp_path_factory.mktemp("hostile")
    system_tmp = root / "system-tmp"
    system_tmp.mkdir()
    server = Server(root / "data", env=SLOW_CLIENT_ENV | {"TMPDIR": str(system_tmp)}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def attacker(hostile: Server) -> Iterator[Client]:
    made = make_client(hostile)
    yield made
    made.http.close()


def closed_by_server(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (fails after PATIENCE)."""
    received = b""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if select.select([connection], [], [], deadline - time.monotonic())[0]:
            chunk = connection.recv(65536)
            if not chunk:
                return received
            received += chunk
    raise AssertionError(f"the server kept the connection open for {PATIENCE}s; it sent {received[:200]!r}")


def upload_head(client: Client, length: int, boundary: str = "b") -> bytes:
    return (
        "POST /api/v1/media/redact HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {client.api_key}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


# --- slow clients -------------------------------------------------------------------------------


def test_headers_sent_a_byte_at_a_time_are_cut_off(hostile: Server) -> None:
    """Slowloris: a request's headers trickling in used to hold the connection for good."""
    with socket.create_connection(("127.0.0.1", hostile.port)) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        deadline = time.monotonic() + PATIENCE
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                connection.sendall(b"X")  # one more header byte, for as long as the server listens
                readable = select.select([connection], [], [], 0.2)[0]
                closed = bool(readable) and connection.recv(1) == b""
            except (BrokenPipeError, ConnectionResetError):
                break  # a reset is the server hanging up while our last byte was in flight
        assert time.monotonic() < deadline, "the server never closed a connection whose headers never ended"
    assert httpx.get(f"{hostile.url}/healthz").status_code == 200


def test_a_body_shorter_than_its_content_length_gets_408(hostile: Server, attacker: Client) -> None:
    """A Content-Length larger than what is sent used to wait for the rest indefinitely."""
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n' + b"\0" * 1000
    with socket.create_connection(("127.0.0.1", hostile.port)) as connection:
        connection.sendall(upload_head(attacker, 100_000) + part)
        answer = closed_by_server(connection).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 408"), answer[:300]
    assert '{"error":"Request body paused for more than 1 s; send it again"}' in answer
    assert attacker.http.get("/api/v1/media").json()["total"] == 0


def test_a_body_sent_a_byte_a_second_gets_408_while_others_are_served(hostile: Server, attacker: Client) -> None:
    """Under the minimum rate the upload is refused; meanwhile other requests are answered."""
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
    with socket.create_connection(("127.0.0.1", hostile.port)) as connection:
        connection.sendall(upload_head(attacker, 100_000) + part)
        answer = b""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            assert attacker.http.get("/api/v1/usage").status_code == 200, "another request waits on the slow one"
            if select.select([connection], [], [], 0.3)[0]:  # a byte about every 0.3 s: 3 B/s
                answer = closed_by_server(connection)
                break
            connection.sendall(b"\0")
    text = answer.decode(errors="replace")
    assert text.startswith("HTTP/1.1 408"), text[:300]
    assert "under the 2000 bytes/s minimum" in text


def test_large_uploads_are_spooled_inside_the_data_folder(hostile: Server, attacker: Client) -> None:
    """Starlette spools a form's file over 1 MB to the temporary folder: that folder is now the
    state folder's scratch. Seen while the upload is still arriving, from the server's open files."""
    assert hostile.process is not None
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
    with socket.create_connection(("127.0.0.1", hostile.port)) as connection:
        connection.sendall(upload_head(attacker, 10_000_000) + part + b"\0" * 3_000_000)
        spooled = spool_files(hostile.process.pid)
        deadline = time.monotonic() + PATIENCE
        while not spooled and time.monotonic() < deadline:
            connection.sendall(b"\0" * 10_000)  # keep the body arriving while the server spools it
            spooled = spool_files(hostile.process.pid)
    assert spooled, "no spool file was ever open"
    data_dir = str(hostile.data_dir)
    assert all(path.startswith(data_dir) for path in spooled), (spooled, data_dir)


def spool_files(pid: int) -> list[str]:
    """The server's open files that are deleted while open: temporary spools."""
    links = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            links.append(str(fd.readlink()))
        except FileNotFoundError:
            continue
    return [link for link in links if link.endswith("(deleted)")]


# --- hostile files ------------------------------------------------------------------------------


def jpeg_with_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("payload.txt", "hidden " * 100)
    return jpeg_with_exif(astronaut()) + archive.getvalue()


def other_image_format(kind: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(astronaut()).save(out, format=kind)
    return out.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A complete PNG of ``width x height`` black pixels, compressed to kilobytes."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    rows = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_of(width, height, rows)


def mjpeg_mov(path: Path, size: tuple[int, int], declared: tuple[int, int] | None = None) -> bytes:
    """A Motion-JPEG MOV; ``declared`` rewrites the size that every frame's JPEG header and the
    container's sample entry claim."""
    width, height = size
    with av.open(str(path), "w", format="mov") as out:
        stream = out.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        frame = av.VideoFrame(width, height, "yuvj420p")
        for plane in frame.planes:
            np.frombuffer(memoryview(plane), np.uint8)[:] = 128
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = bytearray(path.read_bytes())
    if declared is not None:
        at = 0
        while (at := data.find(b"\xff\xc0", at + 1)) > 0:  # each frame's start-of-frame header
            data[at + 5 : at + 9] = struct.pack(">HH", declared[1], declared[0])
        entry = data.find(b"jpeg", data.find(b"stsd")) + 4 + 24  # sample entry: width, height
        data[entry : entry + 4] = struct.pack(">HH", *declared)
    return bytes(data)


def hostile_corpus(folder: Path) -> dict[str, tuple[str, bytes, str | None]]:
    """Name: (file name, bytes, the error expected at upload, or None when the upload is valid)."""
    html = b"<!doctype html><script>alert(1)</script>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    return {
        "jpeg with a zip appended": ("polyglot.jpg", jpeg_with_zip(), None),
        "html named .jpg": ("page.jpg", html, "Unsupported file type"),
        "svg": ("vector.svg", svg, "Unsupported file type"),
        "gif": ("anim.gif", other_image_format("GIF"), "Unsupported file type"),
        "tiff": ("scan.tiff", other_image_format("TIFF"), "Unsupported file type"),
        "png declaring 100000x100000": ("bomb.png", png_declaring(100_000, 100_000), "Image is too large"),
        "30000x30000 png in kilobytes": ("bomb2.png", png_bomb(30_000, 30_000), "Image is too large"),
        "video declaring 16384x16384": (
            "huge.mov",
            mjpeg_mov(folder / "huge.mov", (64, 48), declared=(16384, 16384)),
            "Video file is corrupt or unreadable",
        ),
        "video of 8192x4352 frames": (
            "big.mov",
            mjpeg_mov(folder / "big.mov", (8192, 4352)),
            "Video frames are too large (8192x4352; at most 8192x4320)",
        ),
        "video claiming 11 minutes holding 2 s": ("short.webm", lying_webm(folder / "a.webm", 2, 660), None),
        "video claiming 2 s holding 11 minutes": (
            "long.webm",
            lying_webm(folder / "b.webm", 605, 2, fps=1),
            "Video is longer than the 10 minute limit",
        ),
        "truncated mp4": ("cut.mp4", render_video(folder / "c.mp4", 1).path.read_bytes()[:3000], "Video file"),
        "zero-length file": ("empty.jpg", b"", "Uploaded file is empty"),
    }


def test_a_corpus_of_hostile_files_gets_clean_answers(hostile: Server, attacker: Client, tmp_path: Path) -> None:
    for name, (file_name, content, expected_error) in hostile_corpus(tmp_path).items():
        answer = upload(attacker, content, file_name, "heads")
        if expected_error is not None:
            assert answer.status_code == 422, (name, answer.status_code, answer.text[:300])
            assert expected_error in answer.json()["error"], (name, answer.json())
            continue
        assert answer.status_code == 201, (name, answer.text[:300])
        body = attacker.wait(answer.json()["media_id"])
        assert body["status"] == "completed", (name, body)
        if name == "jpeg with a zip appended":
            result = attacker.http.get(f"/api/v1/media/{body['media_id']}/download").content
            assert b"PK\x03\x04" not in result and b"payload.txt" not in result, "the appended archive survived"
    assert_still_serving(hostile, attacker)


@pytest.mark.parametrize(
    ("container", "codec", "pixel_format"),
    [
        ("mp4", "mpeg4", "yuv420p"),
        ("mp4", "libx264", "yuv444p"),
        ("mp4", "libx264", "gray"),
        ("mp4", "libx264", "yuv420p10le"),
        ("mov", "mjpeg", "yuvj422p"),
        ("mov", "png", "rgb24"),
        ("mov", "prores_ks", "yuv422p10le"),
        ("webm", "libvpx-vp9", "yuva420p"),
    ],
)
def test_odd_codecs_and_pixel_formats_are_redacted(
    hostile: Server, attacker: Client, tmp_path: Path, container: str, codec: str, pixel_format: str
) -> None:
    face = np.asarray(Image.fromarray(astronaut()).resize((128, 96)))
    path = tmp_path / f"odd.{container}"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=5)
        stream.width, stream.height, stream.pix_fmt = 128, 96, pixel_format
        for index in range(6):
            frame = av.VideoFrame.from_ndarray(face, "rgb24").reformat(format=pixel_format)
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    answer = upload(attacker, path.read_bytes(), path.name, "heads")
    assert answer.status_code == 201, answer.text
    body = attacker.wait(answer.json()["media_id"])
    assert body["status"] == "completed", body
    assert body["detection_counts"] == {"heads": 1}, body


def test_hostile_file_names_never_reach_the_disk_or_a_header(hostile: Server, attacker: Client) -> None:
    png = png_bytes(astronaut())
    names = {"../../etc/passwd.png": "passwd.png", "..\\..\\boot.png": "boot.png", "n" * 3000 + ".png": "n" * 255}
    for sent, stored in names.items():
        answer = upload(attacker, png, sent, "heads")
        assert answer.status_code == 201, answer.text
        body = attacker.wait(answer.json()["media_id"])
        assert body["original_filename"] == stored, body["original_filename"][:80]
        download = attacker.http.get(f"/api/v1/media/{body['media_id']}/download")
        assert download.status_code == 200 and download.content[:4] == b"\x89PNG"
    too_long = upload(attacker, png, "n" * 5000 + ".png", "heads")
    assert too_long.status_code == 422, too_long.text
    assert too_long.json() == {"error": "A form part's header is too long (a file name takes at most 4,000 characters)"}
    assert_still_serving(hostile, attacker)


def test_hostile_forms_get_clean_answers(attacker: Client) -> None:
    png = png_bytes(astronaut())
    stored_before = attacker.http.get("/api/v1/media").json()["total"]
    many = attacker.http.post(
        "/api/v1/media/redact", files={"file": ("a.png", png)}, data={"pii_categories[]": ["heads"] * 10_000}
    )
    assert many.status_code == 422 and "Too many form fields" in many.json()["error"], many.text
    two = attacker.http.post(
        "/api/v1/media/redact",
        files=[("file", ("a.png", png)), ("file", ("b.png", png))],
        data={"pii_categories[]": "heads"},
    )
    assert two.status_code == 422 and two.json() == {"error": "Send one file per request (field 'file')"}
    assert attacker.http.get("/api/v1/media").json()["total"] == stored_before, "a refused form stored a file"


# Bytes a fuzzer starts from: a valid photo and a valid video, which it then cuts and corrupts.
SMALL_PHOTO = np.asarray(Image.fromarray(astronaut()).resize((96, 96)))
SEEDS = {"jpg": jpeg_with_exif(SMALL_PHOTO), "png": png_bytes(SMALL_PHOTO)}


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[str, bytes]:
    extension = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[extension])
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(1, len(data)))
    return f"fuzz.{extension}", bytes(data[:cut]) + draw(st.binary(max_size=64))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=corrupted(), name=st.text(max_size=300))
def test_corrupted_uploads_never_break_the_service(
    hostile: Server, attacker: Client, case: tuple[str, bytes], name: str
) -> None:
    extension, content = case
    answer = upload(attacker, content, name or extension, "heads", "license_plates")
    assert answer.status_code in (201, 422), (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"] == "application/json"
    if answer.status_code == 422:
        assert set(answer.json()) == {"error"} and answer.json()["error"]
        return
    body = attacker.wait(answer.json()["media_id"])
    assert body["status"] in ("completed", "failed"), body
    if body["status"] == "failed":
        assert body["error_message"], body


def assert_still_serving(server: Server, client: Client) -> None:
    """The worker still takes jobs, nothing was written outside the data folder, and memory stayed bounded."""
    answer = upload(client, png_bytes(astronaut()), "after.png", "heads")
    assert answer.status_code == 201, answer.text
    assert client.wait(answer.json()["media_id"])["status"] == "completed"
    system_tmp = server.data_dir.parent / "system-tmp"
    # onnxruntime writes its own ".ses" there when it starts (a time and a random id, nothing of ours).
    left = [path.name for path in system_tmp.iterdir() if path.name != ".ses"]
    assert not left, f"files were left in the system's temporary folder: {left}"
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    peak_mib = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) // 1024
    assert peak_mib < 3000, f"the server's memory peaked at {peak_mib} MiB"
