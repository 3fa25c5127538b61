"""The README's walk-through, pasted as a whole into bash against a real server, works as shown."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO, Server, astronaut


def walk_through_commands() -> list[str]:
    """The ``$ `` lines (and their continuation lines) of the walk-through's shell blocks."""
    section = (REPO / "README.md").read_text().split("## Walk-through")[1].split("\n## ")[0]
    section = section.split("Offline, without the server")[0]
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        continuing = False
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append(line[2:])
            elif continuing:
                commands[-1] += "\n" + line
            continuing = bool(commands) and commands[-1].endswith("\\")
    return commands


def test_the_walk_through_runs_as_written(server: Server, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the README's walk-through uses it")
    commands = walk_through_commands()
    assert len(commands) >= 12 and commands[-1].startswith("curl -s -o /dev/null -w")
    # The reader's checkout: .venv/bin/piiblur is this interpreter's piiblur, talking to `server`.
    shim = tmp_path / ".venv" / "bin" / "piiblur"
    shim.parent.mkdir(parents=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m piiblur "$@"\n')
    shim.chmod(0o755)
    Image.fromarray(astronaut()).save(tmp_path / "photo.jpg", quality=92)
    script = "set -euo pipefail\n" + "\n".join(commands).replace("http://127.0.0.1:8000", server.url) + "\n"
    env = os.environ | {"PIIBLUR_DATA_DIR": str(server.data_dir)}
    # The walk-through's email is unique per server run: this test is its only user.
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"account \S+ \(you@example.com, pro\)", lines[0]), lines[0]
    assert '"status":"queued"' in lines[1]
    assert '"status":"completed"' in done.stdout and '"detection_counts":{"heads":1}' in done.stdout
    assert "photo_redacted.jpg" in lines and (tmp_path / "photo_redacted.jpg").exists()
    assert lines[-1] == "204"
