"""Where benchmarks leave their results: ``bench/results/NAME.json`` and ``NAME.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write(name: str, result: dict[str, Any], markdown: str) -> None:
    """Write the raw numbers and the readable table, and show the table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown, end="")
