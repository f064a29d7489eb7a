"""``train``: fine-tune a sequence classifier and write a textarmor model directory.

The run works in ``<out>.partial/`` (checkpoints, per-epoch metrics written as they are produced, and
``run.json``: the identity of the data, base model and settings) and moves the finished model to ``<out>`` only
at the end, so a failed run never touches earlier results and ``resume=True`` continues from the last
checkpoint, provided the data, model and settings are those of ``run.json``. A run that fails before its first
checkpoint leaves no ``<out>.partial/`` behind.
"""
from __future__ import annotations

import math
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textarmor.data import LabelMap, load_dataset
from textarmor.errors import DataError, OutputExistsError, ParameterError
from textarmor.identity import check_resume, data_digest, model_digest, plain, write_record
from textarmor.model_dir import TextArmorConfig
from textarmor.models import DEFAULT_MODEL, load_model, load_tokenizer, resolve_model_path
from textarmor.training.objectives import TrainingContext, make_objective
from textarmor.training.trainer import (
    EpochMetricsWriter,
    EpochTimer,
    RobustTrainer,
    best_epoch,
    distributed_defaults,
    training_arguments,
)

RUN_RECORD = "run.json"


@dataclass
class TrainResult:
    """Where the model went and how it scored."""

    model_dir: Path
    metrics: dict[str, Any]
    epochs: list[dict[str, Any]]
    train_seconds: float
    #: The Trainer's log history (training loss per logging step, evaluations); under DDP the logged loss is
    #: already the mean over ranks, so every rank holds the same history.
    history: list[dict[str, Any]] = field(default_factory=list)
    #: What the objective measured in this process (under DDP: this rank's view, e.g. RoAST's mask digests).
    objective_report: dict[str, Any] = field(default_factory=dict)


def _check_output(out_dir: Path, overwrite: bool, resume: bool) -> Path:
    staging = out_dir.with_name(out_dir.name + ".partial")
    if out_dir.exists() and not overwrite:
        raise OutputExistsError(f"Output directory '{out_dir}' already exists. Pass --overwrite to replace it "
                                "(it is replaced only once the new model is complete), or choose another --out.")
    if resume and not any((staging / "checkpoints").glob("checkpoint-*")):
        raise ParameterError(f"--resume found no checkpoint in '{staging / 'checkpoints'}'. Start without --resume.")
    # Under torchrun/accelerate only rank 0 touches the staging folder (the Trainer saves checkpoints and the
    # objectives write records from rank 0 only), so ranks never race on it.
    if _is_main_process():
        if staging.exists() and not resume:
            shutil.rmtree(staging)
        (staging / "checkpoints").mkdir(parents=True, exist_ok=True)
    return staging


def _check_resume_record(staging: Path, record: dict[str, Any], resume: bool) -> None:
    """Write the run's identity into the staging folder, or, resuming, refuse a run that differs from it."""
    if resume:
        check_resume(staging / RUN_RECORD, record, ignore=("data", "eval_data", "model"),
                     run=f"the training run in '{staging}'")
    if _is_main_process():
        write_record(staging / RUN_RECORD, record)


def _run_record(data, eval_data, model: str, options: dict[str, Any]) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one: the data and base model (by content) and every
    option that changes the result."""
    folder = resolve_model_path(model)
    return {"data": str(data), "data_digest": data_digest(data),
            "eval_data": None if eval_data is None else str(eval_data),
            "eval_data_digest": None if eval_data is None else data_digest(eval_data),
            "model": str(model), "model_digest": model_digest(folder), "world_size": _world_size(),
            **{k: plain(v) for k, v in options.items()}}


def _check_split(train_set, validation_split: float, data) -> None:
    """A stratified hold-out needs at least one row of every label on both sides; say so before sklearn does."""
    from collections import Counter

    counts = Counter(train_set["label"])
    held = math.ceil(validation_split * train_set.num_rows)
    if min(counts.values()) < 2 or held < len(counts) or train_set.num_rows - held < len(counts):
        raise DataError(f"'{data}' has {train_set.num_rows} usable rows ({min(counts.values())} of its rarest label), "
                        f"too few to hold out {validation_split:.0%} for evaluation with every one of its "
                        f"{len(counts)} labels on both sides. Pass --eval-data FILE, or add rows.")


def _is_main_process() -> bool:
    """Rank 0 of a torchrun/accelerate launch (or a single process); read from the launcher's environment
    because the process group does not exist yet when the output directory is prepared."""
    return int(os.environ.get("RANK", "0")) == 0


def _world_size() -> int:
    """Processes of a torchrun/accelerate launch (1 for a single process)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _publish(staging_model: Path, out_dir: Path) -> None:
    """Swap the finished model into place; the old directory is removed only after the new one exists."""
    old = out_dir.with_name(out_dir.name + ".old")
    if out_dir.exists():
        if old.exists():
            shutil.rmtree(old)
        out_dir.rename(old)
    staging_model.rename(out_dir)
    if old.exists():
        shutil.rmtree(old)


def train(
    data: str | os.PathLike,
    *,
    out_dir: str | os.PathLike,
    model: str = DEFAULT_MODEL,
    eval_data: str | os.PathLike | None = None,
    method: str | None = "standard",
    method_options: dict[str, Any] | None = None,
    preset: str | None = None,
    defense: dict[str, Any] | None = None,
    defense_options: dict[str, Any] | None = None,
    epochs: float = 3,
    learning_rate: float = 5e-5,
    batch_size: int = 32,
    max_length: int = 128,
    seed: int = 42,
    early_stopping: int | None = None,
    warmup_ratio: float = 0.06,
    weight_decay: float = 0.01,
    validation_split: float = 0.1,
    max_train_rows: int | None = None,
    text_column: str = "text",
    label_column: str = "label",
    text_pair_column: str | None = None,
    strict: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    trust_remote_code: bool = False,
    progress: bool = True,
    **trainer_options: Any,
) -> TrainResult:
    """Fine-tune ``model`` on ``data`` and save a model directory at ``out_dir``.

    Each epoch is evaluated on ``eval_data`` (default: ``builtin:sst2-dev`` for ``builtin:sst2``,
    else a stratified ``validation_split`` of the training rows) and the best epoch by accuracy is kept.
    ``early_stopping=N`` stops after N epochs without improvement. Extra keyword arguments go to
    ``transformers.TrainingArguments``.

    ``method`` names the objective (``standard``, ``pgd``, ``freelb``, ``roast``, ``rift``, ``ascc``, each
    optionally ``+augment``; docs/methods.md) and ``method_options`` its hyperparameters. ``preset`` (e.g.
    ``"robust"``, :data:`textarmor.training.presets.PRESETS`) sets method, options and ``defense`` together.
    ``defense`` (``{"name": "rewrite", "options": {...}}``) is a rewrite the model is trained through and
    ships with: the training and evaluation texts are rewritten, attack rounds of ``+augment`` query the
    model behind it, and ``textarmor.json`` stores it, so loading the model applies it. ``defense_options``
    override the options of that defence (the preset's, for instance) one by one.

    ``model`` may be a model directory trained before (continuing from a robust model onto new data): its
    encoder is kept, and its classification head too when the labels are the same names in the same order;
    other labels get a new head. Under ``torchrun`` every rank
    calls ``train`` (``batch_size`` is per process, so the global batch is ``batch_size * WORLD_SIZE``); rank 0
    writes the model directory and every rank returns once it is in place.
    """
    import torch
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, set_seed

    for name, value in (("epochs", epochs), ("learning_rate", learning_rate), ("batch_size", batch_size),
                        ("max_length", max_length)):
        if value <= 0:
            raise ParameterError(f"{name} must be positive, got {value}.")
    out_dir = Path(out_dir)
    columns = {"text_column": text_column, "label_column": label_column, "text_pair_column": text_pair_column,
               "strict": strict}
    train_set, _ = load_dataset(data, **columns)
    if max_train_rows is not None and max_train_rows < train_set.num_rows:
        train_set = train_set.shuffle(seed=seed).select(range(max_train_rows))
    label_map = LabelMap.from_labels(train_set["label"], source=f"'{data}'")
    if eval_data is None and str(data) in ("builtin:sst2", "builtin:sst2-train"):
        eval_data = "builtin:sst2-dev"
    if eval_data is not None:
        eval_set, _ = load_dataset(eval_data, **columns)
        label_map.encode(eval_set["label"], source=f"evaluation data '{eval_data}'")
    else:
        from sklearn.model_selection import train_test_split

        _check_split(train_set, validation_split, data)
        keep, held = train_test_split(range(train_set.num_rows), test_size=validation_split, random_state=seed,
                                      stratify=train_set["label"])
        train_set, eval_set = train_set.select(sorted(keep)), train_set.select(sorted(held))
    if preset is not None:
        from textarmor.training.presets import resolve_preset

        if defense is not None:
            raise ParameterError(f"--preset {preset} sets the defence; drop the defence argument.")
        method, method_options, defense = resolve_preset(preset, method, method_options)
    method = method or "standard"
    if defense_options:
        if not defense:
            raise ParameterError("defense_options need a defence to apply to (a preset that stores one, or defense=).")
        defense = {**defense, "options": {**(defense.get("options") or {}), **defense_options}}
    rewrite, defend, stored = _training_defense(defense)
    raw_texts = list(train_set["text"])  # attack rounds attack what users send; the defence rewrites it
    if rewrite is not None:
        train_set, eval_set = _rewritten(train_set, rewrite), _rewritten(eval_set, rewrite)
    objective = make_objective(method, **(method_options or {}))
    record = _run_record(data, eval_data, model, dict(
        method=method, method_options=method_options or {}, preset=preset, defense=defense, epochs=epochs,
        learning_rate=learning_rate, batch_size=batch_size, max_length=max_length, seed=seed,
        early_stopping=early_stopping, warmup_ratio=warmup_ratio, weight_decay=weight_decay,
        validation_split=validation_split, max_train_rows=max_train_rows, text_column=text_column,
        label_column=label_column, text_pair_column=text_pair_column, strict=strict,
        trainer_options=trainer_options))
    staging = _check_output(out_dir, overwrite, resume)
    with _removed_unless_resumable(staging):
        _check_resume_record(staging, record, resume)

        set_seed(seed)
        tokenizer = load_tokenizer(model, trust_remote_code=trust_remote_code)
        net = load_model(model, num_labels=len(label_map), id2label=label_map.id2label,
                         trust_remote_code=trust_remote_code, new_head_unless_same_labels=True)
        # Master weights in float32 whatever the checkpoint stores (transformers 5 loads a float16 or bfloat16
        # checkpoint in its own dtype); mixed precision comes from the Trainer's autocast.
        net = net.float()

        def encode(batch):
            pairs = batch["text_pair"] if text_pair_column else None
            enc = tokenizer(batch["text"], pairs, truncation=True, max_length=max_length)
            enc["labels"] = label_map.encode(batch["label"])
            return enc

        objective.setup(TrainingContext(
            model=net, tokenizer=tokenizer, texts=raw_texts, labels=list(train_set["label"]),
            label_names=label_map.names, text_pair=text_pair_column is not None, max_length=max_length,
            output_dir=staging, seed=seed, rewrite=rewrite, defend=defend))

        remove = [c for c in train_set.column_names]
        train_tok = train_set.map(encode, batched=True, remove_columns=remove, desc="Tokenising train")
        eval_tok = eval_set.map(encode, batched=True, remove_columns=eval_set.column_names, desc="Tokenising eval")

        # Optimizer steps per epoch: every process takes batch_size rows per step.
        accumulation = int(trainer_options.get("gradient_accumulation_steps", 1))
        steps_per_epoch = math.ceil(train_tok.num_rows / (batch_size * _world_size() * accumulation))
        on_gpu = torch.cuda.is_available()
        use_bf16 = on_gpu and torch.cuda.is_bf16_supported()
        defaults = dict(
            output_dir=str(staging / "checkpoints"), num_train_epochs=epochs, learning_rate=learning_rate,
            per_device_train_batch_size=batch_size, per_device_eval_batch_size=max(64, batch_size),
            weight_decay=weight_decay, warmup_steps=math.ceil(warmup_ratio * steps_per_epoch * epochs),
            eval_strategy="epoch", save_strategy="epoch", save_total_limit=2, load_best_model_at_end=True,
            metric_for_best_model="accuracy", greater_is_better=True, logging_strategy="steps",
            logging_steps=max(1, min(50, steps_per_epoch // 4)), report_to="none", seed=seed, bf16=use_bf16,
            group_by_length=True, disable_tqdm=not progress, save_only_model=False,
            # A small encoder's step on a GPU is bound by the host (MiniLM: the GPU busy a quarter of the time on an
            # H200): rows are fetched and collated in two worker processes, and the logged loss is not checked
            # for NaN at every step (a GPU->CPU sync); a MiniLM epoch took 26.4 s instead of 30.7 s.
            dataloader_num_workers=2 if on_gpu else 0, logging_nan_inf_filter=not on_gpu,
            **distributed_defaults(objective))
        args = training_arguments(**{**defaults, **trainer_options})
        writer, timer = EpochMetricsWriter(staging / "metrics.json"), EpochTimer()
        stopper = [EarlyStoppingCallback(early_stopping_patience=early_stopping)] if early_stopping else []
        callbacks = [timer, writer] + stopper
        trainer = RobustTrainer(model=net, args=args, train_dataset=train_tok, eval_dataset=eval_tok,
                                data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=_compute_metrics,
                                processing_class=tokenizer, callbacks=callbacks, objective=objective)
        started = time.perf_counter()
        with _attention_without_cudnn():
            trainer.train(resume_from_checkpoint=True if resume else None)
        seconds = timer.earlier_seconds + time.perf_counter() - started  # a resumed run counts its first sessions

        best = best_epoch(writer.epochs, trainer.state)  # the epoch whose weights load_best_model_at_end reloaded
        objective.finalize(trainer.model)
        final = staging / "model"
        trainer.save_model(str(final))  # every rank calls it (DeepSpeed/FSDP gather weights there); rank 0 writes
        if trainer.is_world_process_zero():
            _write_model_dir(trainer, objective, final, out_dir, best, seconds, timer, writer, config=dict(
                labels=label_map.names, base_model=str(model), text_pair=text_pair_column is not None,
                max_length=max_length, defense=stored, training={
                    "method": method, "preset": preset, "objective": objective.hyperparameters(), "epochs": epochs,
                    "learning_rate": learning_rate, "batch_size": batch_size, "max_length": max_length, "seed": seed,
                    "train_rows": train_tok.num_rows, "eval_rows": eval_tok.num_rows, "train_data": str(data),
                    "eval_data": str(eval_data) if eval_data is not None else f"{validation_split:.0%} of train"}))
        # Under DDP the other ranks wait here, so that on every rank `train` returns with OUT in place.
        trainer.accelerator.wait_for_everyone()
        return TrainResult(model_dir=out_dir, metrics=best, epochs=writer.epochs, train_seconds=seconds,
                           history=list(trainer.state.log_history), objective_report=objective.report())


def _rewritten(dataset, rewrite):
    """``dataset`` with its text columns rewritten (the defence's rewrite is pure Python over words)."""
    for column in ("text", "text_pair"):
        if column in dataset.column_names:
            values = [rewrite(t) if isinstance(t, str) else t for t in dataset[column]]
            dataset = dataset.remove_columns(column).add_column(column, values)
    return dataset


def _training_defense(defense: dict[str, Any] | None):
    """``(rewrite, defend, stored)`` for a defence the model is trained through: the text rewrite, a function
    putting a Classifier behind the defence, and what ``textarmor.json`` stores. All None/empty without one."""
    if not defense:
        return None, None, {}
    from textarmor.defenses import DefendedClassifier, make_defense, stored_defense

    if not isinstance(defense, dict) or "name" not in defense:
        raise ParameterError(f"defense is {{'name': ..., 'options': {{...}}}}, got {defense!r}.")
    built = make_defense(defense["name"], **(defense.get("options") or {}))
    rewriter = getattr(built, "rewriter", None)
    if rewriter is None:
        raise ParameterError(f"A model can be trained through a rewrite defence (rewrite), not through "
                             f"{defense['name']!r}; train without it and pass --defense at prediction time.")
    return rewriter, (lambda classifier: DefendedClassifier(classifier, built)), stored_defense(built)


@contextmanager
def _removed_unless_resumable(staging: Path):
    """Remove the staging folder when the run fails before its first checkpoint: nothing there can be resumed,
    and an empty ``OUT.partial`` would only suggest otherwise."""
    try:
        yield
    except BaseException:
        if _is_main_process() and not any((staging / "checkpoints").glob("checkpoint-*")):
            shutil.rmtree(staging, ignore_errors=True)
        raise


def _attention_without_cudnn():
    """SDPA without its cuDNN backend while training on a GPU. cuDNN's fused attention builds an execution plan
    for every new input shape, and training batches come in dozens of lengths (and, with ``augment``, batch
    sizes): on an H200 a MiniLM epoch took 52.9 s when its shapes were new and 26.4 s when they were not. The
    flash and memory-efficient kernels need no plans."""
    import contextlib

    import torch

    if not torch.cuda.is_available():
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def _write_model_dir(trainer, objective, final: Path, out_dir: Path, best: dict, seconds: float,
                     timer: EpochTimer, writer: EpochMetricsWriter, config: dict[str, Any]) -> None:
    """Rank 0: complete the saved model in ``final`` (artifacts, textarmor.json, metrics), publish it as OUT."""
    staging = final.parent
    for artifact in objective.artifacts():
        shutil.copy(artifact, final / artifact.name)
    (final / "training_args.bin").unlink(missing_ok=True)  # a pickle; the settings live in textarmor.json
    config["training"].update({
        "train_seconds": round(seconds, 2), "seconds_per_epoch": round(seconds / max(1, len(writer.epochs)), 2),
        "cost": {**timer.summary(), "world_size": trainer.args.world_size,
                 "global_batch_size": trainer.args.train_batch_size * trainer.args.world_size},
        "objective_report": objective.report()})
    TextArmorConfig(**config, metrics={"eval": best}).save(final)
    shutil.copy(staging / "metrics.json", final / "metrics.json")
    _publish(final, out_dir)
    shutil.rmtree(staging, ignore_errors=True)


def _compute_metrics(eval_pred):
    from textarmor.evaluation.metrics import accuracy_and_f1

    return accuracy_and_f1(eval_pred)
