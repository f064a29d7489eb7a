"""``RobustTrainer``: ``transformers.Trainer`` whose loss comes from a pluggable :class:`Objective`."""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from textarmor.training.embedding_space import WEIGHT_KEY
from textarmor.training.objectives import Objective, StandardObjective


class RobustTrainer(Trainer):
    """A ``Trainer`` that asks its objective for the loss; nothing else changes."""

    # The objective computes a mean loss itself, so the Trainer must not rescale by num_items_in_batch.
    model_accepts_loss_kwargs = False

    def __init__(self, *args, objective: Objective | None = None, **kwargs):
        self.objective = objective or StandardObjective()
        callbacks = list(kwargs.pop("callbacks", None) or []) + self.objective.callbacks()
        super().__init__(*args, callbacks=callbacks, **kwargs)
        self.objective.bind(backward=self._inner_backward, no_sync=self.accelerator.no_sync)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:  # evaluation: the plain loss, no adversary
            inputs = {k: v for k, v in inputs.items() if k != WEIGHT_KEY}
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss
        loss, outputs = self.objective.loss(model, inputs)
        return (loss, outputs) if return_outputs else loss

    def _inner_backward(self, loss) -> None:
        """Backward for the extra passes of multi-step objectives (FreeLB), scaled as ``training_step``
        scales the loss ``compute_loss`` returns: divided by the accumulation steps, then through
        ``accelerator.backward`` (fp16 loss scaling). Callers run it inside ``objective.no_sync(model)``,
        so DDP all-reduces the accumulated gradients once, in the Trainer's own backward."""
        steps = getattr(self, "current_gradient_accumulation_steps", None) or self.args.gradient_accumulation_steps
        self.accelerator.backward(loss / steps)


class EpochMetricsWriter(TrainerCallback):
    """Writes the metrics of every evaluation to a JSON file as soon as they exist, so an interrupted
    run keeps what it measured. The rows come from the Trainer's log history, which a resumed run restores
    from its checkpoint, so after ``--resume`` they cover every epoch, the ones before the interruption
    included. (Read-only with respect to training: it only writes a file.)"""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.epochs: list[dict] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.epochs = epoch_rows(state.log_history)  # a resumed run's earlier epochs; empty on a new run

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.epochs = epoch_rows(state.log_history)
        if not state.is_world_process_zero:  # under DDP every rank evaluates; one writes
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"epochs": self.epochs}, indent=2) + "\n")
        tmp.replace(self.path)


def epoch_rows(log_history: list[dict]) -> list[dict]:
    """One row per evaluation in a Trainer log history: epoch, step, the last training loss logged before it,
    and the evaluation's metrics without their ``eval_`` prefix."""
    rows, train_loss = [], None
    for entry in log_history:
        if "loss" in entry:
            train_loss = entry["loss"]
        if any(key.startswith("eval_") for key in entry):
            row = {"epoch": round(entry.get("epoch") or 0, 4), "step": entry.get("step"), "train_loss": train_loss}
            row.update({k.removeprefix("eval_"): v for k, v in entry.items() if k.startswith("eval_")})
            rows.append(row)
    return rows


class EpochTimer(TrainerCallback):
    """Wall time of each training epoch, from ``on_epoch_begin`` (listed first, so it includes per-epoch
    work of other callbacks such as attack rounds) to ``on_epoch_end`` (before evaluation).
    Each checkpoint keeps the times so far (``epoch_seconds.json``), so a resumed run reports every epoch's.
    (Read-only with respect to training.)"""

    FILE = "epoch_seconds.json"

    def __init__(self):
        self.seconds: list[float] = []
        #: Wall seconds of the sessions before a resume (0 for a run that was not interrupted).
        self.earlier_seconds = 0.0
        self._started: float | None = None
        self._session_started = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self._session_started = time.perf_counter()
        saved = _checkpoint_dir(args, state) / self.FILE
        if state.global_step and saved.exists():  # resumed: the times the checkpoint recorded
            record = json.loads(saved.read_text())
            self.seconds, self.earlier_seconds = list(record["epoch_seconds"]), float(record["wall_seconds"])

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        if self._started is not None:
            self.seconds.append(round(time.perf_counter() - self._started, 3))
            self._started = None

    def on_save(self, args, state, control, **kwargs):
        checkpoint = _checkpoint_dir(args, state)
        if state.is_world_process_zero and checkpoint.is_dir():
            wall = self.earlier_seconds + time.perf_counter() - self._session_started
            (checkpoint / self.FILE).write_text(json.dumps({"epoch_seconds": self.seconds, "wall_seconds": wall}))

    def summary(self) -> dict:
        """Measured cost: seconds per training epoch (mean and each), evaluation excluded."""
        mean = sum(self.seconds) / len(self.seconds) if self.seconds else None
        return {"train_seconds_per_epoch": round(mean, 3) if mean is not None else None,
                "epoch_seconds": list(self.seconds)}


def _checkpoint_dir(args, state) -> Path:
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    return Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"


def best_epoch(rows: list[dict], state) -> dict:
    """The row of the checkpoint the Trainer kept as best (the weights ``load_best_model_at_end`` reloads);
    the most accurate row when the Trainer recorded none."""
    if state.best_model_checkpoint:
        step = int(Path(state.best_model_checkpoint).name.rsplit("-", 1)[-1])
        chosen = [row for row in rows if row.get("step") == step]
        if chosen:
            return chosen[-1]
    return max(rows, key=lambda row: row.get("accuracy", -1.0)) if rows else {}


def end_process_group() -> None:
    """Close the process group of a torchrun/accelerate launch, if one is open, once every rank gets here.
    Left to the interpreter's exit, torchrun scripts under gloo aborted a rank about one run in ten
    ("terminate called without an active exception") after their work was saved (6 in 57 runs of the DDP
    test; 0 in 40 with this). ``train`` leaves the group open, since a script may train again; a program's
    last step calls this."""
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()  # finished trainers' DDP wrappers (held in reference cycles) go before the group they use
        dist.barrier()
        dist.destroy_process_group()


def distributed_defaults(objective: Objective) -> dict:
    """``TrainingArguments`` a torchrun/accelerate launch needs for this objective."""
    options: dict = {}
    if not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # accelerate sets up multi-process CPU training (gloo) only when told the run is on CPU.
        options["use_cpu"] = True
    if objective.ddp_find_unused_parameters is not None:
        options["ddp_find_unused_parameters"] = objective.ddp_find_unused_parameters
    return options


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
