"""RIFT (Dong et al. 2021): robust informative fine-tuning.

loss = CE(clean) + w_kl * KL(p_adv || p_clean) + w_mi * L_MI, where L_MI is the class-conditional InfoNCE
between the fine-tuned model's features on adversarial inputs and a frozen copy of the pre-trained
encoder's features on the clean inputs, each through a small MLP projection (one pair per class, as in
the official code), temperature 0.2. Features are the last hidden state of the first token.

The adversary (``rift_adversary``): ``ball`` (default), the embedding-space adversary of ``pgd`` (random start
in the FreeLB ball, K normalised ascent steps on KL(p_adv || p_clean)), which needs no synonym table; or
``ascc``, the paper's own: ASCC's search over convex hulls of WordNet synonym embeddings
(:class:`~textarmor.training.ascc.SynonymHull`, options ``ascc_steps``, ``ascc_lr``, ``ascc_sparsity``,
``ascc_width``, ``ascc_init_std``), maximising the same KL. Defaults w_kl=10, w_mi=0.1 come from the official
IMDB script (``rift_train.sh``).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from textarmor.errors import ParameterError
from textarmor.training.ascc import SynonymHull
from textarmor.training.catalogue import METHODS
from textarmor.training.embedding_space import EmbeddedBatch, cross_entropy, kl_divergence, unwrap
from textarmor.training.objectives import EmbeddingAdversaryObjective, TrainingContext, register

#: Attribute under which the projection heads ride on the model during training (so the optimizer,
#: checkpoints, device placement and DDP include them); removed before the final model is saved.
HEADS_ATTRIBUTE = "textarmor_rift_heads"


def _mlp(hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(hidden, 2 * out), nn.ReLU(), nn.Linear(2 * out, out))


class ProjectionHeads(nn.Module):
    """Per class, one projection for the student's features and one for the teacher's."""

    def __init__(self, hidden: int, dim: int, num_labels: int):
        super().__init__()
        self.student = nn.ModuleList(_mlp(hidden, dim) for _ in range(num_labels))
        self.teacher = nn.ModuleList(_mlp(hidden, dim) for _ in range(num_labels))


def class_conditional_infonce(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                              heads: ProjectionHeads, temperature: float) -> torch.Tensor:
    """Per-example InfoNCE loss: within each class, example i's student feature must pick out its own
    teacher feature among the class's teacher features. Every head runs on every row so all of them are in
    the graph (DDP without find_unused_parameters requires it); rows of other classes are discarded."""
    losses = torch.zeros(len(labels), device=student.device, dtype=torch.float32)
    for c, (s_head, t_head) in enumerate(zip(heads.student, heads.teacher)):
        s_all = F.normalize(s_head(student).float(), dim=-1)
        t_all = F.normalize(t_head(teacher).float(), dim=-1)
        rows = (labels == c).nonzero(as_tuple=True)[0]
        scores = s_all[rows] @ t_all[rows].T / temperature
        losses = losses + 0.0 * (s_all.sum() + t_all.sum())  # keeps unused heads in the graph
        if len(rows):
            losses = losses.index_add(0, rows, -torch.diagonal(F.log_softmax(scores, dim=0)))
    return losses


@register
class RiftObjective(EmbeddingAdversaryObjective):
    """CE + KL to the adversarial prediction + mutual information with the frozen pre-trained encoder."""

    name = "rift"
    summary, paper = METHODS["rift"].summary, METHODS["rift"].paper
    # The projection heads are called outside the model's forward; DDP's unused-parameter search would
    # mark them unused before their gradients arrive.
    ddp_find_unused_parameters = False

    ADVERSARIES = ("ball", "ascc")

    def __init__(self, rift_w_kl: float = 10.0, rift_w_mi: float = 0.1, rift_temperature: float = 0.2,
                 rift_proj_dim: int = 256, rift_adversary: str = "ball", ascc_steps: int = 3, ascc_lr: float = 10.0,
                 ascc_sparsity: float = 1.0, ascc_width: int = 8, ascc_init_std: float = 0.1, synonyms=None,
                 **adversary):
        if rift_adversary not in self.ADVERSARIES:
            raise ParameterError(f"rift_adversary must be one of {', '.join(self.ADVERSARIES)}, got "
                                 f"'{rift_adversary}'.")
        super().__init__(**adversary)
        self.rift_w_kl, self.rift_w_mi = float(rift_w_kl), float(rift_w_mi)
        self.rift_temperature, self.rift_proj_dim = float(rift_temperature), int(rift_proj_dim)
        self.rift_adversary = rift_adversary
        self._hull = (SynonymHull(ascc_steps, ascc_lr, ascc_sparsity, ascc_width, ascc_init_std, synonyms)
                      if rift_adversary == "ascc" else None)
        self._teacher = None

    def hyperparameters(self) -> dict:
        """RIFT's own options and those of the adversary it uses."""
        own = {k: v for k, v in super().hyperparameters().items() if not k.startswith("adv_")}
        if self._hull is None:
            return {**own, **self._ball.as_dict(), "adv_steps": self.adv_steps}
        hull = self._hull
        return {**own, "ascc_steps": hull.steps, "ascc_lr": hull.lr, "ascc_sparsity": hull.sparsity,
                "ascc_width": hull.width, "ascc_init_std": hull.init_std}

    def report(self) -> dict:
        return self._hull.report() if self._hull is not None else {}

    def setup(self, context: TrainingContext) -> None:
        if self._hull is not None:
            self._hull.setup(context.tokenizer)
        model = unwrap(context.model)
        self._teacher = copy.deepcopy(model.base_model).eval()
        self._teacher.requires_grad_(False)
        heads = ProjectionHeads(model.config.hidden_size, self.rift_proj_dim, model.config.num_labels)
        model.add_module(HEADS_ATTRIBUTE, heads.to(next(model.parameters()).device))

    def finalize(self, model) -> None:
        model = unwrap(model)
        if hasattr(model, HEADS_ATTRIBUTE):
            delattr(model, HEADS_ATTRIBUTE)

    @property
    def teacher(self):
        return self._teacher

    def loss(self, model, batch):
        if self._teacher is None:
            raise RuntimeError("RiftObjective.setup(context) must run before training (train() calls it).")
        data = EmbeddedBatch.from_batch(batch)
        with torch.no_grad(), self.no_sync(model):
            target = data.forward(model, data.embed(model)).logits.detach()
        if self._hull is None:
            delta = self.attack(model, data, lambda logits: kl_divergence(logits, target))
            adversarial = data.embed(model) + delta
        else:
            adversarial = self._hull.adversarial_embeddings(model, data, lambda logits: kl_divergence(logits, target),
                                                            self.no_sync)
        clean = data.forward(model, data.embed(model))
        adv = data.forward(model, adversarial, output_hidden_states=True)
        device = data.input_ids.device
        if next(self._teacher.parameters()).device != device:
            self._teacher.to(device)
        with torch.no_grad():
            teacher = self._teacher(input_ids=data.input_ids, **data.model_kwargs).last_hidden_state[:, 0]
        heads = getattr(unwrap(model), HEADS_ATTRIBUTE)
        mi = class_conditional_infonce(adv.hidden_states[-1][:, 0], teacher, data.labels, heads,
                                       self.rift_temperature)
        per_example = (cross_entropy(clean.logits, data.labels)
                       + self.rift_w_kl * kl_divergence(adv.logits, clean.logits) + self.rift_w_mi * mi)
        return data.mean(per_example), clean
