"""Reading labelled text into a ``datasets.Dataset`` with columns ``text`` (``text_pair``) and ``label``.

Supported sources: CSV, TSV, JSONL (or a JSON list), Parquet, a folder written by
``datasets.Dataset.save_to_disk``, and bundled sets named ``builtin:NAME`` (see :data:`BUILTIN_DATASETS`).
Labels stay as their string names here; :class:`LabelMap` turns them into ids for a model.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any

import datasets

from textarmor.errors import DataError
from textarmor.textcheck import (
    ENCODING,
    FIX_BYTES,
    describe_line_problem,
    describe_value_problem,
    first_invalid,
    open_text,
)

BUILTIN_DATASETS = {
    "sst2": "sst2_train.jsonl",
    "sst2-train": "sst2_train.jsonl",
    "sst2-dev": "sst2_dev.jsonl",
}
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSON_SUFFIXES = {".jsonl", ".json", ".ndjson"}


def builtin_path(name: str) -> Path:
    """Path of a bundled data file (``sst2`` = the training sample, ``sst2-dev`` = the 872 dev rows)."""
    if name not in BUILTIN_DATASETS:
        raise DataError(f"Unknown bundled dataset 'builtin:{name}'. Available: "
                        + ", ".join(f"builtin:{k}" for k in BUILTIN_DATASETS) + ".")
    return Path(str(resources.files("textarmor") / "data" / BUILTIN_DATASETS[name]))


def resolve_source(source: str | Path) -> Path:
    """Turn ``builtin:NAME`` or a path into an existing path, or explain what is missing."""
    text = str(source)
    if text.startswith("builtin:"):
        return builtin_path(text.split(":", 1)[1])
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"Data file '{path}' does not exist. Check the path, or use a bundled set such as "
                        "'builtin:sst2'.")
    return path


def iter_jsonl(path: Path | IO[str], name: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a file (or an open text stream, which
    errors call ``name``), naming the line of any invalid JSON."""
    if not isinstance(path, (str, Path)):
        yield from _iter_json_lines(path, name or "input")
        return
    with open_text(path) as f:
        yield from _iter_json_lines(f, name or str(path))


def _iter_json_lines(lines: Iterable[str], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    try:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            problem = describe_line_problem(line)
            if problem is not None:
                raise DataError(f"{name}, line {number}: {problem}")
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{name}, line {number}: not valid JSON ({exc.msg} at column {exc.colno}). "
                                "Each line must hold one JSON object.") from None
            except RecursionError:
                raise DataError(f"{name}, line {number}: JSON nested too deeply to read. "
                                "Each line must hold one flat JSON object.") from None
            if not isinstance(obj, dict):
                raise DataError(f"{name}, line {number}: expected a JSON object, got {type(obj).__name__}.")
            check_values(obj, f"{name}, line {number}")
            yield number, obj
    except UnicodeDecodeError:  # a stream opened strictly rather than through textcheck.text_stream
        raise DataError(f"{name}, after line {number}: not valid UTF-8. {FIX_BYTES}") from None


def check_values(obj: Any, where: str) -> None:
    """Refuse a JSON value holding a string (or key) that breaks the text rule of :mod:`textarmor.textcheck`."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            problem = describe_value_problem(value)
            if problem is not None:
                raise DataError(f"{where}: {problem}")
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _read_json_list(path: Path) -> list:
    """A file holding one JSON list (``.json`` starting with ``[``), refused with the line of any bad byte."""
    raw = path.read_bytes()
    try:
        text = raw.decode(ENCODING)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}, line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02X}). {FIX_BYTES}") from None
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}).") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to read; a .json file holds a list of flat objects.") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataError(f"{path}: a .json file must hold a list of objects (or be JSON lines).")
    for i, row in enumerate(rows, start=1):
        check_values(row, f"{path}, object {i}")
    return rows


def _first_bad_line(path: Path) -> tuple[int, str]:
    """The line number and problem of the first line of ``path`` that breaks the text rule."""
    with open_text(path) as f:
        for number, line in enumerate(f, start=1):
            problem = describe_line_problem(line)
            if problem is not None:
                return number, problem
    return 0, f"not valid UTF-8. {FIX_BYTES}"


def read_rows(path: Path) -> datasets.Dataset:
    """Read a file or saved-dataset folder into a Dataset, unchanged."""
    if path.is_dir():
        try:
            loaded = datasets.load_from_disk(str(path))
        except FileNotFoundError:
            raise DataError(f"'{path}' is a folder but not one written by datasets' save_to_disk. "
                            "Pass a CSV/TSV/JSONL/Parquet file or a saved Dataset folder.") from None
        if isinstance(loaded, datasets.DatasetDict):
            raise DataError(f"'{path}' holds a DatasetDict with splits {list(loaded)}; "
                            f"pass one split's folder, e.g. '{path / next(iter(loaded))}'.")
        return loaded
    if path.stat().st_size == 0:
        raise DataError(f"Data file '{path}' is empty. It needs a header (CSV/TSV) or one JSON object per line.")
    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES:
        if suffix == ".json" and _starts_with(path, b"["):
            rows = _read_json_list(path)
        else:
            rows = [obj for _, obj in iter_jsonl(path)]
        if not rows:
            raise DataError(f"Data file '{path}' has no JSON lines.")
        return _from_rows(rows, path)
    if suffix in TABLE_SUFFIXES:
        import pandas as pd

        try:
            frame = pd.read_csv(path, sep=TABLE_SUFFIXES[suffix], keep_default_na=True, encoding=ENCODING)
        except pd.errors.EmptyDataError:
            raise DataError(f"Data file '{path}' is empty. It needs a header row naming the columns.") from None
        except pd.errors.ParserError as exc:
            raise DataError(f"Data file '{path}' is not valid {suffix[1:].upper()}: {exc}".strip()) from None
        except UnicodeDecodeError:
            number, problem = _first_bad_line(path)
            raise DataError(f"{path}, line {number}: {problem}") from None
        return datasets.Dataset.from_pandas(frame, preserve_index=False)
    if suffix == ".parquet":
        return datasets.Dataset.from_parquet(str(path))
    raise DataError(f"Cannot read '{path}': unknown extension '{suffix}'. "
                    "Use .csv, .tsv, .jsonl, .json, .parquet or a saved datasets folder.")


def _starts_with(path: Path, prefix: bytes) -> bool:
    with path.open("rb") as f:
        head = f.read(4096).removeprefix(b"\xef\xbb\xbf")
    return head.lstrip().startswith(prefix)


def _from_rows(rows: list[dict[str, Any]], path: Path) -> datasets.Dataset:
    try:
        return datasets.Dataset.from_list(rows)
    except (TypeError, ValueError) as exc:  # pyarrow: a field holds a number in one row, a list in the next
        raise DataError(f"{path}: the rows' fields do not have one type per column ({type(exc).__name__}). "
                        "Give every row the same fields with the same kinds of values.") from None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def _label_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


@dataclass
class LoadReport:
    """What :func:`load_dataset` dropped, so callers can tell the user."""

    rows_read: int
    rows_skipped: int


def load_dataset(
    source: str | Path,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    text_pair_column: str | None = None,
    strict: bool = False,
) -> tuple[datasets.Dataset, LoadReport]:
    """Load labelled (or, with ``label_column=None``, unlabelled) text.

    Returns the dataset with columns ``text``, optional ``text_pair`` and ``label`` (string names),
    and a :class:`LoadReport`. Rows with an empty or missing text are skipped and counted, or raise
    under ``strict=True``.
    """
    for option, column in (("--text-column", text_column), ("--label-column", label_column),
                           ("--text-pair-column", text_pair_column)):
        if column is not None and not str(column).strip() or option == "--text-column" and column is None:
            raise DataError(f"{option} is empty; pass the name of a column of the data.")
    path = resolve_source(source)
    raw = read_rows(path)
    needed = [c for c in (text_column, text_pair_column, label_column) if c]
    missing = [c for c in needed if c not in raw.column_names]
    if missing:
        raise DataError(f"{path}: column(s) {missing} not found; the columns are {raw.column_names}. "
                        "Choose them with --text-column / --label-column / --text-pair-column.")
    # Whole columns as Python lists in one step: indexing a dataset's column row by row costs a table
    # lookup per row (SST-2 train, 67k rows: 4.6 s against 0.25 s; benchmarks/inference/input_prep.py).
    table = raw.select_columns(list(dict.fromkeys(needed))).to_dict()
    columns = {"text": table[text_column]}
    if text_pair_column:
        columns["text_pair"] = table[text_pair_column]
    if label_column:
        columns["label"] = table[label_column]
    keep: list[int] = []
    bad_rows: list[int] = []
    for i in range(raw.num_rows):
        fields = [columns["text"][i]] + ([columns["text_pair"][i]] if text_pair_column else [])
        if any(_is_missing(v) for v in fields) or (label_column and _is_missing(columns["label"][i])):
            bad_rows.append(i + 1)
        else:
            keep.append(i)
    if bad_rows and strict:
        raise DataError(f"{path}: {len(bad_rows)} row(s) have an empty text or label (first at row "
                        f"{bad_rows[0]}). Fix them, or drop --strict to skip such rows.")
    if not keep:
        raise DataError(f"{path}: no usable rows (all {raw.num_rows} have an empty text or label).")
    out = {"text": [str(columns["text"][i]) for i in keep]}
    if text_pair_column:
        out["text_pair"] = [str(columns["text_pair"][i]) for i in keep]
    if label_column:
        out["label"] = [_label_name(columns["label"][i]) for i in keep]
    names = {"text": text_column, "text_pair": text_pair_column, "label": label_column}
    for column, values in out.items():
        found = first_invalid(values)
        if found is not None:
            raise DataError(f"{path}, row {keep[found[0]] + 1}, column '{names[column]}': "
                            f"{describe_value_problem(values[found[0]])}")
    return datasets.Dataset.from_dict(out), LoadReport(rows_read=raw.num_rows, rows_skipped=len(bad_rows))


class LabelMap:
    """A fixed mapping between label names and class ids.

    Integer-like names sort numerically ("2" before "10"), others alphabetically, so the same data
    always yields the same ids.
    """

    def __init__(self, names: Sequence[str]):
        if len(set(names)) != len(names):
            raise DataError(f"Label names must be unique, got {list(names)}.")
        self.names = list(names)
        self._ids = {name: i for i, name in enumerate(self.names)}

    @classmethod
    def from_labels(cls, labels: Iterable[str], *, source: str = "the training data") -> LabelMap:
        found = set(labels)
        if len(found) < 2:
            raise DataError(f"The label column of {source} has {len(found)} class(es) {sorted(found)}; "
                            "a classifier needs at least two. Check --label-column.")
        numeric = all(name.lstrip("-").isdigit() for name in found)
        return cls(sorted(found, key=int) if numeric else sorted(found))

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, labels: Iterable[str], *, source: str = "the data") -> list[int]:
        labels = list(labels)
        unseen = sorted(set(labels) - set(self._ids))
        if unseen:
            raise DataError(f"{source} has label(s) {unseen} that the model was not trained on; "
                            f"its labels are {self.names}.")
        return [self._ids[label] for label in labels]

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return dict(self._ids)
