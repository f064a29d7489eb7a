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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from textarmor.classifier import Classifier, check_threshold
from textarmor.data import _is_missing, iter_jsonl
from textarmor.errors import DataError, OutputExistsError, ParameterError
from textarmor.textcheck import FIX_BYTES, describe_line_problem, open_text, text_stream

INPUT_FORMATS = ("txt", "csv", "tsv", "jsonl")
# The csv module refuses fields over 131,072 characters; pandas (evaluate, train) has no such limit. This bound
# accepts any real document while an unclosed quote, which swallows the rest of the file, still fails.
MAX_FIELD_CHARS = 1 << 24


@dataclass
class PredictSummary:
    rows: int = 0
    uncertain: int = 0
    skipped: int = 0
    output: str | None = None
    #: Things the user should hear about, e.g. a ``.partial`` file an earlier run left behind.
    notes: list[str] = field(default_factory=list)


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
    stdin_bytes = getattr(sys.stdin, "buffer", None) if source == "-" else None
    if source != "-":
        handle: IO[str] = open_text(source)
    else:
        handle = text_stream(stdin_bytes) if stdin_bytes is not None else sys.stdin
    try:
        yield from iter_stream_inputs(handle, fmt, name="stdin" if source == "-" else source,
                                      text_column=text_column, text_pair_column=text_pair_column)
    finally:
        if source != "-":
            handle.close()
        elif stdin_bytes is not None:
            handle.detach()  # leave stdin open for the caller


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
    lines = _checked_lines(handle, name)
    if fmt == "txt":
        for number, line in enumerate(lines, start=1):
            yield number, line.rstrip("\r\n"), None
        return
    if csv.field_size_limit() < MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.DictReader(lines, delimiter="\t" if fmt == "tsv" else ",")
    try:
        fields = reader.fieldnames or []
        for column in filter(None, (text_column, text_pair_column)):
            if column not in fields:
                raise DataError(f"{name}: column '{column}' not found; the columns are {fields}. "
                                "Choose it with --text-column / --text-pair-column.")
        for number, row in enumerate(reader, start=2):
            yield number, row[text_column], row[text_pair_column] if text_pair_column else None
    except csv.Error as exc:
        hint = " (an unclosed quote makes the rest of the file one field)" if "field limit" in str(exc) else ""
        raise DataError(f"{name}, line {reader.line_num}: not valid {fmt.upper()}: {exc}{hint}.") from None


def _checked_lines(handle: IO[str], name: str) -> Iterator[str]:
    """The lines of a text stream, refusing the first one that breaks the text rule (invalid UTF-8, NUL)."""
    number = 0
    try:
        for number, line in enumerate(handle, start=1):
            problem = describe_line_problem(line)
            if problem is not None:
                raise DataError(f"{name}, line {number}: {problem}")
            yield line
    except UnicodeDecodeError:  # a stream opened strictly rather than through textcheck.text_stream
        raise DataError(f"{name}, after line {number}: not valid UTF-8. {FIX_BYTES}") from None


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
    check_conformal_options(coverage, conformal_method)
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
            if isinstance(text, (dict, list)) or isinstance(pair, (dict, list)):
                raise DataError(f"{source}, line {number}: the text is a JSON {type(text).__name__}, not a string. "
                                "Check --text-column.")
            if _is_missing(text) or (text_pair_column and _is_missing(pair)):
                if strict:
                    raise DataError(f"{source}, line {number}: empty text. Remove it, or drop --strict to skip.")
                summary.skipped += 1
                continue
            yield number, str(text), None if pair is None else str(pair)

    partial = out_path.with_name(out_path.name + ".partial") if out_path else None
    if partial is not None and partial.exists():
        summary.notes.append(f"replaced '{partial}', left by an earlier run of this output that did not finish")
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
    except BaseException:
        if partial:
            stream.close()
            if summary.rows == 0:  # nothing worth keeping; rows already written stay for inspection
                partial.unlink(missing_ok=True)
        raise
    if partial:
        stream.close()
        partial.replace(out_path)
    return summary


def check_conformal_options(coverage: float | None, method: str) -> None:
    """Refuse a coverage outside (0, 1) or an unknown conformal method before anything loads."""
    from textarmor.evaluation.conformal import check_conformal_method

    check_conformal_method(method)
    if coverage is not None and not 0.0 < coverage < 1.0:
        raise ParameterError(f"--coverage must be in (0, 1), e.g. 0.95; got {coverage!r}.")


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
