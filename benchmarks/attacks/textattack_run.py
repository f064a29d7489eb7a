"""Run a TextAttack recipe on a textarmor model dir and print one result row as JSON (runs in .venv-textattack).

Settings matched to textarmor's recipes: the recipe's own constraints (plus MaxModificationRate with
``--max-modify-rate``); stop
words are NLTK's "english" list, which the Makefile writes from scikit-learn's list (textarmor's list).
    NLTK_DATA=... .venv-textattack/bin/python benchmarks/attacks/textattack_run.py MODEL DATA RECIPE N [--log F]

A model directory that stores a rewrite defence (``textarmor train --preset robust``) is attacked behind it:
every text TextAttack queries is rewritten by textarmor's rewrite before the model sees it, as textarmor's
own attacks do (``--no-defense`` attacks the bare model). textarmor must be importable (``PYTHONPATH=src``).

``--log F`` appends one JSON line per example as TextAttack finishes it (status, queries, words changed,
elapsed seconds), so a run stopped early still counts: ``--row-from-log F`` prints the row of the examples
that finished, with TextAttack's metric definitions (skipped excluded from the success rate and the
queries; perturbed-word % over successes only).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from importlib.metadata import version
from pathlib import Path

import textattack
from textattack.attack_recipes import DeepWordBugGao2018, PWWSRen2019
from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult
from textattack.constraints.pre_transformation import MaxModificationRate
from textattack.loggers import Logger
from textattack.metrics import AttackQueries, AttackSuccessRate, WordsPerturbed
from transformers import AutoModelForSequenceClassification, AutoTokenizer

RECIPES = {"deepwordbug": DeepWordBugGao2018, "pwws": PWWSRen2019}
STATUS = {SuccessfulAttackResult: "successful", FailedAttackResult: "failed", SkippedAttackResult: "skipped"}


class JsonLinesLogger(Logger):
    """One line per finished example, flushed at once (TextAttack's own loggers write at the end)."""

    def __init__(self, path: str):
        super().__init__()
        self.out = open(path, "a", encoding="utf-8")
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def log_attack_result(self, result, examples_completed=None):
        original = result.original_result.attacked_text
        status = next((name for cls, name in STATUS.items() if isinstance(result, cls)), "other")
        changed = len(original.all_words_diff(result.perturbed_result.attacked_text)) if status == "successful" else 0
        self.out.write(json.dumps({
            "status": status, "num_queries": result.perturbed_result.num_queries, "num_words": len(original.words),
            "words_changed": changed, "elapsed_s": round(time.perf_counter() - self.started, 2),
            "cpu_s": round(time.process_time() - self.cpu_started, 2)}) + "\n")
        self.out.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("data")
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("n", type=int)
    parser.add_argument("--log", default=None, help="Append one JSON line per finished example to this file.")
    parser.add_argument("--max-modify-rate", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-defense", action="store_true", help="Attack the bare model, not the defence the "
                                                                    "model directory stores.")
    parser.add_argument("--max-length", type=int, default=None,
                        help="Set the tokenizer's model_max_length. TextAttack's HuggingFaceModelWrapper pads "
                             "EVERY input to it (512 for MiniLM by default); 128 covers all SST-2 dev texts.")
    args = parser.parse_args()

    model = AutoModelForSequenceClassification.from_pretrained(args.model_dir, use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    if args.max_length:
        tokenizer.model_max_length = args.max_length
    label2id = {name: int(i) for i, name in model.config.id2label.items()}
    with open(args.data, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines][: args.n]
    dataset = textattack.datasets.Dataset([(r["text"], label2id[r["label"]]) for r in rows])

    rewrite = None if args.no_defense else stored_rewrite(args.model_dir)
    wrapper = (DefendedModelWrapper(model, tokenizer, rewrite) if rewrite is not None
               else textattack.models.wrappers.HuggingFaceModelWrapper(model, tokenizer))
    recipe = RECIPES[args.recipe].build(wrapper)
    constraints = recipe.pre_transformation_constraints + recipe.constraints
    extra = [MaxModificationRate(args.max_modify_rate)] if args.max_modify_rate is not None else []
    attack = textattack.Attack(recipe.goal_function, constraints + extra,
                               recipe.transformation, recipe.search_method)
    attack_args = textattack.AttackArgs(num_examples=len(rows), random_seed=args.seed, silent=True,
                                        disable_stdout=True, query_budget=None)
    attacker = textattack.Attacker(attack, dataset, attack_args)
    if args.log:
        attacker.attack_log_manager = textattack.AttackArgs.create_loggers_from_args(attack_args)
        attacker.attack_log_manager.loggers.append(JsonLinesLogger(args.log))
    started, cpu_started = time.perf_counter(), time.process_time()
    results = attacker.attack_dataset()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started  # CPU seconds, all threads: steadier than wall time on a busy host

    rates = AttackSuccessRate().calculate(results)
    words = WordsPerturbed().calculate(results)
    queries = AttackQueries().calculate(results)
    counts = {kind: sum(isinstance(r, cls) for r in results) for kind, cls in
              [("successful", SuccessfulAttackResult), ("failed", FailedAttackResult),
               ("skipped", SkippedAttackResult)]}
    print(json.dumps({
        "recipe": args.recipe,
        "tool": "textattack " + version("textattack") + (f" (pad {args.max_length})" if args.max_length else ""),
        "n": len(results), **counts,
        "original_accuracy": _num(rates["original_accuracy"]),
        "success_rate": _num(rates["attack_success_rate"]),
        "accuracy_under_attack": _num(rates["attack_accuracy_perc"]),
        "perturbed_word_pct": _num(words["avg_word_perturbed_perc"]),
        "avg_queries": _num(queries["avg_num_queries"]),
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "examples_per_s": round(len(results) / wall, 4),
        "device": "cpu", "defense": "none" if rewrite is None else "rewrite (stored)",
    }))


class DefendedModelWrapper(textattack.models.wrappers.HuggingFaceModelWrapper):
    """The model behind its stored rewrite: TextAttack queries the whole defended system."""

    def __init__(self, model, tokenizer, rewrite):
        super().__init__(model, tokenizer)
        self.rewrite = rewrite

    def __call__(self, text_input_list):
        return super().__call__([self.rewrite(t) for t in text_input_list])


def stored_rewrite(model_dir: str):
    """The rewrite of the defence ``textarmor.json`` stores, or None (no defence stored)."""
    path = Path(model_dir) / "textarmor.json"
    stored = json.loads(path.read_text()).get("defense") if path.exists() else None
    if not stored:
        return None
    from textarmor.defenses import make_defense

    rewriter = getattr(make_defense(stored["name"], **stored.get("options", {})), "rewriter", None)
    if rewriter is None:
        raise SystemExit(f"{model_dir} stores the defence {stored['name']!r}, which has no text rewrite to put in "
                         "front of TextAttack's model wrapper; pass --no-defense to attack the bare model.")
    return rewriter


def row_from_log(path: str, recipe: str, tool: str) -> dict:
    """The result row of the examples a ``--log`` file holds (a run stopped early: those that finished)."""
    with open(path, encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    count = {k: sum(r["status"] == k for r in records) for k in ("successful", "failed", "skipped")}
    attacked = [r for r in records if r["status"] != "skipped"]
    wins = [r for r in records if r["status"] == "successful"]
    total, wall = len(records), records[-1]["elapsed_s"]
    return {"recipe": recipe, "tool": tool, "n": total, **count,
            "original_accuracy": round(100 * (total - count["skipped"]) / total, 2),
            "success_rate": round(100 * count["successful"] / len(attacked), 2) if attacked else None,
            "accuracy_under_attack": round(100 * count["failed"] / total, 2),
            "perturbed_word_pct": round(sum(100 * r["words_changed"] / r["num_words"] for r in wins) / len(wins), 2)
            if wins else None,
            "avg_queries": round(sum(r["num_queries"] for r in attacked) / len(attacked), 2) if attacked else None,
            "wall_s": wall, "cpu_s": records[-1]["cpu_s"], "examples_per_s": round(total / wall, 4), "device": "cpu"}


def _num(value) -> float | None:
    """Rounded, with TextAttack's NaN (no successful attack to average over) as null."""
    return None if value is None or math.isnan(float(value)) else round(float(value), 2)


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 5 and sys.argv[1] == "--row-from-log":  # --row-from-log LOG RECIPE TOOL
        print(json.dumps(row_from_log(*sys.argv[2:])))
    else:
        main()
