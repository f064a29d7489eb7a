"""Fine-tuning with pluggable (robust) objectives on top of ``transformers.Trainer``.

Names load on first use (this package pulls in ``transformers.Trainer``), so ``textarmor.training.catalogue``
stays cheap to import for the command line's help.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "train": "api", "TrainResult": "api",
    "RobustTrainer": "trainer",
    "Objective": "objectives", "OBJECTIVES": "objectives", "make_objective": "objectives",
    "TrainingContext": "objectives",
    "AdversarialAugmentation": "augment", "AugmentedObjective": "augment", "resolve_attacker": "augment",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"textarmor.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'textarmor.training' has no attribute {name!r}")


__all__ = ["OBJECTIVES", "AdversarialAugmentation", "AugmentedObjective", "Objective", "RobustTrainer", "TrainResult",
           "TrainingContext", "make_objective", "resolve_attacker", "train"]
