"""Tokenisation in worker processes, so that a GPU is fed faster than one Python process can tokenise.

The Rust tokenizer releases the GIL, but turning its output into arrays does not: in threads of the
process that also launches the GPU's kernels, that work starves the launching thread (an H100 ran
roberta-base at 66.8k short texts/s end to end with 2 tokeniser threads, 38.3k with 8, against 120-132k
for the model alone). Worker processes do the whole of it and send back compact arrays.

This module imports only NumPy and ``tokenizers`` (never torch or transformers), so a spawned worker
starts in well under a second. Both paths of :class:`textarmor.Classifier` build their tokenizer with
:func:`configured_tokenizer` and encode with a :class:`SliceEncoder`, so a text gets the same ids in a
thread and in a worker.

Encoded slices are dicts of flat arrays: ``input_ids`` (int32, every row's ids concatenated),
``lengths`` (int32, tokens per row) and, for models with token types, ``token_type_ids`` (int32, like
``input_ids``). Workers send these back (a quarter of the bytes of padded int64 batches, or less);
:class:`textarmor.backends.feeder.Feeder` pools them across slices and pads each forward pass with
:func:`pad_rows`.
"""
from __future__ import annotations

import ast
import functools
import multiprocessing
import os
import sys
import weakref
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import chain
from pathlib import Path

import numpy as np

_worker_encoder = None  # the worker process's SliceEncoder, built once by _start_worker


def plan_slices(order: np.ndarray, chars: np.ndarray, max_texts: int, max_chars: int | None = None,
                ramp: int = 0) -> list[np.ndarray]:
    """Cut ``order`` (input indices, longest first; ``chars`` their lengths in that order) into consecutive
    slices of at most ``max_texts`` texts and, with ``max_chars``, at most that many characters (always at
    least one text). With ``ramp`` = r, the first r slices are 2^-r, ..., 1/2 of those limits, so the first
    batch reaches the model after a fraction of a full slice's tokenisation; later slices still overlap it."""
    ends = np.cumsum(chars)
    slices, start = [], 0
    while start < len(order):
        shrink = 1 << max(0, ramp - len(slices))
        stop = start + max(1, max_texts // shrink)
        if max_chars:
            before = ends[start - 1] if start else 0
            by_chars = int(np.searchsorted(ends, before + max(1, max_chars // shrink), side="right"))
            stop = min(max(by_chars, start + 1), stop)
        slices.append(order[start:stop])
        start = stop
    return slices


def plan_batches(lengths: Sequence[int], max_tokens: int, max_rows: int) -> list[list[int]]:
    """Group indices, longest first, so that rows x padded length stays within ``max_tokens``."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order.tolist():
        longest = max(width, lengths[i])
        if current and (longest * (len(current) + 1) > max_tokens or len(current) >= max_rows):
            batches.append(current)
            current, longest = [], lengths[i]
        current.append(i)
        width = longest
    if current:
        batches.append(current)
    return batches


def pad_rows(encoded: dict[str, np.ndarray], rows: Sequence[int], pad_id: int) -> dict[str, np.ndarray]:
    """Rows ``rows`` of a flat encoded slice as padded int64 arrays, gathered without a loop over rows."""
    lengths = encoded["lengths"].astype(np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    starts = (np.cumsum(lengths) - lengths)[rows]
    columns = np.arange(lengths[rows].max())
    mask = columns < lengths[rows][:, None]
    source = (starts[:, None] + columns)[mask]  # row-major positions of the kept ids in the flat arrays

    def fill(key: str, pad: int) -> np.ndarray:
        array = np.full(mask.shape, pad, dtype=np.int64)
        array[mask] = encoded[key][source]
        return array

    arrays = {"input_ids": fill("input_ids", pad_id), "attention_mask": mask.astype(np.int64)}
    if "token_type_ids" in encoded:
        arrays["token_type_ids"] = fill("token_type_ids", 0)
    return arrays


def take_rows(encoded: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Rows ``rows`` of a flat encoded slice, in that order, as a flat encoded slice."""
    lengths = encoded["lengths"].astype(np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    chosen = lengths[rows]
    # each kept id's position: its row's start in the source, plus its place within the row
    shift = (np.cumsum(lengths) - lengths)[rows] - (np.cumsum(chosen) - chosen)
    source = np.repeat(shift, chosen) + np.arange(int(chosen.sum()))
    taken = {key: encoded[key][source] for key in ("input_ids", "token_type_ids") if key in encoded}
    taken["lengths"] = encoded["lengths"][rows]
    return taken


def concat_encoded(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Flat encoded slices joined into one, rows in order."""
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def configured_tokenizer(tokenizer_json: str, max_length: int):
    """A Rust tokenizer from its JSON, set to truncate like ``tokenizer(..., truncation=True)``: no
    padding, truncation to ``max_length`` with the ``longest_first`` strategy for pairs."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length, strategy="longest_first")
    return tokenizer


class SliceEncoder:
    """Encodes slices of texts into the flat arrays above with a configured Rust tokenizer
    (:func:`configured_tokenizer`) and, for single texts of a BERT-family WordPiece tokenizer, its word-cache
    fast path (:mod:`textarmor.backends.fast_wordpiece`: the same ids; ``word_cache=False`` keeps to Rust)."""

    def __init__(self, tokenizer, token_types: bool, word_cache: bool = True):
        from textarmor.backends.fast_wordpiece import CachedWordPiece

        self.tokenizer, self.token_types, self.word_cache_requested = tokenizer, token_types, word_cache
        max_length = (tokenizer.truncation or {}).get("max_length")
        self._cached = CachedWordPiece.for_tokenizer(tokenizer, max_length) if word_cache and max_length else None

    @property
    def word_cache(self) -> bool:
        """Whether single texts take the word-cache path."""
        return self._cached is not None

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        if pairs is None and self._cached is not None:
            return self._cached.encode(texts, self.token_types)
        return encode_rust(self.tokenizer, texts, pairs, self.token_types)


def encode_rust(tokenizer, texts: Sequence[str], pairs: Sequence[str] | None,
                token_types: bool) -> dict[str, np.ndarray]:
    """Encode a slice with ``encode_batch_fast`` (no offsets) into flat int32 arrays (see the module doc)."""
    encodings = tokenizer.encode_batch_fast(list(texts) if pairs is None else list(zip(texts, pairs)))
    lengths = np.fromiter(map(len, encodings), dtype=np.int32, count=len(encodings))
    total = int(lengths.sum())
    encoded = {"input_ids": np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int32, count=total),
               "lengths": lengths}
    if token_types:
        encoded["token_type_ids"] = np.fromiter(chain.from_iterable(e.type_ids for e in encodings), dtype=np.int32,
                                                count=total)
    return encoded


def pack(input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]] | None) -> dict[str, np.ndarray]:
    """Lists of ids per row (a slow tokenizer's output) in the same flat form as :class:`SliceEncoder`'s."""
    lengths = np.fromiter(map(len, input_ids), dtype=np.int32, count=len(input_ids))
    total = int(lengths.sum())
    encoded = {"input_ids": np.fromiter(chain.from_iterable(input_ids), dtype=np.int32, count=total),
               "lengths": lengths}
    if token_type_ids is not None:
        encoded["token_type_ids"] = np.fromiter(chain.from_iterable(token_type_ids), dtype=np.int32, count=total)
    return encoded


def _start_worker(tokenizer_json: str, max_length: int, token_types: bool, word_cache: bool,
                  rayon_threads: int) -> None:
    global _worker_encoder
    # Each worker's Rust thread pool gets its share of the cores instead of all of them (the pool reads
    # this before its first batch); an explicit setting of the user's wins.
    os.environ.setdefault("RAYON_NUM_THREADS", str(rayon_threads))
    _worker_encoder = SliceEncoder(configured_tokenizer(tokenizer_json, max_length), token_types, word_cache)


def _encode_in_worker(texts: list[str], pairs: list[str] | None) -> dict[str, np.ndarray]:
    return _worker_encoder.encode(texts, pairs)


def _shutdown(executor: ProcessPoolExecutor) -> None:
    executor.shutdown(wait=True, cancel_futures=True)


class TokenizePool:
    """A persistent pool of ``processes`` spawned workers, each holding one configured tokenizer.

    The workers start on the first :meth:`submit` and serve every later one; :meth:`close` (also run when
    the pool is garbage-collected and at interpreter exit) stops them. Workers are spawned, never forked:
    forking a process that holds a CUDA context is unsafe. As always with ``spawn``, each worker imports
    the main module, so a script must keep its work under ``if __name__ == "__main__":``.
    """

    def __init__(self, tokenizer_json: str, max_length: int, token_types: bool, processes: int,
                 word_cache: bool = True):
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}.")
        self.max_length, self.token_types, self.processes = max_length, token_types, processes
        self.word_cache = word_cache
        self._tokenizer_json = tokenizer_json
        self._executor: ProcessPoolExecutor | None = None
        self._finalizer = None

    @property
    def started(self) -> bool:
        return self._executor is not None

    def submit(self, texts: list[str], pairs: list[str] | None = None) -> Future:
        """Encode one slice in a worker; the future's result is :meth:`SliceEncoder.encode`'s dict. A dead
        worker shows as ``concurrent.futures.process.BrokenProcessPool`` from here or from the future."""
        return self._started_executor().submit(_encode_in_worker, texts, pairs)

    def _started_executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            rayon_threads = max(1, (os.cpu_count() or 1) // self.processes)
            self._executor = ProcessPoolExecutor(
                max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self._tokenizer_json, self.max_length, self.token_types, self.word_cache, rayon_threads))
            self._finalizer = weakref.finalize(self, _shutdown, self._executor)
        return self._executor

    def close(self) -> None:
        """Stop the workers (waiting for them to exit). The next :meth:`submit` starts new ones."""
        if self._finalizer is not None:
            self._finalizer()
        self._executor = self._finalizer = None

    def __getstate__(self):
        raise TypeError("A TokenizePool holds worker processes and cannot be pickled.")


def main_module_is_importable() -> bool:
    """Whether spawned workers can import the main module without running the program a second time:
    true for a REPL, ``python -c``, ``python -m package`` and scripts whose top level has an
    ``if __name__ == "__main__":`` block; false for other scripts (and unreadable ones)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name.split(".")[-1] == "__main__":
        return True  # multiprocessing does not import a package's __main__ in its workers
    path = getattr(main, "__file__", None)
    if path is None:
        return True
    try:
        stat = os.stat(path)
    except OSError:
        return False
    # parsed once per version of the file: a call on a GPU asks every time, and parsing a 500-line script
    # took 29 ms on a 2-core CPU, time the device would sit idle before its first pass
    return _has_main_guard(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _has_main_guard(path: str, mtime_ns: int, size: int) -> bool:
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.If) and _is_main_guard(node.test) for node in tree.body)


def _is_main_guard(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))
