"""Shared fixtures: real servers on loopback, real databases, real photos from installed packages."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from piiblur.config import Settings
from piiblur.domain import Plan
from piiblur.services.accounts import create_account, create_api_key
from piiblur.services.context import ServiceContext, build_context

REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots-dir",
        default=None,
        help="Write the browser test's screenshots here (scripts/screenshots: docs/screenshots); default: a temp dir",
    )


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser test saves its screenshots: never the checkout, unless asked."""
    chosen = request.config.getoption("--screenshots-dir")
    folder = Path(chosen).resolve() if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """``piiblur serve`` in a subprocess, as a user runs it."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    command_prefix: list[str] = field(default_factory=list)  # e.g. prlimit, to run it under limits
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        """Start on a free port and wait until healthy. The port is picked here and bound by the
        server a moment later; should another process take it in between, start again on another."""
        for _ in range(3):
            if self._start_on(free_port()):
                return self
        raise RuntimeError("no free port could be bound")

    def _start_on(self, port: int) -> bool:
        self.port = port
        env = os.environ | {"PIIBLUR_DATA_DIR": str(self.data_dir), "PIIBLUR_WORKER_POLL_SECONDS": "0.2"} | self.env
        log_path = self.data_dir.parent / f"server-{self.port}.log"
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*self.command_prefix, sys.executable, "-m", "piiblur", "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if b"address already in use" in log_path.read_bytes():
                    return False
                raise RuntimeError(f"server exited early, see {log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become healthy")

    def log_text(self) -> str:
        return (self.data_dir.parent / f"server-{self.port}.log").read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the harshest stop, as a crash or an OOM kill would do it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def context(self) -> ServiceContext:
        """Direct access to the same database and storage, for arranging and checking state."""
        return build_context(Settings(data_dir=self.data_dir, database_url=self.env.get("PIIBLUR_DATABASE_URL")))


@dataclass
class Client:
    """An account with an API key, and an HTTP client that sends it."""

    account_id: str
    api_key: str
    http: httpx.Client

    def point_to(self, server: Server) -> None:
        """Talk to another server (the same data directory restarted on a new port)."""
        self.http.close()
        self.http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=60)

    def wait(self, media_id: str, timeout: float = 60) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body: dict[str, object] = self.http.get(f"/api/v1/media/{media_id}").json()
            if body["status"] not in ("queued", "processing"):
                return body
            time.sleep(0.2)
        raise AssertionError(f"media {media_id} still {body['status']} after {timeout}s")


def make_client(server: Server, plan: Plan = Plan.PRO, **overrides: int) -> Client:
    ctx = server.context()
    with ctx.sessions() as session:
        account = create_account(session, f"user-{os.urandom(4).hex()}@example.com", plan)
        for name, value in overrides.items():
            setattr(account, name, value)
        session.commit()
        key = create_api_key(session, account.id)
    ctx.close()
    http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key.plaintext}"}, timeout=60)
    return Client(account.id, key.plaintext, http)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("main") / "data").start()
    yield running
    running.stop()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    made = make_client(server)
    yield made
    made.http.close()


# --- photos -------------------------------------------------------------------------------------

ASTRONAUT_FACE = (170, 30, 290, 190)  # x0, y0, x1, y1 of the face in skimage's astronaut photo


def astronaut() -> np.ndarray:
    """A real photo of a person (Eileen Collins), shipped inside scikit-image."""
    return np.asarray(skdata.astronaut())


def jpeg_with_exif(pixels: np.ndarray, quality: int = 92) -> bytes:
    """A JPEG carrying the kind of EXIF a phone writes: GPS position, camera serial, owner."""
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0xA431] = "SERIAL-123456"  # BodySerialNumber
    exif[0x013B] = "Jane Doe"  # Artist
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 29.0), "E", (2.0, 17.0, 40.0)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif)
    return out.getvalue()


def png_bytes(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


# --- videos -------------------------------------------------------------------------------------


@dataclass
class RenderedClip:
    path: Path
    face_boxes: list[tuple[int, int, int, int]]  # x, y, w, h of the face in each frame
    fps: int


def render_video(
    path: Path,
    seconds: float,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    audio: bool = True,
    codec: str = "libx264",
    crossings: float = 1.0,
    rotation: int = 0,
    metadata: dict[str, str] | None = None,
    cut_at: int | None = None,
    keyframe_every: int | None = None,
) -> RenderedClip:
    """The astronaut's face sliding across a real photo background, with a sine tone.

    ``crossings`` is how many times the face crosses the frame, bouncing back and forth (more is
    faster); from frame
    ``cut_at`` on the background changes (a scene cut). Rendered with PyAV/FFmpeg, so tests need
    no video files on disk.
    """
    import av

    width, height = size
    backgrounds = [
        np.asarray(Image.fromarray(np.asarray(getattr(skdata, name)())).resize((width, height)))
        for name in ("coffee", "rocket")
    ]
    face_h = height // 2
    face = np.asarray(Image.fromarray(astronaut()[20:230, 160:310]).resize((face_h * 150 // 210, face_h)))
    frames = max(1, round(seconds * fps))
    boxes = []
    with av.open(str(path), "w") as container:
        for key, value in (metadata or {}).items():
            container.metadata[key] = value
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if keyframe_every is not None:  # as cameras write them, every second or two
            video.codec_context.gop_size = keyframe_every
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac" if codec == "libx264" else "libopus", rate=48000) if audio else None
        for index in range(frames):
            canvas = backgrounds[1 if cut_at is not None and index >= cut_at else 0].copy()
            phase = (index / max(1, frames - 1) * crossings) % 2.0
            x = int((width - face.shape[1]) * (phase if phase <= 1 else 2 - phase))  # back and forth
            y = (height - face.shape[0]) // 2
            canvas[y : y + face.shape[0], x : x + face.shape[1]] = face
            boxes.append((x, y, face.shape[1], face.shape[0]))
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            rate, samples = 48000, int(48000 * seconds)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
            step = 960
            for start in range(0, samples, step):
                chunk = tone[start : start + step]
                if len(chunk) < step:
                    chunk = np.pad(chunk, (0, step - len(chunk)))
                audio_frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                audio_frame.sample_rate = rate
                audio_frame.pts = start
                container.mux(sound.encode(audio_frame))
            container.mux(sound.encode(None))
    return RenderedClip(path, boxes, fps)
