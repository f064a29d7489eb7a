"""PGD and FreeLB: K-step gradient ascent on the word embeddings inside an L2 or L-inf ball.

Defaults are those of FreeLB's RoBERTa SST-2 script: K=2, adversarial lr 0.1, init magnitude 1 (scaled
by sequence length), max norm 0.6.
"""
from __future__ import annotations

import torch

from textarmor.errors import ParameterError
from textarmor.training.embedding_space import EmbeddedBatch, PerturbationBall, cross_entropy
from textarmor.training.objectives import Objective, register


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


@register
class PGDObjective(EmbeddingAdversaryObjective):
    """Madry et al.'s min-max training: the loss is the cross-entropy at the end of the K-step ascent."""

    name = "pgd"
    summary = "K-step PGD on the word embeddings, trained on the worst case found (Madry et al. 2018)"
    paper = "Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks (arXiv:1706.06083)"

    def loss(self, model, batch):
        data = EmbeddedBatch.from_batch(batch)
        delta = self.attack(model, data, lambda logits: cross_entropy(logits, data.labels))
        outputs = data.forward(model, data.embed(model) + delta)
        return data.mean(cross_entropy(outputs.logits, data.labels)), outputs


@register
class FreeLBObjective(EmbeddingAdversaryObjective):
    """FreeLB: parameter gradients are averaged over the K ascent steps ("free" large batch).

    How this fits ``Trainer`` (which calls ``.backward()`` once on what ``compute_loss`` returns):
    steps 1..K-1 run forward and backward here, each on loss_k / K, through :meth:`inner_backward`
    (the Trainer's accumulation scaling and mixed-precision scaler) inside :meth:`no_sync` (no DDP
    all-reduce yet); that backward both accumulates the parameter gradients and yields the gradient
    on the perturbation for the next ascent step. Step K's loss_K / K is returned, and the Trainer's own
    backward adds its share and all-reduces the sum once. The returned tensor carries the earlier losses
    as a detached constant, so the logged loss is the mean over the K steps while its gradient is step K's.
    """

    name = "freelb"
    summary = "K-step ascent on the word embeddings, gradients accumulated over the steps (Zhu et al. 2020)"
    paper = "Zhu et al. 2020, FreeLB: Enhanced Adversarial Training for Natural Language Understanding (ICLR)"

    def loss(self, model, batch):
        data = EmbeddedBatch.from_batch(batch)

        def step_loss(delta):
            outputs = data.forward(model, data.embed(model) + delta)
            return data.mean(cross_entropy(outputs.logits, data.labels)) / self.adv_steps, outputs

        delta = self._ball.start(data.embed(model).detach(), data.mask)
        earlier = torch.zeros((), device=delta.device)
        for _ in range(self.adv_steps - 1):
            with self.no_sync(model):
                loss, _ = step_loss(delta)
                self.inner_backward(loss)
            earlier = earlier + loss.detach()
            delta = self._ball.ascend(delta, delta.grad, data.mask)
        loss, outputs = step_loss(delta)
        return loss + earlier, outputs
