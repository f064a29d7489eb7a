"""TextAttack's numbers for the robustness benchmark's models: TextAttack 0.3.11 (its own venv) and textarmor attack
the same model directory, behind the defence it stores, on the same first N report sentences, on this CPU.

    python benchmarks/robustness/textattack_check.py --model sst2-minilm-robust=DIR --data sst2-minilm-robust=DEV \\
        --recipes pwws deepwordbug --n 200 --out benchmarks/results/raw/robustness_textattack.json

Rows (``name``, ``recipe``, ``tool``, ``n``, ``acc_under``, counts, seconds) are appended to ``--out`` as each run
finishes, and a rerun skips the (name, recipe, tool) rows already there. ``summarize.py --textattack`` merges the
TextAttack rows into ``textattack_acc_under``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", required=True, help="NAME=MODEL_DIR")
    parser.add_argument("--data", nargs="+", required=True, help="NAME=REPORT_JSONL")
    parser.add_argument("--recipes", nargs="+", default=["pwws", "deepwordbug"])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--tools", nargs="+", default=["textattack", "textarmor"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--logs", type=Path, default=Path("runs/textattack-check"))
    args = parser.parse_args()
    models, data = dict(m.split("=", 1) for m in args.model), dict(d.split("=", 1) for d in args.data)
    done = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    have = {(r["name"], r["recipe"], r["tool"].split()[0]) for r in done}
    args.logs.mkdir(parents=True, exist_ok=True)
    wordnet = subprocess.check_output([sys.executable, "-c", "from textarmor.attacks.resources import "
                                       "wordnet_data_root; print(wordnet_data_root())"], text=True).strip()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": f"{ROOT / 'src'}:{os.environ.get('TEXTATTACK_EXTRA_PATH', '')}",
           "NLTK_DATA": f"{wordnet}:{ROOT / '.venv-textattack' / 'nltk_data'}"}
    for name, model in models.items():
        for recipe in args.recipes:
            for tool in args.tools:
                if (name, recipe, tool) in have:
                    continue
                if tool == "textattack":
                    command = [str(ROOT / ".venv-textattack" / "bin" / "python"),
                               str(ROOT / "benchmarks" / "attacks" / "textattack_run.py"), model, data[name], recipe,
                               str(args.n), "--max-length", "128", "--log", str(args.logs / f"{name}-{recipe}.jsonl")]
                else:
                    command = [sys.executable, str(ROOT / "benchmarks" / "attacks" / "textarmor_run.py"), model,
                               data[name], recipe, str(args.n), "--device", "cpu"]
                output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
                row = json.loads(output.strip().splitlines()[-1])
                done.append({"name": name, "recipe": recipe, "tool": row["tool"], "n": row["n"],
                             "acc_under": row["accuracy_under_attack"], "successful": row["successful"],
                             "failed": row["failed"], "skipped": row["skipped"], "wall_s": row["wall_s"],
                             "defense": row.get("defense")})
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps({"benchmark": "robustness_textattack", "rows": done}, indent=2) + "\n")
                print(json.dumps(done[-1]), flush=True)


if __name__ == "__main__":
    main()
