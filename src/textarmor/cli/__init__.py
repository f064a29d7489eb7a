"""The ``textarmor`` command line: one thin Typer command per verb, each a call into the library."""
from __future__ import annotations

import importlib
import sys

import typer

from textarmor.errors import TextArmorError

# The exceptions of the click that Typer runs on: its own copy (typer >= 0.2x) or the click package.
_click = importlib.import_module(typer.BadParameter.__module__)
_NO_ARGS_IS_HELP = getattr(_click, "NoArgsIsHelpError", ())  # click >= 8.2
_ABORT = (typer.Abort, getattr(_click, "Abort", typer.Abort))  # Typer with its own click raises its own Abort

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
    """Entry point. A user's mistake, a bad option included, ends in one line, ``error: ...``, and exit
    code 2 (never a traceback); ``--help`` and successful runs exit 0."""
    try:
        code = app(args, standalone_mode=False)
    except TextArmorError as exc:
        _fail(str(exc), exc.exit_code)
    except _NO_ARGS_IS_HELP as exc:  # `textarmor` alone: the overview
        exc.show()
        sys.exit(exc.exit_code)
    except _click.UsageError as exc:  # bad option value, unknown option, missing argument
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _fail(exc.format_message() + where, 2)
    except _ABORT:  # Ctrl-C
        _fail("aborted", 130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    # One line, so that logs and scripts see one record per failure.
    typer.secho("error: " + " ".join(message.split()), fg="red", err=True)
    sys.exit(code)
