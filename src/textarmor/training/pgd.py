"""PGD and FreeLB: K-step gradient ascent on the word embeddings inside an L2 or L-inf ball.

Defaults are those of FreeLB's RoBERTa SST-2 script: K=2, adversarial lr 0.1, init magnitude 1 (scaled
by sequence length), max norm 0.6.
"""
from __future__ import annotations

import torch

from textarmor.training.catalogue import METHODS
from textarmor.training.embedding_space import EmbeddedBatch, cross_entropy
from textarmor.training.objectives import EmbeddingAdversaryObjective, register


@register
class PGDObjective(EmbeddingAdversaryObjective):
    """Madry et al.'s min-max training: the loss is the cross-entropy at the end of the K-step ascent."""

    name = "pgd"
    summary, paper = METHODS["pgd"].summary, METHODS["pgd"].paper

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
    summary, paper = METHODS["freelb"].summary, METHODS["freelb"].paper

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
