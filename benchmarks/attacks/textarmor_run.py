"""Run a textarmor recipe on a model dir and print one result row as JSON (the fields of attack_parity.json).

    python benchmarks/attacks/textarmor_run.py MODEL DATA RECIPE N [--device cuda]
"""
from __future__ import annotations

import argparse
import json
import os
import time

from textarmor import Classifier
from textarmor.attacks import attack
from textarmor.attacks.engine import DEFAULT_CONCURRENCY


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("data")
    parser.add_argument("recipe")
    parser.add_argument("n", type=int)
    parser.add_argument("--max-modify-rate", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--out", default=None, help="Also keep results.jsonl / report.html here.")
    args = parser.parse_args()

    clf = Classifier.from_pretrained(args.model_dir, device=args.device, cache_size=500_000)
    # Rows read here, not through textarmor.data, so the GPU image (no `datasets` package) runs it as is.
    with open(args.data, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    cpu_started, load_before = time.process_time(), os.getloadavg()[0]
    report = attack(clf, rows, recipe=args.recipe, n=args.n, max_modify_rate=args.max_modify_rate,
                    seed=args.seed, concurrency=args.concurrency, out_dir=args.out)
    cpu = time.process_time() - cpu_started  # CPU seconds, all threads: steadier than wall time on a busy host
    s = report.summary()
    device = str(getattr(clf.backend, "device", "cpu"))
    if device.startswith("cuda"):
        import torch

        device = torch.cuda.get_device_name()
    print(json.dumps({
        "recipe": args.recipe, "tool": "textarmor", "n": s["total"], "successful": s["successful"],
        "failed": s["failed"], "skipped": s["skipped"], "original_accuracy": s["original_accuracy"],
        "success_rate": s["attack_success_rate"], "accuracy_under_attack": s["accuracy_under_attack"],
        "perturbed_word_pct": s["avg_perturbed_word_pct"], "avg_queries": s["avg_queries"],
        "data": args.data, "wall_s": round(report.wall_seconds, 2), "cpu_s": round(cpu, 2),
        "examples_per_s": s["examples_per_second"],
        "device": device, "model_calls": report.settings["model_calls"], "concurrency": args.concurrency,
        "load_avg": [round(load_before, 1), round(os.getloadavg()[0], 1)],  # the host is shared: 1-min load
        "defense": clf.defense.name + " (stored)" if hasattr(clf, "defense") else "none",
    }))


if __name__ == "__main__":
    main()
