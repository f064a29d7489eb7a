"""What the embedding-space objectives share: running a Hugging Face encoder from its input embeddings,
the FreeLB perturbation ball, and per-example losses with optional example weights.

Perturbations live on the output of ``model.get_input_embeddings()`` (word embeddings, before position
embeddings and LayerNorm) and reach the model as ``inputs_embeds``, so any ``AutoModelForSequenceClassification``
works (RoBERTa, BERT, MPNet, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from textarmor.errors import ParameterError

#: Keys of a training batch that are not model inputs: the labels and the per-example weights that
#: adversarial augmentation attaches (1 for original rows, alpha for added ones).
WEIGHT_KEY = "example_weight"


def unwrap(model):
    """The module under DDP/DataParallel/compile wrappers (those do not forward ``get_input_embeddings``)."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


@dataclass
class EmbeddedBatch:
    """A batch split into what the perturbation touches and what passes through unchanged."""

    input_ids: torch.Tensor
    mask: torch.Tensor  # float (batch, seq, 1): 1 on real tokens, 0 on padding
    labels: torch.Tensor
    weights: torch.Tensor | None
    model_kwargs: dict[str, Any]  # attention_mask, token_type_ids, ...

    @classmethod
    def from_batch(cls, batch: dict[str, Any]) -> EmbeddedBatch:
        rest = dict(batch)
        input_ids, labels = rest.pop("input_ids"), rest.pop("labels")
        weights = rest.pop(WEIGHT_KEY, None)
        attention = rest.get("attention_mask")
        mask = (attention if attention is not None else torch.ones_like(input_ids)).unsqueeze(-1)
        return cls(input_ids, mask.float(), labels, weights, rest)

    def embed(self, model) -> torch.Tensor:
        """Word embeddings of the batch, in the graph of the embedding weights."""
        return unwrap(model).get_input_embeddings()(self.input_ids)

    def forward(self, model, embeds: torch.Tensor, **kwargs):
        """Run the (possibly DDP-wrapped) model from embeddings, so DDP sees a normal forward."""
        return model(inputs_embeds=embeds, **self.model_kwargs, **kwargs)

    def mean(self, per_example: torch.Tensor) -> torch.Tensor:
        """Mean over the batch, weighted when the batch carries example weights."""
        if self.weights is None:
            return per_example.mean()
        weights = self.weights.to(per_example.dtype)
        return (per_example * weights).sum() / weights.sum()


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy, computed in float32 (stable under bf16 autocast)."""
    return F.cross_entropy(logits.float(), labels, reduction="none")


def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Per-example KL(p || q) between the softmax distributions of two logit tensors."""
    log_p, log_q = F.log_softmax(p_logits.float(), dim=-1), F.log_softmax(q_logits.float(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def symmetric_kl(a_logits: torch.Tensor, b_logits: torch.Tensor) -> torch.Tensor:
    """Per-example KL(a || b) + KL(b || a)."""
    return kl_divergence(a_logits, b_logits) + kl_divergence(b_logits, a_logits)


NORMS = ("l2", "linf")


@dataclass
class PerturbationBall:
    """FreeLB's perturbation: random start, normalised-gradient ascent steps, projection onto the ball.

    ``init_mag`` is scaled by sequence length for L2 (``init_mag / sqrt(tokens * hidden)`` per coordinate,
    as in FreeLB), so short and long inputs start from balls of equal norm. ``max_norm <= 0`` means no
    projection.
    """

    norm: str = "l2"
    lr: float = 0.1
    init_mag: float = 1.0
    max_norm: float = 0.6

    def __post_init__(self):
        if self.norm not in NORMS:
            raise ParameterError(f"adv_norm must be one of {', '.join(NORMS)}, got '{self.norm}'.")
        for name in ("lr", "init_mag", "max_norm"):
            if getattr(self, name) < 0:
                raise ParameterError(f"adv_{name} must be non-negative, got {getattr(self, name)}.")

    def start(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Random initial perturbation, zero on padding; a leaf that requires grad."""
        if self.init_mag <= 0:
            delta = torch.zeros_like(embeds)
        elif self.norm == "l2":
            dims = mask.sum(dim=(1, 2)) * embeds.size(-1)
            delta = torch.empty_like(embeds).uniform_(-1, 1) * mask
            delta = delta * (self.init_mag / dims.clamp(min=1).sqrt()).view(-1, 1, 1)
        else:
            delta = torch.empty_like(embeds).uniform_(-self.init_mag, self.init_mag) * mask
        return delta.detach().requires_grad_()

    def ascend(self, delta: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One step along the normalised gradient, then projection; a new leaf that requires grad."""
        flat = grad.detach().float().flatten(1)
        order = 2 if self.norm == "l2" else float("inf")
        denom = flat.norm(p=order, dim=1).clamp(min=1e-8).view(-1, 1, 1).to(delta.dtype)
        delta = (delta.detach() + self.lr * grad.detach() / denom) * mask
        return self.project(delta).requires_grad_()

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        if self.max_norm <= 0:
            return delta.detach()
        if self.norm == "linf":
            return delta.clamp(-self.max_norm, self.max_norm).detach()
        norms = delta.detach().float().flatten(1).norm(dim=1)
        scale = torch.where(norms > self.max_norm, self.max_norm / norms.clamp(min=1e-12), torch.ones_like(norms))
        return (delta * scale.view(-1, 1, 1).to(delta.dtype)).detach()

    def as_dict(self) -> dict[str, Any]:
        return {"adv_norm": self.norm, "adv_lr": self.lr, "adv_init_mag": self.init_mag,
                "adv_max_norm": self.max_norm}
