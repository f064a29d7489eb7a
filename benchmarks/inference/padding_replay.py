"""How much of a call's forward passes is padding: a call's batching replayed on real token lengths, no model.

The texts are sliced as a GPU call slices them (``Classifier``'s GPU defaults: slices of 2,048 texts and
100,000 characters, the first three ramped; a 131,072-token, 8,192-row budget) and fed to a backend that
only records each pass's shape, always busy (as a GPU is once it has started). Compared:

- ``whole-set plan``: batches planned over every row at once (``Classifier.plan_batches``);
- ``per-slice batches, stacked``: each slice batched on its own, consecutive batches stacked up to the
  budget and padded to the widest (the feeder before rows were pooled);
- ``pooled, hold H``: :class:`textarmor.backends.feeder.Feeder` with ``HOLD_BUDGETS`` = H.

    python benchmarks/inference/padding_replay.py --tokenizer minilm-l6 [--sst2 train.jsonl]

Writes ``benchmarks/results/raw/padding_replay_sst2.json``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import SHARED_DATA, read_jsonl, write_raw  # noqa: E402


class ShapeRecorder:
    """A backend that keeps each pass's (rows, width, real tokens) and is always busy."""

    name, device, asynchronous = "shape-recorder", "cpu", True

    def __init__(self):
        self.passes: list[tuple[int, int, int]] = []

    def busy(self) -> bool:
        return True

    def submit(self, arrays: dict):
        mask = arrays["attention_mask"]
        self.passes.append((mask.shape[0], mask.shape[1], int(mask.sum())))
        return mask.shape[0]

    def collect(self, handles: list) -> list[np.ndarray]:
        return [np.zeros((n, 2), dtype=np.float32) for n in handles]


def padding(passes: list[tuple[int, int, int]]) -> dict:
    slots = sum(rows * width for rows, width, _ in passes)
    return {"passes": len(passes), "padding_fraction": round(1 - sum(t for *_, t in passes) / slots, 4)}


def stacked_per_slice(lengths_per_slice: list[np.ndarray], max_tokens: int, max_rows: int, plan) -> list:
    """Each slice batched alone, consecutive batches stacked up to the budget at the widest one's width."""
    passes, rows, width, tokens = [], 0, 0, 0
    for lengths in lengths_per_slice:
        for batch in plan(lengths.tolist()):
            b_rows, b_width, b_tokens = len(batch), int(lengths[batch].max()), int(lengths[batch].sum())
            if rows and ((rows + b_rows) * max(width, b_width) > max_tokens or rows + b_rows > max_rows):
                passes.append((rows, width, tokens))
                rows, width, tokens = 0, 0, 0
            rows, width, tokens = rows + b_rows, max(width, b_width), tokens + b_tokens
    return passes + ([(rows, width, tokens)] if rows else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", default="minilm-l6", help="a model reference or a tokenizer folder")
    parser.add_argument("--sst2", default=str(SHARED_DATA / "sst2" / "train.jsonl"))
    parser.add_argument("--holds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()

    from transformers import AutoConfig

    from textarmor import Classifier
    from textarmor.backends import feeder
    from textarmor.models import load_tokenizer, resolve_model_path

    path = resolve_model_path(args.tokenizer)
    texts = [row["text"] for row in read_jsonl(args.sst2)]
    clf = Classifier(None, load_tokenizer(path), backend=ShapeRecorder(), model_config=AutoConfig.from_pretrained(path),
                     max_tokens_per_batch=131072, max_batch_size=8192, tokenize_chunk=2048,
                     tokenize_chunk_chars=100_000, tokenize_processes=0)
    clf._slice_ramp = 3  # a GPU's ramp (the recorder is not a CUDA backend)
    slices = clf._plan_slices(texts, None)
    lengths = clf._tokenize(texts, None, np.arange(len(texts)))["lengths"]
    whole = [(len(b), int(lengths[b].max()), int(lengths[b].sum())) for b in clf.plan_batches(lengths.tolist())]
    rows = [{"schedule": "whole-set plan", **padding(whole)},
            {"schedule": "per-slice batches, stacked",
             **padding(stacked_per_slice([lengths[s] for s in slices], clf.max_tokens_per_batch, clf.max_batch_size,
                                         clf.plan_batches))}]
    default_hold = feeder.Feeder.HOLD_BUDGETS
    for hold in args.holds:
        feeder.Feeder.HOLD_BUDGETS = hold
        clf.backend = ShapeRecorder()
        clf.logits(texts)
        rows.append({"schedule": f"pooled, hold {hold}", **padding(clf.backend.passes)})
    feeder.Feeder.HOLD_BUDGETS = default_hold
    out = {"dataset": "sst2-train", "n": len(texts), "tokens": int(lengths.sum()), "tokenizer": args.tokenizer,
           "slices": len(slices), "rows": rows}
    write_raw("padding_replay_sst2.json", out)


if __name__ == "__main__":
    main()
