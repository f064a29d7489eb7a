"""Named training presets: a method, its options and the defence the model ships with, chosen together.

``textarmor train --preset robust`` (``train(..., preset="robust")``) trains the model through the defence it
stores in ``textarmor.json``; ``Classifier.from_pretrained`` then applies that defence by default, so
predict, evaluate, attack and serve measure and serve the same system. Options given next to a preset
override the preset's one by one (``-o ascc_beta=2``). docs/robustness.md has the preset's measured results.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textarmor.errors import ParameterError


@dataclass(frozen=True)
class Preset:
    summary: str
    method: str
    method_options: dict[str, Any] = field(default_factory=dict)
    #: The defence stored with the model and trained through: ``{"name": ..., "options": {...}}``.
    defense: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "robust": Preset(
        summary="ASCC (one adversary step, beta 1) on text rewritten by the rewrite defence (typos repaired, rare "
                "synonyms canonicalised), plus one round of adversarial examples found through that defence by "
                "pwws and adaptive on 6% of the training rows; the model ships with the rewrite",
        method="ascc+augment",
        method_options={"ascc_steps": 1, "ascc_beta": 1.0, "augment_recipe": "pwws,adaptive",
                        "augment_sample": 0.06},
        defense={"name": "rewrite", "options": {"canonical_rank": 20_000}},
    ),
}


def resolve_preset(name: str, method: str | None, method_options: dict[str, Any] | None
                   ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(method, method options, stored defence)`` of preset ``name``; ``method_options`` override its own."""
    if name not in PRESETS:
        raise ParameterError(f"Unknown preset {name!r}; presets: {', '.join(PRESETS)}.")
    preset = PRESETS[name]
    if method not in (None, "standard", preset.method):
        raise ParameterError(f"--preset {name} sets the method ({preset.method}); drop --method {method}, or train "
                             "with --method alone.")
    return preset.method, {**preset.method_options, **(method_options or {})}, dict(preset.defense)


def presets_help() -> str:
    """One paragraph per preset for ``textarmor train --help``."""
    return "\n\n".join(f"**{name}**: {p.summary}." for name, p in PRESETS.items())
