"""TextFooler: Jin, Jin, Zhou and Szolovits, "Is BERT Really Robust? A Strong Baseline for Natural Language
Attack on Text Classification and Entailment", AAAI 2020. https://arxiv.org/abs/1907.11932

Words are ranked by the score change when deleted; each in turn is replaced by the best of its 50
nearest embedding neighbours (cosine at least 0.5) that keeps the sentence meaning.

Deviations from the paper (and from TextAttack's ``TextFoolerJin2019``):
- Embeddings: GloVe 6B 50-d (100k most frequent alphabetic words) instead of counter-fitted vectors,
  which are not available offline. GloVe neighbours include antonyms, so WordNet antonyms are removed.
- Sentence similarity: all-MiniLM-L6-v2 mean-pooled embeddings instead of the Universal Sentence
  Encoder, on a 15-word window around the edit, compared with the text before the edit. Threshold:
  cosine 0.878, the cosine equal to the paper's angular similarity 0.8408 (1 − arccos(cos)/π); MiniLM is
  trained, like USE, so that cosine tracks meaning, and keeping the paper's number keeps the recipe
  recognisable. Texts shorter than the window skip the check (as TextAttack).
- Part of speech: no tagger ships offline; a WordNet stand-in requires the new word to share a part of
  speech with the old one where WordNet knows both.
- When several swaps succeed at one step, the highest-scoring one is kept, not the most similar.
- ``max_modify_rate`` optionally bounds the share of words changed (none by default, as TextAttack).
"""
from __future__ import annotations

from textarmor.attacks.attack import Attack
from textarmor.attacks.constraints import SentenceSimilarity, WordNetPartOfSpeech
from textarmor.attacks.recipes import common_constraints, goal_for
from textarmor.attacks.search import GreedyWordSwapWIR
from textarmor.attacks.transformations import EmbeddingNeighbours

SIMILARITY_THRESHOLD = 0.878  # cos(π × (1 − 0.840845)): the paper's USE angular threshold as a cosine


def build(*, max_modify_rate: float | None = None, target: int | None = None,
          stopwords: frozenset[str] | None = None, similarity_threshold: float = SIMILARITY_THRESHOLD,
          encoder: str = "minilm-l6") -> Attack:
    constraints = common_constraints(max_modify_rate, stopwords) + [
        WordNetPartOfSpeech(), SentenceSimilarity(similarity_threshold, window=15, model=encoder)]
    return Attack(goal_for(target), EmbeddingNeighbours(max_candidates=50, min_cos=0.5), constraints,
                  GreedyWordSwapWIR("delete"), name="textfooler")
