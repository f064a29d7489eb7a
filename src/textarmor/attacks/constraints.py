"""Constraints: what an edit may not break.

Pre-transformation constraints narrow the word indices a search may touch in the current text;
post-transformation constraints accept or reject candidate texts. Both see the original text too.
"""
from __future__ import annotations

import math

import numpy as np

from textarmor.attacks import resources
from textarmor.attacks.text import AttackedText


class PreConstraint:
    def allowed(self, current: AttackedText, original: AttackedText) -> set[int]:
        raise NotImplementedError


class PostConstraint:
    def check(self, candidates: list[AttackedText], current: AttackedText, original: AttackedText,
              index: int) -> list[bool]:
        raise NotImplementedError


class RepeatModification(PreConstraint):
    """A word already changed is not changed again."""

    def allowed(self, current, original):
        return set(range(len(current))) - set(current.modified)


class StopwordModification(PreConstraint):
    """Stop words stay as they are (default: scikit-learn's 318 English stop words)."""

    def __init__(self, stopwords: frozenset[str] | None = None):
        self.stopwords = stopwords

    def allowed(self, current, original):
        stop = self.stopwords if self.stopwords is not None else resources.stop_words()
        return {i for i, w in enumerate(current.words) if w.lower() not in stop}


class MaxModificationRate(PreConstraint):
    """At most ``max(ceil(rate × words), min_words)`` words change (TextAttack's ``MaxModificationRate``)."""

    def __init__(self, rate: float = 0.3, min_words: int = 1):
        self.rate, self.min_words = rate, min_words

    def limit(self, num_words: int) -> int:
        return max(math.ceil(num_words * self.rate), self.min_words)

    def allowed(self, current, original):
        if len(current.modified) >= self.limit(len(original)):
            return set()
        return set(range(len(current)))


class LevenshteinDistance(PostConstraint):
    """Character edit distance from the original text at most ``max_distance``."""

    def __init__(self, max_distance: int = 30):
        self.max_distance = max_distance

    def check(self, candidates, current, original, index):
        from rapidfuzz.distance import Levenshtein

        source = original.text
        return [Levenshtein.distance(source, c.text, score_cutoff=self.max_distance) <= self.max_distance
                for c in candidates]


class WordNetPartOfSpeech(PostConstraint):
    """The new word shares a WordNet part of speech with the word it replaces (when WordNet knows both).

    A stand-in for a context-aware tagger: it rejects swaps across parts of speech a word can never
    take, but cannot tell which sense the sentence uses."""

    def check(self, candidates, current, original, index):
        old = {s.pos().replace("s", "a") for s in resources.synsets(current.words[index])}
        keep = []
        for cand in candidates:
            new = {s.pos().replace("s", "a") for s in resources.synsets(cand.words[index])}
            keep.append(not old or not new or bool(old & new))
        return keep


class SentenceSimilarity(PostConstraint):
    """Cosine of sentence embeddings of the ``window`` words around the edit at least ``threshold``,
    compared with the current text (TextFooler) or with the original (``compare_against_original``)."""

    def __init__(self, threshold: float = 0.84, window: int = 15, model: str = "minilm-l6",
                 compare_against_original: bool = False, skip_shorter_than_window: bool = True):
        self.threshold, self.window, self.model = threshold, window, model
        self.compare_against_original = compare_against_original
        self.skip_shorter_than_window = skip_shorter_than_window

    def check(self, candidates, current, original, index):
        if not candidates:
            return []
        reference = original if self.compare_against_original else current
        if self.skip_shorter_than_window and len(reference) < self.window:
            return [True] * len(candidates)
        encoder = resources.sentence_encoder(self.model)
        emb = encoder.encode([reference.window(index, self.window)]
                             + [c.window(index, self.window) for c in candidates])
        sims = emb[1:] @ emb[0]
        return [bool(s >= self.threshold) for s in np.atleast_1d(sims)]


def is_character_edit(old: str, new: str) -> bool:
    """Whether ``new`` is one letter edit (deletion, transposition, substitution, insertion) of ``old``,
    ignoring case."""
    from textarmor.attacks.text import edits1

    return new.lower() in edits1(old.lower())


class ForSwaps(PostConstraint):
    """``constraint`` applied to candidates whose new word is NOT a one-letter edit of the word it replaces (word
    swaps), every character edit accepted: a recipe that mixes both kinds keeps each kind's own constraints."""

    def __init__(self, constraint: PostConstraint):
        self.constraint = constraint

    def check(self, candidates, current, original, index):
        old = current.words[index]
        swaps = [i for i, c in enumerate(candidates) if not is_character_edit(old, c.words[index])]
        keep = [True] * len(candidates)
        if swaps:
            verdicts = self.constraint.check([candidates[i] for i in swaps], current, original, index)
            for i, ok in zip(swaps, verdicts):
                keep[i] = ok
        return keep


class CharacterEditBudget(PostConstraint):
    """The character edits made so far (words changed by one-letter edits, each costing its Levenshtein distance)
    total at most ``max_distance``; word swaps cost nothing here. DeepWordBug's Levenshtein bound, for a recipe
    whose word swaps are bounded by other constraints."""

    def __init__(self, max_distance: int = 30):
        self.max_distance = max_distance

    def check(self, candidates, current, original, index):
        from rapidfuzz.distance import Levenshtein

        def spent(text: AttackedText) -> int:
            return sum(Levenshtein.distance(original.words[i], text.words[i]) for i in text.changed_indices(original)
                       if is_character_edit(original.words[i], text.words[i]))

        return [spent(c) <= self.max_distance for c in candidates]
