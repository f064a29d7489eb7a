"""The host work a call or a training run does before any model runs, old way against new, on SST-2 train:

- reading a labelled file (``textarmor.data.load_dataset``): its columns row by row, or as whole columns;
- checking that a call's inputs are strings (``Classifier``'s ``_as_list``): a comprehension, or one pass over
  the set of their types;
- gathering each slice's texts for the tokeniser workers: list comprehensions, or one object array;
- finding a call's distinct inputs (``Classifier``'s ``_distinct``): a dict over all of them, or sorted hashes
  with only the keys that share one compared.

    PYTHONPATH=src python benchmarks/inference/input_prep.py [--repeats 5]

Writes ``benchmarks/results/raw/input_prep_cpu.json`` (median seconds of each).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import SHARED_DATA, cpu_name, write_raw  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sst2", default=str(SHARED_DATA / "sst2" / "train.jsonl"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from textarmor.classifier import _as_list, _distinct
    from textarmor.data import load_dataset, read_rows

    raw = read_rows(Path(args.sst2))
    texts = raw.to_dict()["text"]
    parts = np.array_split(np.argsort([-len(t) for t in texts], kind="stable"), 48)

    def rows_one_by_one():  # the file read, then its columns indexed row by row
        table = read_rows(Path(args.sst2))
        text, label = table["text"], table["label"]
        return [(text[i], label[i]) for i in range(table.num_rows)]

    def strings_by_comprehension():
        return [i for i, v in enumerate(texts) if not isinstance(v, str)]

    def gather_by_comprehension():
        return [[texts[i] for i in part.tolist()] for part in parts]

    def gather_by_object_array():
        array = np.asarray(texts, dtype=object)
        return [array[part].tolist() for part in parts]

    def distinct_by_dict():
        first: dict = {}
        inverse = np.fromiter((first.setdefault(k, len(first)) for k in texts), dtype=np.int64, count=len(texts))
        return list(first), inverse

    pairs = {
        "read labelled file": (rows_one_by_one, lambda: load_dataset(args.sst2)),
        "check inputs are strings": (strings_by_comprehension, lambda: _as_list(texts, "texts")),
        "gather 48 slices' texts": (gather_by_comprehension, gather_by_object_array),
        "distinct inputs": (distinct_by_dict, lambda: _distinct(texts)),
    }
    old_distinct, new_distinct = distinct_by_dict(), _distinct(texts)
    assert old_distinct[0] == new_distinct[0] and np.array_equal(old_distinct[1], new_distinct[1])
    rows = [{"step": step, "n": len(texts), "old_s": median_seconds(old, args.repeats),
             "new_s": median_seconds(new, args.repeats)} for step, (old, new) in pairs.items()]
    out = {"benchmark": "input_prep", "device": cpu_name(), "dataset": "sst2-train", "repeats": args.repeats,
           "rows": rows}
    write_raw("input_prep_cpu.json", out)


if __name__ == "__main__":
    main()
