"""Durable jobs, upload limits and video uploads, on servers of their own."""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from sqlalchemy import update

from conftest import Client, Server, astronaut, make_client, png_bytes, render_video
from piiblur.db.models import Account, Media
from test_api import upload


@pytest.fixture
def api_only(tmp_path: Path) -> Iterator[Server]:
    """A server with no worker threads (``PIIBLUR_WORKERS=0``), as an API node in a scale-out, and
    with a small upload limit so the 413 path can be exercised cheaply."""
    server = Server(tmp_path / "data", env={"PIIBLUR_WORKERS": "0", "PIIBLUR_MAX_UPLOAD_BYTES": "300000"}).start()
    yield server
    server.stop()


def test_jobs_survive_a_crash(api_only: Server) -> None:
    client = make_client(api_only)
    small = png_bytes(astronaut()[::2, ::2].copy())
    ids = [upload(client, small, f"q{i}.png", "heads").json()["media_id"] for i in range(3)]
    assert {client.http.get(f"/api/v1/media/{i}").json()["status"] for i in ids} == {"queued"}

    # A worker died mid-job: its row is left in "processing". Then the whole server is killed.
    ctx = api_only.context()
    with ctx.sessions() as session:
        session.execute(update(Media).where(Media.id == ids[0]).values(status="processing"))
        session.commit()
    ctx.close()
    api_only.kill()
    # What a killed process leaves behind: a half-received upload, a half-written result.
    leftovers = [api_only.data_dir / "tmp" / "upload-half", api_only.data_dir / "tmp" / "job-x" / "redacted.png"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"personal data" * 1000)

    restarted = Server(api_only.data_dir, env={"PIIBLUR_WORKERS": "1"}).start()
    try:
        assert not any(path.exists() for path in leftovers), "scratch files of the dead process are removed"
        client.point_to(restarted)
        for media_id in ids:
            assert client.wait(media_id)["status"] == "completed"
    finally:
        restarted.stop()


def test_quota_exceeded_when_only_known_later(api_only: Server) -> None:
    client = make_client(api_only)
    media_id = upload(client, png_bytes(astronaut()[::2, ::2].copy()), "a.png", "heads").json()["media_id"]
    api_only.stop()
    ctx = api_only.context()  # the operator lowers the quota before the job runs (a plan downgrade)
    with ctx.sessions() as session:
        session.execute(update(Account).where(Account.id == client.account_id).values(images_per_month=0))
        session.commit()
    ctx.close()
    restarted = Server(api_only.data_dir, env={"PIIBLUR_WORKERS": "1"}).start()
    try:
        client.point_to(restarted)
        body = client.wait(media_id)
        assert body["status"] == "quota_exceeded"
        assert "download_url" not in body
        assert client.http.get("/api/v1/media", params={"status": "quota_exceeded"}).json()["total"] == 1
    finally:
        restarted.stop()


def test_upload_over_the_size_limit_is_413(api_only: Server, tmp_path: Path) -> None:
    client = make_client(api_only)
    big = png_bytes(astronaut())  # ~ 500 KB, over the 300 KB limit of this server
    assert len(big) > 300_000
    response = upload(client, big, "big.png", "heads")
    assert response.status_code == 413
    assert response.json()["error"].startswith("File is larger than")
    assert not list((api_only.data_dir / "media").rglob("*.png")), "nothing kept of a refused upload"
    assert not list((api_only.data_dir / "tmp").iterdir())


def test_video_over_ten_minutes_is_422(client: Client, tmp_path: Path) -> None:
    long_clip = render_video(tmp_path / "long.mp4", 601, fps=1, size=(32, 32), audio=False).path
    response = upload(client, long_clip.read_bytes(), "long.mp4", "heads")
    assert response.status_code == 422
    assert "longer than the 10 minute limit" in response.json()["error"]


def test_video_is_redacted_with_its_audio(client: Client, tmp_path: Path) -> None:
    clip = render_video(tmp_path / "walk.mp4", 2.0).path
    response = upload(client, clip.read_bytes(), "walk.mp4", "heads")
    assert response.status_code == 201, response.text
    body = client.wait(response.json()["media_id"], timeout=120)
    assert body["status"] == "completed" and body["media_type"] == "video", body
    assert body["progress"] == 100
    # One face crosses the clip: one object, seen on several keyframes.
    assert body["detection_counts"] == {"heads": 1}, body
    assert body["keyframe_detection_counts"]["heads"] > 1, body
    detections = client.http.get(f"/api/v1/media/{body['media_id']}/detections").json()
    assert detections["counts"] == {"heads": 1}
    assert {d["track"] for d in detections["detections"]} == {detections["detections"][0]["track"]}
    download = client.http.get(f"/api/v1/media/{body['media_id']}/download")
    assert download.headers["content-type"] == "video/mp4"
    out = tmp_path / "out.mp4"
    out.write_bytes(download.content)
    with av.open(str(out)) as container:
        kinds = {s.type: s.codec_context.name for s in container.streams}
        assert kinds == {"video": "h264", "audio": "aac"}
        assert sum(1 for _ in container.decode(video=0)) == 20
    usage = client.http.get("/api/v1/usage").json()
    assert usage["video_minutes"]["used"] == 1, "a 2 s clip is billed as one whole minute"


def lying_webm(path: Path, real_seconds: float, claimed_seconds: float, fps: int = 5) -> bytes:
    """A real WebM whose Segment header claims another duration (the EBML Duration float)."""
    render_video(path, seconds=real_seconds, fps=fps, size=(64, 48), codec="libvpx-vp9", audio=False)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Duration, an 8-byte float in milliseconds (TimecodeScale 1 ms)
    assert at > 0, "the muxer wrote no duration"
    data[at + 3 : at + 11] = struct.pack(">d", claimed_seconds * 1000)
    return bytes(data)


def test_a_video_is_billed_and_limited_by_what_it_holds_not_what_it_claims(client: Client, tmp_path: Path) -> None:
    """A WebM that says 2 s but holds 70 s used to be billed one minute; its packets are measured."""
    content = lying_webm(tmp_path / "lies.webm", real_seconds=70, claimed_seconds=2)
    answer = upload(client, content, "lies.webm", "heads")
    assert answer.status_code == 201, answer.text
    assert client.http.get("/api/v1/usage").json()["video_minutes"]["used"] == 2, "70 s are two started minutes"


def test_a_chunked_upload_far_over_the_limit_is_stopped_while_it_arrives(api_only: Server) -> None:
    """A chunked body has no length to check up front: it used to be spooled whole (1.1 GB to
    $TMPDIR) before the 413. It is now counted as it arrives and refused at the limit: the 413
    comes back while the client is still sending."""
    client = make_client(api_only)
    with socket.create_connection(("127.0.0.1", api_only.port), timeout=30) as connection:
        head = (
            "POST /api/v1/media/redact HTTP/1.1\r\nHost: test\r\n"
            f"Authorization: Bearer {client.api_key}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        connection.sendall(head.encode())
        part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
        connection.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        chunk = b"\0" * 1_000_000
        sent_mb = 0
        while sent_mb < 400 and not select.select([connection], [], [], 0)[0]:
            connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent_mb += 1
        answer = connection.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert '"error":"File is larger than the limit"' in answer
    assert sent_mb < 100, f"{sent_mb} MB sent before the refusal of a body over its 1.3 MB limit"
    assert client.http.get("/api/v1/media").json()["total"] == 0
