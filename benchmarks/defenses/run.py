"""Inference-time defences benchmark: clean accuracy, accuracy under attack and forward-pass cost.

SST-2 dev (872 sentences) is split once at random (seed 0) into a tuning part (first 272 of the permutation)
and a report part (the other 600). ``tune`` measures the clean accuracy of candidate settings on the tuning
part only, and picks, per defence family, the strongest perturbation whose clean cost there is at most 1.5
points (the rule is fixed before any attack runs: it never looks at accuracy under attack). ``report``
measures the chosen settings on the report part: clean accuracy on all 600, accuracy under each attack on
the first ``--attack-n`` of them (every attack queries the defended model), forward passes per input, and for
``smooth`` with certificates the fraction certified at radius 1, 2 and 3 words.

Runbook (2-core CPU; the GPU run is the lead's, same commands with ``--device-name``):

    PYTHONPATH=src nice -n 10 python benchmarks/defenses/run.py tune
    PYTHONPATH=src nice -n 10 python benchmarks/defenses/run.py report --attack-n 50
    PYTHONPATH=src nice -n 10 python benchmarks/defenses/run.py certify --certify-n 100 --certify-samples 50

On the shared CPU the published rows ran as separate processes side by side (``--only SETTING --threads 1
--out /tmp/part.json``), folded in with ``python benchmarks/defenses/table.py --merge /tmp/part*.json``.

Writes ``benchmarks/results/defenses.json`` (rows keyed by phase and setting) and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from textarmor import Classifier
from textarmor.attacks import attack
from textarmor.data import LabelMap, load_dataset
from textarmor.defenses import Mix, defend, defense_metrics

MODEL = "/work/main/runs/demo-sst2"
RECIPES = ("deepwordbug", "pwws")
MAX_CLEAN_COST = 1.5  # points of clean accuracy a defence may cost (the goal)

# Candidate settings, weakest first within each family; `tune` keeps the last one within MAX_CLEAN_COST.
CANDIDATES = {
    "smooth-mask": [("smooth", {"k": 8, "mode": "mask", "rate": r}) for r in (0.1, 0.2, 0.3, 0.4)],
    "smooth-synonym": [("smooth", {"k": 8, "mode": "synonym", "rate": r}) for r in (0.2, 0.4, 0.6)],
    "tta": [("tta", {"augmentations": "repair"}),
            *[("tta", {"augmentations": "repair,synonyms", "n": 4, "rate": r}) for r in (0.1, 0.2, 0.3)]],
}


def split(clf: Classifier) -> tuple[tuple[list[str], np.ndarray], tuple[list[str], np.ndarray]]:
    dataset, _ = load_dataset("builtin:sst2-dev")
    texts = list(dataset["text"])
    labels = np.asarray(LabelMap(clf.labels).encode(dataset["label"], source="sst2-dev"))
    order = np.random.default_rng(0).permutation(len(texts))
    tune, report = order[:272], order[272:]
    return ([texts[i] for i in tune], labels[tune]), ([texts[i] for i in report], labels[report])


def build(base: Classifier, name: str | None, options: dict):
    if name is None:
        return base
    if name == "mix":  # the cheap second model: the same model behind typo repair (no robust model exists yet)
        robust = defend(base, "tta", cache_size=200_000, augmentations="repair")
        return defend(base, Mix(robust=robust, weight=options["weight"]), cache_size=200_000)
    return defend(base, name, cache_size=200_000, **options)


def label(name: str | None, options: dict) -> str:
    if name is None:
        return "none"
    return name + "(" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")"


def clean(clf, texts, labels) -> tuple[float, float, float]:
    before = getattr(clf, "forward_passes", clf.num_queries)
    started = time.perf_counter()
    accuracy = float((clf.predict_proba(texts, calibrated=False).argmax(1) == labels).mean())
    passes = (getattr(clf, "forward_passes", clf.num_queries) - before) / len(texts)
    return accuracy, passes, time.perf_counter() - started


def tune(base: Classifier, args) -> list[dict]:
    (texts, labels), _ = split(base)
    reference, _, _ = clean(base, texts, labels)
    rows, chosen = [], {}
    for family, settings in CANDIDATES.items():
        for name, options in settings:
            accuracy, passes, seconds = clean(build(base, name, options), texts, labels)
            cost = round(100 * (reference - accuracy), 2)
            print(f"{family:15s} {label(name, options):60s} clean {100 * accuracy:.2f} (cost {cost})", flush=True)
            rows.append({"phase": "tune", "setting": label(name, options), "family": family, "defense": name,
                         "options": options, "n": len(texts), "clean_acc": round(100 * accuracy, 2),
                         "clean_cost_points": cost, "passes_per_input": passes, "seconds": round(seconds, 1)})
            if cost <= MAX_CLEAN_COST:
                chosen[family] = {"defense": name, "options": options}
    rows.append({"phase": "tune", "setting": "chosen", "undefended_clean_acc": round(100 * reference, 2),
                 "chosen": chosen, "rule": f"strongest candidate per family with clean cost <= {MAX_CLEAN_COST} "
                                           "points on the 272 tuning sentences"})
    return rows


def report(base: Classifier, args) -> list[dict]:
    _, (texts, labels) = split(base)
    chosen = json.loads(args.tuning.read_text())["rows"] if args.tuning.exists() else []
    picked = next((r["chosen"] for r in chosen if r.get("setting") == "chosen"), {})
    settings = [(None, {})] + [(c["defense"], c["options"]) for c in picked.values()]
    settings += [("tta", {"augmentations": "repair"})]  # ablation: typo repair alone, one pass
    settings += [("mix", {"weight": w}) for w in args.mix_weights]
    if args.only:  # in the order given
        settings = [s for want in args.only for s in settings if want in (label(*s), s[0] or "none")]
    rows_in = [{"text": t, "label": base.labels[y]} for t, y in zip(texts, labels)]
    out = []
    reference = None
    for name, options in settings:
        clf = build(base, name, options)
        accuracy, passes, seconds = clean(clf, texts, labels)
        reference = accuracy if name is None else reference
        row = {"phase": "report", "setting": label(name, options), "defense": name or "none", "options": options,
               "n": len(texts), "clean_acc": round(100 * accuracy, 2), "passes_per_input": round(passes, 3),
               "attack_n": args.attack_n, "acc_under": {}, "attack_forward_passes_per_example": {},
               "attack_seconds": {}}
        for recipe in RECIPES:
            before = getattr(clf, "forward_passes", clf.num_queries)
            result = attack(clf, rows_in, recipe=recipe, n=args.attack_n, seed=0).summary()
            row["acc_under"][recipe] = result["accuracy_under_attack"]
            row["attack_forward_passes_per_example"][recipe] = round(
                (getattr(clf, "forward_passes", clf.num_queries) - before) / args.attack_n, 1)
            row["attack_seconds"][recipe] = result["wall_seconds"]
            print(f"{row['setting']:60s} {recipe}: {result['accuracy_under_attack']:.1f}%", flush=True)
        row["device"] = args.device_name
        out.append(row)
        _merge(args.out, [row])  # keep what is done if a later setting is interrupted
    return out


def certify(base: Classifier, args) -> list[dict]:
    _, (texts, labels) = split(base)
    texts, labels = texts[:args.certify_n], labels[:args.certify_n]
    rows = []
    for rate in args.certify_rates:
        options = {"k": 8, "mode": "mask", "rate": rate, "certify": True, "certify_samples": args.certify_samples}
        clf = defend(base, "smooth", cache_size=10_000, **options)
        accuracy, passes, _ = clean(clf, texts, labels)
        predicted = clf.predict_proba(texts, calibrated=False).argmax(1)
        info = defense_metrics(clf, texts, None, predicted, labels)["certificates"]
        row = {"phase": "certify", "setting": label("smooth", options), "defense": "smooth", "options": options,
               "n": len(texts), "clean_acc": round(100 * accuracy, 2), "alpha": info["alpha"],
               "certified_fraction": info["certified_fraction"], "certified_accuracy": info["certified_accuracy"],
               "device": args.device_name}
        print(row, flush=True)
        rows.append(row)
        _merge(args.out, [row])
    return rows


def _merge(path: Path, rows: list[dict]) -> None:
    existing = json.loads(path.read_text())["rows"] if path.exists() else []
    keys = {(r["phase"], r["setting"]) for r in rows}
    kept = [r for r in existing if (r.get("phase"), r.get("setting")) not in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": "inference-time defences", "model": MODEL,
                                "data": "SST-2 dev (builtin:sst2-dev), split 272 tuning / 600 report (seed 0)",
                                "rows": kept + rows}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["tune", "report", "certify"])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--attack-n", type=int, default=50)
    parser.add_argument("--mix-weights", type=float, nargs="*", default=[0.5])
    parser.add_argument("--only", nargs="*", help="report only these settings (labels or defence names)")
    parser.add_argument("--certify-n", type=int, default=200)
    parser.add_argument("--certify-samples", type=int, default=100)
    parser.add_argument("--certify-rates", type=float, nargs="*", default=[0.3, 0.9])
    parser.add_argument("--device-name", default=f"{platform.machine()} CPU, 2 cores (shared)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/defenses.json"))
    parser.add_argument("--tuning", type=Path, default=Path("benchmarks/results/defenses.json"),
                        help="where `tune` wrote the chosen settings")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 per process when "
                        "running several settings side by side)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    base = Classifier.from_pretrained(args.model, cache_size=200_000, max_tokens_per_batch=4096)
    rows = {"tune": tune, "report": report, "certify": certify}[args.phase](base, args)
    if args.phase == "tune":
        _merge(args.out, rows)


if __name__ == "__main__":
    main()
