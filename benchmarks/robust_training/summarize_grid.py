"""Turn grid rows (grid.py's JSONL) into ``benchmarks/results/robust_training.json`` and a markdown table.

The selection rule, applied to the *selection* split only (held-out SST-2 train rows): among configs whose
clean accuracy is within ``--max-clean-loss`` points of ``standard``'s, the one with the highest accuracy
under ``pwws`` is "best". Dev numbers are reported for every config, and never used to choose.

    python benchmarks/robust_training/summarize_grid.py benchmarks/results/raw/robust_grid_minilm_h100.jsonl

Epoch-time ratios: grid epochs share a GPU with the other configs, which moves them with the neighbours. With
``--step-cost FILE`` (``step_cost.py``'s output, each method alone on the device), a config of
``--step-cost-backbone`` trained on the same GPU model, whose name (less any ``+augment`` suffix) has a step
cost and whose attack rounds were timed, gets ``epoch_time_ratio`` =
its step-time ratio + its attack rounds' seconds / (epochs x standard's steps per epoch x standard's seconds
per step); the shared-GPU ratio stays as ``epoch_time_ratio_shared_gpu``, and ``epoch_time_basis`` says which.

With ``--alone FILE ...`` (grid rows of configs trained one after another, each alone on the GPU, with each
epoch's seconds), a config found there gets ``epoch_time_ratio`` = its mean epoch / ``standard``'s fastest
epoch in that file (the fastest: a standard epoch has no per-epoch extras, so its spread is disturbance),
``epoch_time_ratio_vs_standard_mean`` beside it; this basis replaces the others. Where several files hold a
config, the last one that also holds ``standard`` counts. Those runs trained their own models, so their own
accuracies come along as ``alone_run`` (clean and ``pwws`` on dev against that run's ``standard``, and the
target checked on that run alone); the row's other numbers stay the grid's.

The target (the issue's): ``pwws`` accuracy on dev at least 2x standard's, at most 1.5 points of dev clean
accuracy lost, ``epoch_time_ratio`` at most 2.5; ``meets_target`` says whether a row does (``None`` where the
epoch time is the step-cost estimate: full epochs measured alone came out above those estimates).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

RECIPES = ("deepwordbug", "pwws", "textfooler")
BASIS_MARK = {"shared": "", "step": " ᵃ", "full": " ᵇ"}  # shared GPU; step-cost estimate; full epochs alone
TARGET = {"pwws_ratio": 2.0, "max_clean_loss_points": 1.5, "max_epoch_time_ratio": 2.5}


def load_rows(paths: list[Path]) -> tuple[list[dict], list[dict]]:
    """(rows to report, every row). A later file's config replaces an earlier file's config of the same name;
    each row keeps its file as ``run``, since epoch times compare only within one run (GPU sharing differs)."""
    every = []
    for run, path in enumerate(paths):
        every += [dict(json.loads(line), run=run) for line in path.read_text().splitlines() if line.strip()]
    every = [row for row in every if "error" not in row]
    latest = {(row["backbone"], row["name"]): row for row in every}
    return [row for row in every if latest[(row["backbone"], row["name"])] is row], every


def select_best(rows: list[dict], max_clean_loss: float) -> dict[str, str]:
    """backbone -> name of the config chosen on the selection split."""
    best = {}
    for backbone in {row["backbone"] for row in rows}:
        group = [row for row in rows if row["backbone"] == backbone]
        standard = [row for row in group if row["name"] == "standard"][-1]
        floor = standard["selection_clean_acc"] - max_clean_loss / 100
        eligible = [row for row in group if row["name"] != "standard" and row["selection_clean_acc"] >= floor]
        if eligible:
            best[backbone] = max(eligible, key=lambda row: row["selection_acc_under"]["pwws"])["name"]
    return best


def epoch_time(row: dict, standard: dict, step_cost: dict) -> dict:
    """The epoch-time fields of ``row`` (see the module docstring)."""
    shared = round(row["seconds_per_epoch"] / standard["seconds_per_epoch"], 2)
    costs = step_cost.get(row["backbone"], {})
    step = costs.get(row["name"].split("+augment")[0])
    same_gpu = step is not None and row["device"].split(" (")[0] == step["device"].split(",")[0]
    rounds_known = "+augment" not in row["method"] or "augment_round_seconds" in row
    if not (same_gpu and rounds_known) or "standard" not in costs:
        return {"epoch_time_ratio": shared, "epoch_time_ratio_shared_gpu": shared,
                "epoch_time_basis": "shared GPU (configs side by side)"}
    standard_epoch = math.ceil(row["train_rows"] / row["batch_size"]) * costs["standard"]["seconds_per_step"]
    rounds = sum(row.get("augment_round_seconds", []))
    ratio = step["step_time_ratio"] + rounds / (row["epochs"] * standard_epoch)
    return {"epoch_time_ratio": round(ratio, 2), "epoch_time_ratio_shared_gpu": shared,
            "epoch_time_basis": f"step cost alone on {step['device']} + attack rounds"}


def epoch_time_alone(row: dict, alone: list[tuple[str, list[dict]]], textattack: dict | None = None) -> dict | None:
    """The epoch-time fields from full epochs measured alone (``--alone``: ``(label, rows)`` per file; the last
    file holding the config and ``standard`` sets the ratio), or ``None`` without them. ``alone_runs`` lists
    every such run, each with its own models' accuracies (and TextAttack's, keyed ``backbone/name@label``)."""
    runs = []
    for label, rows in alone:
        found = {r["name"]: r for r in rows if r["backbone"] == row["backbone"] and r.get("epoch_seconds")}
        if row["name"] in found and "standard" in found:
            runs.append(alone_run(row, label, found[row["name"]], found["standard"], textattack or {}))
    if not runs:
        return None
    last = runs[-1]
    return {"epoch_time_ratio": last["epoch_time_ratio"],
            "epoch_time_ratio_vs_standard_mean": last["epoch_time_ratio_vs_standard_mean"],
            "epoch_seconds_alone": last["epoch_seconds"],
            "standard_epoch_seconds_alone": last["standard_epoch_seconds"],
            "epoch_time_basis": f"full epochs alone on {last['device']}", "alone_run": last, "alone_runs": runs}


def alone_run(row: dict, label: str, mine: dict, base: dict, textattack: dict) -> dict:
    epochs, standard = mine["epoch_seconds"], base["epoch_seconds"]
    mean = sum(epochs) / len(epochs)
    ratio = 1.0 if row["name"] == "standard" else round(mean / min(standard), 2)
    pwws_ratio = mine["dev_acc_under"]["pwws"] / base["dev_acc_under"]["pwws"]
    clean_change = (mine["dev_clean_acc"] - base["dev_clean_acc"]) * 100
    checked = {name: textattack.get(f"{row['backbone']}/{name}@{label}") for name in (row["name"], "standard")}
    return {"run": label, "device": mine["device"], "epoch_seconds": epochs, "standard_epoch_seconds": standard,
            "epoch_time_ratio": ratio,
            "epoch_time_ratio_vs_standard_mean": round(mean / (sum(standard) / len(standard)), 2),
            "clean_acc": mine["dev_clean_acc"], "pwws": mine["dev_acc_under"]["pwws"],
            "standard_clean_acc": base["dev_clean_acc"], "standard_pwws": base["dev_acc_under"]["pwws"],
            "pwws_vs_standard": round(pwws_ratio, 2), "clean_change_points": round(clean_change, 2),
            "ece": mine["dev_ece"], "selection_clean_acc": mine["selection_clean_acc"],
            "selection_acc_under": mine["selection_acc_under"],
            "textattack_acc_under": checked[row["name"]], "standard_textattack_acc_under": checked["standard"],
            "meets_target": None if row["name"] == "standard" else meets_target(pwws_ratio, clean_change, ratio)}


def meets_target(pwws_ratio: float, clean_change_points: float, epoch_time_ratio: float) -> bool:
    return bool(pwws_ratio >= TARGET["pwws_ratio"] and clean_change_points >= -TARGET["max_clean_loss_points"]
                and epoch_time_ratio <= TARGET["max_epoch_time_ratio"])


def result_rows(rows: list[dict], every: list[dict], best: dict[str, str], textattack: dict,
                step_cost: dict | None = None, alone: list[tuple[str, list[dict]]] | None = None) -> list[dict]:
    out = []
    for row in rows:
        standard = next(r for r in every if r["backbone"] == row["backbone"] and r["name"] == "standard"
                        and r["run"] == row["run"])
        timing = epoch_time(row, standard, step_cost or {})
        timing.update(epoch_time_alone(row, alone or [], textattack) or {})
        estimated = timing["epoch_time_basis"].startswith("step cost")
        pwws_ratio = row["dev_acc_under"]["pwws"] / standard["dev_acc_under"]["pwws"]
        clean_change = (row["dev_clean_acc"] - standard["dev_clean_acc"]) * 100
        out.append({
            "backbone": row["backbone"], "method": row["method"], "config": row["name"],
            "hyperparameters": row["hyperparameters"], "clean_acc": row["dev_clean_acc"],
            "acc_under": {recipe: row["dev_acc_under"].get(recipe) for recipe in RECIPES},
            "attack_n": row["dev_attack_n"],
            "textattack_acc_under": grid_or_alone_textattack(row, textattack, timing.get("alone_run")),
            "ece": row["dev_ece"],
            "seconds_per_epoch": row["seconds_per_epoch"], **timing,
            "pwws_vs_standard": round(pwws_ratio, 2), "clean_change_points": round(clean_change, 2),
            "meets_target": None if estimated else meets_target(pwws_ratio, clean_change, timing["epoch_time_ratio"]),
            "device": row["device"], "selected": best.get(row["backbone"]) == row["name"],
            "selection": {"clean_acc": row["selection_clean_acc"], "acc_under": row["selection_acc_under"],
                          "attack_n": row["selection_attack_n"]},
            "train_rows": row["train_rows"], "epochs": row["epochs"], "batch_size": row["batch_size"],
            "learning_rate": row["learning_rate"], "max_length": row["max_length"],
        })
    return out


def grid_or_alone_textattack(row: dict, textattack: dict, alone: dict | None) -> dict:
    """TextAttack's numbers for the grid's model, else for the latest alone run's model (marked as such)."""
    checked = textattack.get(f"{row['backbone']}/{row['name']}")
    if checked is None and alone and alone.get("textattack_acc_under"):
        checked = {**alone["textattack_acc_under"], "model": f"the {alone['run']} run's, not the grid's"}
    return checked or {"deepwordbug": None, "pwws": None}


def markdown(rows: list[dict]) -> str:
    def pct(value) -> str:
        return "–" if value is None else f"{value:.2f}%"

    lines = ["| backbone | config | dev clean | dev deepwordbug | dev pwws | dev textfooler | ECE | selection clean | "
             "selection pwws | pwws × standard | s/epoch (shared GPU) | epoch time vs standard |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        name = f"**{row['config']}** (selected)" if row["selected"] else row["config"]
        under = row["acc_under"]
        lines.append(
            f"| {row['backbone']} | {name} | {row['clean_acc'] * 100:.2f}% | {pct(under['deepwordbug'])} | "
            f"{pct(under['pwws'])} | {pct(under['textfooler'])} | {row['ece']:.3f} | "
            f"{row['selection']['clean_acc'] * 100:.2f}% | {row['selection']['acc_under']['pwws']:.2f}% | "
            f"{row['pwws_vs_standard']:.2f}× | {row['seconds_per_epoch']:.0f} | {row['epoch_time_ratio']:.2f}×"
            f"{BASIS_MARK[row['epoch_time_basis'].split(' ')[0]]} |")
    alone = [(row, run) for row in rows for run in row.get("alone_runs", [])]
    if alone:
        lines += ["", "Full epochs alone (each config's own run, dev; `pwws × standard` against that run's standard; "
                  "TextAttack: `pwws` on the first 200 dev sentences, that run's model and its standard's):",
                  "", "| backbone | config | run | epoch seconds | standard's | epoch time vs standard | dev clean | "
                  "dev pwws | pwws × standard | clean change | TextAttack pwws (standard) | meets target |",
                  "|---|---|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for row, run in alone:
        seconds, standard = (", ".join(f"{s:.1f}" for s in run[key])
                             for key in ("epoch_seconds", "standard_epoch_seconds"))
        verdict = {True: "yes", False: "no", None: "–"}[run["meets_target"]]
        checked = run["textattack_acc_under"], run["standard_textattack_acc_under"]
        textattack = (f"{checked[0]['pwws']:.1f}% ({checked[1]['pwws']:.1f}%)" if all(checked) else "–")
        lines.append(f"| {row['backbone']} | {row['config']} | {run['run']} | {seconds} | {standard} | "
                     f"{run['epoch_time_ratio']:.2f}× | {run['clean_acc'] * 100:.2f}% | {run['pwws']:.2f}% | "
                     f"{run['pwws_vs_standard']:.2f}× | {run['clean_change_points']:+.2f} | {textattack} | {verdict} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path, nargs="+")
    parser.add_argument("--max-clean-loss", type=float, default=1.5, help="points of selection clean accuracy")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/robust_training.json"))
    parser.add_argument("--textattack", type=Path, default=None,
                        help="JSON {'BACKBONE/CONFIG': {recipe: accuracy under TextAttack's attack, 'n': N}}")
    parser.add_argument("--step-cost", type=Path, default=None, help="step_cost.py's JSON (methods alone)")
    parser.add_argument("--alone", type=Path, nargs="+", default=[],
                        help="files of grid rows of configs trained alone, one after another (full-epoch times)")
    parser.add_argument("--step-cost-backbone", default="minilm-l6", help="the backbone --step-cost measured")
    args = parser.parse_args()
    rows, every = load_rows(args.rows)
    backbones = list(dict.fromkeys(row["backbone"] for row in rows))
    rows.sort(key=lambda row: (backbones.index(row["backbone"]), -row["run"]))  # newest run first (stable)
    best = select_best(rows, args.max_clean_loss)
    textattack = json.loads(args.textattack.read_text()) if args.textattack else {}
    step_cost = {}
    if args.step_cost:
        measured = json.loads(args.step_cost.read_text())["rows"]
        step_cost[args.step_cost_backbone] = {r.get("name", r["method"]): r for r in measured}
    alone = [(path.stem, [json.loads(line) for line in path.read_text().splitlines() if line.strip()])
             for path in args.alone]
    results = result_rows(rows, every, best, textattack, step_cost, alone)
    args.out.write_text(json.dumps({"benchmark": "robust_training", "selection_rule":
                                    f"highest selection pwws accuracy within {args.max_clean_loss} points of "
                                    "standard's selection clean accuracy", "target": TARGET, "rows": results},
                                   indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
