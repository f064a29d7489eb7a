"""The extra file of a textarmor model directory: ``textarmor.json``.

A model directory is a standard Hugging Face folder (config.json with ``id2label``, model.safetensors,
tokenizer files) plus this file, which holds what Hugging Face has no place for: calibration, the
decision threshold, how the model was trained and what it scored.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from textarmor.errors import ModelReferenceError

CONFIG_NAME = "textarmor.json"
ONNX_FILE = "model.onnx"  # what `textarmor export` writes, and Optimum's default file name
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spm.model", "spiece.model",
                   "tokenizer.model")
# The files of a model folder (names or fnmatch patterns, top level only): what a package ships, and what
# loading a textarmor model by hub id downloads.
MODEL_FILES = ("config.json", CONFIG_NAME, "metrics.json", "*.safetensors", "model.safetensors.index.json",
               ONNX_FILE, "model.onnx_data", "model.onnx.data") + TOKENIZER_FILES
FORMAT_VERSION = 1


@dataclass
class TextArmorConfig:
    """Everything textarmor knows about a model beyond the Hugging Face files."""

    labels: list[str]
    base_model: str | None = None
    text_pair: bool = False
    max_length: int | None = None
    temperature: float = 1.0
    threshold: float | None = None
    abstain_label: str | None = None
    conformal: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    robustness: dict[str, Any] = field(default_factory=dict)
    onnx: dict[str, Any] = field(default_factory=dict)
    #: The inference-time defence the model ships with, ``{"name": ..., "options": {...}}`` (empty: none).
    #: ``Classifier.from_pretrained`` applies it unless told otherwise, so what is measured is what is served;
    #: temperature and conformal scores then belong to the defended model.
    defense: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> TextArmorConfig | None:
        path = Path(model_dir) / CONFIG_NAME
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, model_dir: str | os.PathLike) -> Path:
        path = Path(model_dir) / CONFIG_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)  # atomic: a crash never leaves a half-written config
        return path


def check_model_dir(model_dir: str | os.PathLike) -> Path:
    """The folder, if it exists and holds safetensors weights or an ONNX export (``model.onnx``); serving and
    packaging refuse anything else (pickled weights can run code when loaded)."""
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelReferenceError(f"Model directory '{path}' does not exist. Pass a folder written by "
                                  "`textarmor train` (config.json, model.safetensors, tokenizer files) or "
                                  "`textarmor export` (model.onnx).")
    if not any(path.glob("*.safetensors")) and not (path / ONNX_FILE).is_file():
        raise ModelReferenceError(f"'{path}' has no .safetensors weights nor model.onnx; textarmor serves and "
                                  "packages safetensors and ONNX exports only. Convert with "
                                  "model.save_pretrained(dir, safe_serialization=True).")
    return path
