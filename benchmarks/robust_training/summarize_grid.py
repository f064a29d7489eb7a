"""Turn grid rows (grid.py's JSONL) into ``benchmarks/results/robust_training.json`` and a markdown table.

The selection rule, applied to the *selection* split only (held-out SST-2 train rows): among configs whose
clean accuracy is within ``--max-clean-loss`` points of ``standard``'s, the one with the highest accuracy
under ``pwws`` is "best". Dev numbers are reported for every config, and never used to choose.

    python benchmarks/robust_training/summarize_grid.py benchmarks/results/raw/robust_grid_minilm_h100.jsonl
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

RECIPES = ("deepwordbug", "pwws", "textfooler")


def load_rows(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if "error" not in row]


def select_best(rows: list[dict], max_clean_loss: float) -> dict[str, str]:
    """backbone -> name of the config chosen on the selection split."""
    best = {}
    for backbone in {row["backbone"] for row in rows}:
        group = [row for row in rows if row["backbone"] == backbone]
        standard = next(row for row in group if row["name"] == "standard")
        floor = standard["selection_clean_acc"] - max_clean_loss / 100
        eligible = [row for row in group if row["name"] != "standard" and row["selection_clean_acc"] >= floor]
        if eligible:
            best[backbone] = max(eligible, key=lambda row: row["selection_acc_under"]["pwws"])["name"]
    return best


def result_rows(rows: list[dict], best: dict[str, str]) -> list[dict]:
    out = []
    for row in rows:
        standard = next(r for r in rows if r["backbone"] == row["backbone"] and r["name"] == "standard")
        out.append({
            "backbone": row["backbone"], "method": row["method"], "config": row["name"],
            "hyperparameters": row["hyperparameters"], "clean_acc": row["dev_clean_acc"],
            "acc_under": {recipe: row["dev_acc_under"].get(recipe) for recipe in RECIPES},
            "attack_n": row["dev_attack_n"],
            "textattack_acc_under": {"deepwordbug": None, "pwws": None}, "ece": row["dev_ece"],
            "seconds_per_epoch": row["seconds_per_epoch"],
            "epoch_time_ratio": round(row["seconds_per_epoch"] / standard["seconds_per_epoch"], 2),
            "device": row["device"], "selected": best.get(row["backbone"]) == row["name"],
            "selection": {"clean_acc": row["selection_clean_acc"], "acc_under": row["selection_acc_under"],
                          "attack_n": row["selection_attack_n"]},
            "train_rows": row["train_rows"], "epochs": row["epochs"], "batch_size": row["batch_size"],
            "learning_rate": row["learning_rate"], "max_length": row["max_length"],
        })
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| backbone | config | dev clean | dev deepwordbug | dev pwws | ECE | selection clean | "
             "selection pwws | s/epoch (shared GPU) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        name = f"**{row['config']}** (selected)" if row["selected"] else row["config"]
        lines.append(
            f"| {row['backbone']} | {name} | {row['clean_acc'] * 100:.2f}% | {row['acc_under']['deepwordbug']:.2f}% | "
            f"{row['acc_under']['pwws']:.2f}% | {row['ece']:.3f} | {row['selection']['clean_acc'] * 100:.2f}% | "
            f"{row['selection']['acc_under']['pwws']:.2f}% | {row['seconds_per_epoch']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path, nargs="+")
    parser.add_argument("--max-clean-loss", type=float, default=1.5, help="points of selection clean accuracy")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/robust_training.json"))
    args = parser.parse_args()
    rows = load_rows(args.rows)
    best = select_best(rows, args.max_clean_loss)
    results = result_rows(rows, best)
    args.out.write_text(json.dumps({"benchmark": "robust_training", "selection_rule":
                                    f"highest selection pwws accuracy within {args.max_clean_loss} points of "
                                    "standard's selection clean accuracy", "rows": results}, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
