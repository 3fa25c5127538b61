"""Throughput of a fleet on this machine: one API process, then 1 or 2 Celery workers, on the
machine's PostgreSQL and Redis and a shared local storage folder.

    .venv/bin/python bench/scale.py [--photos 40]

Measures photos per second (1280x720 street scenes, heads + license plates), video seconds per
wall second (two rendered 10 s 720p clips, heads) and one 60 s 720p clip (heads; cut into
segments of about ``PIIBLUR_VIDEO_SEGMENT_SECONDS`` = 20 s, redacted by whichever workers are
free) with 1 worker and with 2, plus each worker's resident memory. With 1 worker onnxruntime
uses both cores; with 2, one core each. Writes ``bench/results/scale.md`` and
``scale.json``; needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (says so and stops
when they are missing).
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import report  # noqa: E402
from speed import street_with_vehicles  # noqa: E402

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
REDIS_DB = 7  # a database of its own on the machine's Redis, flushed before each run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (a worker's pool)."""
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024
            pids += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total


class Fleet:
    def __init__(self, root: Path, database_url: str, workers: int, split: bool) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        threads = "0" if workers == 1 else "1"
        self.env = os.environ | {
            "PIIBLUR_DATA_DIR": str(root / "api"),
            "PIIBLUR_DATABASE_URL": database_url,
            "PIIBLUR_STORAGE_URL": (root / "media").as_uri(),
            "PIIBLUR_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "PIIBLUR_INFERENCE_THREADS": threads,
            "PIIBLUR_WORKER_POLL_SECONDS": "0.5",
            "PIIBLUR_SECRET_KEY": "bench-secret-key-0123456789",
            "PIIBLUR_VIDEO_SEGMENT_SECONDS": "20" if split else "0",
        }
        subprocess.run([sys.executable, "-m", "piiblur", "migrate"], env=self.env, check=True, capture_output=True)
        self.api = self._spawn(["serve", "--port", str(port)], "api")
        self.workers = [self._spawn(["worker", "--name", f"bench{i}"], f"worker{i}") for i in range(workers)]
        self._wait_ready()

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        command = [sys.executable, "-m", "piiblur", *args]
        return subprocess.Popen(command, env=self.env, stdout=log, stderr=log, start_new_session=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            logs = [(self.root / f"worker{i}.log").read_text(errors="replace") for i in range(len(self.workers))]
            try:
                api_up = httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                api_up = False
            if api_up and all(" ready" in text for text in logs):
                return
            time.sleep(0.5)
        raise RuntimeError("fleet did not start")

    def stop(self) -> None:
        for process in [*self.workers, self.api]:
            os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, self.api]:
            process.wait(120)


def create_key(env: dict[str, str]) -> str:
    def cli(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "piiblur", *args, "-q"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    account = cli("accounts", "create", "--email", f"bench-{uuid.uuid4().hex[:6]}@example.com", "--plan", "enterprise")
    return cli("keys", "create", "--account", account)


def run_batch(client: httpx.Client, files: list[tuple[str, bytes]], categories: list[str]) -> float:
    """Submit everything, wait until all are done; wall seconds from first upload to last result."""
    before = client.get("/api/v1/media", params={"status": "completed"}).json()["total"]
    started = time.monotonic()
    ids = []
    for name, content in files:
        answer = client.post(
            "/api/v1/media/redact", files={"file": (name, content)}, data={"pii_categories[]": categories}
        )
        answer.raise_for_status()
        ids.append(answer.json()["media_id"])
    expected = before + len(ids)
    while client.get("/api/v1/media", params={"status": "completed"}).json()["total"] < expected:
        for status in ("failed", "quota_exceeded"):
            assert client.get("/api/v1/media", params={"status": status}).json()["total"] == 0, status
        time.sleep(0.2)
    return time.monotonic() - started


def rendered_clip(folder: Path, seconds: int) -> bytes:
    from conftest import render_video

    path = folder / f"clip{seconds}.mp4"
    if not path.exists():
        # A keyframe every 2 s, as cameras and phones write them: where segments can be cut.
        render_video(path, seconds=seconds, fps=30, size=(1280, 720), crossings=seconds / 2, keyframe_every=60)
    return path.read_bytes()


def measure(workers: int, photos: int, database_url: str, root: Path, clips: Path) -> dict[str, Any]:
    """Photos, short clips and the long clip split into segments; then the long clip whole."""
    row = _run_fleet(workers, photos, database_url, root, clips, split=True)
    whole = _run_fleet(workers, 0, database_url, root, clips, split=False)
    return row | {"long_video_whole_wall_seconds": whole["long_video_wall_seconds"]}


def _run_fleet(workers: int, photos: int, database_url: str, root: Path, clips: Path, split: bool) -> dict[str, Any]:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    fleet = Fleet(root / f"w{workers}-{'split' if split else 'whole'}", database_url, workers, split)
    try:
        key = create_key(fleet.env)
        client = httpx.Client(base_url=fleet.url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
        buffer = io.BytesIO()
        Image.fromarray(street_with_vehicles()).save(buffer, format="JPEG", quality=90)
        street = buffer.getvalue()
        photo_seconds = short_seconds = 0.0
        if photos:
            photo_seconds = run_batch(
                client, [(f"s{i}.jpg", street) for i in range(photos)], ["heads", "license_plates"]
            )
            short = [(f"c{i}.mp4", rendered_clip(clips, 10)) for i in range(2)]
            short_seconds = run_batch(client, short, ["heads"])
        long_seconds = run_batch(client, [("long.mp4", rendered_clip(clips, 60))], ["heads"])
        memory = [round(rss_mib(w.pid), 1) for w in fleet.workers]
    finally:
        fleet.stop()
    return {
        "workers": workers,
        "photos_per_second": round(photos / photo_seconds, 2) if photos else None,
        "video_seconds_per_wall_second": round(20 / short_seconds, 2) if photos else None,
        "long_video_wall_seconds": round(long_seconds, 1),
        "worker_rss_mib": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=40)
    args = parser.parse_args()
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True)
        import redis

        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except Exception as error:
        print(f"bench/scale.py needs PostgreSQL and Redis on loopback: {error}", file=sys.stderr)
        sys.exit(2)
    rows = []
    with tempfile.TemporaryDirectory(prefix="piiblur-scale-") as folder:
        clips = Path(folder) / "clips"
        clips.mkdir()
        for workers in (1, 2):
            name = f"piiblur_scale_{uuid.uuid4().hex[:8]}"
            admin.execute(f'CREATE DATABASE "{name}"')
            try:
                rows.append(
                    measure(
                        workers,
                        args.photos,
                        f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
                        Path(folder),
                        clips,
                    )
                )
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(rows[-1], flush=True)
    lines = [
        "# Fleet throughput",
        "",
        f"{os.cpu_count()} CPUs, one host: 1 API process, the machine's PostgreSQL and Redis, shared storage folder.",
        f"Photos: {args.photos} street scenes 1280x720, heads + license plates. Video: rendered 720p at 30 fps, heads.",
        "",
        "| workers | photos / s | video s / wall s (2 x 10 s) | 60 s video split, wall s | 60 s video whole, wall s"
        " | RSS per worker MiB |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['workers']} | {row['photos_per_second']} | {row['video_seconds_per_wall_second']} | "
            f"{row['long_video_wall_seconds']} | {row['long_video_whole_wall_seconds']} | "
            f"{', '.join(map(str, row['worker_rss_mib']))} |"
        )
    lines += [
        "",
        "Split: the 60 s clip cut at keyframes into 3 segments of about 20 s, redacted in parallel where there",
        "are workers to take them and joined without re-encoding (PIIBLUR_VIDEO_SEGMENT_SECONDS=20). Whole: the",
        "same clip as one job (PIIBLUR_VIDEO_SEGMENT_SECONDS=0). The 10 s clips are short enough to stay whole.",
    ]
    report.write("scale", {"rows": rows, "photos": args.photos}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
