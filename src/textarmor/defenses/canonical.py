"""Synonym canonicalisation: a rare word is replaced by the most frequent of its WordNet synonyms, so that a
synonym substitution (PWWS swaps a word for a WordNet synonym, usually a rarer one) maps back to the word it
replaced, or to one frequent representative of their shared synset, before the model sees it. Adapted from
the Synonym Encoding Method (Wang, Jin & He, AAAI 2021, "Natural Language Adversarial Defense through Synonym
Encoding"), which encodes every word of a synonym cluster as one code.

Departures from SEM: SEM clusters counter-fitted embedding neighbours and fine-tunes the model on encoded
text; here the clusters are WordNet's (the attack's own synonym source, without part of speech), the code
of a word is its most frequent synonym by GloVe 6B rank, the model is used as it is, and only words rarer
than ``min_rank`` are encoded, so that the frequent words that carry most of a clean sentence stay as
they are. Lookups follow :class:`~textarmor.defenses.repair.TypoRepair`: lowercase, ASCII, at least
``min_length`` characters, stop words kept, a capitalised first letter kept; codes are single words of
letters only (words with a hyphen or apostrophe are looked up too, since PWWS swaps in lemmas like
"well-nigh", which are never ranked).
"""
from __future__ import annotations

from textarmor.attacks.text import AttackedText, split_words
from textarmor.defenses.perturb import Synonyms

# GloVe 6B has about 400,000 words: asking for more keeps them all; a word not among them ranks last.
_ALL_WORDS = 1_000_000


class SynonymCanonicaliser:
    """Map each word ranked ``min_rank`` or worse in GloVe 6B's frequency order (0 = most frequent) to its most
    frequent WordNet synonym, when that synonym is more frequent than the word, and that synonym in turn while
    it is rare and has a more frequent one; other words stay.

    Parameters
    ----------
    min_rank: words more frequent than this rank are kept (0: every word with a more frequent synonym moves).
    min_length: shorter words are kept.
    vocabulary: words most frequent first, instead of GloVe's (loaded on first use).
    synonyms: the synonym lookup, instead of WordNet's (:class:`~textarmor.defenses.perturb.Synonyms`).
    skip: words never changed (default: the attacks' stop words, loaded on first use).
    """

    def __init__(self, min_rank: int = 20_000, min_length: int = 3, vocabulary: list[str] | None = None,
                 synonyms=None, skip: frozenset[str] | None = None):
        self.min_rank, self.min_length = min_rank, min_length
        self._rank: dict[str, int] | None = ({w: i for i, w in enumerate(vocabulary)}
                                             if vocabulary is not None else None)
        self._synonyms = synonyms if synonyms is not None else Synonyms()
        self._skip = skip
        self._code: dict[str, str] = {}

    @property
    def rank(self) -> dict[str, int]:
        if self._rank is None:
            from textarmor.attacks.resources import frequent_words

            self._rank = {w: i for i, w in enumerate(frequent_words(_ALL_WORDS))}
        return self._rank

    @property
    def skip(self) -> frozenset[str]:
        if self._skip is None:
            from textarmor.attacks.resources import stop_words

            self._skip = stop_words()
        return self._skip

    def canonical(self, lower: str) -> str:
        """The code of a lowercase word (itself when it stays): its most frequent synonym, followed until it
        stays (a code is its own code, as in SEM, so canonicalising twice changes nothing)."""
        if lower not in self._code:
            code, step = lower, self._step(lower)
            while step != code:  # each step goes to a strictly more frequent word, so this ends
                code, step = step, self._step(step)
            self._code[lower] = code
        return self._code[lower]

    def _step(self, lower: str) -> str:
        rank, last = self.rank, len(self.rank)
        own = rank.get(lower, last)
        # Words with a hyphen or apostrophe are looked up too: PWWS puts in WordNet lemmas such as "well-nigh".
        if (own < self.min_rank or len(lower) < self.min_length or not lower.isascii()
                or not any(c.isalpha() for c in lower) or lower in self.skip):
            return lower
        best = min(self._synonyms(lower), key=lambda s: rank.get(s, last), default=None)
        return best if best is not None and rank.get(best, last) < own else lower

    def word(self, word: str) -> str:
        lower = word.lower()
        code = self.canonical(lower)
        if code == lower:
            return word
        return code.capitalize() if word[0].isupper() else code

    def __call__(self, text: str) -> str:
        words, seps = split_words(text)
        return AttackedText(tuple(self.word(w) for w in words), tuple(seps)).text
