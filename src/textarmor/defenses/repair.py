"""Typo repair by vocabulary lookup: a word missing from a frequency-ranked vocabulary is replaced by the
most frequent vocabulary word one edit away (a deletion, transposition, substitution or insertion of one
letter, as in Norvig's spelling corrector). One edit is what a DeepWordBug-style attack makes per word.
Words of fewer than ``min_length`` letters, words with non-letters, and words with no candidate stay as
they are. Capitalisation of the first letter is kept."""
from __future__ import annotations

from textarmor.attacks.text import AttackedText, edits1, split_words

__all__ = ["TypoRepair", "edits1"]


class TypoRepair:
    """Repair one-edit typos against the ``vocab_size`` most frequent GloVe 6B words (loaded on first use),
    or against ``vocabulary`` (most frequent first) when given."""

    def __init__(self, vocab_size: int = 50_000, min_length: int = 3, vocabulary: list[str] | None = None):
        self.vocab_size, self.min_length = vocab_size, min_length
        self._rank: dict[str, int] | None = ({w: i for i, w in enumerate(vocabulary)}
                                             if vocabulary is not None else None)
        self._fixed: dict[str, str] = {}

    @property
    def rank(self) -> dict[str, int]:
        if self._rank is None:
            from textarmor.attacks.resources import frequent_words

            self._rank = {w: i for i, w in enumerate(frequent_words(self.vocab_size))}
        return self._rank

    def word(self, word: str) -> str:
        lower = word.lower()
        if len(lower) < self.min_length or not lower.isalpha() or not lower.isascii() or lower in self.rank:
            return word
        if lower not in self._fixed:
            known = [w for w in edits1(lower) if w in self.rank]
            self._fixed[lower] = min(known, key=self.rank.__getitem__) if known else lower
        fixed = self._fixed[lower]
        if fixed == lower:
            return word
        return fixed.capitalize() if word[0].isupper() else fixed

    def __call__(self, text: str) -> str:
        words, seps = split_words(text)
        return AttackedText(tuple(self.word(w) for w in words), tuple(seps)).text
