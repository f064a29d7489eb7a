"""Why an attack still wins against a canonicalising defence: attack the defended model on the *tuning*
sentences (never the report ones), then sort its successes by where they end and its swaps by whether
canonicalisation maps the original and the substitute word to the same code.

    PYTHONPATH=src python benchmarks/defenses/pwws_failures.py --model runs/demo-sst2 --canonical-rank 2000

Prints one JSON line: accuracy under attack; successes whose adversarial text leaves the base model unsure
(the gate opens, and the rewrite did not undo the swaps) or confident (the gate stays shut); swaps undone or
not; and the most frequent swaps left standing, with the GloVe rank of both words and their codes.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.defenses.run import DATA, MODEL, TUNE_SIZE, split  # noqa: E402

from textarmor import Classifier  # noqa: E402
from textarmor.attacks import attack  # noqa: E402
from textarmor.defenses import defend  # noqa: E402
from textarmor.defenses.canonical import SynonymCanonicaliser  # noqa: E402
from textarmor.defenses.tta import normalised_entropy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--recipe", default="pwws")
    parser.add_argument("--canonical-rank", type=int, default=2000)
    parser.add_argument("--entropy-threshold", type=float, default=0.5)
    parser.add_argument("--n", type=int, default=TUNE_SIZE, help="tuning sentences to attack")
    parser.add_argument("--top", type=int, default=20, help="swaps left standing to list")
    args = parser.parse_args()
    clf = Classifier.from_pretrained(args.model, device="cpu")
    (texts, labels), _ = split(clf, DATA, TUNE_SIZE)
    options = {"augmentations": "repair,canonical", "canonical_rank": args.canonical_rank,
               "entropy_threshold": args.entropy_threshold}
    rows = [{"text": t, "label": clf.labels[y]} for t, y in zip(texts, labels)]
    result = attack(defend(clf, "tta", **options), rows, recipe=args.recipe, n=args.n, seed=0)
    canonical = SynonymCanonicaliser(args.canonical_rank)  # the codes the defence's rewrite gives
    rank = canonical.rank
    ends, swaps, standing = collections.Counter(), collections.Counter(), collections.Counter()
    for r in result.results:
        if r.status != "successful":
            continue
        unsure = normalised_entropy(clf.predict_proba([r.perturbed_text]))[0] >= args.entropy_threshold
        ends["base unsure (gate open)" if unsure else "base confident (gate shut)"] += 1
        for change in r.words_changed:
            before, after = change["original"].lower(), change["perturbed"].lower()
            codes = canonical.canonical(before), canonical.canonical(after)
            swaps["undone" if codes[0] == codes[1] else "standing"] += 1
            if codes[0] != codes[1]:
                standing[f"{before} ({rank.get(before, '-')}) -> {after} ({rank.get(after, '-')}): "
                         f"codes {codes[0]} / {codes[1]}"] += 1
    print(json.dumps({"defence": options, "recipe": args.recipe, "n": args.n,
                      "accuracy_under_attack": result.summary()["accuracy_under_attack"],
                      "successes": dict(ends), "swaps": dict(swaps),
                      "standing": standing.most_common(args.top)}))


if __name__ == "__main__":
    main()
