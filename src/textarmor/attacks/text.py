"""``AttackedText``: a text as words plus the separators between them, so that edits replace words in place.

Words follow TextAttack's definition (runs of word characters, apostrophes, hyphens, underscores,
asterisks and at signs, with those marks stripped from both ends), which keeps word counts and
"perturbed word %" comparable with TextAttack. Every edit is a word-for-word replacement, so word ``i``
of a perturbed text is always the counterpart of word ``i`` of the original.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

_LETTERS = string.ascii_lowercase
_WORD = re.compile(r"[\w'\-*@]+")
_EDGE_MARKS = "'-_*@"


def split_words(text: str) -> tuple[list[str], list[str]]:
    """``(words, separators)`` with ``len(separators) == len(words) + 1`` and
    ``text == sep[0] + w[0] + sep[1] + ... + w[-1] + sep[-1]``."""
    words: list[str] = []
    seps: list[str] = []
    last = 0
    for match in _WORD.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start] in _EDGE_MARKS:
            start += 1
        while end > start and text[end - 1] in _EDGE_MARKS:
            end -= 1
        if start == end:
            continue
        words.append(text[start:end])
        seps.append(text[last:start])
        last = end
    seps.append(text[last:])
    return words, seps


def edits1(word: str) -> set[str]:
    """Every string one letter edit away from ``word``: a deletion, transposition, substitution or insertion
    of one lowercase letter (Norvig's spelling-corrector edits; what one DeepWordBug edit can make)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = [a + b[1:] for a, b in splits if b]
    transposes = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    replaces = [a + c + b[1:] for a, b in splits if b for c in _LETTERS]
    inserts = [a + c + b for a, b in splits for c in _LETTERS]
    return set(deletes + transposes + replaces + inserts)


@dataclass(frozen=True)
class AttackedText:
    """An immutable text under attack. ``modified`` holds the word indices changed from the original."""

    words: tuple[str, ...]
    separators: tuple[str, ...]
    modified: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def from_text(cls, text: str) -> AttackedText:
        words, seps = split_words(text)
        return cls(tuple(words), tuple(seps))

    @property
    def text(self) -> str:
        parts = [self.separators[0]]
        for word, sep in zip(self.words, self.separators[1:]):
            parts += [word, sep]
        return "".join(parts)

    def __len__(self) -> int:
        return len(self.words)

    def replace(self, index: int, word: str) -> AttackedText:
        words = list(self.words)
        words[index] = word
        return AttackedText(tuple(words), self.separators, self.modified | {index})

    def with_word(self, index: int, word: str) -> str:
        """The text with word ``index`` replaced (``""`` deletes it); for scoring only, no bookkeeping."""
        parts = [self.separators[0]]
        for i, (w, sep) in enumerate(zip(self.words, self.separators[1:])):
            if i != index:
                parts.append(w)
            elif word:
                parts.append(word)
            parts.append(sep)
        return "".join(parts)

    def changed_indices(self, original: AttackedText) -> list[int]:
        """Indices whose word differs from ``original`` (TextAttack's ``all_words_diff``)."""
        return [i for i, (a, b) in enumerate(zip(original.words, self.words)) if a != b]

    def window(self, index: int, size: int) -> str:
        """The ``size`` words centred on ``index``, joined by spaces (for sentence-similarity windows)."""
        start = max(0, min(index - size // 2, len(self.words) - size))
        return " ".join(self.words[start:start + size])
