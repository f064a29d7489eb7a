from __future__ import annotations

import json
from pathlib import Path

import typer

from textarmor.cli import app
from textarmor.cli.defense_flags import DEFENSE_HELP, OPTION_HELP, defense_kwargs


@app.command("evaluate")
def evaluate(
    model_dir: str = typer.Argument(..., help="Model directory (or alias / hub id)."),
    data: str = typer.Option(..., "--data", help="Labelled data: CSV/TSV/JSONL/Parquet or builtin:sst2-dev."),
    threshold: float | None = typer.Option(None, "--threshold", help="Also report coverage and accuracy of "
                                              "predictions whose top score is at least this."),
    out: Path | None = typer.Option(None, "--out", help="Write the metrics as JSON here."),
    text_column: str = typer.Option("text", "--text-column"),
    label_column: str = typer.Option("label", "--label-column"),
    text_pair_column: str | None = typer.Option(None, "--text-pair-column"),
    batch_tokens: int | None = typer.Option(None, "--batch-tokens", help="Token budget per forward pass "
                                               "(default 131072 on a GPU, 1024 on a CPU)."),
    backend: str = typer.Option("auto", "--backend", help="auto | torch | onnx (auto: onnx for exported dirs)."),
    device: str | None = typer.Option(None, "--device", help="cuda, mps or cpu (default: the best present)."),
    report: Path | None = typer.Option(None, "--report", help="Write the multi-perspective robustness report "
                                       "(report.json, report.md, report.html) to this folder."),
    spec: Path | None = typer.Option(None, "--spec", help="YAML naming the report's sets and settings "
                                     "(keys as the flags below; flags override it)."),
    shift: list[str] = typer.Option([], "--shift", help="NAME=FILE labelled distribution-shift set (repeatable)."),
    ood: list[str] = typer.Option([], "--ood", help="NAME=FILE out-of-distribution texts (repeatable)."),
    attacks: str | None = typer.Option(None, "--attacks", help="Comma-separated recipes (default deepwordbug,pwws)."),
    attack_n: int | None = typer.Option(None, "--attack-n", help="Examples attacked per recipe (default 100)."),
    noise_rates: str | None = typer.Option(None, "--noise-rates", help="Typo rates (default 0.05,0.1,0.2)."),
    calibration_data: str | None = typer.Option(None, "--calibration-data", help="Held-out data to fit the "
                                                "temperature on (default: half of --data)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report folder."),
    defense: str | None = typer.Option(None, "--defense", help=DEFENSE_HELP + " With --report: adds a defence "
                                       "column (the attacks query the defended model)."),
    defense_option: list[str] = typer.Option([], "--defense-option", help=OPTION_HELP),
) -> None:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix and ECE (10 bins); with
    --report, the robustness report: shift, attacks, calibration, anomaly detection and natural noise.

    Examples:

        textarmor evaluate runs/sst2 --data builtin:sst2-dev --threshold 0.8 --out metrics.json

        textarmor evaluate runs/sst2 --data builtin:sst2-dev --report runs/sst2-report --ood trec=trec.jsonl \
            --shift imdb=imdb.jsonl --attacks deepwordbug,pwws --attack-n 200

        textarmor evaluate runs/sst2 --data builtin:sst2-dev --defense smooth --defense-option certify=true

        textarmor evaluate runs/sst2 --data builtin:sst2-dev --report runs/tta-report --defense tta
    """
    from textarmor.evaluation import evaluate as run_evaluation

    defended = defense_kwargs(defense, defense_option)

    if report is not None:
        from textarmor.evaluation.report import report_from_options

        result = report_from_options(model_dir, data, report, spec=spec, shift=shift, ood=ood, attacks=attacks,
                                     attack_n=attack_n, noise_rates=noise_rates, calibration_data=calibration_data,
                                     overwrite=overwrite, log=lambda msg: typer.echo(msg, err=True), **defended)
        typer.echo(result)
        return

    metrics = run_evaluation(model_dir, data, threshold=threshold, text_column=text_column,
                             label_column=label_column, text_pair_column=text_pair_column,
                             max_tokens_per_batch=batch_tokens, backend=backend, device=device, **defended)
    typer.echo(f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  ECE {metrics['ece']:.4f}"
               f"  (n={metrics['n']})")
    if metrics["rows_skipped"]:
        typer.echo(f"{metrics['rows_skipped']} rows with an empty text or label left out (--strict refuses them)",
                   err=True)
    for name, row in metrics["per_class"].items():
        typer.echo(f"  {name:<16} precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
                   f"F1 {row['f1']:.3f}  support {row['support']}")
    if "defense" in metrics:
        info = metrics["defense"]
        typer.echo(f"defence {info['name']}: {info['passes_per_input']:g} forward passes per input")
        for r, frac in info.get("certificates", {}).get("certified_fraction", {}).items():
            typer.echo(f"  certified at radius {r}: {frac:.4f} "
                       f"(certified and correct {info['certificates']['certified_accuracy'][r]:.4f})")
    if threshold is not None:
        sel = metrics["selective_accuracy"]
        typer.echo(f"threshold {threshold}: coverage {metrics['coverage']:.4f}, accuracy on accepted "
                   f"{'n/a' if sel is None else f'{sel:.4f}'}, uncertain {metrics['uncertain']}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(metrics, indent=2) + "\n")
        typer.echo(f"metrics written to {out}")
