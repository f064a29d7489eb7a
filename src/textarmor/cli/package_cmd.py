from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from textarmor.cli import app


@app.command("package")
def package(
    model_dir: Annotated[str, typer.Argument(help="Model directory with safetensors weights.")],
    target: Annotated[str, typer.Option(help="hf-endpoint (Hugging Face Inference Endpoints) or azureml.")],
    out: Annotated[Path, typer.Option(help="Folder to write (must not exist, or pass --overwrite).")],
    name: Annotated[str | None, typer.Option(help="Model name in the card and Azure (default: folder name).")]
    = None,
    license: Annotated[str | None, typer.Option(help="Licence id for the card, e.g. apache-2.0 (default: the "
                                                     "base model's when known, else 'other').")] = None,
    requirement: Annotated[str | None, typer.Option(help="pip line installing textarmor where the model runs "
                                                         "(default textarmor[serve]==VERSION).")] = None,
    example: Annotated[str | None, typer.Option(help="A typical input, shown in the model card's usage "
                                                     "snippets (default: a short movie review).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out folder.")] = False,
) -> None:
    """Write a deployable folder: model files, model card, requirements.txt, a Dockerfile running
    `textarmor serve`, and handler.py (hf-endpoint) or score.py + environment.yml + deployment.yml (azureml).

    Examples:

        textarmor package runs/sst2 --target hf-endpoint --out dist/sst2-hf

        textarmor package runs/sst2 --target azureml --out dist/sst2-azure --license apache-2.0
    """
    from textarmor.deploy import package as write_package

    result = write_package(model_dir, target=target, out=out, name=name, license=license,
                           textarmor_requirement=requirement, overwrite=overwrite, example=example)
    typer.echo(f"{result.target} package with {len(result.files)} files -> {result.out}")
    for rel in result.files:
        typer.echo(f"  {rel}")
