"""The fixed MR split of the robustness benchmark: 80% to train on, 20% to report on, stratified, seed 0.

    python benchmarks/robustness/make_splits.py ../shared/data/mr/mr.jsonl

writes ``data/mr_train.jsonl`` and ``data/mr_test.jsonl`` beside this file (committed: rerunning gives the
same files).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mr", type=Path, help="mr.jsonl of the shared data folder")
    args = parser.parse_args()
    lines = [line for line in args.mr.read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = [json.loads(line)["label"] for line in lines]
    train, test = train_test_split(lines, test_size=0.2, random_state=0, stratify=labels)
    (HERE / "data").mkdir(exist_ok=True)
    for name, part in (("mr_train.jsonl", train), ("mr_test.jsonl", test)):
        (HERE / "data" / name).write_text("\n".join(part) + "\n", encoding="utf-8")
        print(name, len(part))


if __name__ == "__main__":
    main()
