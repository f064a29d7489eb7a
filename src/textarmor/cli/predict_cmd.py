from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from textarmor.cli import app


@app.command("predict")
def predict(
    model_dir: str = typer.Argument(..., help="Model directory (or alias / hub id)."),
    input: str = typer.Argument("-", help="TXT (one text a line), CSV/TSV or JSONL file; '-' reads stdin."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Top scores under this are marked "
                                              "uncertain and get the abstain label (default: textarmor.json's)."),
    abstain_label: Optional[str] = typer.Option(None, "--abstain-label", help="Label of uncertain rows "
                                                "(default null)."),
    top_k: int = typer.Option(1, "--top-k", help="Also list the K best labels with scores."),
    function_to_apply: Optional[str] = typer.Option(None, "--function-to-apply",
                                                    help="softmax | sigmoid | none (default from the model)."),
    all_scores: bool = typer.Option(False, "--all-scores", help="Add every label's score to each row."),
    out: Optional[Path] = typer.Option(None, "--out", help="JSONL or CSV (by suffix); default: JSONL on stdout."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Input format txt|csv|tsv|jsonl (default: suffix)."),
    text_column: str = typer.Option("text", "--text-column"),
    text_pair_column: Optional[str] = typer.Option(None, "--text-pair-column"),
    batch_tokens: int = typer.Option(16384, "--batch-tokens", help="Token budget per forward pass."),
    strict: bool = typer.Option(False, "--strict", help="Fail on empty texts instead of skipping them."),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Classify texts in batches, streaming: constant memory, output in input order.

    Examples:

        textarmor predict runs/sst2 reviews.txt --threshold 0.8 --out predictions.jsonl

        echo "a gripping, funny film" | textarmor predict runs/sst2 - --top-k 2
    """
    from textarmor.prediction import predict_file

    summary = predict_file(model_dir, input, out=out, threshold=threshold, top_k=top_k,
                           function_to_apply=function_to_apply, all_scores=all_scores, abstain_label=abstain_label,
                           fmt=fmt, text_column=text_column, text_pair_column=text_pair_column, strict=strict,
                           overwrite=overwrite, max_tokens_per_batch=batch_tokens)
    where = f" -> {summary.output}" if summary.output else ""
    typer.echo(f"{summary.rows} predicted, {summary.uncertain} uncertain, {summary.skipped} empty skipped{where}",
               err=True)
