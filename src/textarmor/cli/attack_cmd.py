from __future__ import annotations

from functools import partial
from pathlib import Path

import typer

from textarmor.cli import app
from textarmor.cli.defense_flags import DEFENSE_HELP, OPTION_HELP, defense_kwargs
from textarmor.errors import ParameterError


@app.command("attack")
def attack(
    model_dir: str = typer.Argument(..., help="Model directory (or alias / hub id)."),
    data: str = typer.Option(..., "--data", help="Labelled data: CSV/TSV/JSONL/Parquet or builtin:sst2-dev."),
    recipe: str = typer.Option(..., "--recipe", help="deepwordbug | pwws | textfooler | adaptive | typos | "
                                "charnoise (docs/attacks.md)."),
    n: int | None = typer.Option(None, "--n", help="Attack the first N examples (default: all)."),
    query_budget: int | None = typer.Option(None, "--query-budget", help="Most model queries per example."),
    max_modify_rate: float | None = typer.Option(None, "--max-modify-rate", help="Most words changed, as a share "
                                                 "(e.g. 0.3); default: no bound, as TextAttack's recipes."),
    seed: int = typer.Option(0, "--seed", help="Seeds the random edits (per example)."),
    out: Path | None = typer.Option(None, "--out", help="Folder for results.jsonl (written as examples "
                                       "finish), summary.json and report.html."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped."),
    target: str | None = typer.Option(None, "--target", help="Targeted attack toward this label."),
    concurrency: int | None = typer.Option(None, "--concurrency", help="Examples attacked at once (default 256; "
                                            "64 per actor call with --engine ray); more gives bigger model batches."),
    text_column: str = typer.Option("text", "--text-column"),
    label_column: str = typer.Option("label", "--label-column"),
    batch_tokens: int = typer.Option(16384, "--batch-tokens", help="Token budget per forward pass."),
    engine: str = typer.Option("local", "--engine", help="local (this process) | ray (examples spread over "
                               "a pool of Ray actors, --concurrency examples per actor call)."),
    address: str | None = typer.Option(None, "--address", help="ray: cluster address, auto or ray://HOST:10001 "
                                          "(default: a local Ray)."),
    num_actors: int | None = typer.Option(None, "--num-actors", help="ray: attack actors (default: one per "
                                             "GPU, else one per CPU)."),
    gpus_per_actor: float | None = typer.Option(None, "--gpus-per-actor", help="ray: GPUs per actor (default 1 "
                                                   "where the cluster has GPUs, else 0)."),
    defense: str | None = typer.Option(None, "--defense", help=DEFENSE_HELP + " The attack queries the "
                                       "defended model."),
    defense_option: list[str] = typer.Option([], "--defense-option", help=OPTION_HELP),
) -> None:
    """Attack a classifier with an adversarial (or natural-noise) recipe; metrics as TextAttack defines them.

    Examples:

        textarmor attack runs/sst2 --data builtin:sst2-dev --recipe pwws --n 200 --out runs/pwws

        textarmor attack runs/sst2 --data builtin:sst2-dev --recipe pwws --n 200 --out runs/pwws --resume

        textarmor attack runs/sst2 --data builtin:sst2-dev --recipe textfooler --engine ray --address auto

        textarmor attack runs/sst2 --data builtin:sst2-dev --recipe deepwordbug --n 100 --defense tta
    """
    from textarmor.attacks import attack as run_attack
    from textarmor.cli.progress import AttackProgress

    if engine not in ("local", "ray"):
        raise ParameterError(f"--engine must be local or ray, got {engine!r}.")
    if engine == "ray":
        from textarmor.distributed import ray_attack

        run_attack = partial(ray_attack, address=address, num_actors=num_actors, gpus_per_actor=gpus_per_actor)
    if resume and out is None:
        raise ParameterError("--resume continues the run saved in --out; pass the --out folder of that run.")
    with AttackProgress() as progress:
        report = run_attack(model_dir, data, recipe=recipe, n=n, query_budget=query_budget,
                            max_modify_rate=max_modify_rate, seed=seed, out_dir=out, resume=resume, target=target,
                            concurrency=concurrency, text_column=text_column, label_column=label_column,
                            on_start=progress.start, on_result=progress.advance, max_tokens_per_batch=batch_tokens,
                            **defense_kwargs(defense, defense_option))
    s = report.summary()
    if report.rows_dropped:
        typer.echo(f"{report.rows_dropped} rows with an empty text or label left out of {data}", err=True)
    typer.echo(f"{recipe}: success rate {_fmt(s['attack_success_rate'])}%  accuracy {_fmt(s['original_accuracy'])}%"
               f" -> {_fmt(s['accuracy_under_attack'])}% under attack  perturbed words "
               f"{_fmt(s['avg_perturbed_word_pct'])}%  queries {_fmt(s['avg_queries'])}  "
               f"({s['successful']} successful, {s['failed']} failed, {s['skipped']} skipped)")
    if out is not None:
        typer.echo(f"results in {out}/ (results.jsonl, summary.json, report.html)")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"
