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
        data = _read_json_object(path, "It is written by `textarmor train`; restore it from a copy, or delete it "
                                       "to load the model without textarmor's calibration and labels.")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        labels = known.get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise ModelReferenceError(f"'{path}' has no list of label names under \"labels\". Restore the file "
                                      "from a copy, or delete it to use the labels of config.json.")
        return cls(**known)

    def save(self, model_dir: str | os.PathLike) -> Path:
        path = Path(model_dir) / CONFIG_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)  # atomic: a crash never leaves a half-written config
        return path


def _read_json_object(path: Path, fix: str) -> dict[str, Any]:
    """A JSON file that must hold an object; a damaged one is refused naming the file and ``fix``."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ModelReferenceError(f"'{path}' is damaged: not valid JSON{where}. {fix}") from None
    except OSError as exc:
        raise ModelReferenceError(f"'{path}' cannot be read ({exc.strerror or type(exc).__name__}). {fix}") from None
    if not isinstance(data, dict):
        raise ModelReferenceError(f"'{path}' is damaged: it holds a JSON {type(data).__name__}, not an object. {fix}")
    return data


RESAVE = ("Copy the model folder again, or save it anew (`textarmor train`, or save_pretrained with "
          "safe_serialization=True).")


def check_model_dir(model_dir: str | os.PathLike) -> Path:
    """The folder, if it holds safetensors weights or an ONNX export (``model.onnx``), never pickled weights
    (they can run code when loaded), and every file a model load reads is there and sound; otherwise a
    :class:`~textarmor.errors.ModelReferenceError` naming the file and the fix.

    Checked without loading the weights: config.json (a JSON object), each safetensors file's header and size
    (an interrupted copy leaves a file shorter than its header says), the tokenizer's JSON files, and
    textarmor.json (its labels must match the model's number of outputs).
    """
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelReferenceError(f"Model directory '{path}' does not exist. Pass a folder written by "
                                  "`textarmor train` (config.json, model.safetensors, tokenizer files) or "
                                  "`textarmor export` (model.onnx).")
    config_path = path / "config.json"
    if not config_path.exists():
        raise ModelReferenceError(f"'{config_path}' is missing, so '{path}' is not a complete model folder. {RESAVE}")
    config = _read_json_object(config_path, RESAVE)
    _check_weights(path)
    for name in TOKENIZER_FILES:
        if name.endswith(".json") and (path / name).exists():
            _read_json_object(path / name, RESAVE)
    extra = TextArmorConfig.load(path)
    outputs = len(config.get("id2label") or {}) or config.get("num_labels")
    if extra is not None and isinstance(outputs, int) and outputs > 1 and len(extra.labels) != outputs:
        raise ModelReferenceError(f"'{path / CONFIG_NAME}' names {len(extra.labels)} labels but the model has "
                                  f"{outputs} outputs (config.json). Restore the matching textarmor.json.")
    return path


def _check_weights(path: Path) -> None:
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        if not (path / ONNX_FILE).is_file():
            raise ModelReferenceError(f"'{path}' has no .safetensors weights nor model.onnx; textarmor serves and "
                                      "packages safetensors and ONNX exports only. Convert with "
                                      "model.save_pretrained(dir, safe_serialization=True).")
        if (path / ONNX_FILE).stat().st_size == 0:
            raise ModelReferenceError(f"'{path / ONNX_FILE}' is empty. Export it again with `textarmor export "
                                      "MODEL_DIR --onnx --out DIR`.")
        return
    from safetensors import SafetensorError, safe_open

    for file in weights:
        try:
            with safe_open(str(file), framework="numpy"):
                pass
        except (SafetensorError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelReferenceError(f"'{file}' is damaged ({reason}); an interrupted copy or download leaves it "
                                      f"shorter than its header says. {RESAVE}") from None
