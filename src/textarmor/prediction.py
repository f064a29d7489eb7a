"""Streaming batch prediction from files or stdin to JSONL/CSV.

Inputs are read lazily and classified a chunk at a time, so memory stays constant on files of any
length, and rows are written in input order as they are produced (to ``OUT.partial``, renamed to ``OUT``
when complete, so an interrupted run never replaces an earlier result).
"""
from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from textarmor.classifier import Classifier, check_threshold
from textarmor.data import _is_missing, iter_jsonl
from textarmor.errors import DataError, OutputExistsError, ParameterError

INPUT_FORMATS = ("txt", "csv", "tsv", "jsonl")


@dataclass
class PredictSummary:
    rows: int = 0
    uncertain: int = 0
    skipped: int = 0
    output: str | None = None


def _input_format(source: str, fmt: str | None) -> str:
    if fmt:
        if fmt not in INPUT_FORMATS:
            raise ParameterError(f"--format must be one of {INPUT_FORMATS}, got {fmt!r}.")
        return fmt
    if source == "-":
        return "txt"
    suffix = Path(source).suffix.lower().lstrip(".")
    return {"json": "jsonl", "ndjson": "jsonl", "text": "txt"}.get(suffix, suffix if suffix in INPUT_FORMATS else "txt")


def iter_inputs(source: str, *, fmt: str | None = None, text_column: str = "text",
                text_pair_column: str | None = None) -> Iterator[tuple[int, Any, Any]]:
    """Yield ``(line_number, text, text_pair)`` lazily from a TXT/CSV/TSV/JSONL file or ``-`` (stdin)."""
    fmt = _input_format(source, fmt)
    if source != "-":
        path = Path(source)
        if not path.exists():
            raise DataError(f"Input file '{path}' does not exist. Pass a TXT/CSV/JSONL file, or '-' for stdin.")
        if path.stat().st_size == 0:
            raise DataError(f"Input file '{path}' is empty.")
    handle: IO[str] = sys.stdin if source == "-" else open(source, encoding="utf-8", newline="")
    try:
        yield from iter_stream_inputs(handle, fmt, name=source, text_column=text_column,
                                      text_pair_column=text_pair_column)
    finally:
        if handle is not sys.stdin:
            handle.close()


def iter_stream_inputs(handle: IO[str], fmt: str, *, name: str, text_column: str = "text",
                       text_pair_column: str | None = None) -> Iterator[tuple[int, Any, Any]]:
    """:func:`iter_inputs` over an open text stream of format ``fmt`` (``name`` is what errors call it)."""
    if fmt == "jsonl":
        for number, obj in iter_jsonl(handle, name=name):
            if text_column not in obj or (text_pair_column and text_pair_column not in obj):
                raise DataError(f"{name}, line {number}: no field '{text_column}'"
                                f"{' or ' + repr(text_pair_column) if text_pair_column else ''}; "
                                f"fields found: {sorted(obj)}. Choose it with --text-column.")
            yield number, obj[text_column], obj.get(text_pair_column) if text_pair_column else None
        return
    if fmt == "txt":
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip("\r\n"), None
        return
    reader = csv.DictReader(handle, delimiter="\t" if fmt == "tsv" else ",")
    fields = reader.fieldnames or []
    for column in filter(None, (text_column, text_pair_column)):
        if column not in fields:
            raise DataError(f"{name}: column '{column}' not found; the columns are {fields}. "
                            "Choose it with --text-column / --text-pair-column.")
    for number, row in enumerate(reader, start=2):
        yield number, row[text_column], row[text_pair_column] if text_pair_column else None


class RowWriter:
    """Writes prediction rows as JSONL or CSV (by the output's suffix) to a file or stdout."""

    def __init__(self, stream: IO[str], fmt: str, labels: list[str]):
        self.stream, self.fmt, self.labels = stream, fmt, labels
        self._csv = None

    def write(self, row: dict[str, Any]) -> None:
        if self.fmt == "jsonl":
            self.stream.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        flat = {k: v for k, v in row.items() if k not in ("scores", "top_k")}
        for name, score in (row.get("scores") or {}).items():
            flat[f"score_{name}"] = score
        for rank, item in enumerate(row.get("top_k") or [], start=1):
            flat[f"label_{rank}"], flat[f"score_{rank}"] = item["label"], item["score"]
        if self._csv is None:
            columns = ["line", "label", "score", "uncertain", "top_label"] + [k for k in flat if k not in (
                "line", "label", "score", "uncertain", "top_label")]
            self._csv = csv.DictWriter(self.stream, fieldnames=columns, extrasaction="ignore")
            self._csv.writeheader()
        self._csv.writerow(flat)


def predict_file(model: str | os.PathLike | Classifier, source: str, *, out: str | os.PathLike | None = None,
                 threshold: float | None = None, top_k: int = 1, function_to_apply: str | None = None,
                 all_scores: bool = False, abstain_label: str | None = None, fmt: str | None = None,
                 text_column: str = "text", text_pair_column: str | None = None, chunk_size: int = 2048,
                 strict: bool = False, overwrite: bool = False, stdout: IO[str] | None = None,
                 coverage: float | None = None, conformal_method: str = "lac",
                 **classifier_kwargs) -> PredictSummary:
    """Classify every text of ``source`` and write one row per text, in input order.

    A row: ``line`` (input line), ``label``, ``score``; ``uncertain`` (and ``top_label``) when a threshold
    or a conformal ``coverage`` applies; ``prediction_set`` with ``coverage``; ``scores`` (every label) with
    ``all_scores``; ``top_k`` (ranked labels) when ``top_k`` > 1.
    Empty texts are skipped and counted, or raise under ``strict``.
    """
    check_threshold(threshold)
    if top_k < 1:
        raise ParameterError(f"--top-k must be at least 1, got {top_k}.")
    out_path = Path(out) if out is not None else None
    if out_path is not None and out_path.exists() and not overwrite:
        raise OutputExistsError(f"Output file '{out_path}' already exists. Pass --overwrite, or choose another --out.")
    out_fmt = "csv" if out_path is not None and out_path.suffix.lower() in (".csv", ".tsv") else "jsonl"
    inputs = iter_inputs(source, fmt=fmt, text_column=text_column, text_pair_column=text_pair_column)
    first = next(inputs, None)  # fail on bad input before loading the model or opening the output
    clf = model if isinstance(model, Classifier) else Classifier.from_pretrained(model, **classifier_kwargs)
    summary = PredictSummary(output=str(out_path) if out_path else None)

    def usable() -> Iterator[tuple[int, str, str | None]]:
        for item in _chain_first(first, inputs):
            number, text, pair = item
            if _is_missing(text) or (text_pair_column and _is_missing(pair)):
                if strict:
                    raise DataError(f"{source}, line {number}: empty text. Remove it, or drop --strict to skip.")
                summary.skipped += 1
                continue
            yield number, str(text), None if pair is None else str(pair)

    partial = out_path.with_name(out_path.name + ".partial") if out_path else None
    stream: IO[str] = open(partial, "w", encoding="utf-8", newline="") if partial else (stdout or sys.stdout)
    writer = RowWriter(stream, out_fmt, clf.labels)
    options = RowOptions(threshold=threshold, top_k=top_k, function_to_apply=function_to_apply,
                         all_scores=all_scores, abstain_label=abstain_label, coverage=coverage,
                         conformal_method=conformal_method)
    try:
        for chunk in _chunks(usable(), chunk_size):
            pairs = [c[2] for c in chunk] if text_pair_column else None
            for row in prediction_rows(clf, [c[0] for c in chunk], [c[1] for c in chunk], pairs, options):
                writer.write(row)
                summary.rows += 1
                summary.uncertain += int(bool(row.get("uncertain")))
            stream.flush()
    finally:
        if partial:
            stream.close()
    if partial:
        partial.replace(out_path)
    return summary


@dataclass(frozen=True)
class RowOptions:
    """What a prediction row holds (the options of ``predict_file``)."""

    threshold: float | None = None
    top_k: int = 1
    function_to_apply: str | None = None
    all_scores: bool = False
    abstain_label: str | None = None
    coverage: float | None = None
    conformal_method: str = "lac"


def prediction_rows(clf: Classifier, numbers: list[int], texts: list[str], pairs: list[str] | None,
                    options: RowOptions) -> list[dict[str, Any]]:
    """The output rows for one chunk of texts: the row schema every prediction engine writes."""
    predictions = clf.predict(texts, pairs, threshold=options.threshold, function_to_apply=options.function_to_apply,
                              abstain_label=options.abstain_label, coverage=options.coverage,
                              conformal_method=options.conformal_method)
    use_threshold = options.threshold is not None or clf.config.threshold is not None or options.coverage is not None
    rows = []
    for number, prediction in zip(numbers, predictions):
        row = {"line": number, **prediction.to_dict(with_scores=options.all_scores, with_uncertain=use_threshold)}
        if options.top_k > 1:
            ranked = sorted(prediction.scores.items(), key=lambda kv: -kv[1])[:options.top_k]
            row["top_k"] = [{"label": name, "score": score} for name, score in ranked]
        rows.append(row)
    return rows


def _chain_first(first, rest):
    if first is not None:
        yield first
        yield from rest


def _chunks(items, size: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


__all__ = ["predict_file", "iter_inputs", "prediction_rows", "PredictSummary", "RowOptions"]
