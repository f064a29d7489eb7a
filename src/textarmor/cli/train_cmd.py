from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from textarmor.cli import app


@app.command("train")
def train(
    data: str = typer.Option(..., "--data", help="Training data: CSV/TSV/JSONL/Parquet, a saved datasets folder, "
                             "or builtin:sst2."),
    out: Path = typer.Option(..., "--out", help="Model directory to write (Hugging Face layout + textarmor.json)."),
    model: str = typer.Option("minilm-l6", "--model", help="Backbone: alias (see `textarmor models`), local "
                              "folder or hub id."),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", help="Evaluated each epoch; default: the bundled "
                                            "dev set for builtin:sst2, else 10% of the training rows."),
    method: str = typer.Option("standard", "--method", help="Training objective: standard."),
    epochs: float = typer.Option(3, "--epochs"),
    lr: float = typer.Option(5e-5, "--lr", help="Peak learning rate (linear warm-up 6%, then linear decay)."),
    batch_size: int = typer.Option(32, "--batch-size"),
    max_length: int = typer.Option(128, "--max-length", help="Truncate inputs to this many tokens."),
    seed: int = typer.Option(42, "--seed"),
    early_stopping: Optional[int] = typer.Option(None, "--early-stopping", help="Stop after N epochs without "
                                                 "a better eval accuracy."),
    max_train_rows: Optional[int] = typer.Option(None, "--max-train-rows", help="Train on a random subset."),
    text_column: str = typer.Option("text", "--text-column"),
    label_column: str = typer.Option("label", "--label-column"),
    text_pair_column: Optional[str] = typer.Option(None, "--text-pair-column", help="Second text of a pair "
                                                   "(NLI, paraphrase)."),
    strict: bool = typer.Option(False, "--strict", help="Fail on empty texts instead of skipping them."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT (only once the new model is done)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from OUT.partial."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow model code from the hub."),
) -> None:
    """Fine-tune a sequence classifier and save a model directory.

    Every epoch is evaluated and the best one kept; per-epoch metrics are written to
    OUT.partial/metrics.json as they are produced, then to OUT/metrics.json.

    Examples:

        textarmor train --data builtin:sst2 --out runs/sst2 --epochs 2 --lr 1e-4

        textarmor train --data reviews.csv --text-column review --label-column stars --out runs/stars

        textarmor train --data mnli.jsonl --text-column premise --text-pair-column hypothesis --out runs/nli
    """
    from textarmor.training import train as run_training

    result = run_training(data, out_dir=out, model=model, eval_data=eval_data, method=method, epochs=epochs,
                          learning_rate=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                          early_stopping=early_stopping, max_train_rows=max_train_rows, text_column=text_column,
                          label_column=label_column, text_pair_column=text_pair_column, strict=strict,
                          overwrite=overwrite, resume=resume, trust_remote_code=trust_remote_code)
    best = result.metrics
    typer.echo(f"best epoch {best.get('epoch')}: eval accuracy {best.get('accuracy', float('nan')):.4f}, "
               f"macro-F1 {best.get('macro_f1', float('nan')):.4f} ({result.train_seconds:.0f} s)")
    typer.echo(f"model saved to {result.model_dir}")
