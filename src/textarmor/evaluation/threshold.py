"""Choosing the decision threshold: the lowest calibrated top score a prediction needs to be accepted (below
it, predictions are ``uncertain`` and take the abstain label), picked on held-out labelled data for a target
precision of the accepted predictions or a target coverage (the share of inputs accepted)."""
from __future__ import annotations

import math

import numpy as np

from textarmor.errors import DataError, ParameterError


def choose_threshold(probs: np.ndarray, labels: np.ndarray, *, target_precision: float | None = None,
                     target_coverage: float | None = None) -> dict[str, float]:
    """The threshold on the top score of ``probs`` (n, labels) against true ``labels`` (n,).

    ``target_precision``: the lowest threshold whose accepted predictions are at least this accurate (so the
    most inputs are accepted at that precision). ``target_coverage``: the highest threshold that still accepts
    at least this share of the inputs. Exactly one is given. Returns the threshold and, on these rows, the
    coverage and the precision of the accepted predictions.
    """
    if (target_precision is None) == (target_coverage is None):
        raise ParameterError("Give exactly one of target_precision and target_coverage (--target-precision P or "
                             "--target-coverage C).")
    target = target_precision if target_precision is not None else target_coverage
    name = "target_precision" if target_precision is not None else "target_coverage"
    if not isinstance(target, (int, float)) or not 0.0 < float(target) <= 1.0:
        raise ParameterError(f"{name} must be a number in (0, 1], got {target!r}, e.g. 0.95.")
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if len(labels) == 0:
        raise DataError("Choosing a threshold needs labelled rows; got none.")
    top, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    order = np.argsort(-top, kind="stable")
    ranked_top, ranked_correct = top[order], correct[order]
    accepted = np.arange(1, len(top) + 1)
    precision = np.cumsum(ranked_correct) / accepted  # accepting the k best-scored rows
    # Ties accept together: only the last row of each run of equal scores is a threshold one can set.
    last_of_tie = np.append(ranked_top[1:] != ranked_top[:-1], True)
    if target_precision is not None:
        reach = np.flatnonzero(last_of_tie & (precision >= float(target_precision) - 1e-12))
        if len(reach) == 0:
            best = int(np.argmax(np.where(last_of_tie, precision, -1.0)))
            raise DataError(f"No threshold makes the accepted predictions {target_precision:.1%} accurate on these "
                            f"{len(labels)} rows (the best is {precision[best]:.1%}, accepting {accepted[best]}). "
                            "Lower --target-precision, or calibrate on more data.")
        k = int(reach[-1])
    else:
        needed = math.ceil(float(target_coverage) * len(top) - 1e-9)
        k = int(np.flatnonzero(last_of_tie & (accepted >= needed))[0])
    return {"threshold": float(ranked_top[k]), "coverage": float(accepted[k] / len(top)),
            "precision": float(precision[k]), "rows": int(len(top))}


def threshold_effect(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Coverage and precision of the accepted predictions at ``threshold`` on other rows (a held-out part)."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    accepted = probs.max(axis=1) >= threshold
    correct = probs.argmax(axis=1) == labels
    return {"coverage": float(accepted.mean()) if len(labels) else 0.0,
            "precision": float(correct[accepted].mean()) if accepted.any() else float("nan"),
            "rows": int(len(labels))}
