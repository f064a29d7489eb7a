"""Attack results and their summary, with TextAttack's metric definitions.

- original accuracy = (total − skipped) / total
- accuracy under attack = failed / total
- attack success rate = successful / (successful + failed); skipped examples are excluded
- perturbed word % = words changed / words of the original, averaged over successful attacks only
- average queries = model queries per example (the original text included), over non-skipped examples
All rates are percentages, as TextAttack prints them.
"""
from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("successful", "failed", "skipped")


@dataclass
class AttackResult:
    """One attacked example. ``index`` is its row in the attacked data; labels are label names."""

    index: int
    status: str
    original_text: str
    perturbed_text: str
    ground_truth: str
    original_label: str
    perturbed_label: str
    original_score: float  # probability of the ground-truth label before the attack
    perturbed_score: float  # ... and after it
    num_words: int
    words_changed: list[dict[str, Any]] = field(default_factory=list)  # {"index", "original", "perturbed"}
    queries: int = 0

    @property
    def perturbed_word_pct(self) -> float:
        return 100.0 * len(self.words_changed) / self.num_words if self.num_words else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> AttackResult:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


@dataclass
class AttackReport:
    """All results of a run plus how it was run (recipe, settings) and how long it took."""

    results: list[AttackResult]
    recipe: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    timed_examples: int | None = None  # examples attacked within wall_seconds (fewer than all on a resume)
    rows_dropped: int = 0  # data rows left out before the attack for an empty text or label

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in STATUSES}

    def summary(self) -> dict[str, Any]:
        c = self.counts()
        total = len(self.results)
        attacked = c["successful"] + c["failed"]
        successes = [r for r in self.results if r.status == "successful"]
        not_skipped = [r for r in self.results if r.status != "skipped"]
        return {
            "recipe": self.recipe,
            "total": total,
            **c,
            "original_accuracy": _pct(total - c["skipped"], total),
            "accuracy_under_attack": _pct(c["failed"], total),
            "attack_success_rate": _pct(c["successful"], attacked),
            "avg_perturbed_word_pct": _mean([r.perturbed_word_pct for r in successes]),
            "avg_num_words": _mean([r.num_words for r in self.results]),
            "avg_queries": _mean([r.queries for r in not_skipped]),
            "wall_seconds": round(self.wall_seconds, 3),
            "examples_per_second": (round((self.timed_examples if self.timed_examples is not None else total)
                                          / self.wall_seconds, 4) if self.wall_seconds > 0 else None),
            "rows_dropped": self.rows_dropped,
            "settings": self.settings,
        }

    def write_summary(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.summary(), indent=2) + "\n")

    def to_html(self) -> str:
        """A self-contained page: the summary, then each attacked example with changed words marked."""
        s = self.summary()
        rows = []
        for r in sorted(self.results, key=lambda r: r.index):
            if r.status == "skipped":
                continue
            changed = {c["index"] for c in r.words_changed}
            rows.append(
                f'<section class="{r.status}"><h3>#{r.index} · {r.status} · {html.escape(r.ground_truth)}'
                f" → {html.escape(r.perturbed_label)} ({len(changed)} words, {r.queries} queries)</h3>"
                f"<p><b>original</b> ({r.original_score:.2f}) {_marked(r.original_text, changed, 'del')}</p>"
                f"<p><b>perturbed</b> ({r.perturbed_score:.2f}) {_marked(r.perturbed_text, changed, 'ins')}</p>"
                "</section>")
        metrics = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                          for k, v in s.items() if k != "settings")
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>textarmor attack report</title><style>"
            "body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse}th,td{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}"
            "section{border-left:4px solid #999;padding:0 1em;margin:1em 0}section.successful{border-color:#c33}"
            "section.failed{border-color:#393}h3{font-size:1em;margin:.4em 0}"
            "del{background:#fdd;text-decoration:none}ins{background:#dfd;text-decoration:none;font-weight:600}"
            f"</style></head><body><h1>Attack report: {html.escape(self.recipe)}</h1><table>{metrics}</table>"
            f"<h2>Examples ({len(rows)} attacked)</h2>{''.join(rows)}</body></html>\n")


def _marked(text: str, changed: set[int], tag: str) -> str:
    from textarmor.attacks.text import split_words

    words, seps = split_words(text)
    parts = [html.escape(seps[0])]
    for i, (word, sep) in enumerate(zip(words, seps[1:])):
        w = html.escape(word)
        parts += [f"<{tag}>{w}</{tag}>" if i in changed else w, html.escape(sep)]
    return "".join(parts)


def _pct(num: int, den: int) -> float | None:
    return round(100.0 * num / den, 2) if den else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None
