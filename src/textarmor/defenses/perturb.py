"""Word-level perturbations the defences draw copies with. Words follow the attack engine's definition
(:func:`textarmor.attacks.text.split_words`), so "words changed" means the same for attack and certificate."""
from __future__ import annotations

import numpy as np

from textarmor.attacks.text import AttackedText, split_words


def num_masked(num_words: int, rate: float) -> int:
    """Words masked in a text of ``num_words`` at mask rate ``rate`` (RanMASK: round(rate * h))."""
    return int(round(rate * num_words))


def mask_words(text: str, rate: float, mask_token: str, rng: np.random.Generator) -> str:
    """``text`` with ``round(rate * words)`` words, chosen uniformly without replacement, set to ``mask_token``."""
    words, seps = split_words(text)
    count = num_masked(len(words), rate)
    if count:
        for i in rng.choice(len(words), size=count, replace=False).tolist():
            words[i] = mask_token
    return AttackedText(tuple(words), tuple(seps)).text


class Synonyms:
    """WordNet synonyms per word (the attack's :class:`~textarmor.attacks.transformations.WordNetSynonyms`),
    cached: a defence looks up the same words for every copy. WordNet loads on first use."""

    def __init__(self) -> None:
        self._cache: dict[str, list[str]] = {}
        self._lookup = None

    def __call__(self, word: str) -> list[str]:
        key = word.lower()
        if key not in self._cache:
            if self._lookup is None:
                from textarmor.attacks.transformations import WordNetSynonyms

                self._lookup = WordNetSynonyms()
            found = self._lookup(AttackedText((key,), ("", "")), 0, None)
            self._cache[key] = sorted(w.lower() for w in found if w.isalpha())
        return self._cache[key]


def swap_synonyms(text: str, rate: float, synonyms: Synonyms, rng: np.random.Generator,
                  skip: frozenset[str] = frozenset()) -> str:
    """Each word that has synonyms (and is not in ``skip``), with probability ``rate``, replaced by one of
    them drawn uniformly (SAFER's random substitution, Ye et al. 2020)."""
    words, seps = split_words(text)
    draws = rng.random(len(words))
    for i, word in enumerate(words):
        if draws[i] >= rate or word.lower() in skip:
            continue
        choices = synonyms(word)
        if choices:
            words[i] = choices[int(rng.integers(0, len(choices)))]
    return AttackedText(tuple(words), tuple(seps)).text
