"""``evaluate``: score a model on labelled data."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textarmor.classifier import Classifier, check_threshold
from textarmor.data import LabelMap, load_dataset
from textarmor.evaluation.metrics import classification_metrics


def evaluate(model: str | os.PathLike | Classifier, data: str | os.PathLike, *, threshold: float | None = None,
             text_column: str = "text", label_column: str = "label", text_pair_column: str | None = None,
             strict: bool = False, **classifier_kwargs) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix and ECE (10 bins) of ``model``
    on ``data``; with ``threshold``, also coverage and accuracy on the accepted predictions. A defended model
    (``defense=`` in ``classifier_kwargs``, or a :class:`~textarmor.defenses.DefendedClassifier`) adds
    ``defense``: its settings, forward passes per input and, for ``smooth`` with ``certify``, certificates."""
    threshold = check_threshold(threshold)
    clf = model if isinstance(model, Classifier) else Classifier.from_pretrained(model, **classifier_kwargs)
    dataset, report = load_dataset(data, text_column=text_column, label_column=label_column,
                                   text_pair_column=text_pair_column, strict=strict)
    if text_pair_column is None and clf.config.text_pair:
        from textarmor.errors import DataError

        raise DataError("This model was trained on sentence pairs; pass --text-pair-column for the second text.")
    labels = LabelMap(clf.labels).encode(dataset["label"], source=f"'{Path(str(data)).name}'")
    probs = clf.predict_proba(dataset["text"], dataset["text_pair"] if text_pair_column else None)
    metrics = classification_metrics(labels, probs, clf.labels, threshold=threshold)
    metrics["rows_skipped"] = report.rows_skipped
    if hasattr(clf, "defense"):
        from textarmor.defenses import defense_metrics

        metrics["defense"] = defense_metrics(clf, dataset["text"], dataset["text_pair"] if text_pair_column else None,
                                             probs.argmax(axis=1), labels)
    return metrics
