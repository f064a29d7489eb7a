"""Rebuild the SST-2 sample bundled in ``src/textarmor/data/``.

    python scripts/make_sst2_sample.py --source ../shared/data/sst2 --rows 8000

The demo trains on a seeded random sample of the GLUE SST-2 train rows that have at least
``--min-words`` words (GLUE train is mostly short phrases; dev is whole sentences, so longer
rows carry more of the signal the dev set asks for) and evaluates on the full 872-row dev set.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("../shared/data/sst2"))
    parser.add_argument("--out", type=Path, default=Path("src/textarmor/data"))
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--min-words", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train = [json.loads(line) for line in (args.source / "train.jsonl").open(encoding="utf-8")]
    eligible = [row for row in train if len(row["text"].split()) >= args.min_words]
    sample = random.Random(args.seed).sample(eligible, args.rows)
    _write(args.out / "sst2_train.jsonl", sample)
    dev = [json.loads(line) for line in (args.source / "dev.jsonl").open(encoding="utf-8")]
    _write(args.out / "sst2_dev.jsonl", dev)
    print(f"wrote {len(sample)} train rows (of {len(eligible)} eligible) and {len(dev)} dev rows to {args.out}")


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({"text": row["text"], "label": row["label"]}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
