"""The HTTP API under load, against ``piiblur serve`` on loopback, as clients see it.

    .venv/bin/python bench/api.py [--uploads-per-client 4] [--reads-per-client 25]

Measures, with the in-process worker busy on the uploads all along:
- ``POST /api/v1/media/redact`` of a 1 MB photo and ``GET /api/v1/media/{id}`` at 1, 8 and 32
  concurrent clients: requests per second and p50/p95/p99 latency;
- the latency of 8 clients reading while one more client uploads at a byte a second (a slow
  client must not stall the others), next to the same 8 clients without it;
- the server's peak resident memory while a 1 GB body is uploaded (streamed to disk, never
  held whole; a real 1 s MP4 padded with zeros to 1 GB: it plays, and is accepted).

The load generator runs on the same 2-core machine as the server, in one asyncio thread.
Writes ``bench/results/api.md`` and ``api.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import report  # noqa: E402
from conftest import astronaut, render_video  # noqa: E402
from piiblur.config import DEFAULT_PLAN_LIMITS  # noqa: E402
from scale import create_key, free_port, rss_mib  # noqa: E402

CONCURRENCY = (1, 8, 32)
GIGABYTE = 1_000_000_000


def photo_of_about_a_megabyte() -> bytes:
    """The astronaut at 1600x1600 with a little grain: a 1 MB JPEG that takes real work."""
    big = np.asarray(Image.fromarray(astronaut()).resize((1600, 1600))).astype(np.int16)
    grain = np.random.default_rng(0).integers(-15, 16, big.shape, dtype=np.int16)
    out = io.BytesIO()
    Image.fromarray(np.clip(big + grain, 0, 255).astype(np.uint8)).save(out, format="JPEG", quality=93)
    return out.getvalue()


class Served:
    """``piiblur serve`` on a state folder of its own, with no rate limit in the way."""

    def __init__(self, root: Path) -> None:
        limits = {plan.value: limit.model_dump() for plan, limit in DEFAULT_PLAN_LIMITS.items()}
        limits["enterprise"] = {
            "requests_per_minute": 10**7,
            "images_per_month": 10**7,
            "video_minutes_per_month": 10**6,
        }
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = os.environ | {"PIIBLUR_DATA_DIR": str(root / "data"), "PIIBLUR_PLAN_LIMITS": json.dumps(limits)}
        log = (root / "server.log").open("ab")
        command = [sys.executable, "-m", "piiblur", "serve", "--port", str(port)]
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        self.key = create_key(self.env)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def percentiles(latencies: list[float]) -> dict[str, float]:
    values = np.asarray(latencies) * 1000
    return {f"p{q}_ms": round(float(np.percentile(values, q)), 1) for q in (50, 95, 99)}


async def run_clients(
    concurrency: int, per_client: int, request: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]], served: Served
) -> dict[str, Any]:
    """``concurrency`` clients, each sending ``per_client`` requests one after another."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one_client() -> None:
        headers = {"Authorization": f"Bearer {served.key}"}
        async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=300) as http:
            for _ in range(per_client):
                started = time.perf_counter()
                answer = await request(http)
                latencies.append(time.perf_counter() - started)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return {
        "clients": concurrency,
        "requests": len(latencies),
        "per_second": round(len(latencies) / wall, 2),
        **percentiles(latencies),
        "statuses": statuses,
    }


async def uploads_and_reads(served: Served, uploads_per_client: int, reads_per_client: int) -> dict[str, Any]:
    photo = photo_of_about_a_megabyte()
    media_ids: list[str] = []

    async def upload(http: httpx.AsyncClient) -> httpx.Response:
        answer = await http.post(
            "/api/v1/media/redact", files={"file": ("photo.jpg", photo)}, data={"pii_categories[]": "heads"}
        )
        if answer.status_code == 201:
            media_ids.append(answer.json()["media_id"])
        return answer

    async def read(http: httpx.AsyncClient) -> httpx.Response:
        return await http.get(f"/api/v1/media/{media_ids[len(media_ids) // 2]}")

    posts = [await run_clients(c, uploads_per_client, upload, served) for c in CONCURRENCY]
    gets = [await run_clients(c, reads_per_client, read, served) for c in CONCURRENCY]
    return {"photo_bytes": len(photo), "post_redact": posts, "get_media": gets, "media_ids": media_ids}


def trickle_upload(served: Served, stop: threading.Event) -> dict[str, Any]:
    """One upload sending its body a byte a second until ``stop`` (or until the server ends it)."""
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="slow.jpg"\r\n\r\n'
    head = (
        "POST /api/v1/media/redact HTTP/1.1\r\nHost: bench\r\n"
        f"Authorization: Bearer {served.key}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n"
    ).encode()
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", int(served.url.rsplit(":", 1)[1]))) as connection:
        connection.sendall(head + part)
        connection.settimeout(1.0)
        while not stop.is_set():
            try:
                answer = connection.recv(4096)
                break  # the server answered (408) before the bench stopped
            except TimeoutError:
                connection.sendall(b"\0")
                sent += 1
    return {"bytes_sent": sent, "answer": answer.split(b"\r\n", 1)[0].decode(errors="replace")}


async def reads_beside_a_slow_upload(served: Served, media_id: str, reads_per_client: int) -> dict[str, Any]:
    async def read(http: httpx.AsyncClient) -> httpx.Response:
        return await http.get(f"/api/v1/media/{media_id}")

    alone = await run_clients(8, reads_per_client, read, served)
    stop = threading.Event()
    outcome: dict[str, Any] = {}
    slow = threading.Thread(target=lambda: outcome.update(trickle_upload(served, stop)))
    slow.start()
    await asyncio.sleep(3)  # the slow upload is under way (its headers and first bytes are in)
    beside = await run_clients(8, reads_per_client, read, served)
    stop.set()
    slow.join()
    return {"without_slow_client": alone, "beside_slow_client": beside, "slow_client": outcome}


async def one_gigabyte(served: Served, mp4_head: bytes) -> dict[str, Any]:
    """Peak server memory while a 1 GB body streams in, sampled every 50 ms."""
    baseline = rss_mib(served.process.pid)
    peak = baseline
    sampling = True

    def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, rss_mib(served.process.pid))
            time.sleep(0.05)

    async def body() -> AsyncIterator[bytes]:
        yield mp4_head
        chunk = b"\0" * (1 << 20)
        left = GIGABYTE - len(mp4_head)
        while left > 0:
            yield chunk[: min(left, len(chunk))]
            left -= len(chunk)

    boundary = "benchboundary"
    opening = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="pii_categories[]"\r\n\r\nheads\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
    ).encode()
    closing = f"\r\n--{boundary}--\r\n".encode()

    async def form() -> AsyncIterator[bytes]:
        yield opening
        async for piece in body():
            yield piece
        yield closing

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {served.key}", "Content-Type": f"multipart/form-data; boundary={boundary}"}
    headers["Content-Length"] = str(len(opening) + GIGABYTE + len(closing))
    async with httpx.AsyncClient(base_url=served.url, timeout=900) as http:
        answer = await http.post("/api/v1/media/redact", content=form(), headers=headers)
    seconds = time.perf_counter() - started
    sampling = False
    sampler.join()
    return {
        "body_bytes": GIGABYTE,
        "seconds": round(seconds, 1),
        "status": answer.status_code,
        "answer": answer.json(),
        "rss_before_mib": round(baseline),
        "rss_peak_mib": round(peak),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# API under load (bench/api.py)",
        "",
        f"`piiblur serve` on loopback, one in-process worker busy on the uploads throughout; the load "
        f"generator (asyncio, httpx) on the same {os.cpu_count()}-core machine. Photo: "
        f"{result['photo_bytes'] / 1e6:.2f} MB JPEG, 1600x1600, heads.",
        "",
        "| request | clients | requests | per second | p50 ms | p95 ms | p99 ms | statuses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in (("POST /media/redact", result["post_redact"]), ("GET /media/{id}", result["get_media"])):
        for row in rows:
            lines.append(
                f"| {name} | {row['clients']} | {row['requests']} | {row['per_second']} | {row['p50_ms']} | "
                f"{row['p95_ms']} | {row['p99_ms']} | {row['statuses']} |"
            )
    slow = result["slow_client"]
    lines += [
        "",
        "## One client uploading a byte a second",
        "",
        "| 8 clients reading GET /media/{id} | per second | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for label, key in (("alone", "without_slow_client"), ("beside the slow upload", "beside_slow_client")):
        row = slow[key]
        lines.append(f"| {label} | {row['per_second']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} |")
    lines += [
        "",
        f"The slow client sent {slow['slow_client']['bytes_sent']} bytes; answer: "
        f"`{slow['slow_client']['answer'] or '(none yet: stopped by the bench)'}`.",
        "",
        "## A 1 GB upload",
        "",
    ]
    big = result["gigabyte"]
    growth = big["rss_peak_mib"] - big["rss_before_mib"]
    lines += [
        f"{big['body_bytes'] / 1e9:.0f} GB streamed in {big['seconds']} s; server resident memory "
        f"{big['rss_before_mib']} MiB before, peak {big['rss_peak_mib']} MiB during (+{growth} MiB); "
        f"answer {big['status']} `{json.dumps(big['answer'])}` "
        "(a real 1 s MP4 padded with zeros: it plays, so it is accepted and queued).",
        "",
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    mp4_head = render_video(root / "head.mp4", seconds=1, audio=False).path.read_bytes()
    served = Served(root)
    try:
        result = await uploads_and_reads(served, args.uploads_per_client, args.reads_per_client)
        media_id = result.pop("media_ids")[0]
        result["slow_client"] = await reads_beside_a_slow_upload(served, media_id, args.reads_per_client)
        result["gigabyte"] = await one_gigabyte(served, mp4_head)
    finally:
        served.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads-per-client", type=int, default=4)
    parser.add_argument("--reads-per-client", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="piiblur-bench-api-") as folder:
        result = asyncio.run(main_async(args, Path(folder)))
    report.write("api", result, markdown(result))


if __name__ == "__main__":
    main()
