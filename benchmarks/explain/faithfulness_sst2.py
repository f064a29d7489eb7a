"""Faithfulness (ferret's AOPC) and cost of each explanation method on SST-2 dev sentences.

    nice -n 10 python benchmarks/explain/faithfulness_sst2.py runs/demo-sst2 --n 100
    # GPU (the lead): same command; IG runs in the model's dtype (bf16 on a GPU: larger deltas)

Each method explains the same texts alone (so its time is its own), for the predicted class; the
random baseline is the floor. Writes benchmarks/results/explain_faithfulness_sst2.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from textarmor import Classifier
from textarmor.data import builtin_path
from textarmor.explain import METHODS, explain, faithfulness

RESULTS = Path(__file__).resolve().parents[1] / "results" / "explain_faithfulness_sst2.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--n", type=int, default=100, help="SST-2 dev sentences (the first N)")
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    rows = [json.loads(line) for line in builtin_path("sst2-dev").read_text().splitlines()[:args.n]]
    texts = [r["text"] for r in rows]
    clf = Classifier.from_pretrained(args.model_dir)
    merged, seconds = None, {}
    for method in args.methods.split(","):
        start = time.perf_counter()
        result = explain(clf, texts, methods=[method], n_steps=args.n_steps, batch_size=16)
        seconds[method] = time.perf_counter() - start
        if merged is None:
            merged = result
        else:
            for full, one in zip(merged, result):
                full.word_scores[method] = one.word_scores[method]
                full.convergence_delta = one.convergence_delta if method == "ig" else full.convergence_delta
    scores = faithfulness(clf, merged)
    deltas = [abs(e.convergence_delta) for e in merged if e.convergence_delta is not None]
    report = {
        "model_dir": str(args.model_dir), "dataset": "sst2-dev", "n_texts": len(texts),
        "mean_words": float(np.mean([len(e.words) for e in merged])), "n_steps": args.n_steps,
        "device": str(clf.backend.device), "machine": platform.processor() or platform.machine(),
        "methods": {m: {**scores.summary[m], "seconds_per_text": seconds[m] / len(texts)} for m in seconds},
        "ig_mean_abs_convergence_delta": float(np.mean(deltas)) if deltas else None,
        "best_method": scores.best_method(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
