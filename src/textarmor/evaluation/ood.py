"""Anomaly (out-of-distribution) detection scores and metrics.

Higher score = more in-distribution. Maximum softmax probability (Hendrycks & Gimpel 2017) and the
negative energy log Σ exp(logits) (Liu et al. 2020). AUROC and the false-positive rate at 95% true-positive
rate treat in-distribution as the positive class, as both papers do.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax
from sklearn.metrics import roc_auc_score


def max_softmax_score(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1).max(axis=1)


def energy_score(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return temperature * logsumexp(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def fpr_at_tpr(in_scores: np.ndarray, out_scores: np.ndarray, tpr: float = 0.95) -> float:
    """Fraction of out-of-distribution inputs accepted at the threshold that keeps ``tpr`` of in-distribution."""
    threshold = np.quantile(np.asarray(in_scores), 1.0 - tpr, method="lower")
    return float((np.asarray(out_scores) >= threshold).mean())


def ood_metrics(in_scores: np.ndarray, out_scores: np.ndarray) -> dict[str, float]:
    y = np.r_[np.ones(len(in_scores)), np.zeros(len(out_scores))]
    return {"auroc": float(roc_auc_score(y, np.r_[in_scores, out_scores])),
            "fpr_at_95_tpr": fpr_at_tpr(in_scores, out_scores)}
