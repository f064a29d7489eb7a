"""Fine-tuning with pluggable (robust) objectives on top of ``transformers.Trainer``."""
from textarmor.training.api import TrainResult, train
from textarmor.training.objectives import OBJECTIVES, Objective, make_objective
from textarmor.training.trainer import RobustTrainer

__all__ = ["train", "TrainResult", "RobustTrainer", "Objective", "OBJECTIVES", "make_objective"]
