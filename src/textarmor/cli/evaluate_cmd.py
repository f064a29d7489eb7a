from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from textarmor.cli import app


@app.command("evaluate")
def evaluate(
    model_dir: str = typer.Argument(..., help="Model directory (or alias / hub id)."),
    data: str = typer.Option(..., "--data", help="Labelled data: CSV/TSV/JSONL/Parquet or builtin:sst2-dev."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Also report coverage and accuracy of "
                                              "predictions whose top score is at least this."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the metrics as JSON here."),
    text_column: str = typer.Option("text", "--text-column"),
    label_column: str = typer.Option("label", "--label-column"),
    text_pair_column: Optional[str] = typer.Option(None, "--text-pair-column"),
    batch_tokens: int = typer.Option(16384, "--batch-tokens", help="Token budget per forward pass."),
) -> None:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix and ECE (10 bins).

    Example:

        textarmor evaluate runs/sst2 --data builtin:sst2-dev --threshold 0.8 --out metrics.json
    """
    from textarmor.evaluation import evaluate as run_evaluation

    metrics = run_evaluation(model_dir, data, threshold=threshold, text_column=text_column,
                             label_column=label_column, text_pair_column=text_pair_column,
                             max_tokens_per_batch=batch_tokens)
    typer.echo(f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  ECE {metrics['ece']:.4f}"
               f"  (n={metrics['n']})")
    for name, row in metrics["per_class"].items():
        typer.echo(f"  {name:<16} precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
                   f"F1 {row['f1']:.3f}  support {row['support']}")
    if threshold is not None:
        sel = metrics["selective_accuracy"]
        typer.echo(f"threshold {threshold}: coverage {metrics['coverage']:.4f}, accuracy on accepted "
                   f"{'n/a' if sel is None else f'{sel:.4f}'}, uncertain {metrics['uncertain']}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(metrics, indent=2) + "\n")
        typer.echo(f"metrics written to {out}")
