"""Training objectives: each a small class whose ``loss(model, batch)`` returns ``(loss, outputs)``.

``RobustTrainer.compute_loss`` calls the objective, so everything else (mixed precision, gradient
accumulation, checkpoints, logging, DDP) stays ``transformers.Trainer``'s.
"""
from __future__ import annotations

from typing import Any, ClassVar

from textarmor.errors import ParameterError


class Objective:
    """Base class. Subclasses set ``name``, ``paper`` and ``summary`` and implement :meth:`loss`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""

    def loss(self, model, batch: dict[str, Any]):
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        """What ``textarmor.json`` records about this objective."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def callbacks(self) -> list:
        """Trainer callbacks the objective needs (per-epoch work such as redrawing masks)."""
        return []


class StandardObjective(Objective):
    """Cross-entropy on clean inputs: plain fine-tuning."""

    name = "standard"
    summary = "cross-entropy on clean inputs (plain fine-tuning)"

    def loss(self, model, batch):
        outputs = model(**batch)
        return outputs.loss, outputs


OBJECTIVES: dict[str, type[Objective]] = {cls.name: cls for cls in (StandardObjective,)}


def make_objective(method: str, **kwargs) -> Objective:
    """Build an objective by name with its hyperparameters."""
    if method not in OBJECTIVES:
        raise ParameterError(f"Unknown training method '{method}'. Available: {', '.join(OBJECTIVES)}.")
    try:
        return OBJECTIVES[method](**kwargs)
    except TypeError as exc:
        raise ParameterError(f"Bad hyperparameters for method '{method}': {exc}") from None
