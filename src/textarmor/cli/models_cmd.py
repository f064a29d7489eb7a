from __future__ import annotations

import typer

from textarmor.cli import app


@app.command("models")
def models() -> None:
    """List the bundled model aliases and whether each is installed.

    Any Hugging Face hub id or local model folder also works wherever a model is asked for.
    """
    from textarmor.models import ALIASES

    for alias in ALIASES.values():
        path = alias.path()
        state = f"installed at {path}" if path else f"not installed: {alias.install_hint}"
        typer.echo(f"{alias.name:<12} {alias.description}\n{'':<12} {state}")
