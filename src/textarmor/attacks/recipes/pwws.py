"""PWWS: Ren, Deng, He and Che, "Generating Natural Language Adversarial Examples through Probability
Weighted Word Saliency", ACL 2019. https://aclanthology.org/P19-1103

Composition as TextAttack's ``PWWSRen2019``: WordNet synonyms of each word; words ordered by the softmax
of their ``[UNK]`` saliency times the best score a synonym reaches at that word; then greedy swaps.

Deviations from the paper:
- Named-entity substitution (the paper swaps entities for same-type entities) is not done.
- Synonyms are every single-word lemma of every WordNet synset of the word, without the paper's
  part-of-speech filtering (as TextAttack).
- Stop words are untouched (as TextAttack); ``max_modify_rate`` optionally bounds the share of words
  changed (none by default, as TextAttack; the TextDefender benchmark used 0.3).
"""
from __future__ import annotations

from textarmor.attacks.attack import Attack
from textarmor.attacks.recipes import common_constraints, goal_for
from textarmor.attacks.search import GreedyWordSwapWIR
from textarmor.attacks.transformations import WordNetSynonyms


def build(*, max_modify_rate: float | None = None, target: int | None = None,
          stopwords: frozenset[str] | None = None) -> Attack:
    return Attack(goal_for(target), WordNetSynonyms(), common_constraints(max_modify_rate, stopwords),
                  GreedyWordSwapWIR("weighted-saliency"), name="pwws")
