"""Digests that say what a run read, so that resuming it with other inputs is refused rather than merged.

A run that can resume (``attack --resume``, ``train --resume``) records the identity of its model, data and
settings when it starts, and compares them when it resumes: a different model folder (other weights,
tokenizer, labels or calibration), data file (other content, even under the same name) or setting is named in
the error, with what the earlier run used.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

# Files of a model folder whose content changes the scores; anything else (metrics, reports) may change freely.
_MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spm.model", "model.onnx")
# textarmor.json fields that change scores or labels (its metrics and reports do not).
_SCORING_FIELDS = ("labels", "temperature", "max_length", "text_pair", "defense")
_CHUNK = 1 << 20


def _hash_file(digest, path: Path) -> None:
    digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)


def model_digest(model_dir: str | os.PathLike) -> str:
    """SHA-256 over a local model folder's weights, config, tokenizer files and the scoring fields of
    textarmor.json; for a reference that is not a local folder (a hub id), the reference itself."""
    path = Path(model_dir)
    if not path.is_dir():
        return f"reference:{model_dir}"
    digest = hashlib.sha256()
    files = sorted(path.glob("*.safetensors")) + [path / name for name in _MODEL_FILES if (path / name).exists()]
    for file in files:
        _hash_file(digest, file)
    extra = path / "textarmor.json"
    if extra.exists():
        try:
            record = json.loads(extra.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = {}
        scoring = {k: record.get(k) for k in _SCORING_FIELDS} if isinstance(record, dict) else {}
        digest.update(json.dumps(scoring, sort_keys=True).encode())
    return "sha256:" + digest.hexdigest()


def data_digest(source: str | os.PathLike | list | tuple) -> str:
    """SHA-256 of a data file, of every file of a saved-dataset folder, or of rows given as a list."""
    digest = hashlib.sha256()
    if isinstance(source, (list, tuple)):
        digest.update(json.dumps(list(source), sort_keys=True, default=str).encode("utf-8", "surrogatepass"))
        return "sha256:" + digest.hexdigest()
    from textarmor.data import resolve_source

    path = resolve_source(source)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        _hash_file(digest, file)
    return "sha256:" + digest.hexdigest()


def plain(value: Any) -> Any:
    """``value`` as JSON would store it, with functions and objects by name, so records compare after a reload."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__name__)}"
    return f"{type(value).__module__}.{type(value).__qualname__}"


def differences(before: dict[str, Any], now: dict[str, Any], *, ignore: tuple[str, ...] = ()) -> list[str]:
    """The keys whose values differ between a recorded run and this one (absent counts as ``None``). ``ignore``:
    keys recorded for the reader only, such as paths, whose content the digests already compare (a moved
    folder with the same files is the same model)."""
    return sorted(k for k in set(before) | set(now) if k not in ignore and before.get(k) != now.get(k))


def describe(values: dict[str, Any], keys: list[str]) -> str:
    """``key=value`` for the given keys, digests shortened, for an error message."""
    def short(value: Any) -> str:
        if isinstance(value, str) and value.startswith("sha256:"):
            return value[:19] + "..."
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {short(v)}" for k, v in value.items()) + "}"
        return repr(value)

    return ", ".join(f"{k}={short(values.get(k))}" for k in keys)


def check_resume(record_path: Path, now: dict[str, Any], *, ignore: tuple[str, ...] = (), run: str) -> None:
    """Refuse to resume ``run`` (how the error names it) when the identity recorded at ``record_path`` differs
    from ``now`` in any key but ``ignore``; a record that cannot be read is refused too. No record: nothing to
    check (a run from before records existed)."""
    from textarmor.errors import DataError, ParameterError

    if not record_path.exists():
        return
    try:
        before = json.loads(record_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DataError(f"'{record_path}' is damaged, so {run} cannot be checked before resuming; start it anew "
                        "(another --out, or without --resume).") from None
    differ = differences(before, now, ignore=ignore)
    if differ:
        raise ParameterError(f"--resume continues {run} with its model, data and settings, but {differ} differ "
                             f"(that run: {describe(before, differ)}; this one: {describe(now, differ)}). Resume "
                             "with the same ones, or start anew (another --out, or without --resume).")


def write_record(record_path: Path, record: dict[str, Any]) -> None:
    """Write a run's identity atomically: a crash never leaves a half-written record to compare against."""
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(record_path)
