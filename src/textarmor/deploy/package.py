"""``textarmor package``: a model directory as a folder ready to deploy.

``hf-endpoint`` (a Hugging Face model repository with a custom handler)::

    OUT/  config.json model.safetensors tokenizer files textarmor.json metrics.json
          README.md (model card)  handler.py  requirements.txt  Dockerfile

``azureml`` (a managed online endpoint: model, code and environment kept apart, as Azure registers them)::

    OUT/  model/ (the model files and README.md)  code/score.py  environment.yml  deployment.yml
          requirements.txt  Dockerfile
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from textarmor.deploy.model_card import render_model_card
from textarmor.errors import OutputExistsError, ParameterError
from textarmor.model_dir import TextArmorConfig, check_safetensors_dir

TARGETS = ("hf-endpoint", "azureml")
TEMPLATES = Path(__file__).parent / "templates"
# Files never copied into a package: pickles can execute code when loaded, and training state is not needed.
SKIPPED_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".ckpt", ".tmp"}
EXAMPLE_TEXT = "a gripping, funny film"


@dataclass
class PackageResult:
    out: Path
    target: str
    files: list[str] = field(default_factory=list)  # relative to ``out``


def render(template: str, **values: object) -> str:
    """Fill ``templates/<template>.tmpl`` (``string.Template``: ``$name``; ``$$`` is a literal dollar)."""
    return Template((TEMPLATES / f"{template}.tmpl").read_text(encoding="utf-8")).substitute(
        {k: str(v) for k, v in values.items()})


def default_requirement() -> str:
    from textarmor import __version__

    return f"textarmor[serve]=={__version__}"


def package(model_dir: str | os.PathLike, *, target: str, out: str | os.PathLike, overwrite: bool = False,
            name: str | None = None, license: str | None = None, textarmor_requirement: str | None = None,
            max_inputs: int = 64, max_chars: int = 10_000, example: str | None = None) -> PackageResult:
    """Write a deployable folder for ``target`` (``hf-endpoint`` or ``azureml``) at ``out``.

    ``textarmor_requirement`` is the pip line that installs textarmor where the model runs (default
    ``textarmor[serve]==<this version>``; a wheel file name or a VCS URL also works).
    ``max_inputs``/``max_chars`` bound each request in ``handler.py`` and ``score.py``. ``example`` is the
    text the model card's usage snippets classify.
    """
    if target not in TARGETS:
        raise ParameterError(f"target must be one of {', '.join(TARGETS)}, got {target!r}.")
    source = check_safetensors_dir(model_dir)
    out = Path(out)
    occupied = out.is_file() or (out.is_dir() and any(out.iterdir()))
    if occupied and not overwrite:
        raise OutputExistsError(f"'{out}' already exists and is not empty. Choose another --out or pass "
                                    "--overwrite to replace it.")
    name = name or source.resolve().name
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model_subdir = "model" if target == "azureml" else ""
    model_out = staging / model_subdir
    model_out.mkdir(parents=True)
    for item in sorted(source.iterdir()):
        if item.is_file() and item.suffix not in SKIPPED_SUFFIXES and item.name != "README.md":
            shutil.copy2(item, model_out / item.name)
    card = render_model_card(source, name, license=license, **({"example": example} if example else {}))
    (model_out / "README.md").write_text(card, encoding="utf-8")

    requirement = textarmor_requirement or default_requirement()
    limits = {"max_inputs": int(max_inputs), "max_chars": int(max_chars)}
    files = {"requirements.txt": render("requirements.txt", textarmor_requirement=requirement,
                                        extra_requirements="inference-schema>=1.8" if target == "azureml" else ""),
             "Dockerfile": render("Dockerfile", image_name=_slug(name, 64), model_source=model_subdir or ".")}
    if target == "hf-endpoint":
        files["handler.py"] = render("handler.py", **limits)
    else:
        labels = (TextArmorConfig.load(source) or TextArmorConfig(labels=_config_labels(source))).labels
        files["code/score.py"] = render(
            "score.py", model_subdir=model_subdir, example_inputs=repr([EXAMPLE_TEXT]),
            example_parameters=repr({"top_k": 1}),
            example_output=repr([[{"label": labels[0], "score": 0.98}]]), **limits)
        endpoint = _slug(name, 32)
        files["environment.yml"] = render("environment.yml", name=_slug(name, 64), textarmor_requirement=requirement)
        files["deployment.yml"] = render("deployment.yml", name=_slug(name, 64), endpoint_name=endpoint,
                                         model_subdir=model_subdir)
    for rel, text in files.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_text(text.rstrip() + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    staging.rename(out)  # the folder appears complete or not at all
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return PackageResult(out=out, target=target, files=written)


def _config_labels(model_dir: Path) -> list[str]:
    id2label = json.loads((model_dir / "config.json").read_text()).get("id2label", {})
    return [id2label[k] for k in sorted(id2label, key=int)] or ["LABEL_0"]


def _slug(name: str, limit: int) -> str:
    """A name Azure and Docker accept: lower-case letters, digits and hyphens, starting with a letter."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model"
    if not slug[0].isalpha():
        slug = "m-" + slug
    return slug[:limit].rstrip("-")
