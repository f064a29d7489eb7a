"""Keyboard typos: natural, non-adversarial noise for robustness checks (no paper; in the spirit of
Belinkov and Bisk, "Synthetic and Natural Noise Both Break Neural Machine Translation", ICLR 2018).

Each non-stop word gets, with probability ``rate``, one typo: a neighbouring QWERTY key, two letters
swapped, a letter dropped or doubled. The model is queried once; "successful" means the label flipped.
"""
from __future__ import annotations

from textarmor.attacks.attack import Attack
from textarmor.attacks.recipes import common_constraints, goal_for
from textarmor.attacks.search import RandomNoise
from textarmor.attacks.transformations import KeyboardTypo


def build(*, rate: float = 0.1, max_modify_rate: float | None = None, target: int | None = None,
          stopwords: frozenset[str] | None = None) -> Attack:
    return Attack(goal_for(target), KeyboardTypo(), common_constraints(max_modify_rate, stopwords),
                  RandomNoise(rate), name="typos")
