"""The ``textarmor`` command line: one thin Typer command per verb, each a call into the library."""
from __future__ import annotations

import sys

import typer

from textarmor.errors import TextArmorError

app = typer.Typer(
    name="textarmor",
    help="Train, attack, evaluate and serve text classifiers that stay right when their input is perturbed.\n\n"
         "Start with:  textarmor models  ·  textarmor train --help  ·  textarmor predict --help",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

from textarmor.cli import (  # noqa: E402,F401  (each module registers its verb)
    attack_cmd,
    calibrate_cmd,
    evaluate_cmd,
    explain_cmd,
    export_cmd,
    models_cmd,
    package_cmd,
    predict_cmd,
    serve_cmd,
    train_cmd,
)


def main(args: list[str] | None = None) -> None:
    """Entry point: user errors print their message (no traceback) and exit with code 2."""
    try:
        app(args)
    except TextArmorError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)
