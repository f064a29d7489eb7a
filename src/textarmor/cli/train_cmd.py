from __future__ import annotations

import os
from pathlib import Path

import typer

from textarmor.cli import app
from textarmor.training.catalogue import methods_help, parse_method_options
from textarmor.training.presets import presets_help

HELP = """Fine-tune a sequence classifier and save a model directory.

Every epoch is evaluated and the best one kept; per-epoch metrics are written to
OUT.partial/metrics.json as they are produced, then to OUT/metrics.json. textarmor.json records the
method's hyperparameters and its measured cost (seconds per training epoch).

Examples:

    textarmor train --data builtin:sst2 --out runs/sst2 --epochs 2 --lr 1e-4

    textarmor train --data builtin:sst2 --out runs/sst2-robust --preset robust --epochs 2 --lr 1e-4

    textarmor train --data agnews.jsonl --model runs/sst2-robust --preset robust --out runs/agnews-robust
    (continues from a trained model: its encoder is kept; other labels get a new head)

    textarmor train --data builtin:sst2 --out runs/roast --method roast --roast-alpha 0.9 --roast-beta 10

    textarmor train --data builtin:sst2 --out runs/freelb --method freelb --adv-steps 3 --adv-norm linf

    textarmor train --data builtin:sst2 --out runs/aug --method roast+augment --augment-recipe pwws --clean-epochs 1

    textarmor train --data reviews.csv --text-column review --label-column stars --out runs/stars

    textarmor train --data mnli.jsonl --text-column premise --text-pair-column hypothesis --out runs/nli

    torchrun --nproc_per_node 2 -m textarmor train --data builtin:sst2 --out runs/ddp --batch-size 16

    (DDP: --batch-size is per process; rank 0 writes OUT. docs/scaling.md.)

Presets (--preset; a method, its options and the defence the model ships with; docs/robustness.md):

""" + presets_help() + """

Methods (--method; docs/methods.md has the equations):

""" + methods_help()
ADV = "Embedding adversary (pgd, freelb, rift): "


@app.command("train", help=HELP)
def train(
    data: str = typer.Option(..., "--data", help="Training data: CSV/TSV/JSONL/Parquet, a saved datasets folder, "
                             "or builtin:sst2."),
    out: Path = typer.Option(..., "--out", help="Model directory to write (Hugging Face layout + textarmor.json)."),
    model: str = typer.Option("minilm-l6", "--model", help="Backbone: alias (see `textarmor models`), local "
                              "folder or hub id."),
    eval_data: str | None = typer.Option(None, "--eval-data", help="Evaluated each epoch; default: the bundled "
                                            "dev set for builtin:sst2, else 10% of the training rows."),
    method: str = typer.Option("standard", "--method", help="standard, pgd, freelb, roast, rift or ascc, optionally "
                               "+augment (e.g. roast+augment); see Methods below."),
    preset: str | None = typer.Option(None, "--preset", help="A named recipe: method, options and the stored "
                                      "defence together (robust); see Presets below."),
    epochs: float = typer.Option(3, "--epochs"),
    lr: float = typer.Option(5e-5, "--lr", help="Peak learning rate (linear warm-up 6%, then linear decay)."),
    batch_size: int = typer.Option(32, "--batch-size"),
    max_length: int = typer.Option(128, "--max-length", help="Truncate inputs to this many tokens."),
    seed: int = typer.Option(42, "--seed"),
    early_stopping: int | None = typer.Option(None, "--early-stopping", help="Stop after N epochs without "
                                                 "a better eval accuracy."),
    max_train_rows: int | None = typer.Option(None, "--max-train-rows", help="Train on a random subset."),
    text_column: str = typer.Option("text", "--text-column"),
    label_column: str = typer.Option("label", "--label-column"),
    text_pair_column: str | None = typer.Option(None, "--text-pair-column", help="Second text of a pair "
                                                   "(NLI, paraphrase)."),
    strict: bool = typer.Option(False, "--strict", help="Fail on empty texts instead of skipping them."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT (only once the new model is done)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from OUT.partial."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow model code from the hub."),
    adv_steps: int | None = typer.Option(None, "--adv-steps", help=ADV + "ascent steps K (2)."),
    adv_lr: float | None = typer.Option(None, "--adv-lr", help=ADV + "ascent step size (0.1)."),
    adv_init_mag: float | None = typer.Option(None, "--adv-init-mag", help=ADV + "random start size, scaled "
                                                 "by sequence length for l2 (1.0)."),
    adv_max_norm: float | None = typer.Option(None, "--adv-max-norm", help=ADV + "ball radius, 0 = none (0.6)."),
    adv_norm: str | None = typer.Option(None, "--adv-norm", help=ADV + "l2 or linf (l2)."),
    adv_eps: float | None = typer.Option(None, "--adv-eps", help="roast: perturbation size (0.1)."),
    roast_lambda: float | None = typer.Option(None, "--roast-lambda", help="roast: weight of the symmetric "
                                                 "KL (0.01)."),
    roast_alpha: float | None = typer.Option(None, "--roast-alpha", help="roast: rank threshold of the "
                                                "gradient masks (0.9; entailment 0.6)."),
    roast_beta: float | None = typer.Option(None, "--roast-beta", help="roast: sharpness of the keep "
                                               "probability (10; entailment 1)."),
    rift_w_kl: float | None = typer.Option(None, "--rift-w-kl", help="rift: weight of KL(adv||clean) (10)."),
    rift_w_mi: float | None = typer.Option(None, "--rift-w-mi", help="rift: weight of the InfoNCE term (0.1)."),
    augment_recipe: str | None = typer.Option(None, "--augment-recipe", help="+augment: attack recipe(s) of "
                                                 "textarmor.attacks, comma-separated (pwws)."),
    augment_every: int | None = typer.Option(None, "--augment-every", help="+augment: attack every N "
                                                "epochs (1)."),
    clean_epochs: int | None = typer.Option(None, "--clean-epochs", help="+augment: epochs before the first "
                                               "attack round (1)."),
    augment_sample: float | None = typer.Option(None, "--augment-sample", help="+augment: training rows "
                                                   "attacked per round (512), or a share of them below 1 (0.06)."),
    augment_weight: float | None = typer.Option(None, "--augment-weight", help="+augment: loss weight alpha "
                                                   "of added examples (1.0)."),
    method_option: list[str] = typer.Option([], "--method-option", "-o", help="Any other method "
                                            "hyperparameter as KEY=VALUE, repeatable (e.g. -o fisher_batches=64)."),
    defense_option: list[str] = typer.Option([], "--defense-option", help="With --preset: an option of the "
                                             "defence it stores, as KEY=VALUE (e.g. canonical_rank=0)."),
) -> None:
    from textarmor.training import train as run_training
    from textarmor.training.trainer import end_process_group

    flags = {"adv_steps": adv_steps, "adv_lr": adv_lr, "adv_init_mag": adv_init_mag, "adv_max_norm": adv_max_norm,
             "adv_norm": adv_norm, "adv_eps": adv_eps, "roast_lambda": roast_lambda, "roast_alpha": roast_alpha,
             "roast_beta": roast_beta, "rift_w_kl": rift_w_kl, "rift_w_mi": rift_w_mi,
             "augment_recipe": augment_recipe, "augment_every": augment_every, "clean_epochs": clean_epochs,
             "augment_sample": _rows_or_share(augment_sample), "augment_weight": augment_weight}
    options = {**{k: v for k, v in flags.items() if v is not None}, **parse_method_options(method_option)}
    result = run_training(data, out_dir=out, model=model, eval_data=eval_data,
                          method=None if preset and method == "standard" else method, preset=preset,
                          defense_options=_preset_defense_options(preset, defense_option),
                          method_options=options, epochs=epochs,
                          learning_rate=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                          early_stopping=early_stopping, max_train_rows=max_train_rows, text_column=text_column,
                          label_column=label_column, text_pair_column=text_pair_column, strict=strict,
                          overwrite=overwrite, resume=resume, trust_remote_code=trust_remote_code)
    end_process_group()
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun/accelerate, rank 0 reports for all
        return
    best = result.metrics
    typer.echo(f"best epoch {best.get('epoch')}: eval accuracy {best.get('accuracy', float('nan')):.4f}, "
               f"macro-F1 {best.get('macro_f1', float('nan')):.4f} ({result.train_seconds:.0f} s)")
    typer.echo(f"model saved to {result.model_dir}")


def _rows_or_share(value: float | None) -> int | float | None:
    """``--augment-sample``: a whole number of rows, or a share of the rows below 1."""
    return int(value) if value is not None and value >= 1 else value


def _preset_defense_options(preset: str | None, items: list[str]) -> dict | None:
    """``--defense-option KEY=VALUE`` items, typed against the preset's stored defence."""
    if not items:
        return None
    from textarmor.defenses import parse_defense_options
    from textarmor.errors import ParameterError
    from textarmor.training.presets import PRESETS

    if preset not in PRESETS:
        raise ParameterError("--defense-option needs --preset (the defence it stores is what the options change).")
    return parse_defense_options(PRESETS[preset].defense["name"], items)
