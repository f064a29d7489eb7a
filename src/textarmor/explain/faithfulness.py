"""Faithfulness of explanations: AOPC comprehensiveness and sufficiency, as the ferret benchmark defines them.

ferret (Attanasio et al. 2023, ``ferret/evaluators/faithfulness_measures.py``), for one text explained for
class ``c`` with probability ``p(x)_c``, at each threshold ``k`` of 10%, 20%, ..., 100%:

- comprehensiveness: remove the ``⌊k·n⌋`` highest-scored units, ``p(x)_c − p(x without them)_c``;
- sufficiency: keep only those units, ``p(x)_c − p(only them)_c``;
- thresholds that select no unit, or the same units as the previous threshold, are skipped; the AOPC
  is the mean over the remaining thresholds (0 when none remain).

High comprehensiveness (the top words matter) and low sufficiency (the top words alone suffice) mean a
faithful explanation. Units are ranked by signed score (ferret's default, ``only_pos=False``).
Departure from ferret: the units are words (the tokenizer's words, see ``encoding``), cut out of the text
and re-scored through the Classifier, instead of subword ids deleted and decoded; so removing a word
removes all its pieces, and the scores are the calibrated probabilities the Classifier reports.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from textarmor.classifier import Classifier
from textarmor.explain.encoding import keep_words, remove_words

THRESHOLDS = tuple(range(10, 101, 10))  # percent of words; ferret's np.arange(0.1, 1.1, 0.1)


@dataclass
class Faithfulness:
    """AOPC scores per method: ``summary[method]`` holds the means over texts, ``per_text[method]`` one
    ``{"aopc_comprehensiveness", "aopc_sufficiency"}`` per text."""

    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    per_text: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    thresholds: tuple[int, ...] = THRESHOLDS

    def best_method(self) -> str | None:
        """The method with the highest comprehensiveness minus sufficiency (``random`` excluded)."""
        ranked = [(row["aopc_comprehensiveness"] - row["aopc_sufficiency"], name)
                  for name, row in self.summary.items() if name != "random"]
        return max(ranked)[1] if ranked else None

    def to_dict(self) -> dict:
        return {"thresholds_percent": list(self.thresholds), "summary": self.summary, "per_text": self.per_text,
                "best_method": self.best_method()}


def selections(scores: np.ndarray, thresholds: Sequence[int] = THRESHOLDS) -> list[np.ndarray]:
    """The word indices kept at each threshold: top ``⌊k·n/100⌋`` by score, empty and repeated sets skipped."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    chosen, last = [], None
    for k in thresholds:
        count = (k * len(order)) // 100
        if count == 0 or count == last:
            continue
        chosen.append(order[:count])
        last = count
    return chosen


def faithfulness(classifier: Classifier, explanations: Sequence, *, thresholds: Sequence[int] = THRESHOLDS,
                 chunk_size: int = 64) -> Faithfulness:
    """AOPC comprehensiveness and sufficiency of every method in ``explanations`` (from :func:`explain`).

    Each text is scored for the class it was explained for. The variant texts of ``chunk_size`` explanations
    go to ``classifier.predict_proba`` at once, which batches them by its token budget.
    """
    explanations = list(explanations)
    methods = list(explanations[0].word_scores) if explanations else []
    per_text: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    for start in range(0, len(explanations), chunk_size):
        chunk = explanations[start:start + chunk_size]
        texts, plan = [], []  # plan: (method, explanation position, n variants) in the order of texts
        for e in chunk:
            texts.append(e.text)
        for method in methods:
            for pos, e in enumerate(chunk):
                picks = selections(np.asarray(e.word_scores[method]), thresholds)
                texts.extend(remove_words(e.text, e.spans, p) for p in picks)
                texts.extend(keep_words(e.text, e.spans, p) for p in picks)
                plan.append((method, pos, len(picks)))
        probs = classifier.predict_proba(texts)
        full = [probs[pos, e.target_index] for pos, e in enumerate(chunk)]
        cursor = len(chunk)
        for method, pos, n in plan:
            t = chunk[pos].target_index
            removed = probs[cursor:cursor + n, t]
            kept = probs[cursor + n:cursor + 2 * n, t]
            cursor += 2 * n
            per_text[method].append({
                "aopc_comprehensiveness": float(np.mean(full[pos] - removed)) if n else 0.0,
                "aopc_sufficiency": float(np.mean(full[pos] - kept)) if n else 0.0})
    summary = {m: {key: float(np.mean([row[key] for row in rows])) if rows else 0.0
                   for key in ("aopc_comprehensiveness", "aopc_sufficiency")}
               for m, rows in per_text.items()}
    return Faithfulness(summary=summary, per_text=per_text, thresholds=tuple(thresholds))
