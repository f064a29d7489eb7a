"""Tokenisation speed on one core: the Hugging Face tokenizer call, the Rust tokenizer as textarmor drives it
(``encode_batch_fast``, flat arrays), and the word-cache WordPiece path (``textarmor.backends.fast_wordpiece``),
each over a call's slices of 2,048 texts, with identical ids checked.

    RAYON_NUM_THREADS=1 PYTHONPATH=src python benchmarks/inference/tokenize_speed.py [--repeats 5]

The engines alternate within each repeat (a shared host's load hits them alike); each row is the median.
"cold" builds a new cache for the pass, as a worker's first call does; "warm" reuses the last one.
Writes ``benchmarks/results/tokenize_speed.json`` (rows: device, dataset, engine, texts_per_s, chars_per_s,
tokens_per_s, seconds, n, speedup_vs_rust, same_ids).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import SHARED_DATA, cpu_name, read_jsonl, write_rows  # noqa: E402

SLICE = 2048


def in_slices(fn, texts: list[str]) -> list[dict]:
    return [fn(texts[start:start + SLICE]) for start in range(0, len(texts), SLICE)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", default=None, help="a model folder with a tokenizer.json "
                        "(default: the minilm-l6 alias, all-MiniLM-L6-v2)")
    parser.add_argument("--tokenizer-label", default=None, help="the tokenizer's name in the rows")
    parser.add_argument("--sst2", default=str(SHARED_DATA / "sst2" / "train.jsonl"))
    parser.add_argument("--imdb", default=str(SHARED_DATA / "textfooler" / "imdb.jsonl"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=512)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from textarmor.backends import tokenize_pool
    from textarmor.backends.fast_wordpiece import CachedWordPiece
    from textarmor.models import ALIASES

    path = args.tokenizer or str(ALIASES["minilm-l6"].path())
    label = args.tokenizer_label or args.tokenizer or "minilm-l6"
    wrapper = AutoTokenizer.from_pretrained(path)
    rust = tokenize_pool.configured_tokenizer(wrapper.backend_tokenizer.to_str(), args.max_length)
    device = cpu_name() + f", RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}"
    rows = []
    for dataset, file in (("sst2-train", args.sst2), ("imdb", args.imdb)):
        texts = [r["text"] for r in read_jsonl(Path(file))]
        warm = CachedWordPiece.for_tokenizer(rust, args.max_length)

        def one_pass(engine: str, warm=warm):
            """The function a pass of ``engine`` calls per slice (a cold pass gets a cache of its own)."""
            if engine == "hf-tokenizer-call":
                return lambda part: wrapper(part, truncation=True, max_length=args.max_length)
            if engine == "rust-encode-batch-fast":
                return lambda part: tokenize_pool.encode_rust(rust, part, None, True)
            cache = CachedWordPiece.for_tokenizer(rust, args.max_length) if engine == "word-cache-cold" else warm
            return lambda part: cache.encode(part, True)

        engines = ("hf-tokenizer-call", "rust-encode-batch-fast", "word-cache-cold", "word-cache-warm")
        reference = tokenize_pool.concat_encoded(in_slices(one_pass("rust-encode-batch-fast"), texts))
        times = {engine: [] for engine in engines}
        same = {}
        for _ in range(args.repeats):
            for engine in engines:
                fn = one_pass(engine)
                started = time.perf_counter()
                out = in_slices(fn, texts)
                times[engine].append(time.perf_counter() - started)
                if engine != "hf-tokenizer-call":
                    got = tokenize_pool.concat_encoded(out)
                    same[engine] = same.get(engine, True) and all(np.array_equal(got[k], reference[k])
                                                                  for k in reference)
        chars, tokens = sum(map(len, texts)), int(reference["lengths"].sum())
        rust_s = statistics.median(times["rust-encode-batch-fast"])
        for name, spent in times.items():
            seconds = statistics.median(spent)
            rows.append({"device": device, "dataset": dataset, "engine": name, "tokenizer": label,
                         "n": len(texts), "seconds": round(seconds, 4), "texts_per_s": round(len(texts) / seconds, 1),
                         "chars_per_s": round(chars / seconds, 1), "tokens_per_s": round(tokens / seconds, 1),
                         "speedup_vs_rust": round(rust_s / seconds, 2), "same_ids": same.get(name),
                         "repeats": args.repeats, "slice": SLICE})
            print(rows[-1], flush=True)
    print(write_rows("tokenize_speed", rows, key=("device", "dataset", "engine", "tokenizer")))


if __name__ == "__main__":
    main()
