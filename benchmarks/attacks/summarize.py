"""Merge result rows (JSON lines) into attack_parity.json and print the markdown table.

    python benchmarks/attacks/summarize.py ROWS.jsonl benchmarks/results/attack_parity.json
    python benchmarks/attacks/summarize.py --first K OUT_DIR   # textarmor's metrics on its first K examples
Rows already in the JSON file for another (pair, recipe, tool, device) are kept, so a GPU run adds its rows.
A "pair" labels rows run back to back (same host load); compare speed only within a pair.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

FIELDS = ["pair", "recipe", "tool", "n", "success_rate", "accuracy_under_attack", "perturbed_word_pct", "avg_queries",
          "wall_s", "cpu_s", "examples_per_s", "device"]


def main(rows_path: str, out_path: str) -> None:
    new = [json.loads(line) for line in Path(rows_path).read_text().splitlines() if line.strip()]
    out = Path(out_path)
    doc = json.loads(out.read_text()) if out.exists() else {}  # keeps its description fields
    old = doc.get("rows", [])

    def key(r):
        return r.get("pair"), r["recipe"], r["tool"], r["device"]

    replaced = {key(r) for r in new}
    rows = [r for r in old if key(r) not in replaced] + new
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**doc, "rows": rows}, indent=2) + "\n")
    print("| " + " | ".join(FIELDS) + " |")
    print("|" + "---|" * len(FIELDS))
    for r in rows:
        print("| " + " | ".join(str(r.get(f)) for f in FIELDS) + " |")


def first_k(k: int, out_dir: str) -> dict:
    """textarmor's metrics on examples 0..k-1 of a run's ``--out`` folder: the examples a TextAttack run
    stopped after k examples attacked (it attacks them in order), for success rates on the same examples."""
    from textarmor.attacks import AttackReport
    from textarmor.attacks.api import load_results

    results = [r for r in load_results(out_dir) if r.index < k]
    s = AttackReport(results).summary()
    return {"n": s["total"], "successful": s["successful"], "failed": s["failed"], "skipped": s["skipped"],
            "success_rate": s["attack_success_rate"], "accuracy_under_attack": s["accuracy_under_attack"],
            "perturbed_word_pct": s["avg_perturbed_word_pct"], "avg_queries": s["avg_queries"]}


if __name__ == "__main__":
    if sys.argv[1] == "--first":
        print(json.dumps(first_k(int(sys.argv[2]), sys.argv[3])))
    else:
        main(sys.argv[1], sys.argv[2])
