"""The model card: ``README.md`` with Hugging Face YAML metadata and tables built from the model dir.

Metadata (https://huggingface.co/docs/hub/model-cards, spec: hub-docs ``modelcard.md``), written through
``huggingface_hub.ModelCardData``: ``pipeline_tag``, ``library_name``, ``language``, ``license`` (a Hub
licence identifier; ``other`` comes with ``license_name`` and ``license_link``), ``base_model`` and
``datasets`` (hub ids only: a local path means nothing on the hub), and ``model-index`` with the evaluation
metrics of ``textarmor.json`` plus every number of its ``robustness`` section, all as fractions in [0, 1]
(the robustness report keeps accuracies in percent; they are divided by 100 here).
The training results table comes from ``metrics.json`` (one row per epoch).
"""
from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from string import Template
from typing import Any

from textarmor.errors import ParameterError
from textarmor.model_dir import ONNX_FILE, TextArmorConfig

# Bundled aliases and built-in data sets and where they live on the Hugging Face hub.
HUB_MODELS = {"minilm-l6": "sentence-transformers/all-MiniLM-L6-v2",
              "mpnet-base": "sentence-transformers/all-mpnet-base-v2"}
HUB_DATASETS = {"builtin:sst2": "stanfordnlp/sst2", "builtin:sst2-train": "stanfordnlp/sst2",
                "builtin:sst2-dev": "stanfordnlp/sst2"}
# Licences of the weights behind the bundled aliases (both Apache-2.0).
ALIAS_LICENSES = {"minilm-l6": "apache-2.0", "mpnet-base": "apache-2.0"}
# metrics.json key -> (column title, model-index type); the order is the table's.
EPOCH_COLUMNS = [("train_loss", "Training loss"), ("loss", "Validation loss"), ("accuracy", "Accuracy"),
                 ("macro_precision", "Precision (macro)"), ("macro_recall", "Recall (macro)"),
                 ("macro_f1", "F1 (macro)")]
EVAL_METRICS = [("accuracy", "accuracy", "Accuracy"), ("macro_f1", "f1", "F1 (macro)"),
                ("macro_precision", "precision", "Precision (macro)"), ("macro_recall", "recall", "Recall (macro)"),
                ("ece", "ece", "Expected calibration error")]
MAX_ROBUSTNESS_METRICS = 40


def hub_base_model(base_model: str | None) -> str | None:
    """The hub id of the base model, or ``None`` when it was a local folder."""
    if not base_model:
        return None
    if base_model in HUB_MODELS:
        return HUB_MODELS[base_model]
    from textarmor.models import ALIASES

    for name, alias in ALIASES.items():  # an alias's installed folder, recorded by path
        path = alias.path()
        if path is not None and Path(base_model).resolve() == path.resolve():
            return HUB_MODELS.get(name)
    looks_like_hub_id = base_model.count("/") == 1 and not base_model.startswith((".", "/", "~"))
    return base_model if looks_like_hub_id and not Path(base_model).exists() else None


def hub_dataset(source: str | None) -> str | None:
    if not source:
        return None
    if source in HUB_DATASETS:
        return HUB_DATASETS[source]
    looks_like_hub_id = source.count("/") == 1 and not source.startswith((".", "/", "~"))
    return source if looks_like_hub_id and not Path(source).exists() else None


def read_epochs(model_dir: Path) -> list[dict[str, Any]]:
    path = Path(model_dir) / "metrics.json"
    if not path.exists():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")).get("epochs", []))


def flatten_numbers(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], float]]:
    """Every finite number in a nested dict/list, with its key path (``robustness`` has no fixed shape)."""
    if isinstance(tree, bool):
        return []
    if isinstance(tree, (int, float)):
        return [(prefix, float(tree))] if math.isfinite(tree) else []
    if isinstance(tree, dict):
        return [item for key, value in tree.items() for item in flatten_numbers(value, prefix + (str(key),))]
    if isinstance(tree, list):
        return [item for i, value in enumerate(tree) for item in flatten_numbers(value, prefix + (str(i),))]
    return []


def epochs_table(epochs: list[dict[str, Any]]) -> str:
    """Markdown table of the per-epoch log, with the columns that were recorded, and a note on those that
    were not (logs written before precision/recall were recorded have accuracy and F1 only)."""
    if not epochs:
        return "No per-epoch log (`metrics.json`) was found in the model directory."
    present = [(key, title) for key, title in EPOCH_COLUMNS if any(row.get(key) is not None for row in epochs)]
    header = ["Epoch", "Step"] + [title for _, title in present]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for row in epochs:
        cells = [_fmt(row.get("epoch"), 2), str(row.get("step", ""))] + [_fmt(row.get(key)) for key, _ in present]
        lines.append("| " + " | ".join(cells) + " |")
    missing = [title for key, title in EPOCH_COLUMNS if (key, title) not in present]
    if missing:
        lines.append("")
        lines.append("Not recorded in this model's training log: " + ", ".join(missing) + ".")
    return "\n".join(lines)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    return str(value)


# Licence identifiers the Hub accepts (hub-docs: docs/hub/repositories-licenses.md).
HUB_LICENSES = frozenset("""
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5
cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0
cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0
cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl
lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl
openmdw-1.0 openmdw-1.1 osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license
fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3 llama4 grok2-community gemma unknown
other""".split())
# Languages of the bundled backbones and built-in data (both English).
ALIAS_LANGUAGES = {"minilm-l6": ["en"], "mpnet-base": ["en"], "builtin:sst2": ["en"], "builtin:sst2-train": ["en"],
                   "builtin:sst2-dev": ["en"]}
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")  # ISO 639-1 (or 639-3) codes, as the Hub's language pages list them
_LICENSE_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
# Measures of the robustness summary that the report keeps in percent (evaluation.report.summary_numbers).
PERCENT_MEASURES = {"clean_accuracy", "accuracy_under_attack", "accuracy_under_attack_calibrated_scores",
                    "shift_accuracy", "noise_accuracy"}


def license_fields(license: str | None, license_name: str | None, license_link: str | None,
                   base_model: str | None) -> dict[str, str]:
    """``license`` (and for ``other``, ``license_name`` and ``license_link``) as the Hub validates them. Without
    ``license``: the bundled base model's licence, else ``unknown``."""
    license = license or ALIAS_LICENSES.get(base_model or "", "unknown")
    if license not in HUB_LICENSES:
        raise ParameterError(f"license must be a Hugging Face licence identifier such as apache-2.0 or mit "
                             f"(https://huggingface.co/docs/hub/repositories-licenses), got {license!r}. For another "
                             "licence pass --license other --license-name ID --license-link URL_OR_FILE.")
    if license != "other":
        if license_name or license_link:
            raise ParameterError("license_name and license_link go with license 'other' only; drop them or pass "
                                 "--license other.")
        return {"license": license}
    if not license_name or not _LICENSE_NAME.match(license_name) or not license_link:
        raise ParameterError("license 'other' needs license_name (an id such as my-license-1.0: lower-case "
                             "letters, digits, dots and hyphens) and license_link (a URL, or LICENSE for a file "
                             f"of that name in the repository); got name {license_name!r}, link {license_link!r}.")
    return {"license": "other", "license_name": license_name, "license_link": license_link}


def card_languages(language: list[str] | None, config: TextArmorConfig) -> list[str] | None:
    """``language`` as given (checked), else the bundled backbone's or built-in data's; ``None`` if unknown."""
    if language:
        bad = [code for code in language if not _LANGUAGE.match(code)]
        if bad:
            raise ParameterError(f"language takes ISO 639-1 codes such as en or de (lower case); got "
                                 f"{', '.join(map(repr, bad))}.")
        return list(dict.fromkeys(language))
    training = config.training or {}
    for source in (config.base_model, training.get("train_data")):
        if isinstance(source, str) and source in ALIAS_LANGUAGES:
            return ALIAS_LANGUAGES[source]
    return None


def front_matter(config: TextArmorConfig, name: str, *, license: dict[str, str], language: list[str] | None,
                 library_tags: tuple[str, ...] = ()) -> str:
    """The card's YAML metadata, written by huggingface_hub's ``ModelCardData``."""
    from huggingface_hub import EvalResult, ModelCardData

    training = config.training or {}
    base = hub_base_model(config.base_model)
    datasets = sorted({d for d in (hub_dataset(training.get("train_data")), hub_dataset(training.get("eval_data")))
                       if d})
    eval_data = hub_dataset(training.get("eval_data")) or _data_name(training.get("eval_data")) or "held-out"
    results = [EvalResult(task_type="text-classification", task_name="Text Classification",
                          dataset_type=hub_dataset(training.get("eval_data")) or "custom", dataset_name=eval_data,
                          dataset_split="validation" if training.get("eval_data") else "held-out",
                          metric_type=kind, metric_value=value, metric_name=title)
               for kind, value, title in _index_metrics(config)]
    data = ModelCardData(language=language, library_name="transformers", pipeline_tag="text-classification",
                         tags=["textarmor", "text-classification", "robustness", *library_tags],
                         base_model=base, datasets=datasets or None, eval_results=results or None,
                         model_name=name if results else None, **license)
    return data.to_yaml()


def _index_metrics(config: TextArmorConfig) -> list[tuple[str, float, str]]:
    """(metric type, value in [0, 1], title) of the evaluation metrics and the robustness summary."""
    evaluation = (config.metrics or {}).get("eval", config.metrics or {})
    metrics = [(kind, round(float(evaluation[key]), 4), title)
               for key, kind, title in EVAL_METRICS if isinstance(evaluation.get(key), (int, float))]
    # textarmor.json's robustness summary is keyed measure first: {"accuracy_under_attack": {"pwws": 41.2}}.
    for path, value in robustness_numbers(config)[:MAX_ROBUSTNESS_METRICS]:
        fraction = value / 100 if path[0] in PERCENT_MEASURES else value
        metrics.append((path[0], round(fraction, 4), "Robustness: " + " / ".join(path)))
    return metrics


def robustness_numbers(config: TextArmorConfig) -> list[tuple[tuple[str, ...], float]]:
    """The measurements of the robustness summary (counts such as ``attack_examples`` are not metrics)."""
    return [(path, value) for path, value in flatten_numbers(config.robustness or {})
            if not path[-1].endswith("examples")]


DEFAULT_EXAMPLE = "a gripping, funny film"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~#!])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(name: str) -> str:
    """A model name for the card and Azure: one line of printable text."""
    if not name or not name.strip() or _CONTROL.search(name):
        raise ParameterError(f"name must be one line of printable text, got {len(name)} characters"
                             f"{' with control characters (newlines, tabs)' if _CONTROL.search(name) else ''}.")
    return name.strip()


def markdown_text(text: str) -> str:
    """``text`` as literal Markdown: no HTML, emphasis, links or tables come from it."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def render_model_card(model_dir: Path, name: str, *, license: str | None = None, license_name: str | None = None,
                      license_link: str | None = None, language: list[str] | None = None,
                      example: str = DEFAULT_EXAMPLE, repo_id: str | None = None,
                      requirements: str = "requirements.txt") -> str:
    """The model card (README.md with Hugging Face metadata). ``example`` is the text in its usage snippets,
    ``repo_id`` the hub repository they load (default: a placeholder the card asks to replace),
    ``requirements`` the package's requirements file that installs textarmor."""
    config = TextArmorConfig.load(model_dir)
    if config is None:
        labels = json.loads((Path(model_dir) / "config.json").read_text()).get("id2label", {})
        config = TextArmorConfig(labels=[labels[k] for k in sorted(labels, key=int)])
    name = check_name(name)
    if repo_id is not None:
        from huggingface_hub.utils import HFValidationError, validate_repo_id

        try:
            validate_repo_id(repo_id)
        except HFValidationError as exc:
            raise ParameterError(f"repo_id must be a hub repository id such as my-org/{_slug_id(name)}: "
                                 f"{exc}") from None
    onnx = bool(config.onnx) or (Path(model_dir) / ONNX_FILE).is_file()
    meta = front_matter(config, name, license=license_fields(license, license_name, license_link, config.base_model),
                        language=card_languages(language, config), library_tags=("onnx",) if onnx else ())
    base = hub_base_model(config.base_model)
    repo = repo_id or f"your-org/{_slug_id(name)}"
    template = Template((Path(__file__).parent / "templates" / "README.md.tmpl").read_text(encoding="utf-8"))
    return template.substitute(
        front_matter=meta.strip(),
        title=markdown_text(name),
        repo_py=json.dumps(repo),
        install_hint=f"`pip install -r {requirements}`",
        repo_note="" if repo_id else (f"\n`{repo}` stands for the repository this folder is pushed to "
                                      "(`textarmor package --repo-id ORG/NAME` writes it here).\n"),
        example_py=json.dumps(example),
        example_json=json.dumps(example).replace("'", "'\\''"),  # inside the curl line's single quotes
        base_sentence=f" from [`{base}`](https://huggingface.co/{base})" if base else "",
        format_sentence=_format_sentence(config) if onnx else "",
        labels=", ".join(f"`{markdown_text(label)}`" for label in config.labels),
        calibration=_calibration_facts(config),
        plain_loader=_plain_loader(repo, onnx),
        evaluation=_evaluation_section(config),
        robustness=_robustness_section(config),
        training=_training_section(config),
        epochs=epochs_table(read_epochs(model_dir)),
        weights="`model.onnx` (ONNX)" if onnx else "`model.safetensors`",
    )


def _slug_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"


def _format_sentence(config: TextArmorConfig) -> str:
    quantized = (config.onnx or {}).get("quantization")
    kind = f"an {quantized} quantized ONNX export" if quantized else "an ONNX export"
    return (f"\nThis repository holds {kind} (`model.onnx`, run by ONNX Runtime; inputs and output named as "
            "Optimum's `ORTModelForSequenceClassification` expects), made by `textarmor export`.\n")


def _calibration_facts(config: TextArmorConfig) -> str:
    facts = [f"temperature {config.temperature:g}",
             f"threshold {config.threshold:g}" if config.threshold is not None else "no decision threshold"]
    if config.abstain_label:
        facts.append(f"abstain label `{markdown_text(config.abstain_label)}`")
    if config.conformal:
        facts.append("conformal scores")
    if config.defense:
        facts.append(f"the inference-time defence `{markdown_text(str(config.defense.get('name')))}`")
    return ", ".join(facts)


def _plain_loader(repo: str, onnx: bool) -> str:
    if onnx:
        return ("from optimum.onnxruntime import ORTModelForSequenceClassification\n"
                "from transformers import AutoTokenizer, pipeline\n\n"
                f"model = ORTModelForSequenceClassification.from_pretrained({json.dumps(repo)})\n"
                f"pipe = pipeline(\"text-classification\", model=model, "
                f"tokenizer=AutoTokenizer.from_pretrained({json.dumps(repo)}))")
    return ("from transformers import pipeline\n\n"
            f"pipe = pipeline(\"text-classification\", model={json.dumps(repo)})")


def _evaluation_section(config: TextArmorConfig) -> str:
    evaluation = (config.metrics or {}).get("eval", config.metrics or {})
    rows = [(title, evaluation[key]) for key, _, title in EVAL_METRICS if isinstance(evaluation.get(key), (int, float))]
    if not rows:
        return "No evaluation results are recorded in `textarmor.json`."
    data = _data_name((config.training or {}).get("eval_data"))
    lines = [f"On `{data}`:" if data else "On the held-out evaluation data:", "", "| Metric | Value |", "|---|---:|"]
    lines += [f"| {title} | {_fmt(value)} |" for title, value in rows]
    extra = [f"temperature {config.temperature:g}"] + ([f"threshold {config.threshold:g}"] if config.threshold else [])
    return "\n".join(lines) + "\n\nCalibration: " + ", ".join(extra) + "."


def _robustness_section(config: TextArmorConfig) -> str:
    summary = (config.robustness or {}).get("summary_markdown")
    if summary:  # the robustness report's own table (textarmor evaluate --report)
        return summary.strip()
    numbers = robustness_numbers(config)
    if not numbers:
        return ("No robustness results are recorded yet. `textarmor evaluate MODEL_DIR --report DIR` measures them "
                "and stores them in `textarmor.json`.")
    lines = ["| Measure | Value |", "|---|---:|"]
    lines += [f"| {' / '.join(path)} | {_fmt(value)} |" for path, value in numbers[:MAX_ROBUSTNESS_METRICS]]
    if len(numbers) > MAX_ROBUSTNESS_METRICS:
        lines.append(f"\n{len(numbers) - MAX_ROBUSTNESS_METRICS} more values are in `textarmor.json`.")
    return "\n".join(lines)


def _data_name(value):
    """A data reference as the card shows it: a local file by its name alone (a path on the machine that
    trained the model means nothing to readers and can leak a user's folder names)."""
    if isinstance(value, str) and "://" not in value and not value.startswith("builtin:") and "/" in value:
        return Path(value).name
    return value


def _training_section(config: TextArmorConfig) -> str:
    training = config.training or {}
    if not training:
        return "No training record in `textarmor.json`."
    keys = ["method", "epochs", "learning_rate", "batch_size", "max_length", "seed", "train_rows", "eval_rows",
            "train_data", "train_seconds"]
    lines = ["| Setting | Value |", "|---|---|"]
    lines += [f"| {key} | `{_data_name(training[key]) if key == 'train_data' else training[key]}` |"
              for key in keys if key in training]
    objective = training.get("objective")
    if objective:
        lines.append(f"| objective | `{json.dumps(objective, sort_keys=True)}` |")
    return "\n".join(lines)
