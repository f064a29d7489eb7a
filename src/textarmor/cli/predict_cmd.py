from __future__ import annotations

from functools import partial
from pathlib import Path

import typer

from textarmor.cli import app
from textarmor.cli.defense_flags import DEFENSE_HELP, OPTION_HELP, defense_kwargs
from textarmor.errors import ParameterError


@app.command("predict")
def predict(
    model_dir: str = typer.Argument(..., help="Model directory (or alias / hub id)."),
    input: str = typer.Argument("-", help="TXT (one text a line), CSV/TSV or JSONL file; '-' reads stdin."),
    threshold: float | None = typer.Option(None, "--threshold", help="Top scores under this are marked "
                                              "uncertain and get the abstain label (default: textarmor.json's)."),
    coverage: float | None = typer.Option(None, "--coverage", help="Conformal prediction sets at this "
                                          "coverage, e.g. 0.95 (needs `textarmor calibrate`); a text is "
                                          "uncertain unless its set is one label."),
    conformal_method: str = typer.Option("lac", "--conformal-method", help="lac (smallest sets) | aps "
                                         "(adaptive sets)."),
    abstain_label: str | None = typer.Option(None, "--abstain-label", help="Label of uncertain rows "
                                                "(default null)."),
    top_k: int = typer.Option(1, "--top-k", help="Also list the K best labels with scores."),
    function_to_apply: str | None = typer.Option(None, "--function-to-apply",
                                                    help="softmax | sigmoid | none (default from the model)."),
    all_scores: bool = typer.Option(False, "--all-scores", help="Add every label's score to each row."),
    out: Path | None = typer.Option(None, "--out", help="JSONL or CSV (by suffix); default: JSONL on stdout."),
    fmt: str | None = typer.Option(None, "--format", help="Input format txt|csv|tsv|jsonl (default: suffix)."),
    text_column: str = typer.Option("text", "--text-column"),
    text_pair_column: str | None = typer.Option(None, "--text-pair-column"),
    batch_tokens: int | None = typer.Option(None, "--batch-tokens", help="Token budget per forward pass "
                                               "(default 131072 on a GPU, 1024 on a CPU)."),
    backend: str = typer.Option("auto", "--backend", help="auto | torch | onnx (auto: onnx for exported dirs)."),
    device: str | None = typer.Option(None, "--device", help="cuda, mps or cpu (default: the best present)."),
    strict: bool = typer.Option(False, "--strict", help="Fail on empty texts instead of skipping them."),
    overwrite: bool = typer.Option(False, "--overwrite"),
    engine: str = typer.Option("local", "--engine", help="local (this process) | ray (Ray Data over a cluster; "
                               "INPUT may be a folder of shards, --out is a folder of JSONL shards)."),
    address: str | None = typer.Option(None, "--address", help="ray: cluster address, auto or ray://HOST:10001 "
                                          "(default: a local Ray)."),
    num_actors: int | None = typer.Option(None, "--num-actors", help="ray: Classifier actors (default: one per "
                                             "GPU, else one per CPU)."),
    gpus_per_actor: float | None = typer.Option(None, "--gpus-per-actor", help="ray: GPUs per actor (default 1 "
                                                   "where the cluster has GPUs, else 0)."),
    defense: str | None = typer.Option(None, "--defense", help=DEFENSE_HELP),
    defense_option: list[str] = typer.Option([], "--defense-option", help=OPTION_HELP),
) -> None:
    """Classify texts in batches, streaming: constant memory, output in input order.

    Examples:

        textarmor predict runs/sst2 reviews.txt --threshold 0.8 --out predictions.jsonl

        echo "a gripping, funny film" | textarmor predict runs/sst2 - --top-k 2

        textarmor predict runs/sst2 reviews.jsonl --coverage 0.95 --out sets.jsonl   (after calibrate)

        textarmor predict runs/sst2 shards/ --engine ray --address auto --num-actors 8 --out predictions/

        textarmor predict runs/sst2 reviews.txt --defense smooth --defense-option k=16 --defense-option rate=0.3
    """
    from textarmor.prediction import predict_file

    run = predict_file
    if engine not in ("local", "ray"):
        raise ParameterError(f"--engine must be local or ray, got {engine!r}.")
    if engine == "ray":
        from textarmor.distributed import ray_predict

        if out is None:
            raise ParameterError("--engine ray writes a folder of shards: pass --out FOLDER.")
        run = partial(ray_predict, address=address, num_actors=num_actors, gpus_per_actor=gpus_per_actor)
    summary = run(model_dir, input, out=out, threshold=threshold, top_k=top_k, function_to_apply=function_to_apply,
                  all_scores=all_scores, abstain_label=abstain_label, fmt=fmt, text_column=text_column,
                  text_pair_column=text_pair_column, strict=strict, overwrite=overwrite,
                  max_tokens_per_batch=batch_tokens, coverage=coverage, conformal_method=conformal_method,
                  backend=backend, device=device, **defense_kwargs(defense, defense_option))
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    where = f" -> {summary.output}" if summary.output else ""
    typer.echo(f"{summary.rows} predicted, {summary.uncertain} uncertain, {summary.skipped} empty skipped{where}",
               err=True)
