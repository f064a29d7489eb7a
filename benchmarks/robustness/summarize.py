"""Fold the result files of ``run.py plan`` into ``benchmarks/results/robustness.json``: one row per (dataset,
backbone, preset or method, defence), the selection table, the AG News transfer, and the goal's misses.

    python benchmarks/robustness/summarize.py RUNS/results --out benchmarks/results/robustness.json \\
        [--textattack TA.json ...]

``--textattack`` files hold rows ``{"name", "recipe", "n", "acc_under"}`` measured by TextAttack 0.3.11 on the
first sentences of the same report set (``textattack_run.py`` with ``--defense``), merged as
``textattack_acc_under``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

RECIPES = ("pwws", "textfooler", "deepwordbug", "adaptive")
GOAL_ROBUST, GOAL_CLEAN_DROP, GOAL_EPOCH_RATIO, GOAL_PASSES = 50.0, 1.5, 3.0, 2.0
GOAL_TRANSFER = 0.8


def load(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def rows(results: list[dict], plan: dict, textattack: list[dict]) -> list[dict]:
    trains = {r["name"]: r for r in results if r["kind"] == "train"}
    winner = next((r["winner"] for r in results if r["kind"] == "select"), None)
    if winner and f"sst2-minilm-robust-{winner}" in trains:  # the report rows call the winner by its role
        trains["sst2-minilm-robust"] = trains[f"sst2-minilm-robust-{winner}"]
    out = []
    for name, train in sorted(trains.items()):
        scores = [r for r in results if r.get("name") == name and r.get("split") == "report"]
        clean = next((r for r in scores if r["kind"] == "clean"), None)
        if clean is None:
            continue
        attacks = {r["recipe"]: r for r in scores if r["kind"] == "attack"}
        acc_under = {recipe: attacks[recipe]["acc_under"] if recipe in attacks else None for recipe in RECIPES}
        measured = [v for v in acc_under.values() if v is not None]
        dataset, backbone, role = name.split("-", 2)
        standard = trains.get(f"{dataset}-{backbone}-standard")
        ta = {r["recipe"]: r["acc_under"] for r in textattack
              if r["name"] == name and r["tool"].startswith("textattack")}
        same = {r["recipe"]: r["acc_under"] for r in textattack if r["name"] == name and r["tool"] == "textarmor"}
        out.append({
            "dataset": dataset, "backbone": train["backbone"], "role": role,
            "preset": train.get("preset"), "method": train["method"],
            "defense": (clean.get("defense") or {}).get("name", "none"),
            "defense_options": (clean.get("defense") or {}).get("options"),
            "clean_acc": clean["clean_acc"], "clean_n": clean["n"], "acc_under": acc_under,
            "robust_acc": min(measured) if len(measured) == len(RECIPES) else None,
            "attack_n": max((a["n"] for a in attacks.values()), default=None),
            "passes_per_input": clean["passes_per_input"],
            "epoch_time_ratio": _ratio(train, standard),
            "seconds_per_epoch": train["seconds_per_epoch"],
            "textattack_acc_under": {"pwws": ta.get("pwws"), "deepwordbug": ta.get("deepwordbug")},
            "textattack_n": max((r["n"] for r in textattack if r["name"] == name), default=None),
            # textarmor on the same sentences and CPU as TextAttack, for the comparison
            "textarmor_cpu_acc_under": {"pwws": same.get("pwws"), "deepwordbug": same.get("deepwordbug")},
            "train_rows": train["train_rows"], "train_data": Path(train["train_data"]).name,
            "epochs": train["settings"].get("epochs"), "objective": train["objective"],
            "model_init": "the SST-2 robust model" if role.endswith("transfer") else "the pre-trained encoder",
            "device": plan.get("device"), "command": plan.get("command"),
        })
    return out


def _ratio(train: dict, standard: dict | None) -> float | None:
    """Mean epoch time over the standard model's mean epoch time (the same data and epochs, the same run)."""
    if not standard or not train.get("epoch_seconds") or not standard.get("epoch_seconds"):
        return None
    mean = sum(train["epoch_seconds"]) / len(train["epoch_seconds"])
    base = sum(standard["epoch_seconds"]) / len(standard["epoch_seconds"])
    return round(mean / base, 2)


def goal(table: list[dict]) -> list[dict]:
    """Each preset row's misses of the goal, with by how much."""
    misses = []
    for row in table:
        if row["role"] != "robust":
            continue
        standard = next((r for r in table if r["dataset"] == row["dataset"] and r["backbone"] == row["backbone"]
                         and r["role"] == "standard"), None)
        cell = f"{row['dataset']}/{row['backbone']}"
        for recipe, value in row["acc_under"].items():
            if value is not None and value < GOAL_ROBUST:
                misses.append({"cell": cell, "what": f"acc_under.{recipe}", "value": value, "goal": GOAL_ROBUST,
                               "short_by": round(GOAL_ROBUST - value, 2)})
        if standard is not None and row["clean_acc"] < standard["clean_acc"] - GOAL_CLEAN_DROP:
            misses.append({"cell": cell, "what": "clean_acc", "value": row["clean_acc"],
                           "goal": round(standard["clean_acc"] - GOAL_CLEAN_DROP, 2),
                           "short_by": round(standard["clean_acc"] - GOAL_CLEAN_DROP - row["clean_acc"], 2)})
        if row["epoch_time_ratio"] is not None and row["epoch_time_ratio"] > GOAL_EPOCH_RATIO:
            misses.append({"cell": cell, "what": "epoch_time_ratio", "value": row["epoch_time_ratio"],
                           "goal": GOAL_EPOCH_RATIO, "short_by": round(row["epoch_time_ratio"] - GOAL_EPOCH_RATIO, 2)})
        if row["passes_per_input"] > GOAL_PASSES:
            misses.append({"cell": cell, "what": "passes_per_input", "value": row["passes_per_input"],
                           "goal": GOAL_PASSES, "short_by": round(row["passes_per_input"] - GOAL_PASSES, 2)})
    return misses


def transfer(table: list[dict]) -> dict | None:
    """Share of the robust gain (preset from the plain encoder over standard) kept by the transferred model."""
    by_role = {r["role"]: r for r in table if r["dataset"] == "agnews"}
    if not {"standard", "robust", "robust-transfer"} <= set(by_role):
        return None
    standard, plain, moved = by_role["standard"], by_role["robust"], by_role["robust-transfer"]
    kept = {}
    for recipe in RECIPES:
        gain = _sub(plain["acc_under"][recipe], standard["acc_under"][recipe])
        got = _sub(moved["acc_under"][recipe], standard["acc_under"][recipe])
        kept[recipe] = {"gain_from_plain": gain, "gain_transferred": got,
                        "kept": round(got / gain, 2) if gain and got is not None and gain > 0 else None}
    return {"per_attack": kept, "goal_kept": GOAL_TRANSFER,
            "clean": {"standard": standard["clean_acc"], "robust": plain["clean_acc"],
                      "robust-transfer": moved["clean_acc"]}}


def _sub(a, b):
    return None if a is None or b is None else round(a - b, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/robustness.json"))
    parser.add_argument("--textattack", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    results = load(args.results)
    plan_file = args.results.parent / "plan.json"
    plan = json.loads(plan_file.read_text()) if plan_file.exists() else {}
    textattack = [row for path in args.textattack for row in json.loads(path.read_text())["rows"]]
    table = rows(results, plan, textattack)
    selection = next((r for r in results if r["kind"] == "select"), None)
    out = {"benchmark": "robustness", "goal": {"robust_acc": GOAL_ROBUST, "clean_drop": GOAL_CLEAN_DROP,
                                              "epoch_time_ratio": GOAL_EPOCH_RATIO, "passes_per_input": GOAL_PASSES,
                                              "transfer_kept": GOAL_TRANSFER},
           "rows": table, "misses": goal(table), "transfer": transfer(table), "selection": selection,
           "plan": plan}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for row in table:
        print(f"{row['dataset']:7} {row['backbone']:10} {row['role']:16} clean {row['clean_acc']:6.2f}  "
              + "  ".join(f"{k} {v if v is not None else '-':>6}" for k, v in row["acc_under"].items())
              + f"  robust {row['robust_acc']}  epoch x{row['epoch_time_ratio']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
