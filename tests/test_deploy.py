"""The Dockerfile and the compose file, checked without Docker (this machine has its client but
no daemon): they parse, they name only real commands and settings, and the image's entry command
starts the service when run as it is outside a container."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from conftest import free_port
from piiblur.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, argument) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, argument = line.strip().partition(" ")
            pairs.append((instruction.upper(), argument.strip()))
    return pairs


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, argument in dockerfile():
        if instruction == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", argument)))
    return env


def compose() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
    return services


def test_image_runs_as_a_user_with_models_baked_in() -> None:
    instructions = dict(dockerfile())
    assert instructions["FROM"].startswith("python:3.11")
    assert instructions["USER"] not in ("root", "0")
    assert json.loads(instructions["ENTRYPOINT"]) == ["piiblur"]
    assert json.loads(instructions["CMD"]) == ["serve"]
    run_lines = " ".join(argument for instruction, argument in dockerfile() if instruction == "RUN")
    assert "-c requirements.lock" in run_lines, "the image installs the pinned versions"
    assert "warm_up()" in run_lines, "models are loaded once at build time, so a missing one fails the build"


def test_the_image_entry_command_serves_outside_docker(tmp_path: Path) -> None:
    port = free_port()
    env = image_env() | {"PIIBLUR_DATA_DIR": str(tmp_path / "data"), "PIIBLUR_HOST": "127.0.0.1"}
    env |= {"PIIBLUR_PORT": str(port), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    instructions = dict(dockerfile())
    command = json.loads(instructions["ENTRYPOINT"]) + json.loads(instructions["CMD"])
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        for _ in range(600):
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
    finally:
        process.terminate()
        process.wait(20)


def test_compose_names_real_commands_and_settings() -> None:
    services = compose()
    assert {"api", "worker", "migrate", "postgres", "redis", "minio"} <= set(services)
    fields = {name.upper() for name in Settings.model_fields}
    piiblur = [name for name, service in services.items() if service.get("image") == "piiblur:latest"]
    assert set(piiblur) == {"api", "worker", "migrate"}
    for name in piiblur:
        service = services[name]
        environment = service["environment"]
        assert isinstance(environment, dict)
        unknown = [key for key in environment if key.removeprefix("PIIBLUR_") not in fields]
        assert unknown == [], f"{name} sets variables no setting reads: {unknown}"
        command = service["command"]
        assert isinstance(command, list)
        answer = subprocess.run(
            [sys.executable, "-m", "piiblur", *command, "--help"], capture_output=True, text=True, check=False
        )
        assert answer.returncode == 0, f"{name}: `piiblur {' '.join(command)}` is not a command: {answer.stderr}"


def test_deploy_guide_documents_every_setting() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    missing = [
        f"PIIBLUR_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if field.validation_alias is None and f"PIIBLUR_{name.upper()}" not in guide
    ]
    assert missing == [], f"docs/deploy.md does not describe {missing}"
    assert "PROMETHEUS_MULTIPROC_DIR" in guide
