"""The training methods in one line each, with their papers. Light on purpose (no torch import): the CLI's
``--help`` reads it, and each objective class takes its ``summary`` and ``paper`` from here."""
from __future__ import annotations

from typing import NamedTuple


class MethodInfo(NamedTuple):
    summary: str
    paper: str
    options: str  # the method's options and defaults, as --method-option keys


METHODS: dict[str, MethodInfo] = {
    "standard": MethodInfo("cross-entropy on clean inputs (plain fine-tuning)", "", ""),
    "pgd": MethodInfo(
        "K-step PGD ascent on the word embeddings, trained on the worst case found",
        "Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks, ICLR",
        "adv_steps=2 adv_lr=0.1 adv_init_mag=1.0 adv_max_norm=0.6 adv_norm=l2"),
    "freelb": MethodInfo(
        "K-step ascent on the word embeddings, parameter gradients accumulated over the K steps",
        "Zhu et al. 2020, FreeLB: Enhanced Adversarial Training for Natural Language Understanding, ICLR",
        "adv_steps=2 adv_lr=0.1 adv_init_mag=1.0 adv_max_norm=0.6 adv_norm=l2"),
    "roast": MethodInfo(
        "perturbation along the normalised noise gradient + Fisher-ranked selective gradient masks",
        "Kim et al. 2023, RoAST: Robustifying Language Models via Adversarial Perturbation with Selective "
        "Training, Findings of EMNLP",
        "adv_eps=0.1 roast_lambda=0.01 roast_alpha=0.9 roast_beta=10 fisher_batches=32 "
        "(entailment: roast_alpha=0.6 roast_beta=1)"),
    "rift": MethodInfo(
        "CE + w_kl KL(adv||clean) + class-conditional InfoNCE with a frozen pre-trained encoder",
        "Dong et al. 2021, How Should Pre-Trained Language Models Be Fine-Tuned Towards Adversarial "
        "Robustness?, NeurIPS",
        "rift_w_kl=10 rift_w_mi=0.1 rift_temperature=0.2 rift_proj_dim=256 rift_adversary=ball (+ the pgd "
        "adversary options; rift_adversary=ascc: the paper's synonym-hull adversary, + the ascc_* options)"),
    "ascc": MethodInfo(
        "adversary over convex combinations of each word's synonym embeddings (WordNet), CE + beta KL",
        "Dong et al. 2021, Towards Robustness Against Natural Language Word Substitutions, ICLR",
        "ascc_steps=3 ascc_lr=10 ascc_sparsity=1.0 ascc_beta=4 ascc_width=8 ascc_init_std=0.1"),
    "augment": MethodInfo(
        "attack the training set every N epochs and train on the successful adversarial examples "
        "(add to any method: roast+augment)",
        "adversarial learning in text space, as in Hu et al. 2023, RADAR: Robust AI-Text Detection via "
        "Adversarial Learning, NeurIPS",
        "augment_recipe=pwws augment_every=1 clean_epochs=1 augment_sample=512 augment_weight=1.0"),
}


def methods_help() -> str:
    """One paragraph per method for ``textarmor train --help``."""
    lines = []
    for name, info in METHODS.items():
        line = f"**{name}**: {info.summary}"
        if info.paper:
            line += f" ({info.paper})"
        if info.options:
            line += f". Defaults: {info.options}"
        lines.append(line + ".")
    return "\n\n".join(lines)


def parse_method_options(pairs: list[str]) -> dict[str, object]:
    """``["adv_steps=3", "adv_norm=linf"]`` -> ``{"adv_steps": 3, "adv_norm": "linf"}`` (ints, floats and
    true/false converted; dashes in keys read as underscores)."""
    from textarmor.errors import ParameterError

    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--method-option expects KEY=VALUE (e.g. adv_steps=3), got '{pair}'.")
        options[key.strip().replace("-", "_")] = _literal(raw.strip())
    return options


def _literal(raw: str) -> object:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw
