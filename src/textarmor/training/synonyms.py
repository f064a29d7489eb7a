"""A synonym table over a tokenizer's vocabulary, for adversaries that search word substitutions in
embedding space (ASCC).

Row ``t`` lists token ``t`` itself (column 0) and then the tokens of its synonyms that are one token each:
the substitutions a synonym attack (PWWS, TextFooler) can make without changing the token count. Tokens
that are not whole words (sub-word pieces, punctuation, special tokens) and stop words (which the attacks
leave alone) have no synonyms; unused slots repeat the token and are marked invalid. The default synonyms
are the attack engine's WordNet synonyms, so the training adversary and PWWS search the same words.

Built once per vocabulary (about half a minute for a 30k vocabulary) and cached under the textarmor cache
dir (``$TEXTARMOR_CACHE/synonym_tables``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

Lookup = Callable[[str], list[str]]
_FORMAT = 1  # bump when the table's definition changes, so cached tables are rebuilt


def wordnet_synonyms(word: str) -> list[str]:
    """The attack engine's WordNet synonyms of ``word`` (what PWWS substitutes)."""
    from textarmor.attacks.text import AttackedText
    from textarmor.attacks.transformations import WordNetSynonyms

    return WordNetSynonyms()(AttackedText((word,), ("", "")), 0, None)


@dataclass
class SynonymTable:
    ids: np.ndarray  # (vocab, width) int64: column 0 the token itself, then synonym tokens
    valid: np.ndarray  # (vocab, width) bool: which slots hold a real candidate (column 0 always)

    @property
    def width(self) -> int:
        return self.ids.shape[1]

    def coverage(self) -> float:
        """Fraction of the vocabulary that has at least one synonym."""
        return float(self.valid[:, 1:].any(axis=1).mean()) if len(self.ids) else 0.0

    @classmethod
    def build(cls, tokenizer, width: int = 8, lookup: Lookup | None = None,
              skip: frozenset[str] | None = None) -> SynonymTable:
        """Synonyms (``lookup``, default WordNet) of every whole-word token that are single tokens, at most
        ``width - 1`` per token in the lookup's order (WordNet: most common sense first)."""
        if width < 2:
            from textarmor.errors import ParameterError

            raise ParameterError(f"A synonym table needs width >= 2 (the token and a synonym), got {width}.")
        lookup = lookup or wordnet_synonyms
        if skip is None:
            from textarmor.attacks.resources import stop_words

            skip = stop_words()
        vocab = tokenizer.get_vocab()
        size = max(len(tokenizer), max(vocab.values()) + 1)
        ids = np.repeat(np.arange(size, dtype=np.int64)[:, None], width, axis=1)
        valid = np.zeros((size, width), dtype=bool)
        valid[:, 0] = True
        special = set(getattr(tokenizer, "all_special_ids", []))
        for token, index in vocab.items():
            if index in special:
                continue
            text = tokenizer.convert_tokens_to_string([token])
            word = text.strip()
            if not (len(word) > 1 and word.isalpha() and word.isascii()) or word.lower() in skip:
                continue
            lead = text[: len(text) - len(text.lstrip())]  # BPE's leading space: synonyms keep it
            found: list[int] = []
            for synonym in lookup(word):
                encoded = tokenizer.encode(lead + synonym, add_special_tokens=False)
                if len(encoded) == 1 and encoded[0] != index and encoded[0] not in found:
                    found.append(encoded[0])
                if len(found) == width - 1:
                    break
            ids[index, 1:1 + len(found)] = found
            valid[index, 1:1 + len(found)] = True
        return cls(ids, valid)

    @classmethod
    def for_tokenizer(cls, tokenizer, width: int = 8) -> SynonymTable:
        """The WordNet table of ``tokenizer``'s vocabulary, from the cache when it was built before."""
        path = _cache_path(tokenizer, width)
        if path.exists():
            with np.load(path) as saved:
                return cls(saved["ids"], saved["valid"])
        logger.info("building the WordNet synonym table of a %d-token vocabulary (once)", len(tokenizer))
        table = cls.build(tokenizer, width)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # one per process: runs may build it at once
        np.savez_compressed(tmp, ids=table.ids, valid=table.valid)
        tmp.replace(path)  # atomic: a half-written table is never read
        return table


def _cache_path(tokenizer, width: int) -> Path:
    from textarmor.models import cache_dir

    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    digest = hashlib.sha1(json.dumps([_FORMAT, width, vocab]).encode()).hexdigest()[:16]
    return cache_dir() / "synonym_tables" / f"wordnet-{digest}.npz"
