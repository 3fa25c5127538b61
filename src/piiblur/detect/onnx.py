"""Loading ONNX models shipped inside the package, with explicit providers and thread counts."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from piiblur.profiling import stage

WEIGHTS_PACKAGE = "piiblur.detect.weights"
CPU = "CPUExecutionProvider"


class UnavailableProviderError(RuntimeError):
    """An execution provider was asked for that this onnxruntime build does not have."""


@dataclass(frozen=True)
class Inference:
    """How models run: onnxruntime's intra-op ``threads`` (0: every core) and its execution
    ``providers`` in order of preference. The CPU provider always comes last: it runs whatever
    operators an accelerator's provider leaves, and is the default and the tested path."""

    threads: int = 0
    providers: tuple[str, ...] = (CPU,)

    @classmethod
    def of(cls, threads: int = 0, providers: Sequence[str] = ()) -> Inference:
        """Checked at once, so a misspelt or missing provider stops a process before it takes work."""
        wanted = tuple(dict.fromkeys([*(p for p in providers if p != CPU), CPU]))
        available = ort.get_available_providers()
        missing = [p for p in wanted if p not in available]
        if missing:
            raise UnavailableProviderError(
                f"execution provider(s) {', '.join(missing)} not available in this onnxruntime build "
                f"(available: {', '.join(available)}); install the onnxruntime package that has them "
                "(onnxruntime-gpu for CUDA and TensorRT, onnxruntime-openvino for OpenVINO)"
            )
        return cls(threads, wanted)


CPU_ONLY = Inference()


def weights_path(filename: str) -> Path:
    """Path of a model file committed under ``detect/weights`` (see its MANIFEST.json)."""
    path = Path(str(resources.files(WEIGHTS_PACKAGE).joinpath(filename)))
    if not path.is_file():
        raise FileNotFoundError(f"model file {filename} is missing from {WEIGHTS_PACKAGE}")
    return path


def load_session(filename: str, inference: Inference = CPU_ONLY) -> ort.InferenceSession:
    """An onnxruntime session for a model of ours (see ``session_at``)."""
    return session_at(weights_path(filename), inference)


def session_at(path: Path, inference: Inference = CPU_ONLY) -> ort.InferenceSession:
    """An onnxruntime session on ``inference.providers``.

    Providers are always named: some onnxruntime builds list AzureExecutionProvider first.
    ``threads`` = 0 lets onnxruntime use every core. Idle worker threads sleep instead of spinning:
    a spinning pool takes the cores the video decoder and encoder need between inferences
    (measured: heads on a 720p clip went from 25 to 34 frames per second).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = inference.threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options, providers=list(inference.providers))


class LazySession:
    """A model's session, loaded on first use and then shared by every thread of the process."""

    def __init__(self, filename: str, inference: Inference = CPU_ONLY) -> None:
        self.filename, self.inference = filename, inference
        self._session: ort.InferenceSession | None = None
        self._lock = threading.Lock()

    def get(self) -> ort.InferenceSession:
        with self._lock:
            if self._session is None:
                with stage("model loading"):
                    self._session = load_session(self.filename, self.inference)
            return self._session


def softmax(logits: npt.NDArray[np.float32], axis: int) -> npt.NDArray[np.float32]:
    """Probabilities from a model's raw scores along ``axis`` (shifted by the maximum: no overflow)."""
    exp = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return np.asarray(exp / exp.sum(axis=axis, keepdims=True), dtype=np.float32)
