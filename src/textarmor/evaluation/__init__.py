"""Metrics, calibration, conformal prediction and model evaluation."""
from textarmor.evaluation.calibrate import calibrate
from textarmor.evaluation.evaluate import evaluate
from textarmor.evaluation.metrics import classification_metrics, expected_calibration_error

__all__ = ["calibrate", "evaluate", "classification_metrics", "expected_calibration_error"]
