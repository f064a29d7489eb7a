"""What a package ships from a model folder, and the checks it passes first.

A model folder often holds more than the model: notes, credentials (``.env``, keys), checkpoints, links to
files elsewhere. A package is meant for a public hub, so it takes an allowlist (the Hugging Face config,
the weights, the tokenizer files, ``textarmor.json`` and ``metrics.json``), never follows a link out of the
folder, and refuses a folder that would not load where it is deployed: unreadable config, labels that
disagree, truncated weights, a tokenizer that does not load.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textarmor.errors import ModelReferenceError
from textarmor.model_dir import CONFIG_NAME, MODEL_FILES, ONNX_FILE, TextArmorConfig, check_model_dir


def allowed(name: str) -> bool:
    """Whether a package carries a model-folder entry of this name (:data:`textarmor.model_dir.MODEL_FILES`)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in MODEL_FILES)


@dataclass
class ModelFolder:
    """A model folder that passed :func:`check_model_folder`: what to copy, what was left out, what it is."""

    path: Path
    files: list[Path]  # allowlisted, in the folder (links resolved inside it)
    left_out: list[str] = field(default_factory=list)  # names of entries not copied
    labels: list[str] = field(default_factory=list)
    backend: str = "torch"  # "torch" (safetensors) or "onnx" (a `textarmor export` folder)
    config: TextArmorConfig | None = None


def _link_roots(folder: Path) -> list[Path]:
    """Where a link in the folder may point: inside it, or, for a huggingface_hub cache snapshot
    (``models--org--name/snapshots/<sha>/``), into that repository's ``blobs/``."""
    roots = [folder.resolve()]
    if folder.parent.name == "snapshots" and (folder.parent.parent / "blobs").is_dir():
        roots.append((folder.parent.parent / "blobs").resolve())
    return roots


def collect_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The allowlisted regular files at the top of ``folder``, and the names of everything else."""
    roots = _link_roots(folder)
    files, left_out = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not allowed(entry.name):
            left_out.append(entry.name + ("/" if entry.is_dir() and not entry.is_symlink() else ""))
            continue
        if entry.is_symlink():
            try:
                target = entry.resolve(strict=True)
            except (OSError, RuntimeError):  # dangling, or a loop of links
                raise ModelReferenceError(f"'{entry.name}' in '{folder}' is a link that leads nowhere. Replace it "
                                          "with the file itself.") from None
            if not any(target == root or root in target.parents for root in roots):
                raise ModelReferenceError(
                    f"'{entry.name}' in '{folder}' is a link to a file outside the model folder; a package never "
                    "follows links out of it. Replace the link with the file itself (cp --remove-destination "
                    "TARGET LINK) if it belongs to the model.")
        if not entry.is_file():
            raise ModelReferenceError(f"'{entry.name}' in '{folder}' is not a regular file. A model folder holds "
                                      "files only at its top level.")
        files.append(entry)
    return files, left_out


def check_model_folder(model_dir: str | os.PathLike) -> ModelFolder:
    """Check that ``model_dir`` loads (config, labels, weights, tokenizer) without loading the model itself."""
    folder = check_model_dir(model_dir)
    files, left_out = collect_files(folder)
    names = {f.name for f in files}
    if "config.json" not in names:
        raise ModelReferenceError(f"'{folder}' has no config.json, so it is not a model folder. Pass a folder "
                                  "written by `textarmor train` or `textarmor export`.")
    labels = _labels(folder)
    config = _textarmor_config(folder, labels)
    onnx = ONNX_FILE in names and not any(name.endswith(".safetensors") for name in names)
    if onnx:
        _check_onnx(folder / ONNX_FILE, names)
    else:
        _check_safetensors(folder, sorted(f for f in files if f.name.endswith(".safetensors")), names)
    _check_tokenizer(folder)
    return ModelFolder(path=folder, files=files, left_out=left_out, labels=labels,
                       backend="onnx" if onnx else "torch", config=config)


def _labels(folder: Path) -> list[str]:
    from transformers import AutoConfig

    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
        hf_config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelReferenceError(f"'{folder / 'config.json'}' cannot be read as a Hugging Face config "
                                  f"({type(exc).__name__}: {str(exc)[:200]}). Save it again with "
                                  "model.save_pretrained(dir).") from None
    id2label = hf_config.id2label or {}
    if sorted(id2label) != list(range(len(id2label))) or not id2label:
        raise ModelReferenceError(f"config.json in '{folder}' has no id2label numbered 0..n-1, so the labels "
                                  "are unknown. A folder written by `textarmor train` has them.")
    return [id2label[i] for i in range(len(id2label))]


def _textarmor_config(folder: Path, labels: list[str]) -> TextArmorConfig | None:
    try:
        config = TextArmorConfig.load(folder)
    except (ValueError, TypeError, AttributeError) as exc:  # not JSON, or not an object of known fields
        raise ModelReferenceError(f"'{folder / CONFIG_NAME}' cannot be read ({type(exc).__name__}). Restore it "
                                  "from the training run, or remove it to ship the model without "
                                  "calibration.") from None
    if config is not None and list(config.labels) != labels:
        raise ModelReferenceError(f"The labels of {CONFIG_NAME} ({len(config.labels)}: {', '.join(config.labels)}) "
                                  f"differ from config.json's id2label ({len(labels)}: {', '.join(labels)}) in "
                                  f"'{folder}'. Fix whichever file was edited by hand.")
    return config


def _check_safetensors(folder: Path, weights: list[Path], names: set[str]) -> None:
    from safetensors import SafetensorError, safe_open

    if not weights:
        raise ModelReferenceError(f"'{folder}' has no .safetensors weights; textarmor packages safetensors and "
                                  "ONNX exports only.")
    for path in weights:
        try:
            with safe_open(str(path), framework="np") as handle:
                handle.keys()
        except (SafetensorError, OSError) as exc:
            raise ModelReferenceError(f"'{path}' cannot be read ({exc}); it is probably truncated or not a "
                                      "safetensors file. Copy it again from the training run.") from None
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (ValueError, KeyError, AttributeError):
            raise ModelReferenceError(f"'{index}' has no weight_map. Save the model again.") from None
        missing = sorted(shards - names)
        if missing:
            raise ModelReferenceError(f"'{folder}' lacks weight shards named in its index: {', '.join(missing)}.")


def _check_onnx(path: Path, names: set[str]) -> None:
    try:
        import onnx
    except ImportError:
        raise ModelReferenceError("Packaging an ONNX export needs onnx: pip install 'textarmor[onnx]'.") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001  (protobuf's decode errors have no common public base)
        raise ModelReferenceError(f"'{path}' cannot be read as an ONNX model ({type(exc).__name__}); it is "
                                  "probably truncated. Export it again with `textarmor export`.") from None
    external = {entry.value for init in model.graph.initializer for entry in init.external_data
                if entry.key == "location"}
    missing = sorted(external - names)
    if missing:
        raise ModelReferenceError(f"'{path}' keeps weights in {', '.join(missing)}, which the folder lacks.")
    if "logits" not in [output.name for output in model.graph.output]:
        raise ModelReferenceError(f"'{path}' has no 'logits' output; export it with `textarmor export`.")


def _check_tokenizer(folder: Path) -> None:
    from transformers import AutoTokenizer

    try:
        AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelReferenceError(f"The tokenizer in '{folder}' does not load ({type(exc).__name__}). Save it "
                                  "again with tokenizer.save_pretrained(dir).") from None


# ---------------------------------------------------------------- no local paths in what ships
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")


def looks_local(value: str) -> bool:
    """A path on the machine that wrote the file: absolute, home-relative, or a relative path that exists here."""
    if "://" in value or value.startswith("builtin:"):
        return False
    if value.startswith(("/", "~", "./", "../")) or _WINDOWS_PATH.match(value):
        return True
    return ("/" in value or "\\" in value) and Path(value).exists()


def strip_local_paths(tree: Any, replace=lambda value: Path(value.replace("\\", "/")).name) -> Any:
    """``tree`` (parsed JSON) with every string that is a local path replaced by ``replace(value)``
    (default: its last component, e.g. ``/home/alice/data/dev.jsonl`` -> ``dev.jsonl``)."""
    if isinstance(tree, dict):
        return {key: strip_local_paths(value, replace) for key, value in tree.items()}
    if isinstance(tree, list):
        return [strip_local_paths(value, replace) for value in tree]
    if isinstance(tree, str) and looks_local(tree):
        return replace(tree)
    return tree
