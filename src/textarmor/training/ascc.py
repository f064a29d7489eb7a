"""ASCC (Dong et al. 2021): adversarial training over the convex hulls of synonym embeddings.

Each token's word embedding is replaced by a convex combination ``sum_s w_s E[syn_s]`` of the embeddings of
the token and its single-token synonyms (:class:`~textarmor.training.synonyms.SynonymTable`, WordNet: the
words PWWS substitutes). The adversary searches the weights: ``w = softmax(phi)`` over each token's valid
synonyms, ``phi`` from a small random start (near the hull's centre, as in the official code), ``ascc_steps``
Adam steps at learning rate ``ascc_lr`` maximising the cross-entropy minus ``ascc_sparsity`` times the mean
entropy of ``w`` (low entropy keeps the combination near one real substitution). The model runs in eval
mode during the search (no dropout). Training loss, as the TextDefender/RIFT reference implementations:

    CE(clean) + ascc_beta * KL(p_clean || p_adv)

with the clean and adversarial inputs in one forward pass of twice the batch.

Unlike ``pgd``/``freelb``, whose ball is the same in every direction, this adversary moves only towards real
synonyms, so its robustness is aimed at word-substitution attacks; tokens without synonyms (sub-words, stop
words) stay as they are.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import SequenceClassifierOutput

from textarmor.errors import ParameterError
from textarmor.training.catalogue import METHODS
from textarmor.training.embedding_space import EmbeddedBatch, cross_entropy, kl_divergence, unwrap
from textarmor.training.objectives import Objective, TrainingContext, register
from textarmor.training.synonyms import Lookup, SynonymTable


class SynonymHull:
    """ASCC's adversary: convex combinations of each token's synonym embeddings, weights searched by Adam.

    Shared by the ``ascc`` objective and by ``rift`` with ``rift_adversary=ascc`` (the paper's adversary).
    ``search`` maximises ``loss_fn(logits)`` (a per-example loss) minus ``sparsity`` times the mean entropy
    of the weights; ``adversarial_embeddings`` searches and builds the adversarial embeddings, in the graph of
    the embedding matrix.
    """

    def __init__(self, steps: int = 3, lr: float = 10.0, sparsity: float = 1.0, width: int = 8,
                 init_std: float = 0.1, lookup: Lookup | None = None, prefix: str = "ascc_"):
        if int(steps) < 1:
            raise ParameterError(f"{prefix}steps must be at least 1, got {steps}.")
        if int(width) < 2:
            raise ParameterError(f"{prefix}width must be at least 2 (a token and one synonym), got {width}.")
        for key, value in (("lr", lr), ("sparsity", sparsity), ("init_std", init_std)):
            if float(value) < 0:
                raise ParameterError(f"{prefix}{key} must be non-negative, got {value}.")
        self.steps, self.width, self.lr = int(steps), int(width), float(lr)
        self.sparsity, self.init_std = float(sparsity), float(init_std)
        self._lookup = lookup  # a word -> synonyms callable (tests); None: WordNet, cached per vocabulary
        self._table: SynonymTable | None = None
        self._tensors: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def setup(self, tokenizer) -> None:
        if tokenizer is None:
            raise ParameterError("The synonym-hull adversary needs the model's tokenizer to build its synonym table.")
        self._table = (SynonymTable.build(tokenizer, self.width, self._lookup) if self._lookup
                       else SynonymTable.for_tokenizer(tokenizer, self.width))
        self._tensors = {}

    def report(self) -> dict[str, Any]:
        return {"synonym_coverage": round(self._table.coverage(), 4)} if self._table is not None else {}

    def candidates(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Synonym token ids ``(batch, seq, width)`` and their validity (padding: only the token itself)."""
        if self._table is None:
            raise RuntimeError("setup(context) must run before training (train() calls it).")
        device = input_ids.device
        if device not in self._tensors:
            # checked on the first batch only: reading the ids back would wait for the GPU at every step
            if int(input_ids.max()) >= len(self._table.ids):
                raise ParameterError(f"Token id {int(input_ids.max())} is outside the synonym table "
                                     f"({len(self._table.ids)} rows): the tokenizer given to setup is not the "
                                     "model's.")
            self._tensors[device] = (torch.from_numpy(self._table.ids).to(device),
                                     torch.from_numpy(self._table.valid).to(device))
        ids, valid = self._tensors[device]
        candidates, ok = ids[input_ids], valid[input_ids].clone()
        ok[..., 1:] &= mask.bool().unsqueeze(-1)
        return candidates, ok

    def search(self, model, data: EmbeddedBatch, synonyms: torch.Tensor, ok: torch.Tensor, loss_fn,
               no_sync) -> torch.Tensor:
        """The adversary's combination weights ``(batch, seq, width)``, detached; ``synonyms`` holds the
        candidates' embeddings (detached), ``no_sync`` the objective's DDP context."""
        was_training = model.training
        model.eval()
        try:
            with no_sync(model):
                phi = (torch.randn(ok.shape, device=ok.device) * self.init_std).requires_grad_()
                moments = None
                multi = ok[..., 1:].any(-1)  # tokens that have a choice
                for step in range(1, self.steps + 1):
                    log_w = F.log_softmax(phi.masked_fill(~ok, torch.finfo(phi.dtype).min), dim=-1)
                    w = log_w.exp()
                    logits = data.forward(model, (w.unsqueeze(-1).to(synonyms.dtype) * synonyms).sum(-2)).logits
                    entropy = -(w * log_w.masked_fill(~ok, 0.0)).sum(-1)
                    # over tokens with a choice (0 without any), without a boolean index's GPU->CPU sync
                    mean_entropy = (entropy * multi).sum() / multi.sum().clamp(min=1)
                    gain = data.mean(loss_fn(logits)) - self.sparsity * mean_entropy
                    (grad,) = torch.autograd.grad(-gain, phi)
                    phi, moments = adam_step(phi.detach(), grad, moments, step, self.lr)
                    phi.requires_grad_(step < self.steps)
                return F.softmax(phi.masked_fill(~ok, torch.finfo(phi.dtype).min), dim=-1)
        finally:
            model.train(was_training)

    def adversarial_embeddings(self, model, data: EmbeddedBatch, loss_fn, no_sync) -> torch.Tensor:
        """Search the weights against ``loss_fn`` and return the adversarial word embeddings, in the graph
        of the embedding matrix (the weights themselves are constants)."""
        candidates, ok = self.candidates(data.input_ids, data.mask.squeeze(-1))
        embedding = unwrap(model).get_input_embeddings()
        weights = self.search(model, data, embedding(candidates).detach(), ok, loss_fn, no_sync)
        synonyms = embedding(candidates)
        return (weights.unsqueeze(-1).to(synonyms.dtype) * synonyms).sum(-2)


def adam_step(param: torch.Tensor, grad: torch.Tensor, moments: tuple[torch.Tensor, torch.Tensor] | None, step: int,
              lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
    """One step of ``torch.optim.Adam`` (no weight decay, no amsgrad) as plain tensor ops: ``(new param,
    (first, second moment))``, ``step`` counted from 1. The adversary's weights live for one training step, so
    an optimizer object per step was pure host overhead, which is what bounds a small encoder's step on a GPU."""
    beta1, beta2 = betas
    if moments is None:
        first, second = grad * (1 - beta1), grad * grad * (1 - beta2)
    else:
        first = moments[0] * beta1 + grad * (1 - beta1)
        second = moments[1] * beta2 + grad * grad * (1 - beta2)
    denominator = (second / (1 - beta2 ** step)).sqrt() + eps
    return param - (lr / (1 - beta1 ** step)) * first / denominator, (first, second)


@register
class ASCCObjective(Objective):
    """CE on clean inputs + KL to the worst convex combination of synonym embeddings."""

    name = "ascc"
    summary, paper = METHODS["ascc"].summary, METHODS["ascc"].paper

    def __init__(self, ascc_steps: int = 3, ascc_lr: float = 10.0, ascc_sparsity: float = 1.0,
                 ascc_beta: float = 4.0, ascc_width: int = 8, ascc_init_std: float = 0.1,
                 synonyms: Lookup | None = None):
        if float(ascc_beta) < 0:
            raise ParameterError(f"ascc_beta must be non-negative, got {ascc_beta}.")
        self._hull = SynonymHull(ascc_steps, ascc_lr, ascc_sparsity, ascc_width, ascc_init_std, synonyms)
        self.ascc_steps, self.ascc_width = self._hull.steps, self._hull.width
        self.ascc_lr, self.ascc_sparsity = self._hull.lr, self._hull.sparsity
        self.ascc_beta, self.ascc_init_std = float(ascc_beta), self._hull.init_std

    def setup(self, context: TrainingContext) -> None:
        self._hull.setup(context.tokenizer)

    def report(self) -> dict[str, Any]:
        return self._hull.report()

    def candidates(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._hull.candidates(input_ids, mask)

    def attack(self, model, data: EmbeddedBatch, synonyms: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        """The adversary's combination weights ``(batch, seq, width)`` against the cross-entropy, detached."""
        return self._hull.search(model, data, synonyms, ok, lambda logits: cross_entropy(logits, data.labels),
                                 self.no_sync)

    def loss(self, model, batch):
        data = EmbeddedBatch.from_batch(batch)
        adversarial = self._hull.adversarial_embeddings(
            model, data, lambda logits: cross_entropy(logits, data.labels), self.no_sync)
        clean = data.embed(model)
        both = {k: torch.cat([v, v]) if torch.is_tensor(v) and v.shape[:1] == data.labels.shape else v
                for k, v in data.model_kwargs.items()}
        logits = model(inputs_embeds=torch.cat([clean, adversarial.to(clean.dtype)]), **both).logits
        clean_logits, adv_logits = logits.chunk(2)
        per_example = (cross_entropy(clean_logits, data.labels)
                       + self.ascc_beta * kl_divergence(clean_logits, adv_logits))
        return data.mean(per_example), SequenceClassifierOutput(logits=clean_logits)
