"""The threshold verb: `calibrate --target-precision P | --target-coverage C [--abstain-label NAME]` chooses the
decision threshold on held-out data and stores it, so every later prediction marks what falls under it."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from textarmor.classifier import Classifier
from textarmor.cli import main
from textarmor.errors import DataError, ParameterError
from textarmor.evaluation.threshold import choose_threshold

# Top scores in decreasing order, and whether each prediction is right: precision after k accepted rows is
# 1, 1, 2/3, 3/4, 4/5, 4/6, 5/7, 6/8.
TOP = np.array([0.99, 0.95, 0.9, 0.85, 0.8, 0.7, 0.65, 0.6])
RIGHT = np.array([True, True, False, True, True, False, True, True])


def _probs_and_labels():
    probs = np.stack([TOP, 1 - TOP], axis=1)  # class 0 predicted everywhere
    return probs, np.where(RIGHT, 0, 1)


def test_target_precision_takes_the_lowest_threshold_reaching_it():
    probs, labels = _probs_and_labels()
    choice = choose_threshold(probs, labels, target_precision=0.8)
    assert choice == {"threshold": 0.8, "coverage": 5 / 8, "precision": 0.8, "rows": 8}
    assert choose_threshold(probs, labels, target_precision=1.0)["threshold"] == 0.95
    assert choose_threshold(probs, labels, target_precision=0.75)["threshold"] == 0.6  # 6/8 at the bottom
    with pytest.raises(DataError, match="best is 0.0%"):
        choose_threshold(probs[2:3], labels[2:3], target_precision=0.5)


def test_target_coverage_takes_the_highest_threshold_accepting_enough():
    probs, labels = _probs_and_labels()
    assert choose_threshold(probs, labels, target_coverage=0.5)["threshold"] == 0.85
    assert choose_threshold(probs, labels, target_coverage=0.51)["threshold"] == 0.8
    assert choose_threshold(probs, labels, target_coverage=1.0)["coverage"] == 1.0
    tied = np.array([[0.9, 0.1], [0.9, 0.1], [0.7, 0.3]])
    assert choose_threshold(tied, np.zeros(3, int), target_coverage=0.3)["coverage"] == 2 / 3  # ties go together
    with pytest.raises(ParameterError, match="exactly one"):
        choose_threshold(probs, labels, target_precision=0.9, target_coverage=0.9)
    with pytest.raises(ParameterError, match="target_coverage"):
        choose_threshold(probs, labels, target_coverage=1.5)


def test_calibrate_stores_the_threshold_and_abstain_label(tiny_trained, synthetic_files, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_trained, model)
    dev = synthetic_files[1]
    with pytest.raises(SystemExit) as done:
        main(["calibrate", str(model), "--data", str(dev), "--target-coverage", "0.8", "--abstain-label", "unsure"])
    assert done.value.code in (0, None)
    out = capsys.readouterr().out
    assert "threshold " in out and "of the 40 calibration rows" in out and "held-out rows" in out
    config = json.loads((model / "textarmor.json").read_text())
    report = config["conformal"]["report"]["threshold"]
    assert config["threshold"] == report["threshold"] and report["coverage"] >= 0.8
    assert config["abstain_label"] == "unsure"
    clf = Classifier.from_pretrained(model, device="cpu")
    texts = [json.loads(line)["text"] for line in dev.read_text().splitlines()]
    predictions = clf.predict(texts)
    uncertain = [p for p in predictions if p.uncertain]
    assert all(p.label == "unsure" and p.score < config["threshold"] for p in uncertain)
    assert all(p.score >= config["threshold"] for p in predictions if not p.uncertain)
    with pytest.raises(SystemExit) as both:
        main(["calibrate", str(model), "--data", str(dev), "--target-coverage", "0.8", "--target-precision", "0.9"])
    assert both.value.code == 2 and "exactly one" in capsys.readouterr().err
