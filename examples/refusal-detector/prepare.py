"""Turn XSTest v2 completions into train/dev/test JSONL for a binary refusal detector, split by prompt.

Every prompt of XSTest was answered by five LLMs; its five completions go to the same split, so no
prompt is seen in training and again in test (a detector could otherwise learn the prompt's topic).

    python prepare.py --data ../../../shared/data/refusal/xstest_v2_completions.jsonl --out runs/refusal/data
"""
from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

# partial_refusal ("I can't help with X, however ...") is a refusal for the job a refusal detector does:
# flagging responses where the model declined at least part of what was asked. It is 7.8% of the rows,
# too few for a third class at this size.
LABELS = {"compliance": "compliance", "refusal": "refusal", "partial_refusal": "refusal"}
SPLITS = (("train", 0.6), ("dev", 0.2), ("test", 0.2))


def first_words(text: str, max_words: int | None) -> str:
    """The opening of a response: refusals announce themselves in the first sentences."""
    words = text.split()
    return " ".join(words if max_words is None else words[:max_words])


def split_by_prompt(rows: list[dict], seed: int = 0) -> dict[str, list[dict]]:
    """Assign whole prompts to train/dev/test (60/20/20 of the prompts), rows shuffled within each split."""
    prompts = sorted({r["prompt_id"] for r in rows})
    random.Random(seed).shuffle(prompts)
    bounds, start = {}, 0
    for i, (name, share) in enumerate(SPLITS):
        end = len(prompts) if i == len(SPLITS) - 1 else start + round(share * len(prompts))
        bounds.update(dict.fromkeys(prompts[start:end], name))
        start = end
    out: dict[str, list[dict]] = {name: [] for name, _ in SPLITS}
    for row in rows:
        out[bounds[row["prompt_id"]]].append(row)
    for i, name in enumerate(out):
        random.Random(seed + 1 + i).shuffle(out[name])  # attacks and samples take the first rows
    return out


def prepare(data: str | Path, out: str | Path, *, max_words: int | None = 48, seed: int = 0,
            train_rows: int | None = None, eval_rows: int | None = None) -> dict[str, dict[str, int]]:
    """Write ``train/dev/test.jsonl`` (``text``, ``label``, ``prompt_id``, ``model``) under ``out``;
    ``train_rows``/``eval_rows`` cap the sizes (for quick runs). Returns label counts per split."""
    rows = []
    for line in Path(data).read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            rows.append({"text": first_words(raw["text"], max_words), "label": LABELS[raw["label"]],
                         "prompt_id": raw["prompt_id"], "model": raw["model"]})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, split in split_by_prompt(rows, seed).items():
        cap = train_rows if name == "train" else eval_rows
        split = split[:cap] if cap else split
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in split), encoding="utf-8")
        counts[name] = dict(sorted(Counter(r["label"] for r in split).items()))
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="xstest_v2_completions.jsonl")
    parser.add_argument("--out", required=True, help="Folder for train/dev/test.jsonl")
    parser.add_argument("--max-words", type=int, default=48, help="Keep the first N words of each response")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(prepare(args.data, args.out, max_words=args.max_words, seed=args.seed), indent=2))


if __name__ == "__main__":
    main()
