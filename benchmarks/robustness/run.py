"""Robustness benchmark: standard and ``robust``-preset models on SST-2, MR and AG News, MiniLM-L6 and MPNet-base,
each scored clean and under ``pwws``, ``textfooler``, ``deepwordbug`` and ``adaptive`` (TextAttack's default
constraints: no modification-rate bound), the attacks querying the model behind its stored defence.

Every unit of work is a task (train a model, score it clean, run one attack) that writes one JSON file under
``RUNS/results/``; a task whose file exists is done, so a rerun of the same command continues where a killed one
stopped. Tasks run as worker processes, ``--jobs`` at a time, trainings first.

The plan (``tasks()``), fixed before any run:

1. Selection (MiniLM, SST-2): 2,000 rows of SST-2 train are held out (stratified, seed 0; the rows of
   ``benchmarks/robust_training/grid.py``'s selection split); ``standard`` and each variant of ``VARIANTS`` train on
   the rest and are attacked on the first ``--select-attack-n`` held-out rows of at least 8 words. The rule:
   among variants within 1.5 points of ``standard``'s clean accuracy on those rows and at most 3x its mean epoch
   time (all trained side by side), the highest MEAN accuracy over the four attacks wins (the minimum is what
   is reported, but near the floor it is decided by a handful of sentences); ties: higher clean accuracy.
   Dev and test sentences choose nothing.
2. Report: the winner's options are the preset's for every other model. SST-2 reports on all 872 dev sentences;
   MR on ``data/mr_test.jsonl`` (``make_splits.py``: 80/20, seed 0; train on ``mr_train.jsonl``); AG News trains on
   ``agnews/train_subset5k.jsonl`` and reports on the first 2,000 test rows (attacks on the first
   ``--agnews-attack-n``), once from the plain encoder (standard and preset) and once continued from the SST-2
   preset model (transfer).

    python benchmarks/robustness/run.py plan --data DATA_DIR --minilm MINILM_DIR --mpnet MPNET_DIR \\
        --runs RUNS --jobs 14 --device-name "1x NVIDIA H200"
    python benchmarks/robustness/summarize.py RUNS/results --out benchmarks/results/robustness.json

``DATA_DIR`` holds ``sst2/{train,dev}.jsonl``, ``agnews/{train_subset5k,test}.jsonl`` (the shared data folder);
the MR split files are this folder's ``data/``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPES = ("pwws", "textfooler", "deepwordbug", "adaptive")
#: Variants of the robust preset compared on the SST-2 selection split: overrides of its method and defence options.
VARIANTS: dict[str, dict] = {
    "a": {},
    "b": {"defense_options": {"canonical_rank": 5000}},
    "c": {"method_options": {"augment_sample": 0.12}},
}
#: Training settings per backbone (the same for standard and preset: same data, same epochs).
BACKBONES = {
    "minilm-l6": {"batch_size": 64, "learning_rate": 5e-5, "max_length": 64},
    "mpnet-base": {"batch_size": 32, "learning_rate": 2e-5, "max_length": 64},
}


@dataclass
class Task:
    id: str
    kind: str  # train | clean | attack | select | wait (for a file)
    args: dict = field(default_factory=dict)
    after: list[str] = field(default_factory=list)
    priority: int = 0  # lower starts first


def tasks(a: argparse.Namespace) -> list[Task]:
    data, runs = Path(a.data), Path(a.runs)
    split = runs / "data"
    sst2_rest, sst2_held, sst2_long = split / "sst2_rest.jsonl", split / "sst2_selection.jsonl", \
        split / "sst2_selection_long.jsonl"
    mr_train, mr_test = HERE / "data" / "mr_train.jsonl", HERE / "data" / "mr_test.jsonl"
    ag_train, ag_test = data / "agnews" / "train_subset5k.jsonl", split / "agnews_test2000.jsonl"
    sst2_dev = data / "sst2" / "dev.jsonl"
    encoders = {"minilm-l6": a.minilm, "mpnet-base": a.mpnet}
    # MPNet's weights may still be arriving (they are staged in parts): its trainings wait for the file.
    out: list[Task] = [Task("wait:mpnet-base", "wait", {"path": str(Path(a.mpnet) / "config.json")})]

    def model(name, backbone, train_data, eval_data, epochs, preset=None, init=None, after=(), rows=None,
              priority=2, **extra):
        if a.smoke:  # wiring check only: a few rows, one epoch
            rows, epochs = 160, 1
        settings = {"data": str(train_data), "eval_data": str(eval_data) if eval_data else None,
                    "model": init or encoders[backbone], "epochs": epochs, "max_train_rows": rows, "seed": 0,
                    **BACKBONES[backbone], **extra}
        if preset:
            settings["preset"] = "robust"
        waits = [f"wait:{backbone}"] if backbone == "mpnet-base" else []
        out.append(Task(f"train:{name}", "train", {"name": name, "out": str(runs / "models" / name),
                                                   "backbone": backbone, "settings": settings},
                        after=list(after) + waits, priority=priority))

    def scored(name, dataset, report, n_attack, recipes=RECIPES, split_name="report", limit=None):
        if a.smoke:
            n_attack = limit = 4
        base = {"model": str(runs / "models" / name), "name": name, "dataset": dataset, "split": split_name,
                "data": str(report)}
        out.append(Task(f"clean:{name}:{split_name}", "clean", {**base, "n": limit}, after=[f"train:{name}"],
                        priority=2))
        for recipe in recipes:
            out.append(Task(f"attack:{name}:{split_name}:{recipe}", "attack", {**base, "recipe": recipe,
                                                                                 "n": n_attack},
                            after=[f"train:{name}"], priority=3 if split_name == "selection" else 4))

    # 1. selection on SST-2 train (MiniLM)
    model("sst2-minilm-standard", "minilm-l6", sst2_rest, sst2_held, 2, priority=0)
    scored("sst2-minilm-standard", "sst2", sst2_long, a.select_attack_n, split_name="selection")
    for key, variant in VARIANTS.items():
        name = f"sst2-minilm-robust-{key}"
        model(name, "minilm-l6", sst2_rest, sst2_held, 2, preset=True, priority=0, **variant)
        scored(name, "sst2", sst2_long, a.select_attack_n, split_name="selection")
    out.append(Task("select", "select", {"runs": str(runs), "variants": list(VARIANTS)},
                    after=[t.id for t in out if t.args.get("split") == "selection" or t.kind == "train"],
                    priority=0))

    # 2. report: standard models start at once; preset models once the winner is known
    robust = ["select"]
    scored("sst2-minilm-standard", "sst2", sst2_dev, None)
    for backbone, tag in (("minilm-l6", "minilm"), ("mpnet-base", "mpnet")):
        if backbone == "mpnet-base":
            model("sst2-mpnet-standard", backbone, sst2_rest, sst2_held, 2, rows=a.mpnet_sst2_rows)
            scored("sst2-mpnet-standard", "sst2", sst2_dev, None)
            model("sst2-mpnet-robust", backbone, sst2_rest, sst2_held, 2, rows=a.mpnet_sst2_rows, preset=True,
                  after=robust, winner=True, priority=0)
            scored("sst2-mpnet-robust", "sst2", sst2_dev, None)
        model(f"mr-{tag}-standard", backbone, mr_train, None, 3)
        scored(f"mr-{tag}-standard", "mr", mr_test, None)
        model(f"mr-{tag}-robust", backbone, mr_train, None, 3, preset=True, after=robust, winner=True)
        scored(f"mr-{tag}-robust", "mr", mr_test, None)
    # AG News (MiniLM): standard, preset from the plain encoder, preset continued from the SST-2 preset model
    ag = {"max_length": 128}
    model("agnews-minilm-standard", "minilm-l6", ag_train, None, 3, **ag)
    model("agnews-minilm-robust", "minilm-l6", ag_train, None, 3, preset=True, after=robust, winner=True, **ag)
    model("agnews-minilm-robust-transfer", "minilm-l6", ag_train, None, 3, preset=True, winner=True,
          init="@winner-model", after=robust, **ag)
    for name in ("agnews-minilm-standard", "agnews-minilm-robust", "agnews-minilm-robust-transfer"):
        scored(name, "agnews", ag_test, a.agnews_attack_n)
    # the winner's own dev scores
    base = {"model": "@winner-model", "name": "sst2-minilm-robust", "dataset": "sst2", "split": "report",
            "data": str(sst2_dev)}
    cap = 4 if a.smoke else None
    out.append(Task("clean:sst2-minilm-robust:report", "clean", {**base, "n": cap}, after=robust, priority=2))
    for recipe in RECIPES:
        out.append(Task(f"attack:sst2-minilm-robust:report:{recipe}", "attack", {**base, "recipe": recipe, "n": cap},
                        after=robust, priority=4))
    return out


def prepare_data(a: argparse.Namespace) -> None:
    """The held-out SST-2 rows and the AG News report rows, written once under ``RUNS/data``."""
    sys.path.insert(0, str(HERE.parents[1]))
    from benchmarks.robust_training.grid import split_selection

    folder = Path(a.runs) / "data"
    if (folder / "agnews_test2000.jsonl").exists():
        return
    rest, held = split_selection(Path(a.data) / "sst2" / "train.jsonl", 2000, 0, folder)
    rest.rename(folder / "sst2_rest.jsonl")
    held.rename(folder / "sst2_selection.jsonl")
    rows = (folder / "sst2_selection.jsonl").read_text().splitlines()
    long = [r for r in rows if len(json.loads(r)["text"].split()) >= 8]
    (folder / "sst2_selection_long.jsonl").write_text("\n".join(long) + "\n")
    test = (Path(a.data) / "agnews" / "test.jsonl").read_text().splitlines()[:2000]
    (folder / "agnews_test2000.jsonl").write_text("\n".join(test) + "\n")


# ------------------------------------------------------------------ one task, in a worker process
def run_task(task: dict, results: Path) -> dict:
    started = time.perf_counter()
    kind, args = task["kind"], task["args"]
    runs = results.parent
    if kind == "train":
        row = _train(args, runs)
    elif kind == "clean":
        row = _clean(args, runs)
    elif kind == "attack":
        row = _attack(args, runs)
    else:
        raise ValueError(kind)
    row.update(task=task["id"], seconds=round(time.perf_counter() - started, 1))
    return row


def _winner(runs: Path) -> str:
    return json.loads((runs / "results" / "select.json").read_text())["winner"]


def _resolve(value, runs: Path):
    if value == "@winner-model":
        return str(runs / "models" / f"sst2-minilm-robust-{_winner(runs)}")
    return value


def _train(args: dict, runs: Path) -> dict:
    from textarmor import TextArmorConfig, train

    settings = dict(args["settings"])
    settings["model"] = _resolve(settings["model"], runs)
    if settings.pop("winner", False):
        variant = VARIANTS[_winner(runs)]
        settings["method_options"] = {**settings.get("method_options", {}), **variant.get("method_options", {})}
        settings["defense_options"] = {**settings.get("defense_options", {}), **variant.get("defense_options", {})}
    data = settings.pop("data")
    result = train(data, out_dir=args["out"], overwrite=True, progress=False, **settings)
    config = TextArmorConfig.load(result.model_dir)
    training = config.training
    return {"kind": "train", "name": args["name"], "backbone": args["backbone"], "settings": settings,
            "train_data": data, "train_rows": training["train_rows"], "method": training["method"],
            "preset": training.get("preset"), "objective": training["objective"], "defense": config.defense,
            "epoch_seconds": training.get("cost", {}).get("epoch_seconds"),
            "seconds_per_epoch": training["seconds_per_epoch"], "eval_metrics": result.metrics,
            "augment_rounds": training.get("objective_report", {}).get("augment", {}).get("rounds")}


def _rows(path: str, limit: int | None) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return rows[:limit] if limit else rows


def _clean(args: dict, runs: Path) -> dict:
    import numpy as np

    from textarmor import Classifier

    clf = Classifier.from_pretrained(_resolve(args["model"], runs), tokenize_processes=0)
    rows = _rows(args["data"], args.get("n"))
    probs = clf.predict_proba([r["text"] for r in rows])
    labels = np.array([clf.labels.index(r["label"]) for r in rows])
    return {"kind": "clean", "name": args["name"], "dataset": args["dataset"], "split": args["split"],
            "n": len(rows), "clean_acc": round(100 * float((probs.argmax(1) == labels).mean()), 2),
            "passes_per_input": round(getattr(clf, "passes_per_input", 1.0) or 1.0, 3),
            "defense": clf.defense.describe() if hasattr(clf, "defense") else None}


def _attack(args: dict, runs: Path) -> dict:
    from textarmor import Classifier
    from textarmor.attacks import attack

    clf = Classifier.from_pretrained(_resolve(args["model"], runs), cache_size=500_000, tokenize_processes=0)
    rows = _rows(args["data"], args.get("n"))
    folder = runs / "attacks" / args["task_dir"] if "task_dir" in args else None
    report = attack(clf, rows, recipe=args["recipe"], out_dir=folder, resume=folder is not None and folder.exists())
    s = report.summary()
    return {"kind": "attack", "name": args["name"], "dataset": args["dataset"], "split": args["split"],
            "recipe": args["recipe"], "n": s["total"], "successful": s["successful"], "failed": s["failed"],
            "skipped": s["skipped"], "acc_under": s["accuracy_under_attack"],
            "original_accuracy": s["original_accuracy"], "success_rate": s["attack_success_rate"],
            "avg_queries": s["avg_queries"], "perturbed_word_pct": s["avg_perturbed_word_pct"],
            "defense": clf.defense.describe() if hasattr(clf, "defense") else None}


def select(results: Path, variants: list[str]) -> dict:
    """The selection rule (module docstring) over the selection split's results."""
    found: dict[str, dict] = {}
    epochs: dict[str, float] = {}
    for path in results.glob("*.json"):
        row = json.loads(path.read_text())
        if row.get("split") == "selection":
            found.setdefault(row["name"], {})[row.get("recipe", "clean")] = row.get("acc_under", row.get("clean_acc"))
        if row.get("kind") == "train" and row.get("epoch_seconds"):
            epochs[row["name"]] = sum(row["epoch_seconds"]) / len(row["epoch_seconds"])
    standard = found.get("sst2-minilm-standard", {}).get("clean")
    standard_epoch = epochs.get("sst2-minilm-standard")
    table = {}
    for key in variants:
        name = f"sst2-minilm-robust-{key}"
        scores = found.get(name, {})
        attacks = [scores.get(r) for r in RECIPES]
        complete = None not in attacks
        table[key] = {"clean": scores.get("clean"), "mean": round(sum(attacks) / len(attacks), 2) if complete else None,
                      "min": min(attacks) if complete else None, **{r: scores.get(r) for r in RECIPES},
                      "epoch_time_ratio": round(epochs[name] / standard_epoch, 2)
                      if name in epochs and standard_epoch else None}
    eligible = [k for k, v in table.items() if v["clean"] is not None and v["mean"] is not None
                and standard is not None and v["clean"] >= standard - 1.5
                and (v["epoch_time_ratio"] is None or v["epoch_time_ratio"] <= 3.0)]
    winner = max(eligible, key=lambda k: (table[k]["mean"], table[k]["clean"])) if eligible else variants[0]
    return {"kind": "select", "winner": winner, "standard_clean": standard, "variants": table,
            "rule": "clean >= standard - 1.5 and epoch time <= 3x standard's (side by side); max mean over the "
                    "four attacks; ties by clean", "eligible": eligible}


# ------------------------------------------------------------------ the scheduler
def plan(a: argparse.Namespace) -> None:
    prepare_data(a)
    results = Path(a.runs) / "results"
    results.mkdir(parents=True, exist_ok=True)
    _write(Path(a.runs) / "plan.json", {"device": a.device_name or _device(), "command": " ".join(sys.argv),
                                        "select_attack_n": a.select_attack_n, "agnews_attack_n": a.agnews_attack_n,
                                        "mpnet_sst2_rows": a.mpnet_sst2_rows, "variants": VARIANTS,
                                        "backbones": BACKBONES})
    logs = Path(a.runs) / "logs"
    logs.mkdir(exist_ok=True)
    todo = {t.id: t for t in tasks(a) if not (results / _file(t.id)).exists()}
    done = {p.stem for p in results.glob("*.json")}
    running: dict[str, subprocess.Popen] = {}
    failed: set[str] = set()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(a.threads)}
    while todo or running:
        for tid, proc in list(running.items()):
            if proc.poll() is not None:
                del running[tid]
                (done if proc.returncode == 0 else failed).add(_file(tid).removesuffix(".json"))
                print(f"[{time.strftime('%H:%M:%S')}] {'done' if proc.returncode == 0 else 'FAILED'} {tid}", flush=True)
        ready = sorted((t for t in todo.values() if all(_file(d).removesuffix(".json") in done for d in t.after)),
                       key=lambda t: (t.priority, t.id))
        blocked = [t for t in todo.values() if any(_file(d).removesuffix(".json") in failed for d in t.after)]
        for t in blocked:
            print(f"skipped {t.id}: a task it needs failed", flush=True)
            failed.add(_file(t.id).removesuffix(".json"))
            del todo[t.id]
        for t in [t for t in todo.values() if t.kind == "wait" and Path(t.args["path"]).exists()]:
            done.add(_file(t.id).removesuffix(".json"))
            del todo[t.id]
        for t in ready:
            if t.kind == "wait":
                continue
            if t.kind == "select":
                row = select(results, t.args["variants"])
                _write(results / _file(t.id), row)
                done.add(_file(t.id).removesuffix(".json"))
                print(f"selected {row['winner']}: {json.dumps(row['variants'])}", flush=True)
                del todo[t.id]
                continue
            if len(running) >= a.jobs:
                break
            # Trainings still to come keep slots free: a queue of attacks must not delay the models they wait for.
            trainings_left = any(o.kind == "train" for o in todo.values())
            if t.kind != "train" and trainings_left and sum(k.startswith("attack:") or k.startswith("clean:")
                                                               for k in running) >= a.jobs - a.reserve:
                continue
            spec = json.dumps({**asdict(t), "args": {**t.args, "task_dir": _file(t.id).removesuffix(".json")}
                               if t.kind == "attack" else t.args})
            log = (logs / _file(t.id).replace(".json", ".log")).open("w")
            running[t.id] = subprocess.Popen([sys.executable, __file__, "task", spec, "--results", str(results)],
                                             stdout=log, stderr=subprocess.STDOUT, env=env)
            del todo[t.id]
            print(f"[{time.strftime('%H:%M:%S')}] start {t.id}", flush=True)
        time.sleep(1)
    print(f"finished: {len(done)} results, {len(failed)} failed", flush=True)


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name()}, {os.cpu_count()} CPU cores"
    return f"CPU, {os.cpu_count()} cores"


def _file(task_id: str) -> str:
    return task_id.replace(":", "__") + ".json"


def _write(path: Path, row: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1) + "\n")
    tmp.replace(path)  # a result file exists only once complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="run every task of the plan (skipping those already done)")
    p.add_argument("--data", required=True, help="the shared data folder (sst2/, agnews/)")
    p.add_argument("--minilm", required=True)
    p.add_argument("--mpnet", required=True)
    p.add_argument("--runs", required=True)
    p.add_argument("--jobs", type=int, default=12)
    p.add_argument("--threads", type=int, default=2, help="torch threads per worker process")
    p.add_argument("--reserve", type=int, default=5, help="slots kept for trainings while any is still to come")
    p.add_argument("--select-attack-n", type=int, default=200)
    p.add_argument("--agnews-attack-n", type=int, default=500)
    p.add_argument("--mpnet-sst2-rows", type=int, default=16000)
    p.add_argument("--device-name", default="")
    p.add_argument("--smoke", action="store_true", help="check the wiring: 160 training rows, one epoch, 4 "
                                                         "sentences per score (numbers mean nothing)")
    t = sub.add_parser("task", help=argparse.SUPPRESS)
    t.add_argument("spec")
    t.add_argument("--results", required=True)
    a = parser.parse_args()
    if a.command == "task":
        spec = json.loads(a.spec)
        row = run_task(spec, Path(a.results))
        _write(Path(a.results) / _file(spec["id"]), row)
        print(json.dumps(row))
        return
    plan(a)


if __name__ == "__main__":
    main()
