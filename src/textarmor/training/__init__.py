"""Fine-tuning with pluggable (robust) objectives on top of ``transformers.Trainer``."""
from textarmor.training import pgd as _pgd  # noqa: F401  (registers pgd, freelb)
from textarmor.training import rift as _rift  # noqa: F401  (registers rift)
from textarmor.training import roast as _roast  # noqa: F401  (registers roast)
from textarmor.training.api import TrainResult, train
from textarmor.training.augment import AdversarialAugmentation, AugmentedObjective, resolve_attacker
from textarmor.training.objectives import OBJECTIVES, Objective, TrainingContext, make_objective
from textarmor.training.trainer import RobustTrainer

__all__ = [
           "OBJECTIVES",
           "AdversarialAugmentation",
           "AugmentedObjective",
           "Objective",
           "RobustTrainer",
           "TrainResult",
           "TrainingContext",
           "make_objective",
           "resolve_attacker",
           "train",
]
