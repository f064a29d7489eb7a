"""Inference backends behind :class:`textarmor.Classifier`.

A backend turns padded integer arrays (``input_ids``, ``attention_mask`` and, for BERT-style models,
``token_type_ids``) into float32 logits. ``submit`` may return before the work is done (the torch backend
queues GPU work without waiting); ``collect`` waits and returns NumPy arrays in submission order. This lets
the Classifier pad and upload the next batch while the accelerator computes the previous one.
"""
from __future__ import annotations

from pathlib import Path

from textarmor.model_dir import ONNX_FILE

BACKENDS = ("auto", "torch", "onnx")


def detect_backend(model_dir: str | Path) -> str:
    """``onnx`` for a folder written by ``textarmor export`` (an ONNX file and no safetensors), else ``torch``."""
    path = Path(model_dir)
    if path.is_dir() and (path / ONNX_FILE).exists() and not any(path.glob("*.safetensors")):
        return "onnx"
    return "torch"
