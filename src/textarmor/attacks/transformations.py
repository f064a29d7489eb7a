"""Transformations: the candidate replacements for one word of a text.

Each transformation maps ``(text, index, rng)`` to a list of replacement words for word ``index``;
character-level ones draw one random edit per call, as TextAttack's do with ``random_one=True``.
"""
from __future__ import annotations

import string

import numpy as np

from textarmor.attacks import resources
from textarmor.attacks.text import AttackedText, edits1, split_words

_LETTERS = string.ascii_lowercase


class Transformation:
    name = "transformation"

    def __call__(self, text: AttackedText, index: int, rng: np.random.Generator) -> list[str]:
        raise NotImplementedError


class NeighbouringCharacterSwap(Transformation):
    """Swap two adjacent characters of the word."""

    name = "char-swap"

    def __call__(self, text, index, rng):
        word = text.words[index]
        if len(word) <= 1:
            return []
        i = int(rng.integers(0, len(word) - 1))
        return [word[:i] + word[i + 1] + word[i] + word[i + 2:]]


class RandomCharacterSubstitution(Transformation):
    """Replace one character with a random lowercase letter."""

    name = "char-substitute"

    def __call__(self, text, index, rng):
        word = text.words[index]
        i = int(rng.integers(0, len(word)))
        return [word[:i] + _LETTERS[int(rng.integers(0, 26))] + word[i + 1:]]


class RandomCharacterDeletion(Transformation):
    """Delete one character (words of one character are left alone)."""

    name = "char-delete"

    def __call__(self, text, index, rng):
        word = text.words[index]
        if len(word) <= 1:
            return []
        i = int(rng.integers(0, len(word)))
        return [word[:i] + word[i + 1:]]


class RandomCharacterInsertion(Transformation):
    """Insert a random lowercase letter before one character."""

    name = "char-insert"

    def __call__(self, text, index, rng):
        word = text.words[index]
        i = int(rng.integers(0, len(word)))
        return [word[:i] + _LETTERS[int(rng.integers(0, 26))] + word[i:]]


class Composite(Transformation):
    """The union of several transformations' candidates, duplicates and no-ops removed."""

    def __init__(self, parts: list[Transformation]):
        self.parts = parts
        self.name = "+".join(p.name for p in parts)

    def __call__(self, text, index, rng):
        word = text.words[index]
        out = [c for part in self.parts for c in part(text, index, rng)]
        return [c for c in dict.fromkeys(out) if c and c != word]


class WordNetSynonyms(Transformation):
    """Single-word WordNet lemmas of every synset of the word (TextAttack's ``WordSwapWordNet``)."""

    name = "wordnet-synonyms"

    def __call__(self, text, index, rng):
        word = text.words[index]
        found: dict[str, None] = {}
        for synset in resources.synsets(word):
            for lemma in synset.lemma_names():
                # One word by the attack's own word rule, as TextAttack's is_one_word ("well-made" counts).
                if lemma != word and "_" not in lemma and len(split_words(lemma)[0]) == 1:
                    found[lemma] = None
        return list(found)


class EmbeddingNeighbours(Transformation):
    """The ``max_candidates`` nearest GloVe words with cosine at least ``min_cos``, WordNet antonyms removed
    (GloVe puts antonyms close: good/bad)."""

    name = "glove-neighbours"

    def __init__(self, max_candidates: int = 50, min_cos: float = 0.5, vocab_size: int = 100_000):
        self.max_candidates, self.min_cos, self.vocab_size = max_candidates, min_cos, vocab_size

    def __call__(self, text, index, rng):
        word = text.words[index]
        neighbours = resources.glove(self.vocab_size).neighbours(word, self.max_candidates, self.min_cos)
        if not neighbours:
            return []
        banned = _antonyms(word.lower())
        return [w for w, _ in neighbours if w not in banned]


def _antonyms(word: str) -> set[str]:
    if not resources.wordnet_available():
        return set()
    return {ant.name() for synset in resources.synsets(word) for lemma in synset.lemmas()
            for ant in lemma.antonyms()}


_QWERTY = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _keyboard_neighbours() -> dict[str, str]:
    pos = {c: (r, i) for r, row in enumerate(_QWERTY) for i, c in enumerate(row)}
    return {c: "".join(d for d, (r2, i2) in pos.items() if d != c and abs(r - r2) <= 1 and abs(i - i2) <= 1)
            for c, (r, i) in pos.items()}


_NEAR_KEYS = _keyboard_neighbours()


class KeyboardTypo(Transformation):
    """One human-like typo: a neighbouring key hit instead, two letters swapped, one dropped or doubled."""

    name = "keyboard-typo"

    def __call__(self, text, index, rng):
        word = text.words[index]
        letters = [i for i, c in enumerate(word) if c.lower() in _NEAR_KEYS]
        if not letters:
            return []
        i = letters[int(rng.integers(0, len(letters)))]
        kind = int(rng.integers(0, 4))
        if kind == 0:
            near = _NEAR_KEYS[word[i].lower()]
            return [word[:i] + near[int(rng.integers(0, len(near)))] + word[i + 1:]]
        if kind == 1 and i + 1 < len(word):
            return [word[:i] + word[i + 1] + word[i] + word[i + 2:]]
        if kind == 2 and len(word) > 1:
            return [word[:i] + word[i + 1:]]
        return [word[:i + 1] + word[i] + word[i + 1:]]


class CharacterNoise(Transformation):
    """Each character independently, with probability ``rate``, deleted, replaced or preceded by a random
    letter (uniform over the three); words that would vanish are kept."""

    name = "char-noise"

    def __init__(self, rate: float = 0.1):
        self.rate = rate

    def __call__(self, text, index, rng):
        word = text.words[index]
        out = []
        for c in word:
            if rng.random() >= self.rate:
                out.append(c)
                continue
            kind = int(rng.integers(0, 3))
            letter = _LETTERS[int(rng.integers(0, 26))]
            out.append("" if kind == 0 else letter if kind == 1 else letter + c)
        noisy = "".join(out)
        return [noisy] if noisy and noisy != word else []


class RealWordEdits(Transformation):
    """Every one-letter edit of the word (deletion, transposition, substitution, insertion) that is itself a
    dictionary word: ``known(word)`` (default: among the ``vocab_size`` most frequent GloVe 6B words, the
    vocabulary typo repair uses). A typo-repairing defence leaves such edits alone ("bad" -> "bed")."""

    name = "real-word-edits"

    def __init__(self, known=None, vocab_size: int = 50_000):
        self._known, self.vocab_size = known, vocab_size

    def known(self, lower: str) -> bool:
        if self._known is None:
            self._known = frozenset(resources.frequent_words(self.vocab_size)).__contains__
        return self._known(lower)

    def __call__(self, text, index, rng):
        word = text.words[index]
        lower = word.lower()
        if not lower.isalpha() or not lower.isascii():
            return []
        found = sorted(c for c in edits1(lower) if len(c) > 1 and c != lower and self.known(c))
        return [c.capitalize() for c in found] if word[:1].isupper() else found


class DefenseAware(Transformation):
    """Another transformation's candidates less those a defence's rewrite maps back to the word itself:
    ``code(candidate) != code(word)`` (``code``: the lowercase word the defended model sees), so no candidate is
    undone before the model reads it."""

    def __init__(self, inner: Transformation, code):
        self.inner, self.code = inner, code
        self.name = f"defense-aware({inner.name})"

    def __call__(self, text, index, rng):
        own = self.code(text.words[index])
        return [c for c in self.inner(text, index, rng) if self.code(c) != own]
