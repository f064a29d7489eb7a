"""``textarmor package``: a model directory (safetensors, or an ONNX export) as a folder ready to deploy.

``hf-endpoint`` (a Hugging Face model repository with a custom handler)::

    OUT/  config.json model.safetensors|model.onnx tokenizer files textarmor.json metrics.json
          README.md (model card)  handler.py  requirements.txt  textarmor-VERSION-py3-none-any.whl  Dockerfile

``azureml`` (a managed online endpoint: model, code and environment kept apart, as Azure registers them)::

    OUT/  model/ (the model files and README.md)  code/score.py  deployment.yml  Dockerfile
          environment/ (Dockerfile, requirements.txt, textarmor-VERSION-py3-none-any.whl)

The folder installs from its own files: requirements.txt pins the textarmor wheel beside it (built from the
running textarmor, see :mod:`textarmor.deploy.wheel`) through ``--find-links .``, which pip reads relative to
the requirements file, and the CPU targets (the Dockerfiles, Azure's CPU instance) pin the CPU build of the
torch release that runs here. Only allowlisted model files are copied (:mod:`textarmor.deploy.model_files`),
JSON files lose the local paths they recorded, the folder is checked to load before anything is written,
and the package is built in a hidden folder beside ``out`` that replaces ``out`` only once complete.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from textarmor.deploy.model_card import check_name, render_model_card
from textarmor.deploy.model_files import ModelFolder, check_model_folder, strip_local_paths
from textarmor.errors import OutputExistsError, ParameterError

TARGETS = ("hf-endpoint", "azureml")
TEMPLATES = Path(__file__).parent / "templates"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
EXAMPLE_TEXT = "a gripping, funny film"


@dataclass
class PackageResult:
    out: Path
    target: str
    files: list[str] = field(default_factory=list)  # relative to ``out``
    left_out: list[str] = field(default_factory=list)  # model-folder entries not shipped (not on the allowlist)
    requirement: str = ""  # the pip line that installs textarmor where the model runs
    notes: list[str] = field(default_factory=list)  # what the user may want to add
    pushed_to: str | None = None  # the hub repository's URL after push_to_hub


def render(template: str, **values: object) -> str:
    """Fill ``templates/<template>.tmpl`` (``string.Template``: ``$name``; ``$$`` is a literal dollar)."""
    return Template((TEMPLATES / f"{template}.tmpl").read_text(encoding="utf-8")).substitute(
        {k: str(v) for k, v in values.items()})


def cpu_torch_requirement() -> str:
    """The CPU build of the torch release installed here, e.g. ``torch==2.13.0+cpu``."""
    release = importlib.metadata.version("torch").split("+")[0]
    return f"torch=={release}+cpu"


def package(model_dir: str | os.PathLike, *, target: str, out: str | os.PathLike, overwrite: bool = False,
            name: str | None = None, license: str | None = None, license_name: str | None = None,
            license_link: str | None = None, language: list[str] | None = None, repo_id: str | None = None,
            push_to_hub: bool = False, private: bool = False, textarmor_requirement: str | None = None,
            max_inputs: int = 64, max_chars: int = 10_000, example: str | None = None) -> PackageResult:
    """Write a deployable folder for ``target`` (``hf-endpoint`` or ``azureml``) at ``out``.

    ``repo_id`` (``org/name``) is the hub repository the card's snippets load; with ``push_to_hub`` the
    folder is uploaded there (``hf-endpoint`` only; ``private`` for a new repository). ``license`` is a Hub
    licence id (``other`` with ``license_name`` and ``license_link``), ``language`` ISO 639-1 codes.
    ``textarmor_requirement`` replaces the bundled wheel by a pip line of your own (an index release, a VCS
    URL). ``max_inputs``/``max_chars`` bound each request in ``handler.py`` and ``score.py``; ``example`` is
    the text the card's snippets classify.
    """
    if target not in TARGETS:
        raise ParameterError(f"target must be one of {', '.join(TARGETS)}, got {target!r}.")
    if push_to_hub and (target != "hf-endpoint" or not repo_id):
        raise ParameterError("push_to_hub needs target hf-endpoint and a repo_id (ORG/NAME): an Azure ML folder is "
                             "registered with `az ml`, not hosted on the Hub.")
    folder = check_model_folder(model_dir)
    out = Path(out)
    _check_out(folder.path, out, overwrite)
    name = check_name(name or folder.path.resolve().name)
    card = render_model_card(folder.path, name, license=license, license_name=license_name,
                             license_link=license_link, language=language, repo_id=repo_id,
                             requirements=("environment/" if target == "azureml" else "") + "requirements.txt",
                             **({"example": example} if example else {}))
    _check_card(card)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        result = _write(staging, folder, target, name, card, textarmor_requirement,
                        {"max_inputs": int(max_inputs), "max_chars": int(max_chars)})
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.out = out
    if "language:" not in card.split("\n---\n", 1)[0]:
        result.notes.append("The model card names no language; pass --language CODE (e.g. en) so the Hub can "
                            "list the model by language.")
    if push_to_hub:
        result.pushed_to = upload(out, repo_id, private=private)
    return result


def _check_out(source: Path, out: Path, overwrite: bool) -> None:
    src, dst = source.resolve(), out.resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        raise ParameterError(f"--out '{out}' overlaps the model folder '{source}'; writing (or replacing) it would "
                             "change the model. Choose a folder outside it.")
    occupied = out.is_file() or (out.is_dir() and any(out.iterdir()))
    if occupied and not overwrite:
        raise OutputExistsError(f"'{out}' already exists and is not empty. Choose another --out or pass "
                                "--overwrite to replace it.")


def _check_card(card: str) -> None:
    """Parse the card's metadata as the Hub's client does (model-index included); a failure is a bug here."""
    from huggingface_hub import ModelCard

    ModelCard(card, ignore_metadata_errors=False)


def _write(staging: Path, folder: ModelFolder, target: str, name: str, card: str,
           textarmor_requirement: str | None, limits: dict[str, int]) -> PackageResult:
    model_subdir = "model" if target == "azureml" else ""
    model_out = staging / model_subdir
    model_out.mkdir(parents=True, exist_ok=True)
    for path in folder.files:
        _copy_model_file(path, model_out / path.name)
    (model_out / "README.md").write_text(card, encoding="utf-8")

    install_rel = "environment/" if target == "azureml" else ""  # where requirements.txt and the wheel go
    install_dir = staging / install_rel
    install_dir.mkdir(parents=True, exist_ok=True)
    extras = ["serve"] + (["azureml"] if target == "azureml" else []) + (["onnx"] if folder.backend == "onnx" else [])
    install_files = ["requirements.txt"]
    if textarmor_requirement:
        requirement = textarmor_requirement
        lines = [requirement]
    else:
        from textarmor.deploy.wheel import build_installed_wheel

        wheel = build_installed_wheel(install_dir)
        requirement = f"textarmor[{','.join(extras)}]=={wheel.version}"
        install_files.append(wheel.path.name)
        lines = ["# textarmor from the wheel beside this file (pip reads --find-links relative to this file).",
                 "--find-links .", requirement]
    cpu_torch = [f"--extra-index-url {CPU_TORCH_INDEX}", cpu_torch_requirement()]
    if target == "azureml":  # a CPU instance type (deployment.yml): the CPU build of torch
        lines = ["# CPU build of torch (the instance type in deployment.yml has no GPU).", *cpu_torch, *lines]
    files = {
        install_rel + "requirements.txt": render("requirements.txt", install_lines="\n".join(lines)),
        # The image is a CPU one; on hf-endpoint the Endpoint's own container brings the torch it needs.
        "Dockerfile": render("Dockerfile", image_name=_slug(name, 64), model_source=model_subdir or ".",
                             install_files=" ".join(install_rel + f for f in install_files),
                             pip_options="" if target == "azureml" else " ".join(cpu_torch) + " "),
    }
    if target == "hf-endpoint":
        files["handler.py"] = render("handler.py", **limits)
    else:
        files["environment/Dockerfile"] = render("azureml.Dockerfile", install_files=" ".join(install_files))
        files["code/score.py"] = render(
            "score.py", model_subdir=model_subdir, example_inputs=repr([EXAMPLE_TEXT]),
            example_parameters=repr({"top_k": 1}),
            example_output=repr([[{"label": folder.labels[0], "score": 0.98}]]), **limits)
        files["deployment.yml"] = render("deployment.yml", name=_slug(name, 64), endpoint_name=_slug(name, 32),
                                         model_subdir=model_subdir)
    for rel, text in files.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_text(text.rstrip() + "\n", encoding="utf-8")
    written = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
    return PackageResult(out=staging, target=target, files=written, left_out=folder.left_out,
                         requirement=requirement)


def _copy_model_file(source: Path, target: Path) -> None:
    """Copy a model file; JSON files lose the local paths they recorded (training data, base model folder)."""
    if source.suffix == ".json":
        data = json.loads(source.read_text(encoding="utf-8"))
        public = strip_local_paths(data)
        if public != data:
            target.write_text(json.dumps(public, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            return
    shutil.copyfile(source, target)  # follows links, which check_model_folder kept inside the folder


def _replace(staging: Path, out: Path) -> None:
    """Move the complete package to ``out``; an earlier ``out`` is kept until the new one is in place."""
    previous = None
    if out.exists() or out.is_symlink():
        previous = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old.")) / "previous"
        out.rename(previous)
    try:
        staging.rename(out)
    except BaseException:
        if previous is not None:
            previous.rename(out)
        raise
    if previous is not None:
        shutil.rmtree(previous.parent, ignore_errors=True)


def upload(folder: Path, repo_id: str, *, private: bool = False) -> str:
    """Create ``repo_id`` on the Hub if needed and upload ``folder`` to it (huggingface_hub, your login)."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder),
                               commit_message="Upload a textarmor package")
    return str(getattr(commit, "repo_url", None) or f"https://huggingface.co/{repo_id}")


def _slug(name: str, limit: int) -> str:
    """A name Azure and Docker accept: lower-case letters, digits and hyphens, starting with a letter."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model"
    if not slug[0].isalpha():
        slug = "m-" + slug
    return slug[:limit].rstrip("-")
