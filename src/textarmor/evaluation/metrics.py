"""Classification metrics: accuracy, F1, per-class scores, confusion matrix, expected calibration error
and selective (thresholded) accuracy. Plain NumPy/scikit-learn functions of labels and scores."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """ECE with equal-width confidence bins (Guo et al. 2017): sum over bins of
    (bin size / n) × |accuracy(bin) − mean confidence(bin)|, on the top-class confidence."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds confidences in (edges[i], edges[i+1]]; a confidence of exactly 0 joins the first bin.
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        members = bins == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def classification_metrics(labels: Sequence[int], probs: np.ndarray, label_names: Sequence[str], *,
                           threshold: float | None = None, n_bins: int = 10) -> dict[str, Any]:
    """Every metric ``textarmor evaluate`` reports, as a JSON-ready dict."""
    labels = np.asarray(labels)
    probs = np.asarray(probs)
    preds = probs.argmax(axis=1)
    ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, preds, labels=ids, zero_division=0)
    result: dict[str, Any] = {
        "n": int(len(labels)),
        "accuracy": float((preds == labels).mean()),
        "macro_f1": float(f1_score(labels, preds, labels=ids, average="macro", zero_division=0)),
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for name, p, r, f, s in zip(label_names, precision, recall, f1, support)},
        "confusion_matrix": {"labels": list(label_names),
                             "matrix": confusion_matrix(labels, preds, labels=ids).tolist()},
        "ece": expected_calibration_error(probs, labels, n_bins=n_bins),
    }
    if threshold is not None:
        accepted = probs.max(axis=1) >= threshold
        result["threshold"] = float(threshold)
        result["coverage"] = float(accepted.mean())
        result["selective_accuracy"] = float((preds[accepted] == labels[accepted]).mean()) if accepted.any() else None
        result["uncertain"] = int((~accepted).sum())
    return result


def accuracy_and_f1(eval_pred) -> dict[str, float]:
    """``compute_metrics`` for ``transformers.Trainer``: accuracy and macro precision, recall and F1
    (the per-epoch columns of a model card's training results)."""
    logits, labels = eval_pred
    preds = np.asarray(logits).argmax(axis=-1)
    precision, recall, _, _ = precision_recall_fscore_support(labels, preds, average="macro", zero_division=0)
    return {"accuracy": float((preds == labels).mean()),
            "macro_f1": float(f1_score(labels, preds, average="macro", zero_division=0)),
            "macro_precision": float(precision), "macro_recall": float(recall)}
