"""RoAST (Kim et al. 2023, official code bbuing9/RoAST): adversarial perturbation plus selective training.

Perturbation: the cross-entropy's gradient with respect to a tiny uniform noise on the word embeddings
(1e-5, as the official ``generate_noise``), normalised per token by its largest coordinate (the official
``norm_grad`` default, L-inf), times ``adv_eps``. Loss: 0.5 CE(clean) + 0.5 CE(adv) + lambda * symmetric
KL(clean, adv). The clean pass doubles as the noise pass (the noise is 1e-5), which saves one forward.

Selective training: every epoch the Fisher score (mean squared gradient) of each encoder weight is ranked
to r in [0, 1]; weight i keeps its gradient with probability p_i = sigmoid(2 beta (r_i - alpha)); kept
gradients are scaled by 1 / p_i (unbiased) before AdamW. As in the official loop, the Fisher scores for
epoch e+1 accumulate during epoch e from the training gradients; the first epoch (and a resumed one)
estimates them from ``fisher_batches`` batches of clean cross-entropy.
"""
from __future__ import annotations

import hashlib
import logging

import numpy as np
import torch
from transformers import TrainerCallback

from textarmor.errors import ParameterError
from textarmor.training.catalogue import METHODS
from textarmor.training.embedding_space import EmbeddedBatch, cross_entropy, symmetric_kl, unwrap
from textarmor.training.objectives import Objective, register

logger = logging.getLogger(__name__)


def encoder_parameters(model) -> list[tuple[str, torch.nn.Parameter]]:
    """The trainable weights of the transformer layers (RoAST masks those, not embeddings or the head)."""
    module = unwrap(model)
    encoder = getattr(getattr(module, "base_model", module), "encoder", None)
    named = list(encoder.named_parameters()) if encoder is not None else [
        (n, p) for n, p in module.named_parameters() if ".layer." in n]
    named = [(n, p) for n, p in named if p.requires_grad]
    if not named:
        raise ParameterError("RoAST found no encoder layers to mask in this model (expected a `base_model.encoder` "
                             "module). Use --method freelb or pgd for this architecture.")
    return named


def keep_probabilities(fisher: list[torch.Tensor], alpha: float, beta: float) -> list[torch.Tensor]:
    """sigmoid(2 beta (r - alpha)), r = the rank of each Fisher score among all of them, scaled to [0, 1]."""
    flat = torch.cat([f.flatten().float() for f in fisher])
    order = torch.argsort(flat, stable=True)
    ranks = torch.empty_like(flat)
    ranks[order] = torch.arange(flat.numel(), device=flat.device, dtype=flat.dtype) / max(1, flat.numel() - 1)
    probs = torch.sigmoid(2 * beta * (ranks - alpha))
    return [p.view_as(f) for p, f in zip(probs.split([f.numel() for f in fisher]), fisher)]


def draw_masks(probs: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """Bernoulli(p) masks already divided by p, so E[g * mask] = g."""
    return [torch.bernoulli(p, generator=generator) / p for p in probs]


def mask_digest(masks: list[torch.Tensor]) -> str:
    """A short fingerprint of which weights the masks keep: equal on every DDP rank when the masks are."""
    digest = hashlib.sha256()
    for mask in masks:
        digest.update(np.packbits((mask > 0).flatten().cpu().numpy()).tobytes())
    return digest.hexdigest()[:16]


class SelectiveTraining(TrainerCallback):
    """Draws RoAST's gradient masks at every epoch start and applies them before each optimizer step.

    Unlike most callbacks this one changes training, on purpose: it registers a step pre-hook on the
    optimizer (after gradient clipping and, under DDP, after the all-reduce, so every rank sees the same
    gradients) that records the Fisher scores and multiplies the gradients by the masks. Masks come from a
    generator seeded with (seed, epoch) from Fisher scores that are identical on every rank (all-reduced for
    the first epoch's estimate, accumulated from all-reduced gradients afterwards), so all DDP ranks draw the
    same masks; ``digests`` records a fingerprint of each epoch's masks to check it.
    """

    def __init__(self, alpha: float, beta: float, fisher_batches: int):
        self.alpha, self.beta, self.fisher_batches = alpha, beta, fisher_batches
        self.densities: list[float] = []
        self.digests: list[str] = []
        self._params: list[torch.nn.Parameter] = []
        self._masks: list[torch.Tensor] = []
        self._fisher: list[torch.Tensor] = []
        self._fisher_steps = 0
        self._hook = None

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        self._params = [p for _, p in encoder_parameters(model)]
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
        self._hook = inner.register_step_pre_hook(self._before_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def on_epoch_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        epoch = int(state.epoch or 0)
        if self._fisher_steps:
            fisher = [f / self._fisher_steps for f in self._fisher]
        else:
            fisher = self.estimate_fisher(model, train_dataloader, args)
        probs = keep_probabilities(fisher, self.alpha, self.beta)
        device = self._params[0].device
        generator = torch.Generator(device=device).manual_seed(args.seed * 1000 + epoch)
        self._masks = [m.to(p.dtype) for m, p in zip(draw_masks([p.to(device) for p in probs], generator),
                                                         self._params)]
        kept = sum(int((m > 0).sum()) for m in self._masks)
        self.densities.append(round(kept / sum(m.numel() for m in self._masks), 6))
        self.digests.append(mask_digest(self._masks))
        logger.info("RoAST epoch %d: gradient mask density %.4f (masks %s)", epoch, self.densities[-1],
                    self.digests[-1])
        self._fisher = [torch.zeros_like(p, dtype=torch.float32) for p in self._params]
        self._fisher_steps = 0

    def _before_step(self, optimizer, args, kwargs):
        for param, mask, fisher in zip(self._params, self._masks, self._fisher):
            if param.grad is None:
                continue
            fisher.add_(param.grad.float() ** 2)
            param.grad.mul_(mask)
        self._fisher_steps += 1

    def estimate_fisher(self, model, train_dataloader, args) -> list[torch.Tensor]:
        """Mean squared clean-CE gradient over ``fisher_batches`` random batches, summed over DDP ranks.

        Uses ``torch.autograd.grad`` on the unwrapped model, so ``.grad`` and DDP's hooks are untouched."""
        import torch.distributed as dist

        dataset, collate = train_dataloader.dataset, train_dataloader.collate_fn
        generator = torch.Generator().manual_seed(args.seed)
        size = args.per_device_train_batch_size
        order = torch.randperm(len(dataset), generator=generator)[: self.fisher_batches * size].tolist()
        batches = [order[i:i + size] for i in range(0, len(order), size)]
        distributed = dist.is_available() and dist.is_initialized()
        rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
        fisher = [torch.zeros_like(p, dtype=torch.float32) for p in self._params]
        device = self._params[0].device
        module = unwrap(model)
        for indices in batches[rank::world]:
            batch = {k: v.to(device) for k, v in collate([dataset[i] for i in indices]).items()}
            loss = module(**batch).loss
            grads = torch.autograd.grad(loss, self._params, allow_unused=True)
            for acc, grad in zip(fisher, grads):
                if grad is not None:
                    acc.add_(grad.float() ** 2)
        if distributed:
            for acc in fisher:
                dist.all_reduce(acc)
        return [acc / max(1, len(batches)) for acc in fisher]


@register
class RoastObjective(Objective):
    """Adversarial perturbation from the normalised noise gradient plus Fisher-ranked selective training."""

    name = "roast"
    summary, paper = METHODS["roast"].summary, METHODS["roast"].paper

    def __init__(self, adv_eps: float = 0.1, roast_lambda: float = 0.01, roast_alpha: float = 0.9,
                 roast_beta: float = 10.0, fisher_batches: int = 32, noise_eps: float = 1e-5):
        if not 0.0 <= float(roast_alpha) <= 1.0:
            raise ParameterError(f"roast_alpha must lie in [0, 1], got {roast_alpha}.")
        if int(fisher_batches) < 1:
            raise ParameterError(f"fisher_batches must be at least 1, got {fisher_batches}.")
        self.adv_eps, self.roast_lambda = float(adv_eps), float(roast_lambda)
        self.roast_alpha, self.roast_beta = float(roast_alpha), float(roast_beta)
        self.fisher_batches, self.noise_eps = int(fisher_batches), float(noise_eps)
        self._selective = SelectiveTraining(self.roast_alpha, self.roast_beta, self.fisher_batches)

    def callbacks(self) -> list:
        return [self._selective]

    def report(self) -> dict:
        return {"mask_density_per_epoch": list(self._selective.densities),
                "mask_digest_per_epoch": list(self._selective.digests)}

    def loss(self, model, batch):
        data = EmbeddedBatch.from_batch(batch)
        embeds = data.embed(model)
        noise = (torch.rand_like(embeds) * self.noise_eps * data.mask).requires_grad_()
        clean = data.forward(model, embeds + noise)
        ce_clean = cross_entropy(clean.logits, data.labels)
        (grad,) = torch.autograd.grad(data.mean(ce_clean), noise, retain_graph=True)
        direction = grad / (grad.abs().amax(dim=-1, keepdim=True) + 1e-8)
        adv = data.forward(model, embeds + self.adv_eps * direction.detach() * data.mask)
        ce_adv = cross_entropy(adv.logits, data.labels)
        per_example = 0.5 * ce_clean + 0.5 * ce_adv + self.roast_lambda * symmetric_kl(clean.logits, adv.logits)
        return data.mean(per_example), clean
