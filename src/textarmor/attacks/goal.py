"""Goal functions: what counts as success, and a score the search climbs (higher = closer to success).

Both follow TextAttack: untargeted success is a top label other than the true one, with score
``1 - p(true)``; targeted success is the target label on top, with score ``p(target)``.
"""
from __future__ import annotations

import numpy as np


class UntargetedClassification:
    """Succeed when the model's top label is no longer the true label."""

    name = "untargeted"

    def __init__(self, min_confidence: float = 0.0):
        self.min_confidence = min_confidence

    def scores(self, probs: np.ndarray, true_label: int) -> np.ndarray:
        return 1.0 - probs[:, true_label]

    def succeeded(self, probs: np.ndarray, true_label: int) -> np.ndarray:
        flipped = probs.argmax(axis=-1) != true_label
        if self.min_confidence > 0:
            flipped &= self.scores(probs, true_label) >= self.min_confidence
        return flipped


class TargetedClassification:
    """Succeed when the model puts ``target`` (a label index) on top."""

    name = "targeted"

    def __init__(self, target: int):
        self.target = target

    def scores(self, probs: np.ndarray, true_label: int) -> np.ndarray:
        return probs[:, self.target]

    def succeeded(self, probs: np.ndarray, true_label: int) -> np.ndarray:
        return probs.argmax(axis=-1) == self.target
