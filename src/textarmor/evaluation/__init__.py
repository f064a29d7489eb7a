"""Metrics and model evaluation."""
from textarmor.evaluation.evaluate import evaluate
from textarmor.evaluation.metrics import classification_metrics, expected_calibration_error

__all__ = ["evaluate", "classification_metrics", "expected_calibration_error"]
