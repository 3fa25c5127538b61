"""Loading ONNX models shipped inside the package, with explicit providers and thread counts."""

from __future__ import annotations

import os
import threading
from importlib import resources
from pathlib import Path

import onnxruntime as ort

WEIGHTS_PACKAGE = "piiblur.detect.weights"


def weights_path(filename: str) -> Path:
    """Path of a model file committed under ``detect/weights`` (see its MANIFEST.json)."""
    path = Path(str(resources.files(WEIGHTS_PACKAGE).joinpath(filename)))
    if not path.is_file():
        raise FileNotFoundError(f"model file {filename} is missing from {WEIGHTS_PACKAGE}")
    return path


def load_session(filename: str, threads: int = 0) -> ort.InferenceSession:
    """An onnxruntime session for a model of ours (see ``session_at``)."""
    return session_at(weights_path(filename), threads)


def session_at(path: Path, threads: int = 0) -> ort.InferenceSession:
    """An onnxruntime session on the CPU provider.

    Providers are always named: some onnxruntime builds list AzureExecutionProvider first.
    ``threads`` = 0 lets onnxruntime use every core. Idle worker threads sleep instead of spinning:
    a spinning pool takes the cores the video decoder and encoder need between inferences
    (measured: heads on a 720p clip went from 25 to 34 frames per second).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class LazySession:
    """A model's session, loaded on first use and then shared by every thread of the process."""

    def __init__(self, filename: str, threads: int = 0) -> None:
        self.filename, self.threads = filename, threads
        self._session: ort.InferenceSession | None = None
        self._lock = threading.Lock()

    def get(self) -> ort.InferenceSession:
        with self._lock:
            if self._session is None:
                self._session = load_session(self.filename, self.threads)
            return self._session
