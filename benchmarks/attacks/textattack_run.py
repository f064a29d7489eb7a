"""Run a TextAttack recipe on a textarmor model dir and print one result row as JSON (runs in .venv-textattack).

Settings matched to textarmor's recipes: the recipe's own constraints plus MaxModificationRate(0.3); stop
words are NLTK's "english" list, which the Makefile writes from scikit-learn's list (textarmor's list).
    NLTK_DATA=... .venv-textattack/bin/python benchmarks/attacks/textattack_run.py MODEL DATA RECIPE N
"""
from __future__ import annotations

import argparse
import json
import math
import time
from importlib.metadata import version

import textattack
from textattack.attack_recipes import DeepWordBugGao2018, PWWSRen2019
from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult
from textattack.constraints.pre_transformation import MaxModificationRate
from textattack.metrics import AttackQueries, AttackSuccessRate, WordsPerturbed
from transformers import AutoModelForSequenceClassification, AutoTokenizer

RECIPES = {"deepwordbug": DeepWordBugGao2018, "pwws": PWWSRen2019}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("data")
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("n", type=int)
    parser.add_argument("--max-modify-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
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

    wrapper = textattack.models.wrappers.HuggingFaceModelWrapper(model, tokenizer)
    recipe = RECIPES[args.recipe].build(wrapper)
    constraints = recipe.pre_transformation_constraints + recipe.constraints
    attack = textattack.Attack(recipe.goal_function, constraints + [MaxModificationRate(args.max_modify_rate)],
                               recipe.transformation, recipe.search_method)
    attack_args = textattack.AttackArgs(num_examples=len(rows), random_seed=args.seed, silent=True,
                                        disable_stdout=True, query_budget=None)
    started, cpu_started = time.perf_counter(), time.process_time()
    results = textattack.Attacker(attack, dataset, attack_args).attack_dataset()
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
        "device": "cpu",
    }))


def _num(value) -> float | None:
    """Rounded, with TextAttack's NaN (no successful attack to average over) as null."""
    return None if value is None or math.isnan(float(value)) else round(float(value), 2)


if __name__ == "__main__":
    main()
