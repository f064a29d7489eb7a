"""Adversarial augmentation: attack the training set with the model being trained and train on the
adversarial examples that succeed (adversarial learning in text space, as RADAR trains its detector
against a rewriting adversary).

Every ``every`` epochs, from epoch ``clean_epochs`` on, a random sample of ``sample`` training rows (or that
share of them, for a fraction) is attacked with the current model, the rows dealt in turn to each recipe of
``recipe`` (comma-separated, e.g. ``pwws,adaptive``). When the training context holds a defence (the
``robust`` preset's rewrite), the attacks query the model behind it and the examples found are rewritten
before they are added, as the model will see them. Adversarial texts that the model now misclassifies join the training
data with weight ``weight`` (alpha). The Trainer's dataloader and step count stay as they are: the added
examples are mixed into the batches, on average B * P / N of them per batch of B (P added, N training
rows), so each one is seen about once per epoch, as if it were part of the data; the loss becomes the
weighted mean over the enlarged batch. Every round is recorded (counts in ``textarmor.json``, the
examples as JSONL next to the model).

The attacker is any callable ``(classifier, texts, labels) -> list[str | None]`` (adversarial text, or
None where the attack failed); a recipe name is looked up in ``textarmor.attacks`` through
``textarmor.attacks.text_attacker(recipe)`` when training starts.
"""
from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from textarmor.errors import ParameterError
from textarmor.training.catalogue import METHODS
from textarmor.training.embedding_space import WEIGHT_KEY
from textarmor.training.objectives import Objective, TrainingContext

logger = logging.getLogger(__name__)

Attacker = Callable[[Any, list[str], list[str]], list[str | None]]
RECORDS_NAME = "augmented_examples.jsonl"


def resolve_attacker(recipe: str | Attacker) -> Attacker:
    """A callable attacker as is, or the attack engine's attacker for a recipe name."""
    if callable(recipe):
        return recipe
    try:
        from textarmor import attacks
    except ImportError:
        raise ParameterError(f"augment recipe '{recipe}' needs the attack engine (textarmor.attacks), which is "
                             "not installed; pass a callable attacker instead.") from None
    factory = getattr(attacks, "text_attacker", None)
    if factory is None:
        raise ParameterError("textarmor.attacks provides no text_attacker(recipe); this textarmor version cannot "
                             "run --augment-recipe. Pass a callable attacker instead.")
    return factory(recipe)


class LiveModelBackend:
    """A ``Classifier`` backend over the model being trained: inference on its current device and dtype
    (``TorchBackend`` would move or cast it)."""

    name = "torch-live"

    def __init__(self, model):
        self.model = model

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def submit(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        inputs = {k: torch.from_numpy(v).to(self.device) for k, v in encoded.items()}
        with torch.inference_mode():
            return self.model(**inputs).logits.float().cpu().numpy()

    def collect(self, handles: list) -> list[np.ndarray]:
        return list(handles)

    def __call__(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        return self.submit(encoded)


def _pad_cat(a: torch.Tensor, b: torch.Tensor, value: int, left: bool) -> torch.Tensor:
    """Stack two (rows, length) tensors along rows, padding the shorter to the longer length."""
    width = max(a.size(1), b.size(1))

    def pad(t):
        extra = width - t.size(1)
        return torch.nn.functional.pad(t, (extra, 0) if left else (0, extra), value=value)

    return torch.cat([pad(a), pad(b.to(a.device, a.dtype))])


class AdversarialAugmentation(TrainerCallback):
    """Runs the attack rounds (``on_epoch_begin``) and mixes the added examples into batches (:meth:`extend`).

    This callback changes training on purpose: the pool it fills is what :meth:`extend` adds to batches.
    Under DDP every rank attacks its share of the same sample and the results are gathered, so all ranks
    hold the same pool.
    """

    def __init__(self, recipe: str | Attacker = "pwws", every: int = 1, clean_epochs: int = 1,
                 sample: int | float = 512, weight: float = 1.0, attacker: Attacker | None = None):
        for name, value, low in (("augment_every", every, 1), ("clean_epochs", clean_epochs, 0)):
            if int(value) < low:
                raise ParameterError(f"{name} must be at least {low}, got {value}.")
        if not (isinstance(sample, int) and sample >= 1 or isinstance(sample, float) and 0.0 < sample < 1.0):
            raise ParameterError(f"augment_sample is a number of rows (at least 1) or a share of the training rows "
                                 f"in (0, 1), got {sample!r}.")
        if float(weight) <= 0:
            raise ParameterError(f"augment_weight must be positive, got {weight}.")
        self.recipe = attacker or recipe
        self.every, self.clean_epochs = int(every), int(clean_epochs)
        self.sample, self.weight = sample, float(weight)
        self.rounds: list[dict[str, Any]] = []
        self._attackers: list[Attacker] = []
        self._context: TrainingContext | None = None
        self._pool: list[dict[str, Any]] = []  # {"input_ids": [...], "label": int}
        self._order: list[int] = []
        self._budget = 0.0
        self._rng = random.Random(0)

    def hyperparameters(self) -> dict[str, Any]:
        recipe = self.recipe if isinstance(self.recipe, str) else getattr(self.recipe, "__name__",
                                                                          type(self.recipe).__name__)
        return {"recipe": recipe, "every": self.every, "clean_epochs": self.clean_epochs, "sample": self.sample,
                "weight": self.weight}

    def report(self) -> dict[str, Any]:
        return {"rounds": list(self.rounds), "added_total": len(self._pool)}

    @property
    def records_path(self) -> Path | None:
        return self._context.output_dir / RECORDS_NAME if self._context and self._context.output_dir else None

    def setup(self, context: TrainingContext) -> None:
        if context.text_pair:
            raise ParameterError("augment attacks single texts; it does not support --text-pair-column yet.")
        self._context = context
        # fail before training, not after the clean epochs
        self._attackers = [resolve_attacker(r) for r in _recipes(self.recipe)]
        self._rng = random.Random(context.seed)

    # -- rounds ------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        self._rng = random.Random(args.seed * 7919 + _rank())
        path = self.records_path
        if path is None or not path.exists():
            return
        # Resumed run: keep the rounds that happened before the checkpoint's epoch; later ones rerun.
        resumed_epoch = int(state.epoch or 0)
        kept = [r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if r["epoch"] < resumed_epoch]
        self.rounds = [{"epoch": e, "added": sum(r["epoch"] == e for r in kept), "restored": True}
                       for e in sorted({r["epoch"] for r in kept})]
        self._pool = []
        self._add([r["text"] for r in kept], [r["label"] for r in kept])
        if _rank() == 0:
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        epoch = int(state.epoch or 0)
        if epoch < self.clean_epochs or (epoch - self.clean_epochs) % self.every:
            return
        started = time.perf_counter()
        context = self._context
        sample = random.Random(args.seed * 1000 + epoch).sample(range(len(context.texts)),
                                                               self.rows_per_round(len(context.texts)))
        found = _gather(self._attack_share(model, sample[_rank()::_world()]))
        found.sort(key=lambda row: row["index"])
        records = [dict(row, epoch=epoch) for row in found]
        self._add([r["text"] for r in records], [r["label"] for r in records])
        if _rank() == 0 and self.records_path is not None:
            with self.records_path.open("a", encoding="utf-8") as out:
                out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        self.rounds.append({"epoch": epoch, "attacked": len(sample), "added": len(records),
                            "pool": len(self._pool), "seconds": round(time.perf_counter() - started, 2)})
        logger.info("augment epoch %d: %d of %d attacked rows added", epoch, len(records), len(sample))

    def rows_per_round(self, rows: int) -> int:
        """Training rows attacked per round: ``sample`` rows, or that share of the training rows."""
        wanted = self.sample if isinstance(self.sample, int) else max(1, round(self.sample * rows))
        return min(wanted, rows)

    def _attack_share(self, model, indices: list[int]) -> list[dict[str, Any]]:
        """Attack this rank's rows, dealt in turn to each recipe; keep texts that changed and that the current
        model misclassifies. With a defence in the training context the attacks query the model behind it."""
        from textarmor.classifier import Classifier
        from textarmor.model_dir import TextArmorConfig

        context = self._context
        classifier = Classifier(model, context.tokenizer, config=TextArmorConfig(labels=context.label_names),
                                backend=LiveModelBackend(model), max_length=context.max_length)
        if context.defend is not None:
            classifier = context.defend(classifier)
        was_training = model.training
        model.eval()
        found: list[dict[str, Any]] = []
        try:
            for turn, attacker in enumerate(self._attackers):
                mine = indices[turn::len(self._attackers)]
                texts = [context.texts[i] for i in mine]
                labels = [context.labels[i] for i in mine]
                adversarial = list(attacker(classifier, texts, labels)) if texts else []
                if len(adversarial) != len(texts):
                    raise ParameterError(f"The augment attacker returned {len(adversarial)} results for {len(texts)} "
                                         "texts; it must return one (text or None) per input.")
                candidates = [(i, t) for i, t in enumerate(adversarial) if isinstance(t, str) and t and t != texts[i]]
                predicted = classifier.predict_proba([t for _, t in candidates], calibrated=False).argmax(axis=1) \
                    if candidates else []
                found += [{"index": mine[i], "label": labels[i], "original": texts[i], "text": text}
                          for (i, text), pred in zip(candidates, predicted) if context.label_names[pred] != labels[i]]
        finally:
            model.train(was_training)
        return found

    def _add(self, texts: list[str], labels: list[str]) -> None:
        if not texts:
            return
        context = self._context
        if context.rewrite is not None:  # the model learns from what it will be shown: the rewritten text
            texts = [context.rewrite(t) for t in texts]
        encoded = context.tokenizer(texts, truncation=True, max_length=context.max_length)
        for ids, label in zip(encoded["input_ids"], labels):
            self._pool.append({"input_ids": ids, "label": context.label_names.index(label)})
        self._order = []

    # -- batches -------------------------------------------------------------------------------------
    def extend(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch plus its share of added examples, with per-example weights; unchanged while the pool
        is empty."""
        if not self._pool:
            return batch
        rows = batch["input_ids"].size(0)
        self._budget += rows * len(self._pool) / max(1, len(self._context.texts))
        take, self._budget = int(self._budget), self._budget - int(self._budget)
        if take == 0:
            return batch
        chosen = [self._pool[self._next_index()] for _ in range(take)]
        tokenizer = self._context.tokenizer
        extra = tokenizer.pad({"input_ids": [c["input_ids"] for c in chosen]}, return_tensors="pt")
        left = getattr(tokenizer, "padding_side", "right") == "left"
        out = dict(batch)
        out["input_ids"] = _pad_cat(batch["input_ids"], extra["input_ids"], tokenizer.pad_token_id, left)
        out["attention_mask"] = _pad_cat(batch["attention_mask"], extra["attention_mask"], 0, left)
        if "token_type_ids" in batch:
            out["token_type_ids"] = _pad_cat(batch["token_type_ids"], torch.zeros_like(extra["input_ids"]), 0, left)
        device = batch["labels"].device
        out["labels"] = torch.cat([batch["labels"], torch.tensor([c["label"] for c in chosen], device=device)])
        out[WEIGHT_KEY] = torch.cat([torch.ones(rows, device=device), torch.full((take,), self.weight, device=device)])
        return out

    def _next_index(self) -> int:
        if not self._order:
            self._order = list(range(len(self._pool)))
            self._rng.shuffle(self._order)
        return self._order.pop()


class AugmentedObjective(Objective):
    """An objective whose batches also carry adversarial examples found during training."""

    summary, paper = METHODS["augment"].summary, METHODS["augment"].paper

    def __init__(self, base: Objective, augmentation: AdversarialAugmentation):
        self._base, self._augmentation = base, augmentation

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self._base.name}+augment"

    @property
    def ddp_find_unused_parameters(self):  # type: ignore[override]
        return self._base.ddp_find_unused_parameters

    @property
    def augmentation(self) -> AdversarialAugmentation:
        return self._augmentation

    def loss(self, model, batch):
        return self._base.loss(model, self._augmentation.extend(batch))

    def hyperparameters(self) -> dict[str, Any]:
        return {**self._base.hyperparameters(), "augment": self._augmentation.hyperparameters()}

    def report(self) -> dict[str, Any]:
        return {**self._base.report(), "augment": self._augmentation.report()}

    def callbacks(self) -> list:
        return self._base.callbacks() + [self._augmentation]

    def artifacts(self) -> list[Path]:
        path = self._augmentation.records_path
        return self._base.artifacts() + ([path] if path is not None and path.exists() else [])

    def setup(self, context: TrainingContext) -> None:
        self._base.setup(context)
        self._augmentation.setup(context)

    def finalize(self, model) -> None:
        self._base.finalize(model)

    def bind(self, backward, no_sync) -> None:
        self._base.bind(backward, no_sync)


def _recipes(recipe: str | Attacker) -> list[str | Attacker]:
    """``"pwws,adaptive"`` -> ``["pwws", "adaptive"]``; a callable attacker stays one."""
    if callable(recipe):
        return [recipe]
    names = [r.strip() for r in str(recipe).split(",") if r.strip()]
    if not names:
        raise ParameterError(f"augment_recipe names one or more attack recipes (e.g. pwws,adaptive), got {recipe!r}.")
    return names


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _world() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _gather(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All ranks' rows on every rank."""
    import torch.distributed as dist

    if _world() == 1:
        return rows
    parts: list[list[dict[str, Any]]] = [[] for _ in range(_world())]
    dist.all_gather_object(parts, rows)
    return [row for part in parts for row in part]
