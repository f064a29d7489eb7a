from __future__ import annotations

import json
from typing import Optional

import typer

from textarmor.cli import app


@app.command("calibrate")
def calibrate(
    model_dir: str = typer.Argument(..., help="Model directory to calibrate (textarmor.json is updated)."),
    data: str = typer.Option(..., "--data", help="Held-out labelled data (a dev set, never the test set)."),
    holdout: float = typer.Option(0.5, "--holdout", help="Fraction kept aside to report ECE and coverage on."),
    seed: int = typer.Option(0, "--seed"),
    text_column: str = typer.Option("text", "--text-column"),
    label_column: str = typer.Option("label", "--label-column"),
    text_pair_column: Optional[str] = typer.Option(None, "--text-pair-column"),
    target_precision: Optional[float] = typer.Option(
        None, "--target-precision", help="Also store the decision threshold: the lowest whose accepted predictions "
                                         "are this accurate on the calibration rows (e.g. 0.98)."),
    target_coverage: Optional[float] = typer.Option(
        None, "--target-coverage", help="Or: the threshold that accepts this share of the rows (e.g. 0.9)."),
    abstain_label: Optional[str] = typer.Option(
        None, "--abstain-label", help="The label uncertain predictions take (stored; default: none, label null)."),
) -> None:
    """Fit temperature scaling and split-conformal scores (LAC and APS) and store them in the model.

    Afterwards scores are temperature-calibrated everywhere, and `predict --coverage 0.95` returns
    prediction sets that contain the true label at least 95% of the time on data like DATA.

    With --target-precision or --target-coverage it also chooses the decision threshold and stores it, so
    predict, evaluate and serve mark predictions under it as uncertain (with --abstain-label as their label).

    Examples:

        textarmor calibrate runs/sst2 --data dev.jsonl

        textarmor calibrate runs/sst2 --data dev.jsonl --target-precision 0.98 --abstain-label unsure
    """
    from textarmor.evaluation import calibrate as run_calibration

    report = run_calibration(model_dir, data, holdout=holdout, seed=seed, text_column=text_column,
                             label_column=label_column, text_pair_column=text_pair_column,
                             target_precision=target_precision, target_coverage=target_coverage,
                             abstain_label=abstain_label)
    typer.echo(f"temperature {report['temperature']:.3f} (fitted on {report['fit_rows']} rows)")
    held = report.get("holdout")
    if held:
        typer.echo(f"on {report['holdout_rows']} held-out rows: ECE {held['ece_before']:.4f} -> "
                   f"{held['ece_after']:.4f}, NLL {held['nll_before']:.4f} -> {held['nll_after']:.4f}")
        typer.echo("conformal coverage on held-out rows: " + json.dumps(held["conformal"]))
    chosen = report.get("threshold")
    if chosen:
        line = (f"threshold {chosen['threshold']:.4f}: accepts {chosen['coverage']:.1%} of the {chosen['rows']} "
                f"calibration rows, {chosen['precision']:.1%} of them correct")
        held_out = chosen.get("holdout")
        if held_out:
            line += (f"; on the {held_out['rows']} held-out rows {held_out['coverage']:.1%} accepted, "
                     f"{held_out['precision']:.1%} correct")
        typer.echo(line)
    typer.echo(f"saved to {model_dir}/textarmor.json")
