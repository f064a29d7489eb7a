"""The model card: ``README.md`` with Hugging Face YAML metadata and tables built from the model dir.

Metadata (https://huggingface.co/docs/hub/model-cards): ``pipeline_tag``, ``library_name``, ``license``,
``base_model`` and ``datasets`` (hub ids only: a local path means nothing on the hub), and ``model-index``
with the evaluation metrics of ``textarmor.json`` plus every number of its ``robustness`` section.
The training results table comes from ``metrics.json`` (one row per epoch).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from string import Template
from typing import Any

import yaml

from textarmor.model_dir import TextArmorConfig

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


def front_matter(config: TextArmorConfig, name: str, license: str | None) -> dict[str, Any]:
    training = config.training or {}
    base = hub_base_model(config.base_model)
    datasets = sorted({d for d in (hub_dataset(training.get("train_data")), hub_dataset(training.get("eval_data")))
                       if d})
    meta: dict[str, Any] = {
        "license": license or ALIAS_LICENSES.get(config.base_model or "", "other"),
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "tags": ["textarmor", "text-classification", "robustness"],
    }
    if base:
        meta["base_model"] = base
    if datasets:
        meta["datasets"] = datasets
    metrics = _index_metrics(config)
    if metrics:
        dataset_id = datasets[0] if datasets else "custom"
        meta["model-index"] = [{"name": name, "results": [{
            "task": {"type": "text-classification", "name": "Text Classification"},
            "dataset": {"name": dataset_id, "type": dataset_id,
                        "split": "validation" if training.get("eval_data") else "held-out"},
            "metrics": metrics}]}]
    return meta


def _index_metrics(config: TextArmorConfig) -> list[dict[str, Any]]:
    evaluation = (config.metrics or {}).get("eval", config.metrics or {})
    metrics = [{"type": kind, "value": round(float(evaluation[key]), 4), "name": title}
               for key, kind, title in EVAL_METRICS if isinstance(evaluation.get(key), (int, float))]
    # textarmor.json's robustness summary is keyed measure first: {"accuracy_under_attack": {"pwws": 41.2}}.
    for path, value in robustness_numbers(config)[:MAX_ROBUSTNESS_METRICS]:
        metrics.append({"type": path[0], "value": round(value, 4), "name": "Robustness: " + " / ".join(path)})
    return metrics


def robustness_numbers(config: TextArmorConfig) -> list[tuple[tuple[str, ...], float]]:
    """The measurements of the robustness summary (counts such as ``attack_examples`` are not metrics)."""
    return [(path, value) for path, value in flatten_numbers(config.robustness or {})
            if not path[-1].endswith("examples")]


DEFAULT_EXAMPLE = "a gripping, funny film"


def render_model_card(model_dir: Path, name: str, *, license: str | None = None,
                      example: str = DEFAULT_EXAMPLE) -> str:
    """The model card (README.md with Hugging Face metadata); ``example`` is the text in its usage snippets."""
    config = TextArmorConfig.load(model_dir)
    if config is None:
        labels = json.loads((Path(model_dir) / "config.json").read_text()).get("id2label", {})
        config = TextArmorConfig(labels=[labels[k] for k in sorted(labels, key=int)])
    meta = front_matter(config, name, license)
    base = meta.get("base_model")
    template = Template((Path(__file__).parent / "templates" / "README.md.tmpl").read_text(encoding="utf-8"))
    return template.substitute(
        front_matter=yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip(),
        name=name,
        example_py=json.dumps(example),
        example_json=json.dumps(example).replace("'", "'\\''"),  # inside the curl line's single quotes
        base_sentence=f" from [`{base}`](https://huggingface.co/{base})" if base else "",
        labels=", ".join(f"`{label}`" for label in config.labels),
        evaluation=_evaluation_section(config),
        robustness=_robustness_section(config),
        training=_training_section(config),
        epochs=epochs_table(read_epochs(model_dir)),
    )


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
