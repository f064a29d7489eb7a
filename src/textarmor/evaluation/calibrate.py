"""``calibrate``: fit temperature scaling and split-conformal scores on held-out data, optionally choose the
decision threshold (for a target precision or coverage, :mod:`textarmor.evaluation.threshold`), and store them
in the model directory's ``textarmor.json``; report their effect on a part of the data not used to fit them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import softmax

from textarmor.classifier import Classifier
from textarmor.data import LabelMap, load_dataset
from textarmor.errors import DataError, ParameterError
from textarmor.evaluation.calibration import fit_temperature, negative_log_likelihood
from textarmor.evaluation.conformal import METHODS, conformal_record, empirical_coverage
from textarmor.evaluation.metrics import expected_calibration_error
from textarmor.evaluation.threshold import choose_threshold, threshold_effect
from textarmor.model_dir import TextArmorConfig


def calibrate(model_dir: str | os.PathLike, data: str | os.PathLike, *, holdout: float = 0.5, seed: int = 0,
              coverages: tuple[float, ...] = (0.9, 0.95), text_column: str = "text", label_column: str = "label",
              text_pair_column: str | None = None, save: bool = True, target_precision: float | None = None,
              target_coverage: float | None = None, abstain_label: str | None = None,
              **classifier_kwargs) -> dict[str, Any]:
    """Fit the temperature and conformal scores on ``1 - holdout`` of ``data`` (a dev set, never the test set),
    measure ECE, NLL and conformal coverage before/after on the ``holdout`` part, and save into ``model_dir``.

    With ``target_precision`` or ``target_coverage`` the decision threshold is chosen on the same rows, on
    calibrated scores, and stored (predictions under it are uncertain); ``abstain_label`` is stored as the label
    uncertain predictions take."""
    if not 0.0 <= holdout < 1.0:
        raise ParameterError(f"holdout must be in [0, 1), got {holdout}.")
    clf = Classifier.from_pretrained(model_dir, **classifier_kwargs)
    dataset, _ = load_dataset(data, text_column=text_column, label_column=label_column,
                              text_pair_column=text_pair_column)
    labels = np.asarray(LabelMap(clf.labels).encode(dataset["label"], source=f"'{Path(str(data)).name}'"))
    logits = clf.logits(dataset["text"], dataset["text_pair"] if text_pair_column else None)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_held = int(round(holdout * len(labels)))
    held, fit = order[:n_held], order[n_held:]
    if len(fit) < 20:
        raise DataError(f"Calibration needs at least 20 labelled rows to fit on; {len(fit)} remain after holding "
                        f"out {n_held}. Pass more data or a smaller --holdout.")
    temperature = fit_temperature(logits[fit], labels[fit])
    record = conformal_record(softmax(logits[fit] / temperature, axis=1), labels[fit])
    report: dict[str, Any] = {"temperature": temperature, "fit_rows": int(len(fit)), "holdout_rows": int(n_held)}
    if target_precision is not None or target_coverage is not None:
        choice = choose_threshold(softmax(logits[fit] / temperature, axis=1), labels[fit],
                                  target_precision=target_precision, target_coverage=target_coverage)
        if n_held:
            choice["holdout"] = threshold_effect(softmax(logits[held] / temperature, axis=1), labels[held],
                                                 choice["threshold"])
        report["threshold"] = choice
    if n_held:
        before, after = softmax(logits[held], axis=1), softmax(logits[held] / temperature, axis=1)
        report["holdout"] = {
            "ece_before": expected_calibration_error(before, labels[held]),
            "ece_after": expected_calibration_error(after, labels[held]),
            "nll_before": negative_log_likelihood(logits[held], labels[held]),
            "nll_after": negative_log_likelihood(logits[held], labels[held], temperature),
            "conformal": {m: {str(c): empirical_coverage(after, labels[held], record, c, m) for c in coverages}
                          for m in METHODS},
        }
    if save:
        config = TextArmorConfig.load(model_dir) or clf.config
        config.temperature = temperature
        config.conformal = {**record, "calibration_data": str(data), "report": report}
        if "threshold" in report:
            config.threshold = report["threshold"]["threshold"]
        if abstain_label is not None:
            config.abstain_label = abstain_label
        config.save(model_dir)
    return report
