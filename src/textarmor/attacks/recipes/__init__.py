"""Attack recipes: each a one-screen ``build(...)`` that composes goal, transformation, constraints and
search, and whose docstring cites its paper and lists where it departs from it.

    >>> from textarmor.attacks.recipes import build_recipe
    >>> attack = build_recipe("pwws", max_modify_rate=0.3)
"""
from __future__ import annotations

import importlib
import inspect

from textarmor.attacks.attack import Attack
from textarmor.attacks.constraints import MaxModificationRate, RepeatModification, StopwordModification
from textarmor.attacks.goal import TargetedClassification, UntargetedClassification
from textarmor.errors import ParameterError

RECIPES: dict[str, str] = {
    "deepwordbug": "character swaps, substitutions, deletions and insertions on the most important words "
                   "(Gao et al. 2018)",
    "pwws": "WordNet synonyms ordered by probability-weighted word saliency (Ren et al. 2019)",
    "textfooler": "GloVe neighbours, antonyms removed, sentence similarity kept (Jin et al. 2020)",
    "adaptive": "knows the defence: GloVe neighbours and real-word typos that the defence's rewrite does not undo",
    "typos": "random keyboard typos on a share of the words: natural noise, not adversarial",
    "charnoise": "random character insertions, deletions and substitutions: natural noise, not adversarial",
}


def build_recipe(name: str, *, defense=None, **options) -> Attack:
    """The :class:`Attack` of recipe ``name``; ``options`` go to that recipe's ``build``. ``defense`` (the
    attacked classifier's, if any) goes to recipes that adapt to it (``adaptive``) and is ignored by the others."""
    check_recipe(name)
    module = importlib.import_module(f"textarmor.attacks.recipes.{name}")
    if "defense" in inspect.signature(module.build).parameters:
        options["defense"] = defense
    return module.build(**options)


def check_recipe(name: str) -> None:
    if name not in RECIPES:
        raise ParameterError(f"Unknown attack recipe {name!r}. The recipes are: {', '.join(RECIPES)}.")


def goal_for(target: int | None):
    """Untargeted by default; with a label index, targeted at that label."""
    return UntargetedClassification() if target is None else TargetedClassification(target)


def common_constraints(max_modify_rate: float | None, stopwords: frozenset[str] | None = None) -> list:
    """No word changed twice, stop words untouched, at most ``max_modify_rate`` of the words changed."""
    constraints = [RepeatModification(), StopwordModification(stopwords)]
    if max_modify_rate is not None:
        if not 0.0 < max_modify_rate <= 1.0:
            raise ParameterError(f"max_modify_rate must be in (0, 1], got {max_modify_rate!r}; "
                                 "0.3 lets 30% of the words change.")
        constraints.append(MaxModificationRate(max_modify_rate))
    return constraints
