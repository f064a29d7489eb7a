"""Robust fine-tuning grid on one or more GPUs: every (method, options) config trained, scored and attacked.

Hyperparameters are chosen on a *selection* split carved out of SST-2 train (``--select-rows``, stratified,
never trained on): its clean accuracy and accuracy under ``deepwordbug``/``pwws`` decide which radius wins.
The SST-2 dev set (872) is only reported, never used to choose. Configs run as worker processes, several
per GPU (small encoders leave an H100 mostly idle), each appending one JSON row per config to ``--out`` as
soon as it finishes, so a run cut short keeps what it finished.

    PYTHONPATH=src python benchmarks/robust_training/grid.py --model PATH --train train.jsonl --dev dev.jsonl \\
        --grid benchmarks/robust_training/grid_minilm.json --gpus 2 --per-gpu 4 --out rows.jsonl

Epoch times measured here are inflated by the neighbours sharing the GPU; ``step_cost.py`` measures the
per-step cost of each method alone.

``--add-recipes R ...`` attacks the models of a finished (or cut short) grid with more recipes and merges the
results into the rows of ``--out``: e.g. train and attack with ``--recipes deepwordbug pwws`` first, then add
``textfooler`` once its GloVe vectors are in place.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path


def split_selection(train: Path, rows: int, seed: int, folder: Path) -> tuple[Path, Path]:
    """Stratified hold-out of ``rows`` training examples: (rest, selection) JSONL files."""
    lines = train.read_text().splitlines()
    by_label: dict[str, list[str]] = {}
    for line in lines:
        by_label.setdefault(str(json.loads(line)["label"]), []).append(line)
    rng = random.Random(seed)
    held: list[str] = []
    for label_lines in by_label.values():
        rng.shuffle(label_lines)
        held += label_lines[: round(rows * len(label_lines) / len(lines))]
    held_set = set(held)
    folder.mkdir(parents=True, exist_ok=True)
    rest, selection = folder / "train_rest.jsonl", folder / "selection.jsonl"
    rest.write_text("\n".join(line for line in lines if line not in held_set) + "\n")
    selection.write_text("\n".join(held) + "\n")
    return rest, selection


def run_config(config: dict, args: argparse.Namespace, rest: Path, selection: Path) -> dict:
    from textarmor import TextArmorConfig, evaluate, train
    from textarmor.attacks import attack

    name = config["name"]
    result = train(str(rest), out_dir=args.runs / name, model=args.model, eval_data=str(selection),
                   max_train_rows=args.max_train_rows,
                   method=config["method"], method_options=config.get("options", {}), epochs=args.epochs,
                   learning_rate=config.get("lr", args.lr), batch_size=args.batch_size,
                   max_length=args.max_length, seed=args.seed, overwrite=True, progress=False)
    training = TextArmorConfig.load(result.model_dir).training
    row = {"backbone": args.backbone, "name": name, "method": config["method"], "options": config.get("options", {}),
           "hyperparameters": training["objective"], "device": args.device_name, "epochs": args.epochs,
           "batch_size": args.batch_size, "learning_rate": config.get("lr", args.lr), "max_length": args.max_length,
           "train_rows": training["train_rows"], "seconds_per_epoch": training["seconds_per_epoch"],
           # each epoch's training alone (attack rounds in, evaluation out): what epoch_time_ratio compares
           "epoch_seconds": training.get("cost", {}).get("epoch_seconds")}
    rounds = training.get("objective_report", {}).get("augment", {}).get("rounds", [])
    if rounds:  # attack rounds' wall time: what +augment adds to an epoch beyond its objective's steps
        row["augment_round_seconds"] = [r["seconds"] for r in rounds]
    splits = (("selection", selection, args.select_attack_n, args.select_recipes),
              ("dev", args.dev, None, args.recipes))
    for split, data, n_attack, recipes in splits:
        metrics = evaluate(str(result.model_dir), str(data))
        row[f"{split}_clean_acc"], row[f"{split}_ece"] = round(metrics["accuracy"], 4), round(metrics["ece"], 4)
        row[f"{split}_acc_under"] = {}
        for recipe in recipes:
            started = time.perf_counter()
            report = attack(str(result.model_dir), str(data), recipe=recipe, n=n_attack)
            row[f"{split}_acc_under"][recipe] = report.summary()["accuracy_under_attack"]
            row[f"{split}_attack_seconds_{recipe}"] = round(time.perf_counter() - started, 1)
        row[f"{split}_attack_n"] = n_attack or metrics["n"]
    return row


def add_recipes_worker(args: argparse.Namespace) -> None:
    """Attack this worker's share of the finished configs with ``--add-recipes``; one part row per attack."""
    from textarmor.attacks import attack

    part = args.out.with_name(f"{args.out.stem}.add{args.worker}.jsonl")
    for row in finished_rows(args)[args.worker::args.num_workers]:
        for recipe in args.add_recipes:
            if recipe in row.get("dev_acc_under", {}):
                continue
            started = time.perf_counter()
            report = attack(str(args.runs / row["name"]), str(args.dev), recipe=recipe)
            found = {"name": row["name"], "recipe": recipe,
                     "accuracy_under_attack": report.summary()["accuracy_under_attack"],
                     "seconds": round(time.perf_counter() - started, 1)}
            with part.open("a") as handle:
                handle.write(json.dumps(found) + "\n")
            print(json.dumps(found), flush=True)


def finished_rows(args: argparse.Namespace) -> list[dict]:
    rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    return [row for row in rows if "error" not in row and (args.runs / row["name"]).is_dir()]


def merge_added(args: argparse.Namespace, workers: int) -> None:
    """Fold the workers' part rows into ``--out`` (rewritten atomically) and remove the parts."""
    parts = [args.out.with_name(f"{args.out.stem}.add{i}.jsonl") for i in range(workers)]
    found = [json.loads(line) for part in parts if part.exists() for line in part.read_text().splitlines()]
    rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    for row in rows:
        for hit in (f for f in found if f["name"] == row.get("name")):
            row.setdefault("dev_acc_under", {})[hit["recipe"]] = hit["accuracy_under_attack"]
            row[f"dev_attack_seconds_{hit['recipe']}"] = hit["seconds"]
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
    tmp.replace(args.out)
    for part in parts:
        part.unlink(missing_ok=True)


def worker(args: argparse.Namespace, rest: Path, selection: Path) -> None:
    configs = json.loads(args.grid.read_text())
    for index, config in enumerate(configs):
        if index % args.num_workers != args.worker:
            continue
        try:
            row = run_config(config, args, rest, selection)
        except Exception as error:  # one diverging config must not lose the others
            row = {"name": config["name"], "method": config["method"], "error": repr(error)[:500]}
        with args.out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--backbone", default="minilm-l6")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--dev", type=Path, required=True)
    parser.add_argument("--grid", type=Path, required=True, help="JSON list of {name, method, options[, lr]}")
    parser.add_argument("--select-rows", type=int, default=2000)
    parser.add_argument("--select-attack-n", type=int, default=500)
    parser.add_argument("--recipes", nargs="+", default=["deepwordbug", "pwws", "textfooler"], help="on dev")
    parser.add_argument("--select-recipes", nargs="+", default=["deepwordbug", "pwws"],
                        help="on the selection split (what choosing a config looks at)")
    parser.add_argument("--max-train-rows", type=int, default=None, help="a random subset of the rest of train")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--per-gpu", type=int, default=1)
    parser.add_argument("--device-name", default="GPU")
    parser.add_argument("--runs", type=Path, default=Path("/tmp/textarmor-grid"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--add-recipes", nargs="+", default=None,
                        help="attack the finished configs' models with these recipes and merge into --out")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--num-workers", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.add_recipes and args.worker is not None:
        add_recipes_worker(args)
        return
    rest, selection = split_selection(args.train, args.select_rows, args.seed, args.runs / "data")
    if args.worker is not None:
        worker(args, rest, selection)
        return
    total = args.gpus * args.per_gpu
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(args.gpus)))).split(",")
    procs = []
    for index in range(total):
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": visible[index % len(visible)]}
        procs.append(subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--worker", str(index),
                                       "--num-workers", str(total)], env=env))
    code = max(proc.wait() for proc in procs)
    if args.add_recipes:
        merge_added(args, total)
    sys.exit(code)


if __name__ == "__main__":
    main()
