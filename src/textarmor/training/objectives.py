"""Training objectives: each a small class whose ``loss(model, batch)`` returns ``(loss, outputs)``.

``RobustTrainer.compute_loss`` calls the objective, so everything else (mixed precision, gradient
accumulation, checkpoints, logging, DDP) stays ``transformers.Trainer``'s. Objectives that need more than
one backward pass per step (FreeLB) use :meth:`Objective.inner_backward` and :meth:`Objective.no_sync`,
which ``RobustTrainer`` binds to the Trainer's own scaling and DDP handling.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from textarmor.errors import ParameterError
from textarmor.training.catalogue import METHODS
from textarmor.training.embedding_space import WEIGHT_KEY, EmbeddedBatch, PerturbationBall, cross_entropy


@dataclass
class TrainingContext:
    """What ``train`` knows before training starts, handed to :meth:`Objective.setup`."""

    model: Any  # the model to fine-tune, not yet wrapped by the Trainer
    tokenizer: Any = None
    texts: list[str] = field(default_factory=list)  # training texts (strings, before tokenisation)
    labels: list[str] = field(default_factory=list)  # their label names
    label_names: list[str] = field(default_factory=list)
    text_pair: bool = False
    max_length: int = 128
    output_dir: Path | None = None  # the run's working directory (records go here)
    seed: int = 42
    #: The rewrite the model is trained through (training texts are already rewritten); None: raw text.
    rewrite: Callable[[str], str] | None = None
    #: Puts a Classifier of the model being trained behind the defence it will ship with (for attack rounds).
    defend: Callable[[Any], Any] | None = None


class Objective:
    """Base class. Subclasses set ``name``, ``paper`` and ``summary`` and implement :meth:`loss`.

    ``__init__`` stores hyperparameters as public attributes (they are what ``textarmor.json`` records);
    state built for a run (teacher copies, masks) lives in attributes starting with ``_``.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    #: DDP's ``find_unused_parameters`` this objective needs (None: the Trainer's default).
    ddp_find_unused_parameters: ClassVar[bool | None] = None

    def loss(self, model, batch: dict[str, Any]):
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        """What ``textarmor.json`` records about this objective."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def callbacks(self) -> list:
        """Trainer callbacks the objective needs (per-epoch work such as redrawing masks)."""
        return []

    def report(self) -> dict[str, Any]:
        """What the objective measured during training (recorded in ``textarmor.json``)."""
        return {}

    def artifacts(self) -> list[Path]:
        """Files the objective wrote in the run directory that belong next to the saved model."""
        return []

    def setup(self, context: TrainingContext) -> None:
        """Called once before the Trainer is built (and before a checkpoint is restored)."""

    def finalize(self, model) -> None:
        """Called before the final model is saved: remove anything the objective attached to it."""

    # -- hooks bound by RobustTrainer; the defaults serve direct use outside a Trainer ----------------
    def bind(self, backward: Callable, no_sync: Callable) -> None:
        self._backward, self._no_sync = backward, no_sync

    def inner_backward(self, loss) -> None:
        """Backward pass for a loss that is not the one returned to the Trainer (accumulates grads)."""
        backward = getattr(self, "_backward", None)
        backward(loss) if backward else loss.backward()

    def no_sync(self, model):
        """Context for extra forward/backward passes: no DDP gradient all-reduce inside it."""
        no_sync = getattr(self, "_no_sync", None)
        return no_sync(model) if no_sync else contextlib.nullcontext()


class StandardObjective(Objective):
    """Cross-entropy on clean inputs: plain fine-tuning."""

    name = "standard"
    summary = METHODS["standard"].summary

    def loss(self, model, batch):
        if WEIGHT_KEY not in batch:
            outputs = model(**batch)
            return outputs.loss, outputs
        inputs = {k: v for k, v in batch.items() if k not in (WEIGHT_KEY, "labels")}
        outputs = model(**inputs)
        weights = batch[WEIGHT_KEY].float()
        loss = (cross_entropy(outputs.logits, batch["labels"]) * weights).sum() / weights.sum()
        return loss, outputs


class EmbeddingAdversaryObjective(Objective):
    """Shared hyperparameters of the objectives that search the FreeLB perturbation ball."""

    def __init__(self, adv_steps: int = 2, adv_lr: float = 0.1, adv_init_mag: float = 1.0,
                 adv_max_norm: float = 0.6, adv_norm: str = "l2"):
        if int(adv_steps) < 1:
            raise ParameterError(f"adv_steps must be at least 1, got {adv_steps}.")
        self.adv_steps = int(adv_steps)
        self.adv_lr, self.adv_init_mag, self.adv_max_norm = float(adv_lr), float(adv_init_mag), float(adv_max_norm)
        self.adv_norm = adv_norm
        self._ball = PerturbationBall(norm=adv_norm, lr=self.adv_lr, init_mag=self.adv_init_mag,
                                      max_norm=self.adv_max_norm)

    def attack(self, model, batch: EmbeddedBatch, loss_fn) -> torch.Tensor:
        """``adv_steps`` ascent steps on ``loss_fn(logits)`` (a per-example loss); returns the final
        perturbation, detached. Parameter gradients are not touched and DDP does not synchronise."""
        with self.no_sync(model):
            embeds = batch.embed(model).detach()
            delta = self._ball.start(embeds, batch.mask)
            for _ in range(self.adv_steps):
                logits = batch.forward(model, embeds + delta).logits
                (grad,) = torch.autograd.grad(batch.mean(loss_fn(logits)), delta)
                delta = self._ball.ascend(delta, grad, batch.mask)
        return delta.detach()


OBJECTIVES: dict[str, type[Objective]] = {}


def register(cls: type[Objective]) -> type[Objective]:
    """Class decorator: make an objective available to ``make_objective`` and ``--method``."""
    OBJECTIVES[cls.name] = cls
    return cls


register(StandardObjective)

AUGMENT = "augment"


def make_objective(method: str, **kwargs) -> Objective:
    """Build an objective by name with its hyperparameters.

    ``NAME+augment`` (or ``augment`` alone, meaning ``standard+augment``) adds adversarial augmentation
    to objective NAME; options starting with ``augment_`` or equal to ``clean_epochs`` go to the
    augmentation, the rest to the objective.
    """
    parts = [p.strip() for p in method.split("+") if p.strip()]
    augment = AUGMENT in parts
    base = [p for p in parts if p != AUGMENT]
    if len(base) > 1 or (not base and not augment):
        raise ParameterError(f"--method '{method}' must be one objective, optionally '+augment' "
                             f"(e.g. roast+augment). Objectives: {', '.join(OBJECTIVES)}.")
    name = base[0] if base else "standard"
    if name not in OBJECTIVES:
        raise ParameterError(f"Unknown training method '{name}'. Available: {', '.join(OBJECTIVES)}, "
                             f"each optionally with '+{AUGMENT}'.")
    augment_options = {k: kwargs.pop(k) for k in list(kwargs) if k.startswith("augment_") or k == "clean_epochs"}
    if augment_options and not augment:
        raise ParameterError(f"Options {', '.join(sorted(augment_options))} need --method NAME+augment.")
    try:
        objective = OBJECTIVES[name](**kwargs)
    except TypeError as exc:
        raise ParameterError(f"Bad hyperparameters for method '{name}': {exc}") from None
    if augment:
        from textarmor.training.augment import AdversarialAugmentation, AugmentedObjective

        try:
            augmentation = AdversarialAugmentation(**{k.removeprefix("augment_"): v
                                                      for k, v in augment_options.items()})
        except TypeError as exc:
            raise ParameterError(f"Bad options for augment: {exc}") from None
        objective = AugmentedObjective(objective, augmentation)
    return objective


# The objective modules register themselves; importing them here makes the registry complete whichever
# module is imported first (they import this one, whose names above already exist).
from textarmor.training import ascc, pgd, rift, roast  # noqa: E402,F401
