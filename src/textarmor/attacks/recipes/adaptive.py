"""Adaptive: an attack on a defended model that knows its rewrite, in the sense of Tramèr, Carlini, Brendel
and Madry, "On Adaptive Attacks to Adversarial Example Defenses", NeurIPS 2020: the attacker uses only the
substitutions the defence cannot undo.

A defence that repairs typos and canonicalises synonyms (``--defense rewrite``, the ``robust`` preset's
stored defence) undoes most of what DeepWordBug and PWWS try. This recipe offers, for each word:

- its 50 nearest GloVe neighbours with cosine at least 0.5, WordNet antonyms removed (TextFooler's
  candidates), less those the defence's rewrite maps to the same word as the original ("its class");
- every one-letter edit of the word that is a dictionary word (in the typo-repair vocabulary, so repair
  leaves it alone: "bad" -> "bed"), less those the rewrite maps back.

Constraints, each kind of candidate keeping its source recipe's: stop words and already-changed words stay
(as every recipe); word swaps need TextFooler's WordNet part of speech and sentence similarity (MiniLM cosine
0.878 on a 15-word window, texts shorter than the window exempt); character edits need DeepWordBug's
Levenshtein budget (30 characters in all). No modification-rate bound (``max_modify_rate=None``, TextAttack's
recipes have none). Search: TextFooler's greedy walk over words ranked by the score change when deleted.

The defence is read from the attacked classifier (``attack()`` passes ``defense``): anything with a
``rewriter`` that has ``word_code(word)`` and ``known(lower)``. Against a model without such a defence the
classes are the words themselves and the dictionary is the typo-repair vocabulary, so the recipe is
TextFooler's swaps plus real-word typos.
"""
from __future__ import annotations

from textarmor.attacks.attack import Attack
from textarmor.attacks.constraints import CharacterEditBudget, ForSwaps, SentenceSimilarity, WordNetPartOfSpeech
from textarmor.attacks.recipes import common_constraints, goal_for
from textarmor.attacks.recipes.textfooler import SIMILARITY_THRESHOLD
from textarmor.attacks.search import GreedyWordSwapWIR
from textarmor.attacks.transformations import Composite, DefenseAware, EmbeddingNeighbours, RealWordEdits


def build(*, defense=None, max_modify_rate: float | None = None, target: int | None = None,
          stopwords: frozenset[str] | None = None, similarity_threshold: float = SIMILARITY_THRESHOLD,
          encoder: str = "minilm-l6", max_candidates: int = 50, min_cos: float = 0.5,
          max_edit_distance: int = 30) -> Attack:
    rewriter = getattr(defense, "rewriter", None)
    code = rewriter.word_code if rewriter is not None else str.lower
    known = rewriter.known if rewriter is not None and getattr(rewriter, "repair", False) else None
    transformation = Composite([DefenseAware(EmbeddingNeighbours(max_candidates, min_cos), code),
                                DefenseAware(RealWordEdits(known), code)])
    constraints = common_constraints(max_modify_rate, stopwords) + [
        ForSwaps(WordNetPartOfSpeech()), ForSwaps(SentenceSimilarity(similarity_threshold, window=15, model=encoder)),
        CharacterEditBudget(max_edit_distance)]
    return Attack(goal_for(target), transformation, constraints, GreedyWordSwapWIR("delete"), name="adaptive")
