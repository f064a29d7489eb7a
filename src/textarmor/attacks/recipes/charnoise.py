"""Character noise: natural, non-adversarial noise for robustness checks (no paper; the random
character edits of Belinkov and Bisk, ICLR 2018, and of Pruthi et al., ACL 2019, without the adversary).

Every character of every non-stop word is, with probability ``rate``, deleted, replaced by a random
letter or preceded by one. The model is queried once; "successful" means the label flipped.
"""
from __future__ import annotations

from textarmor.attacks.attack import Attack
from textarmor.attacks.recipes import common_constraints, goal_for
from textarmor.attacks.search import RandomNoise
from textarmor.attacks.transformations import CharacterNoise


def build(*, rate: float = 0.05, max_modify_rate: float | None = None, target: int | None = None,
          stopwords: frozenset[str] | None = None) -> Attack:
    # Every word is offered to the noise (word rate 1); the per-character rate decides what changes.
    return Attack(goal_for(target), CharacterNoise(rate), common_constraints(max_modify_rate, stopwords),
                  RandomNoise(1.0), name="charnoise")
