"""Temperature scaling (Guo et al. 2017): one scalar T dividing the logits, fitted by minimising the
negative log-likelihood on held-out labelled data. It changes confidence, never the ranking of labels."""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from textarmor.errors import DataError


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature in ``bounds`` that minimises NLL (searched on log T, where NLL is smooth)."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    if len(labels) < 2:
        raise DataError(f"Temperature scaling needs labelled examples; got {len(labels)}.")
    result = minimize_scalar(lambda log_t: negative_log_likelihood(logits, labels, float(np.exp(log_t))),
                             bounds=tuple(np.log(bounds)), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))
