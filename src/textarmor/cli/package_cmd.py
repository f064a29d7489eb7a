from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from textarmor.cli import app
from textarmor.errors import ParameterError


@app.command("package")
def package(
    model_dir: Annotated[str, typer.Argument(help="Model directory: safetensors weights, or a `textarmor export` "
                                                  "ONNX folder.")],
    target: Annotated[str, typer.Option(help="hf-endpoint (Hugging Face Inference Endpoints) or azureml.")],
    out: Annotated[Path, typer.Option(help="Folder to write (must not exist, or pass --overwrite).")],
    name: Annotated[str | None, typer.Option(help="Model name in the card and Azure (default: folder name).")]
    = None,
    repo_id: Annotated[str | None, typer.Option(help="Hub repository (ORG/NAME) the card's snippets load.")] = None,
    push_to_hub: Annotated[str | None, typer.Option(metavar="ORG/NAME", help="Upload the hf-endpoint folder to "
                                                    "this Hub repository (your `hf auth login`), creating it.")]
    = None,
    private: Annotated[bool, typer.Option(help="Create the --push-to-hub repository as private.")] = False,
    language: Annotated[list[str] | None, typer.Option(help="ISO 639-1 code of the model's language, for the "
                                                            "card (repeatable; default: the bundled backbone's).")]
    = None,
    license: Annotated[str | None, typer.Option(help="Hub licence id for the card, e.g. apache-2.0 (default: the "
                                                     "bundled base model's, else 'unknown').")] = None,
    license_name: Annotated[str | None, typer.Option(help="With --license other: the licence's id.")] = None,
    license_link: Annotated[str | None, typer.Option(help="With --license other: its URL, or LICENSE.")] = None,
    requirement: Annotated[str | None, typer.Option(help="pip line installing textarmor where the model runs, "
                                                         "instead of the wheel the package carries.")] = None,
    example: Annotated[str | None, typer.Option(help="A typical input, shown in the model card's usage "
                                                     "snippets (default: a short movie review).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out folder (once the new one is "
                                                 "complete).")] = False,
) -> None:
    """Write a deployable folder that installs from its own files: model files (an allowlist: config, weights,
    tokenizer, textarmor.json, metrics.json), model card, a textarmor wheel and requirements.txt, a Dockerfile
    running `textarmor serve`, and handler.py (hf-endpoint) or score.py + deployment.yml + environment/ (azureml).

    Examples:

        textarmor package runs/sst2 --target hf-endpoint --out dist/sst2-hf --repo-id my-org/sst2

        textarmor package runs/sst2-int8 --target hf-endpoint --out dist/sst2-hf --push-to-hub my-org/sst2

        textarmor package runs/sst2 --target azureml --out dist/sst2-azure --license apache-2.0 --language en
    """
    from textarmor.deploy import package as write_package

    if push_to_hub and repo_id and push_to_hub != repo_id:
        raise ParameterError(f"--repo-id {repo_id} and --push-to-hub {push_to_hub} differ; give one of them.")
    result = write_package(model_dir, target=target, out=out, name=name, repo_id=push_to_hub or repo_id,
                           push_to_hub=bool(push_to_hub), private=private, language=language, license=license,
                           license_name=license_name, license_link=license_link,
                           textarmor_requirement=requirement, overwrite=overwrite, example=example)
    typer.echo(f"{result.target} package with {len(result.files)} files -> {result.out}")
    for rel in result.files:
        typer.echo(f"  {rel}")
    if result.left_out:
        typer.echo(f"left out of the package (not model files): {', '.join(result.left_out)}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    if result.pushed_to:
        typer.echo(f"pushed to {result.pushed_to}")
