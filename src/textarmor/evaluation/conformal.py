"""Split-conformal prediction sets (LAC and APS) for classifiers.

Calibration stores the non-conformity scores of held-out labelled examples; at prediction time a coverage
level 1 − α picks the quantile q̂ = the ⌈(n+1)(1−α)⌉-th smallest score, and a text's prediction set holds
every label whose score is at most q̂. On exchangeable data the set contains the true label with probability
at least 1 − α (Vovk et al. 2005; Angelopoulos & Bates 2021, "A Gentle Introduction to Conformal Prediction").

- LAC (least ambiguous set-valued classifier, Sadinle et al. 2019): score = 1 − p(y). Smallest sets.
- APS (adaptive prediction sets, Romano et al. 2020), non-randomised: score = total probability of the labels
  at least as likely as y (y included). Sets grow with the model's uncertainty.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from textarmor.errors import ParameterError

METHODS = ("lac", "aps")


def check_conformal_method(method: str) -> str:
    if method not in METHODS:
        raise ParameterError(f"conformal method must be one of {', '.join(METHODS)}, got {method!r} "
                             "(--conformal-method).")
    return method


def label_scores(probs: np.ndarray, method: str) -> np.ndarray:
    """Non-conformity score of every (example, label) pair, shape ``(n, num_labels)``."""
    probs = np.asarray(probs, dtype=np.float64)
    if method == "lac":
        return 1.0 - probs
    if method == "aps":
        order = np.argsort(-probs, axis=1, kind="stable")
        cumulative = np.take_along_axis(probs, order, axis=1).cumsum(axis=1)
        scores = np.empty_like(probs)
        np.put_along_axis(scores, order, cumulative, axis=1)
        return scores
    raise ParameterError(f"Conformal method must be one of {METHODS}, got {method!r}.")


def calibration_scores(probs: np.ndarray, labels: np.ndarray, method: str) -> np.ndarray:
    """Scores of the true labels on calibration data, sorted ascending."""
    scores = label_scores(probs, method)
    return np.sort(scores[np.arange(len(labels)), np.asarray(labels)])


def quantile(sorted_scores: np.ndarray, coverage: float) -> float:
    """q̂ for ``coverage`` = 1 − α: the ⌈(n+1)(1−α)⌉-th smallest calibration score (∞ if that exceeds n)."""
    if not 0.0 < coverage < 1.0:
        raise ParameterError(f"coverage must be in (0, 1), e.g. 0.95; got {coverage!r}.")
    n = len(sorted_scores)
    rank = math.ceil((n + 1) * coverage)
    return float("inf") if rank > n else float(sorted_scores[rank - 1])


def prediction_sets(probs: np.ndarray, sorted_scores: np.ndarray, coverage: float, method: str) -> np.ndarray:
    """Boolean membership matrix ``(n, num_labels)``: True where the label is in the text's set."""
    return label_scores(probs, method) <= quantile(np.asarray(sorted_scores), coverage) + 1e-12


def conformal_record(probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """What ``textarmor.json`` keeps: each method's sorted calibration scores (any coverage can be asked later)."""
    return {"n": int(len(labels)),
            "scores": {m: [round(float(x), 6) for x in calibration_scores(probs, labels, m)] for m in METHODS}}


def empirical_coverage(probs: np.ndarray, labels: np.ndarray, record: dict[str, Any], coverage: float,
                       method: str) -> dict[str, float]:
    """Coverage and mean set size on labelled data that was not used to calibrate."""
    sets = prediction_sets(probs, np.asarray(record["scores"][method]), coverage, method)
    return {"coverage": float(sets[np.arange(len(labels)), np.asarray(labels)].mean()),
            "mean_set_size": float(sets.sum(axis=1).mean()),
            "singleton_rate": float((sets.sum(axis=1) == 1).mean())}
