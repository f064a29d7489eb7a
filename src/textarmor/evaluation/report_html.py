"""Self-contained HTML for the robustness report: the summary table and matplotlib plots inlined as PNG."""
from __future__ import annotations

import base64
import html
import io
from typing import Any


def _figure_png(draw) -> str:
    import matplotlib

    matplotlib.use("Agg")  # headless: never open a window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=110)
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "<img alt='plot' src='data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode() + "'>"


def _reliability(ax, calibration: dict[str, Any]) -> None:
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="perfect")
    for key, colour in (("before", "#c33"), ("after", "#36c")):
        pts = calibration["reliability"][key]
        ax.plot([p["confidence"] for p in pts], [p["accuracy"] for p in pts], marker="o", color=colour,
                label=f"{key} temperature")
    ax.set(xlabel="confidence", ylabel="accuracy", title="Reliability diagram", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8)


def _attacks(ax, report: dict[str, Any]) -> None:
    names = list(report["adversarial"])
    clean = 100 * report["in_distribution"]["accuracy"]
    raw = [report["adversarial"][n]["raw"]["accuracy_under_attack"] for n in names]
    ax.bar(range(len(names)), raw, width=0.4, color="#c33", label="under attack")
    cal = [report["adversarial"][n].get("calibrated", {}).get("accuracy_under_attack") for n in names]
    paired = any(c is not None for c in cal)
    if paired:
        ax.bar([i + 0.4 for i in range(len(names))], [c or 0 for c in cal], width=0.4, color="#36c",
               label="under attack, calibrated scores")
    ax.axhline(clean, color="#393", ls="--", label="clean accuracy")
    ax.set_xticks([i + (0.2 if paired else 0.0) for i in range(len(names))], names)
    ax.set(ylabel="accuracy (%)", title="Accuracy under attack", ylim=(0, 100))
    ax.legend(fontsize=8)


def _noise(ax, report: dict[str, Any]) -> None:
    rates = [0.0] + [r["rate"] for r in report["noise"]]
    accs = [100 * report["in_distribution"]["accuracy"]] + [r["accuracy"] for r in report["noise"]]
    ax.plot(rates, accs, marker="o", color="#36c")
    ax.set(xlabel="share of words with a typo", ylabel="accuracy (%)", title="Accuracy against noise",
           ylim=(0, 100))


def _roc(ax, report: dict[str, Any]) -> None:
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
    for name, entry in report["ood"].items():
        for kind, style in (("msp", "-"), ("energy", ":")):
            roc = entry["roc"][kind]
            ax.plot(roc["fpr"], roc["tpr"], ls=style, label=f"{name} {kind} (AUROC {entry[kind]['auroc']:.3f})")
    ax.set(xlabel="false-positive rate (OOD accepted)", ylabel="true-positive rate", title="Anomaly detection")
    ax.legend(fontsize=7)


def _table(markdown: str) -> str:
    rows = [line.strip("|").split("|") for line in markdown.strip().splitlines() if not line.startswith("|---")]
    head, body = rows[0], rows[1:]
    return ("<table><tr>" + "".join(f"<th>{html.escape(c.strip())}</th>" for c in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in row) + "</tr>" for row in body)
            + "</table>")


def _blocks(markdown: str) -> str:
    """Markdown tables as HTML tables, other paragraphs as text (the summary may hold a defence table)."""
    return "".join(_table(block) if block.lstrip().startswith("|") else f"<p>{html.escape(block.strip())}</p>"
                   for block in markdown.strip().split("\n\n") if block.strip())


def render_html(report: dict[str, Any], markdown: str) -> str:
    plots = [("Calibration", _figure_png(lambda ax: _reliability(ax, report["calibration"])))]
    if report["adversarial"]:
        plots.append(("Adversarial robustness", _figure_png(lambda ax: _attacks(ax, report))))
    if report["noise"]:
        plots.append(("Natural noise", _figure_png(lambda ax: _noise(ax, report))))
    if report["ood"]:
        plots.append(("Anomaly detection", _figure_png(lambda ax: _roc(ax, report))))
    sections = "".join(f"<section><h2>{html.escape(title)}</h2>{img}</section>" for title, img in plots)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>textarmor robustness report</title><style>"
            "body{font:15px/1.5 system-ui,sans-serif;max-width:64em;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse}th,td{padding:3px 10px;text-align:left;border-bottom:1px solid #ddd}"
            "section{display:inline-block;vertical-align:top;margin:1em 1em 0 0}h2{font-size:1.1em}"
            "</style></head><body><h1>Robustness report</h1>"
            f"<p>Model labels: {html.escape(', '.join(report['labels']))}. In-distribution data: "
            f"{html.escape(str(report['spec']['data']))}.</p>{_blocks(markdown)}{sections}</body></html>\n")
