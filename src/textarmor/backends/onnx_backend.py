"""ONNX Runtime backend for fast CPU inference of exported (optionally int8-quantized) models."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from textarmor.errors import ModelReferenceError


def default_threads() -> int:
    """Physical cores: hyper-threads slow ONNX Runtime's matrix kernels down rather than up."""
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


class OnnxBackend:
    """Runs ``model.onnx`` with ONNX Runtime; ``threads`` sets intra-op parallelism (default: cores)."""

    name = "onnx"

    def __init__(self, model_path: str | os.PathLike, threads: int | None = None, providers: list[str] | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelReferenceError("The ONNX backend needs onnxruntime: pip install 'textarmor[onnx]'.") from None
        path = Path(model_path)
        if not path.exists():
            raise ModelReferenceError(f"No ONNX model at '{path}'. Create one with `textarmor export MODEL_DIR "
                                      "--onnx --out DIR`.")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own types (InvalidProtobuf, Fail, ...) for a bad file
            raise ModelReferenceError(f"'{path}' could not be loaded by ONNX Runtime ({type(exc).__name__}); the file "
                                      "is damaged or not a model. Export it again with `textarmor export MODEL_DIR "
                                      "--onnx --out DIR`.") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.device = "cpu"

    def submit(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: encoded[name] for name in self.input_names}
        return self.session.run(None, feed)[0].astype(np.float32)

    def collect(self, handles: list) -> list[np.ndarray]:
        return list(handles)

    def __call__(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        return self.submit(encoded)
