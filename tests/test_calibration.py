"""Temperature scaling, conformal prediction sets and anomaly scores on synthetic data with known answers."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import roc_curve

from textarmor.evaluation.calibration import fit_temperature, negative_log_likelihood
from textarmor.evaluation.conformal import (
    calibration_scores,
    conformal_record,
    empirical_coverage,
    label_scores,
    prediction_sets,
    quantile,
)
from textarmor.evaluation.metrics import expected_calibration_error
from textarmor.evaluation.ood import energy_score, fpr_at_tpr, max_softmax_score, ood_metrics


def sample_logits(n: int, k: int, true_temperature: float, seed: int):
    """Labels drawn from softmax(z / T*): temperature scaling of z must recover T*."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, size=(n, k))
    p = softmax(z / true_temperature, axis=1)
    labels = np.array([rng.choice(k, p=row) for row in p])
    return z, labels


@pytest.mark.parametrize("true_t", [0.5, 2.0])
def test_temperature_recovers_the_generating_temperature(true_t):
    z, labels = sample_logits(20000, 3, true_t, seed=1)
    fitted = fit_temperature(z, labels)
    assert fitted == pytest.approx(true_t, rel=0.08)
    assert negative_log_likelihood(z, labels, fitted) <= negative_log_likelihood(z, labels, 1.0)


def test_ece_known_values():
    probs = np.array([[0.9, 0.1]] * 10)
    labels = np.array([0] * 9 + [1])  # 90% accurate at 0.9 confidence: perfectly calibrated
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)
    labels = np.array([0] * 5 + [1] * 5)  # 50% accurate at 0.9
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)


def test_scaling_reduces_ece_of_an_overconfident_model():
    z, labels = sample_logits(5000, 2, 3.0, seed=2)  # z is three times too sharp
    before = expected_calibration_error(softmax(z, axis=1), labels)
    after = expected_calibration_error(softmax(z / fit_temperature(z, labels), axis=1), labels)
    assert after < before / 2


def test_aps_scores_are_cumulative_mass():
    probs = np.array([[0.5, 0.3, 0.2]])
    np.testing.assert_allclose(label_scores(probs, "aps"), [[0.5, 0.8, 1.0]])
    np.testing.assert_allclose(label_scores(probs, "lac"), [[0.5, 0.7, 0.8]])


def test_quantile_is_the_finite_sample_rank():
    scores = np.arange(1, 20) / 20.0  # n = 19
    assert quantile(scores, 0.9) == pytest.approx(scores[17])  # ceil(20 * 0.9) = 18th smallest
    assert quantile(scores, 0.99) == float("inf")  # ceil(20 * 0.99) = 20 > n


@pytest.mark.parametrize("method", ["lac", "aps"])
@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_conformal_coverage_holds_on_fresh_data(method, coverage):
    z, labels = sample_logits(6000, 4, 1.0, seed=3)
    probs = softmax(z, axis=1)
    record = conformal_record(probs[:2000], labels[:2000])
    result = empirical_coverage(probs[2000:], labels[2000:], record, coverage, method)
    assert result["coverage"] >= coverage - 0.02
    assert result["coverage"] <= coverage + 0.04  # valid, not trivially so
    sets = prediction_sets(probs[2000:], calibration_scores(probs[:2000], labels[:2000], method), coverage, method)
    assert sets.sum(axis=1).mean() == pytest.approx(result["mean_set_size"])


def test_ood_scores_and_fpr_match_sklearn():
    rng = np.random.default_rng(4)
    in_logits = rng.normal(0, 1, (500, 2)) + np.array([4.0, 0.0])
    out_logits = rng.normal(0, 1, (400, 2))
    for score in (max_softmax_score, energy_score):
        s_in, s_out = score(in_logits), score(out_logits)
        metrics = ood_metrics(s_in, s_out)
        assert metrics["auroc"] > 0.8
        fpr, tpr, _ = roc_curve(np.r_[np.ones(500), np.zeros(400)], np.r_[s_in, s_out])
        assert fpr_at_tpr(s_in, s_out) == pytest.approx(fpr[np.searchsorted(tpr, 0.95, side="left")], abs=0.01)


def test_calibrate_command_stores_temperature_and_sets(tiny_trained, synthetic_files, tmp_path, capsys):
    import shutil

    from textarmor import Classifier, TextArmorConfig
    from textarmor.cli import main
    from textarmor.errors import ParameterError

    model = tmp_path / "model"
    shutil.copytree(tiny_trained, model)
    with pytest.raises(ParameterError, match="calibrate"):
        Classifier.from_pretrained(model, device="cpu").predict(["great film"], coverage=0.9)
    with pytest.raises(SystemExit) as info:
        main(["calibrate", str(model), "--data", str(synthetic_files[1])])
    assert info.value.code == 0
    config = TextArmorConfig.load(model)
    assert config.temperature > 0 and config.temperature != 1.0
    assert set(config.conformal["scores"]) == {"lac", "aps"} and config.conformal["n"] == 40
    preds = Classifier.from_pretrained(model, device="cpu").predict(["the film was great", "of the and"],
                                                                    coverage=0.9)
    for p in preds:
        assert p.prediction_set is not None
        assert p.uncertain == (len(p.prediction_set) != 1)
    (tmp_path / "in.txt").write_text("the film was great\nthe plot was dull\n")
    with pytest.raises(SystemExit):
        main(["predict", str(model), str(tmp_path / "in.txt"), "--coverage", "0.9", "--out", str(tmp_path / "o.jsonl")])
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert all("prediction_set" in r and "uncertain" in r for r in rows)
