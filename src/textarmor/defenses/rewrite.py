"""``rewrite``: classify the input once, after a deterministic rewrite that undoes the edits attacks make most.

The rewrite repairs one-edit typos by vocabulary lookup (:class:`~textarmor.defenses.repair.TypoRepair`: what
DeepWordBug-style attacks produce) and then maps rare words to their most frequent WordNet synonym
(:class:`~textarmor.defenses.canonical.SynonymCanonicaliser`: what PWWS-style attacks swap in), word for word.
It costs one forward pass per input. A model trained on rewritten text (``textarmor train --preset robust``)
sees the same distribution at training and at prediction, which is what keeps the clean accuracy.

The same :class:`Rewriter` serves the ``tta`` defence (its one rewritten copy), training on rewritten text, and
the ``adaptive`` attack, which needs to know which substitutions the rewrite undoes (:meth:`Rewriter.word_code`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from textarmor.attacks.text import AttackedText, split_words
from textarmor.defenses.base import Defense
from textarmor.defenses.canonical import SynonymCanonicaliser
from textarmor.defenses.repair import TypoRepair
from textarmor.errors import ParameterError


class Rewriter:
    """Typo repair, then synonym canonicalisation, word for word (either step can be off).

    Parameters
    ----------
    repair: repair one-edit typos against the ``vocab_size`` most frequent GloVe 6B words.
    canonical: map words ranked ``canonical_rank`` or rarer to their most frequent WordNet synonym.
    """

    def __init__(self, repair: bool = True, canonical: bool = True, vocab_size: int = 50_000,
                 canonical_rank: int = 20_000, synonyms=None):
        if not isinstance(canonical_rank, int) or canonical_rank < 0:
            raise ParameterError(f"canonical_rank must be a frequency rank >= 0, got {canonical_rank!r}.")
        if not isinstance(vocab_size, int) or vocab_size < 1:
            raise ParameterError(f"vocab_size must be a positive number of words, got {vocab_size!r}.")
        self.repair, self.canonical = bool(repair), bool(canonical)
        self.vocab_size, self.canonical_rank = vocab_size, canonical_rank
        self._repair = TypoRepair(vocab_size) if self.repair else None
        self._canonical = SynonymCanonicaliser(canonical_rank, synonyms=synonyms) if self.canonical else None

    @property
    def active(self) -> bool:
        return self._repair is not None or self._canonical is not None

    def word(self, word: str) -> str:
        """The rewrite of one word (its case kept where it stays a word of letters)."""
        if self._repair is not None:
            word = self._repair.word(word)
        if self._canonical is not None:
            word = self._canonical.word(word)
        return word

    def word_code(self, word: str) -> str:
        """The lowercase word the model sees for ``word``: two words with the same code are one to the model."""
        return self.word(word).lower()

    def known(self, lower: str) -> bool:
        """Whether typo repair leaves this lowercase word alone as a vocabulary word (always, without repair)."""
        return self._repair is None or lower in self._repair.rank

    def __call__(self, text: str) -> str:
        if not self.active:
            return text
        words, seps = split_words(text)
        return AttackedText(tuple(self.word(w) for w in words), tuple(seps)).text

    def options(self) -> dict[str, Any]:
        return {"repair": self.repair, "canonical": self.canonical, "vocab_size": self.vocab_size,
                "canonical_rank": self.canonical_rank}


class Rewrite(Defense):
    """One forward pass on the rewritten input (see :class:`Rewriter` for the options)."""

    name = "rewrite"
    summary = "one pass on the input with one-edit typos repaired and rare words mapped to their most frequent synonym"
    paper = ("Synonym Encoding Method: Wang, Jin & He, AAAI 2021, Natural Language Adversarial Defense through "
             "Synonym Encoding (canonicalisation); Pruthi et al., ACL 2019, Combating Adversarial Misspellings "
             "with Robust Word Recognition (repair before the model)")

    def __init__(self, repair: bool = True, canonical: bool = True, vocab_size: int = 50_000,
                 canonical_rank: int = 20_000):
        if not (repair or canonical):
            raise ParameterError("rewrite: turn on repair, canonical or both; with neither it changes nothing.")
        self.rewriter = Rewriter(repair, canonical, vocab_size, canonical_rank)
        self.repair, self.canonical = self.rewriter.repair, self.rewriter.canonical
        self.vocab_size, self.canonical_rank = vocab_size, canonical_rank

    def scores(self, clf, texts, text_pairs):
        probs = clf.predict_proba([self.rewriter(t) for t in texts],
                                  [self.rewriter(p) for p in text_pairs] if text_pairs is not None else None)
        return probs, np.ones(len(texts), dtype=np.int64)
