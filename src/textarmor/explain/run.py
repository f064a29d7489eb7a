"""What ``textarmor explain`` does, as one library call: load, read inputs, explain, score, write."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textarmor.classifier import Classifier
from textarmor.errors import DataError, OutputExistsError, ParameterError
from textarmor.explain.api import Comparison, Explanation, check_methods, compare, explain
from textarmor.explain.faithfulness import Faithfulness, faithfulness
from textarmor.explain.methods import DEFAULT_METHODS
from textarmor.explain.render import to_json, write_outputs


@dataclass
class ExplainRun:
    """What :func:`explain_inputs` produced; ``files`` is empty when no output folder was given."""

    explanations: list[Explanation] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    faithfulness: Faithfulness | None = None
    files: list[Path] = field(default_factory=list)
    skipped_pairs: int = 0

    def to_json(self) -> dict[str, Any]:
        return to_json(self.explanations, self.comparisons, self.faithfulness)


def read_attack_pairs(path: str | os.PathLike) -> tuple[list[tuple[str, str]], int]:
    """``(original_text, perturbed_text)`` pairs from an attack results JSONL; rows without a perturbed text
    (skipped or failed attacks may leave it empty) are counted and left out."""
    from textarmor.data import iter_jsonl

    path = Path(path)
    if not path.exists():
        raise DataError(f"Attack results file '{path}' does not exist. Pass the JSONL an attack wrote.")
    pairs, skipped = [], 0
    for number, row in iter_jsonl(path):
        if "original_text" not in row:
            raise DataError(f"{path}, line {number}: no field 'original_text'; fields found: {sorted(row)}. "
                            "Attack results rows need 'original_text' and 'perturbed_text'.")
        original, perturbed = row["original_text"], row.get("perturbed_text")
        if not isinstance(perturbed, str) or not perturbed.strip() or perturbed == original:
            skipped += 1
            continue
        pairs.append((original, perturbed))
    return pairs, skipped


def read_texts(texts: Sequence[str] = (), input: str | os.PathLike | None = None,
               text_column: str = "text") -> list[str]:
    """Texts given directly plus those of an input file (TXT one per line, CSV/TSV, JSONL); blanks skipped."""
    from textarmor.prediction import iter_inputs

    out = [t for t in texts if t.strip()]
    if input is not None:
        out.extend(t for _, t, _ in iter_inputs(str(input), text_column=text_column)
                   if isinstance(t, str) and t.strip())
    return out


def explain_inputs(model: str | os.PathLike | Classifier, texts: Sequence[str] = (), *,
                   input: str | os.PathLike | None = None, pairs: Sequence[tuple[str, str]] = (),
                   attack_results: str | os.PathLike | None = None, methods: str | Sequence[str] = DEFAULT_METHODS,
                   with_faithfulness: bool = False, out: str | os.PathLike | None = None,
                   text_column: str = "text", device: str | None = None, dtype: str | None = None,
                   max_png: int = 20, overwrite: bool = False,
                   progress: bool = False, **options: Any) -> ExplainRun:
    """Explain texts (given and/or from ``input``) and original/adversarial pairs (given and/or from
    ``attack_results``); with ``with_faithfulness`` add AOPC scores per method (the ``random`` baseline
    is added for reference); with ``out`` write JSON, HTML and PNGs there.

    ``options`` go to :func:`~textarmor.explain.explain` (``n_steps``, ``internal_batch_size``,
    ``batch_size``, ``layer``, ``head``, ``target``, ``output``). ``dtype`` defaults to the Classifier's
    (float16 on a GPU); pass ``"float32"`` for integrated gradients with the smallest convergence delta.
    """
    names = check_methods(methods)
    if out is not None and (Path(out) / "explanations.json").exists() and not overwrite:
        raise OutputExistsError(f"'{out}' already holds explanations.json. Choose another --out folder or pass "
                                "--overwrite to replace it.")
    if with_faithfulness and "random" not in names:
        names.append("random")
    texts = read_texts(texts, input, text_column)
    pairs = list(pairs)
    skipped = 0
    if attack_results is not None:
        more, skipped = read_attack_pairs(attack_results)
        pairs.extend(more)
    if not texts and not pairs:
        raise ParameterError("Nothing to explain: pass texts, --input FILE, --compare ORIGINAL ADVERSARIAL or "
                             "--attack-results FILE" + (f" ({skipped} attack rows had no perturbed text)."
                                                        if skipped else "."))
    clf = model if isinstance(model, Classifier) else Classifier.from_pretrained(model, device=device, dtype=dtype)
    run = ExplainRun(skipped_pairs=skipped)
    if texts:
        run.explanations = explain(clf, texts, methods=names, progress=progress, **options)
    if pairs:
        run.comparisons = compare(clf, pairs, methods=names, progress=progress, **options)
    if with_faithfulness:
        explained = run.explanations + [e for c in run.comparisons for e in (c.original, c.adversarial)]
        run.faithfulness = faithfulness(clf, explained)
    if out is not None:
        run.files = write_outputs(out, run.explanations, run.comparisons, run.faithfulness, max_png=max_png)
    return run
