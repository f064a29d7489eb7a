"""Explanations as files: JSON, one self-contained HTML page of heatmaps, and PNG figures (matplotlib).

Colours: red supports the explained class, blue speaks against it; each method's row is scaled by its own
largest absolute score in that text, since methods' scales differ by orders of magnitude.
"""
from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textarmor.explain.api import Comparison, Explanation
from textarmor.explain.faithfulness import Faithfulness

METHOD_TITLES = {"ig": "integrated gradients", "grad_input": "gradient × input", "rollout": "attention rollout",
                 "attention": "attention", "occlusion": "occlusion", "random": "random (baseline)"}


def scaled(scores: Sequence[float]) -> np.ndarray:
    """Scores divided by their largest absolute value (all zeros stay zeros)."""
    values = np.asarray(scores, dtype=np.float64)
    peak = np.abs(values).max() if values.size else 0.0
    return values / peak if peak > 0 else values


def _colour(value: float) -> str:
    """White to red for positive, white to blue for negative, as an rgba background."""
    alpha = min(1.0, abs(float(value))) * 0.85
    return f"rgba(214,39,40,{alpha:.3f})" if value >= 0 else f"rgba(31,119,180,{alpha:.3f})"


def to_json(explanations: Sequence[Explanation] = (), comparisons: Sequence[Comparison] = (),
            faithfulness: Faithfulness | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if explanations:
        out["explanations"] = [e.to_dict() for e in explanations]
    if comparisons:
        out["comparisons"] = [c.to_dict() for c in comparisons]
    if faithfulness is not None:
        out["faithfulness"] = faithfulness.to_dict()
    return out


# ------------------------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h2{font-size:1.05em;margin:1.6em 0 .4em}
table.heat{border-collapse:collapse;margin:.3em 0 1em}
table.heat td{padding:3px 6px;vertical-align:top}
td.method{font-size:.85em;color:#555;white-space:nowrap;text-align:right}
span.w{padding:1px 3px;margin:0 1px;border-radius:3px;line-height:1.9;display:inline-block}
span.changed{outline:2px solid #111}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1.5em}
.meta{font-size:.85em;color:#555}
table.faith{border-collapse:collapse}table.faith td,table.faith th{border:1px solid #ccc;padding:3px 8px}
"""


def _heat_rows(e: Explanation, changed: set[int] = frozenset()) -> str:
    rows = []
    for method, scores in e.word_scores.items():
        cells = []
        for j, (word, value) in enumerate(zip(e.words, scaled(scores))):
            cls = "w changed" if j in changed else "w"
            cells.append(f'<span class="{cls}" style="background:{_colour(value)}" '
                         f'title="{scores[j]:.4g}">{html.escape(word)}</span>')
        title = html.escape(METHOD_TITLES.get(method, method))
        rows.append(f'<tr class="row-{html.escape(method)}"><td class="method">{title}</td>'
                    f'<td>{"".join(cells)}</td></tr>')
    return f'<table class="heat">{"".join(rows)}</table>'


def _meta(e: Explanation) -> str:
    delta = "" if e.convergence_delta is None else f" · IG convergence delta {e.convergence_delta:.2e}"
    cut = " · truncated to the model's maximum length" if e.truncated else ""
    return (f'<div class="meta">predicted <b>{html.escape(e.label)}</b> ({e.score:.3f}) · explaining '
            f'<b>{html.escape(e.target)}</b>{delta}{cut}</div>')


def _faithfulness_table(f: Faithfulness) -> str:
    rows = "".join(f"<tr><td>{html.escape(METHOD_TITLES.get(m, m))}</td><td>{r['aopc_comprehensiveness']:.4f}</td>"
                   f"<td>{r['aopc_sufficiency']:.4f}</td></tr>" for m, r in f.summary.items())
    best = f.best_method()
    return ("<h2>Faithfulness (AOPC, ferret's definitions)</h2><table class='faith'><tr><th>method</th>"
            "<th>comprehensiveness ↑</th><th>sufficiency ↓</th></tr>" + rows + "</table>"
            + (f"<p class='meta'>Most faithful here: <b>{html.escape(METHOD_TITLES.get(best, best))}</b></p>"
               if best else ""))


def to_html(explanations: Sequence[Explanation] = (), comparisons: Sequence[Comparison] = (),
            faithfulness: Faithfulness | None = None, title: str = "textarmor explanations") -> str:
    """One page, no external files or scripts: a heatmap per text (one row per method), comparisons as
    two columns with the changed words outlined, and the faithfulness table when given."""
    parts = [(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
             "<p class='meta'>Red supports the explained class, blue speaks against it; each row is scaled to "
             "its own largest score (hover a word for the raw value).</p>")]
    if faithfulness is not None:
        parts.append(_faithfulness_table(faithfulness))
    for i, e in enumerate(explanations):
        parts.append(f"<h2>Text {i + 1}</h2>{_meta(e)}{_heat_rows(e)}")
    for i, c in enumerate(comparisons):
        changed_o = {j for row in c.changes for j in row["original_index"]}
        changed_a = {j for row in c.changes for j in row["adversarial_index"]}
        flipped = "label flipped" if c.label_flipped else "label kept"
        moved = "; ".join(
            f"{' '.join(row['original']) or '∅'} → {' '.join(row['adversarial']) or '∅'} ("
            + ", ".join(f"{METHOD_TITLES.get(m, m)} {v:+.3g}" for m, v in row["moved"].items()) + ")"
            for row in c.changes)
        parts.append(
            f"<h2>Pair {i + 1}: {flipped}; {html.escape(c.original.target)} score {c.original.score:.3f} → "
            f"{c.adversarial_target_score:.3f}</h2><div class='meta'>changed words, with the change of their "
            f"support for {html.escape(c.original.target)} per method: {html.escape(moved)}</div>"
            f"<div class='pair'><div><b>original</b>{_meta(c.original)}{_heat_rows(c.original, changed_o)}</div>"
            f"<div><b>adversarial</b>{_meta(c.adversarial)}{_heat_rows(c.adversarial, changed_a)}</div></div>")
    parts.append("</body></html>")
    return "\n".join(parts)


# -------------------------------------------------------------------------------------------------- PNG
def _heatmap(ax, e: Explanation, heading: str, changed: set[int] = frozenset()) -> None:
    methods = list(e.word_scores)
    grid = np.stack([scaled(e.word_scores[m]) for m in methods]) if e.words else np.zeros((len(methods), 1))
    ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_yticks(range(len(methods)), [METHOD_TITLES.get(m, m) for m in methods], fontsize=8)
    ax.set_xticks(range(len(e.words)), e.words, rotation=60, ha="right", fontsize=8)
    for j in changed:
        ax.get_xticklabels()[j].set_fontweight("bold")
        ax.axvline(j - 0.5, color="k", lw=0.8)
        ax.axvline(j + 0.5, color="k", lw=0.8)
    ax.set_title(f"{heading}: {e.label} ({e.score:.2f}), explaining {e.target}", fontsize=9)


def save_png(path: str | Path, explanation: Explanation | None = None, comparison: Comparison | None = None,
             dpi: int = 110) -> Path:
    """Write one text's heatmap (methods × words), or a comparison's two heatmaps stacked, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    panels = [(explanation, "text", set())] if comparison is None else [
        (comparison.original, "original", {j for r in comparison.changes for j in r["original_index"]}),
        (comparison.adversarial, "adversarial", {j for r in comparison.changes for j in r["adversarial_index"]})]
    width = max(7.0, 0.45 * max(len(p[0].words) for p in panels) + 2.5)
    rows = len(panels[0][0].word_scores)
    fig, axes = plt.subplots(len(panels), 1, figsize=(min(width, 24.0), (0.35 * rows + 1.6) * len(panels)),
                             squeeze=False)
    for ax, (e, heading, changed) in zip(axes[:, 0], panels):
        _heatmap(ax, e, heading, changed)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def write_outputs(out_dir: str | Path, explanations: Sequence[Explanation] = (),
                  comparisons: Sequence[Comparison] = (), faithfulness: Faithfulness | None = None,
                  max_png: int = 20) -> list[Path]:
    """Write ``explanations.json``, ``explanations.html`` and PNGs for the first ``max_png`` texts/pairs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "explanations.json", out / "explanations.html"]
    written[0].write_text(json.dumps(to_json(explanations, comparisons, faithfulness), indent=1) + "\n",
                          encoding="utf-8")
    written[1].write_text(to_html(explanations, comparisons, faithfulness), encoding="utf-8")
    for i, e in enumerate(list(explanations)[:max_png]):
        written.append(save_png(out / f"text-{i + 1}.png", explanation=e))
    for i, c in enumerate(list(comparisons)[:max_png]):
        written.append(save_png(out / f"pair-{i + 1}.png", comparison=c))
    return written
