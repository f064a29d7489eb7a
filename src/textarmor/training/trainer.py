"""``RobustTrainer``: ``transformers.Trainer`` whose loss comes from a pluggable :class:`Objective`."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from transformers import Trainer, TrainerCallback, TrainingArguments

from textarmor.training.objectives import Objective, StandardObjective


class RobustTrainer(Trainer):
    """A ``Trainer`` that asks its objective for the loss; nothing else changes."""

    # The objective computes a mean loss itself, so the Trainer must not rescale by num_items_in_batch.
    model_accepts_loss_kwargs = False

    def __init__(self, *args, objective: Objective | None = None, **kwargs):
        self.objective = objective or StandardObjective()
        callbacks = list(kwargs.pop("callbacks", None) or []) + self.objective.callbacks()
        super().__init__(*args, callbacks=callbacks, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = self.objective.loss(model, inputs)
        return (loss, outputs) if return_outputs else loss


class EpochMetricsWriter(TrainerCallback):
    """Writes the metrics of every evaluation to a JSON file as soon as they exist, so an interrupted
    run keeps what it measured. (Read-only with respect to training: it only writes a file.)"""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.epochs: list[dict] = []

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        train_losses = [h["loss"] for h in state.log_history if "loss" in h]
        row = {"epoch": round(state.epoch or 0, 4), "step": state.global_step,
               "train_loss": train_losses[-1] if train_losses else None}
        row.update({k.removeprefix("eval_"): v for k, v in (metrics or {}).items()})
        self.epochs.append(row)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"epochs": self.epochs}, indent=2) + "\n")
        tmp.replace(self.path)


def training_arguments(**kwargs) -> TrainingArguments:
    """``TrainingArguments`` across transformers releases: options a release lacks are translated or
    dropped (``train_sampling_strategy`` replaced ``group_by_length``)."""
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    if kwargs.pop("group_by_length", False):
        if "train_sampling_strategy" in fields:
            kwargs["train_sampling_strategy"] = "group_by_length"
        elif "group_by_length" in fields:
            kwargs["group_by_length"] = True
    return TrainingArguments(**{k: v for k, v in kwargs.items() if k in fields})
