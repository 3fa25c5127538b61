"""Schemathesis against the service's own OpenAPI document, on a served instance with a valid key:
every check (no 5xx, every status code, content type, header and body as documented, unknown
methods answered 405 with ``Allow``, requests without or with a wrong key refused)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import Server, make_client
from piiblur.config import DEFAULT_PLAN_LIMITS
from piiblur.domain import Plan

CONFIG = Path(__file__).with_name("schemathesis.toml")
UNLIMITED = {"requests_per_minute": 1_000_000, "images_per_month": 1_000_000, "video_minutes_per_month": 100_000}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own. Requests without a valid key are limited per address at the free plan's
    rate (key guessing is throttled; tested in test_api): raised here, so that the fuzzer's many
    keyless requests get the 401 they are checking for instead of that 429."""
    limits = {plan.value: limit.model_dump() for plan, limit in DEFAULT_PLAN_LIMITS.items()}
    limits[Plan.FREE.value] = UNLIMITED
    server = Server(tmp_path_factory.mktemp("schema") / "data", env={"PIIBLUR_PLAN_LIMITS": json.dumps(limits)})
    yield server.start()
    server.stop()


@pytest.mark.slow
def test_every_response_matches_the_openapi_document(fuzzed: Server, tmp_path: Path) -> None:
    client = make_client(fuzzed, Plan.PRO, **UNLIMITED)
    command = [
        *(str(Path(sys.executable).with_name("st")), "--config-file", str(CONFIG), "run"),
        f"{fuzzed.url}/openapi.json",
        *("--header", f"Authorization: Bearer {client.api_key}"),
        *("--checks", "all", "--seed", "1", "--max-examples", "30"),
        *("--report", "junit", "--report-dir", str(tmp_path)),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    summary = run.stdout[run.stdout.find("SUMMARY") :]
    assert run.returncode == 0, run.stdout[-12000:]
    document = httpx.get(f"{fuzzed.url}/openapi.json").json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert f"Tested: {operations}" in summary, summary
    assert "server error" not in run.stdout.lower(), summary
