"""DeepWordBug: Gao, Lanchantin, Soffa and Qi, "Black-box Generation of Adversarial Text Sequences to Evade
Deep Learning Classifiers", IEEE S&P Workshops 2018. https://arxiv.org/abs/1801.04354

Composition as TextAttack's ``DeepWordBugGao2018``: each important word gets one random swap of two
neighbouring characters, one substitution, one deletion and one insertion; the best is kept.

Deviations from the paper:
- Words are ranked by the score change when the word becomes ``[UNK]`` (TextAttack's choice), not by the
  paper's temporal/combined scores.
- The paper bounds the number of edited words (a budget of 30 words on long texts); here the bound is the
  character Levenshtein distance 30 and stop words are left untouched (as TextAttack). ``max_modify_rate``
  adds a bound on the share of words changed (none by default, as TextAttack).
"""
from __future__ import annotations

from textarmor.attacks.attack import Attack
from textarmor.attacks.constraints import LevenshteinDistance
from textarmor.attacks.recipes import common_constraints, goal_for
from textarmor.attacks.search import GreedyWordSwapWIR
from textarmor.attacks.transformations import (
    Composite,
    NeighbouringCharacterSwap,
    RandomCharacterDeletion,
    RandomCharacterInsertion,
    RandomCharacterSubstitution,
)


def build(*, max_modify_rate: float | None = None, max_edit_distance: int = 30, target: int | None = None,
          stopwords: frozenset[str] | None = None) -> Attack:
    transformation = Composite([NeighbouringCharacterSwap(), RandomCharacterSubstitution(),
                                RandomCharacterDeletion(), RandomCharacterInsertion()])
    constraints = common_constraints(max_modify_rate, stopwords) + [LevenshteinDistance(max_edit_distance)]
    return Attack(goal_for(target), transformation, constraints, GreedyWordSwapWIR("unk"), name="deepwordbug")
