"""BERT-family WordPiece tokenisation of plain ASCII text through a word cache: the Rust tokenizer's ids, faster.

Hugging Face ``tokenizers`` runs every text through its normaliser, pre-tokeniser and model with per-byte
alignment bookkeeping, and has no word cache for WordPiece: on a 2-core CPU a single thread tokenises the
67,349 SST-2 train texts with all-MiniLM-L6-v2's tokenizer in about 3.6 s, and on a 16-core GPU host that is
what keeps a roberta-base-sized model waiting (benchmarks/inference/tokenize_speed.py). For printable ASCII
text (every character from space to ``~``), a ``BertNormalizer`` is lowercasing or nothing, a
``BertPreTokenizer`` is one regular expression (runs of letters and digits; each other character alone;
spaces dropped), and WordPiece cuts a word the same way every time. So a slice is joined into one string,
lowercased and split by the expression in C, each word's ids come from a dict (filled from the Rust model's
own ``tokenize`` on a miss), and truncation and the post-processor's special tokens are applied with NumPy.

Texts outside that domain (non-ASCII, control characters, anything that could hold an added token such as
``[MASK]``), pairs, and tokenizers of another shape go to the Rust tokenizer, so the ids are always its ids
(``tests/test_fast_wordpiece.py`` compares them on every bundled dataset).
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

from textarmor.backends import tokenize_pool

_SEPARATOR = "\x00"  # joins a slice's texts; never inside an eligible text (not printable)
_OUTSIDE = re.compile(r"[^\x20-\x7e\x00]")  # characters that make a text ineligible (besides the separator)
_ROW_END = -1  # the separator's "id": marks where each row's words end
_SPACE = 32


def _byte_tables(lowercase: bool) -> tuple[np.ndarray, np.ndarray]:
    """(each byte's lowercase form or itself, whether a byte is a character the pre-tokeniser isolates)."""
    table = np.arange(256, dtype=np.uint8)
    if lowercase:
        table[ord("A"):ord("Z") + 1] += 32
    alnum = np.zeros(256, dtype=bool)
    for first, last in ("az", "AZ", "09"):
        alnum[ord(first):ord(last) + 1] = True
    isolated = ~alnum
    isolated[_SPACE] = False
    return table, isolated


class _WordTable(dict):
    """word (bytes) -> its row in flat arrays of WordPiece ids, each word cut once by the Rust model."""

    def __init__(self, model):
        super().__init__({_SEPARATOR.encode(): 0})
        self._model = model
        self._ids, self._starts, self._lengths = [_ROW_END], [0], [1]
        self.arrays = self._as_arrays()

    def __missing__(self, word: bytes) -> int:
        ids = [token.id for token in self._model.tokenize(word.decode("ascii"))]
        self._starts.append(len(self._ids))
        self._lengths.append(len(ids))
        self._ids.extend(ids)
        row = self[word] = len(self._lengths) - 1
        return row

    def refresh(self) -> None:
        """Bring :attr:`arrays` (ids, starts, lengths) up to date after new words."""
        if len(self.arrays[2]) != len(self._lengths):
            self.arrays = self._as_arrays()

    def _as_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.array(self._ids, dtype=np.int32), np.array(self._starts, dtype=np.int64),
                np.array(self._lengths, dtype=np.int64))


class CachedWordPiece:
    """Encodes single texts like ``tokenizer.encode_batch_fast`` (no padding, truncation to ``max_length``),
    returning :mod:`tokenize_pool`'s flat arrays; build it with :meth:`for_tokenizer`."""

    MAX_WORDS = 1 << 20  # the cache is emptied when it holds more distinct words than this

    def __init__(self, tokenizer, lowercase: bool, prefix: list[tuple[int, int]], sequence_type: int,
                 suffix: list[tuple[int, int]], max_length: int, added: re.Pattern | None):
        self._tokenizer = tokenizer
        self._case, self._isolated = _byte_tables(lowercase)
        self._prefix = np.array([i for i, _ in prefix], dtype=np.int32)
        self._prefix_types = np.array([t for _, t in prefix], dtype=np.int32)
        self._suffix = np.array([i for i, _ in suffix], dtype=np.int32)
        self._suffix_types = np.array([t for _, t in suffix], dtype=np.int32)
        self._sequence_type = sequence_type
        self._limit = max_length - len(prefix) - len(suffix)  # content tokens a row keeps
        self._added = added
        self._words = _WordTable(tokenizer.model)

    @classmethod
    def for_tokenizer(cls, tokenizer, max_length: int) -> CachedWordPiece | None:
        """The fast path for a configured Rust ``tokenizer`` (no padding, right truncation to ``max_length``),
        or ``None`` when its pipeline is not BertNormalizer/BertPreTokenizer/WordPiece with a plain template."""
        spec = json.loads(tokenizer.to_str())
        normalizer, pre = spec.get("normalizer") or {"type": None}, spec.get("pre_tokenizer") or {}
        truncation = tokenizer.truncation or {}
        if ((spec.get("model") or {}).get("type") != "WordPiece" or pre.get("type") != "BertPreTokenizer"
                or normalizer.get("type") not in ("BertNormalizer", None) or tokenizer.padding is not None
                or truncation.get("max_length") != max_length or truncation.get("stride", 0)
                or str(truncation.get("direction", "right")).lower() != "right"):
            return None
        template = _single_template(spec.get("post_processor"))
        if template is None:
            return None
        prefix, sequence_type, suffix = template
        if max_length - len(prefix) - len(suffix) < 1:
            return None
        contents = [token.content for token in tokenizer.get_added_tokens_decoder().values() if token.content]
        added = re.compile("|".join(map(re.escape, contents)), re.IGNORECASE) if contents else None
        return cls(tokenizer, bool(normalizer.get("lowercase", False)), prefix, sequence_type, suffix, max_length,
                   added)

    def eligible(self, text: str) -> bool:
        """Whether this path encodes ``text`` itself (printable ASCII that no added token could match)."""
        return text.isascii() and text.isprintable() and not (self._added and self._added.search(text))

    def encode(self, texts: Sequence[str], token_types: bool) -> dict[str, np.ndarray]:
        """``tokenize_pool.SliceEncoder.encode``'s flat arrays for single texts; ineligible ones go through Rust."""
        texts = list(texts)
        joined = _SEPARATOR.join(texts)
        slow = self._ineligible(texts, joined)
        if not len(slow):
            return self._encode_joined(joined, len(texts), token_types)
        fast = np.setdiff1d(np.arange(len(texts)), slow)
        parts = []
        if len(fast):
            parts.append(self._encode_joined(_SEPARATOR.join([texts[i] for i in fast.tolist()]), len(fast),
                                             token_types))
        parts.append(tokenize_pool.encode_rust(self._tokenizer, [texts[i] for i in slow.tolist()], None,
                                               token_types))
        merged = tokenize_pool.concat_encoded(parts)
        source = np.empty(len(texts), dtype=np.int64)  # row i of the result is row source[i] of merged
        source[np.concatenate([fast, slow])] = np.arange(len(texts))
        return tokenize_pool.take_rows(merged, source)

    def _ineligible(self, texts: list[str], joined: str) -> np.ndarray:
        """The rows (sorted) this path must leave to Rust, found by scanning the joined slice in C."""
        if joined.count(_SEPARATOR) != len(texts) - 1:  # a text holds the separator itself: check each
            return np.flatnonzero([not self.eligible(text) for text in texts])
        spots = [match.start() for match in _OUTSIDE.finditer(joined)]
        if self._added is not None:
            spots += [match.start() for match in self._added.finditer(joined)]
        if not spots:
            return np.empty(0, dtype=np.int64)
        ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 1) - 1
        return np.unique(np.searchsorted(ends, spots))  # the row whose span holds each spot

    def _encode_joined(self, joined: str, rows: int, token_types: bool) -> dict[str, np.ndarray]:
        # Bytes, lowercased by table; every isolated character (punctuation, the separator) gets a space on
        # each side, so that one C-level split yields the pre-tokeniser's words.
        data = self._case[np.frombuffer((joined + _SEPARATOR).encode("ascii"), dtype=np.uint8)]
        isolated = self._isolated[data]
        spread = np.repeat(data, np.where(isolated, 3, 1))
        at = (np.cumsum(np.where(isolated, 3, 1)) - 1)[isolated]  # each isolated byte's last copy
        spread[at] = _SPACE
        spread[at - 2] = _SPACE
        if len(self._words) > self.MAX_WORDS:
            self._words = _WordTable(self._tokenizer.model)
        words = spread.tobytes().split()
        rows_of_words = np.fromiter(map(self._words.__getitem__, words), dtype=np.int64, count=len(words))
        self._words.refresh()
        table_ids, table_starts, table_lengths = self._words.arrays
        counts = table_lengths[rows_of_words]
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        flat = table_ids[np.repeat(table_starts[rows_of_words], counts) + offsets]
        ends = np.flatnonzero(flat == _ROW_END)
        found = np.diff(ends, prepend=-1) - 1  # content tokens of each row before truncation
        content = flat[flat != _ROW_END]
        kept = np.minimum(found, self._limit)
        # each content token's place within its row; those past the limit are cut (right truncation)
        place = np.arange(len(content)) - np.repeat(np.cumsum(found) - found, found)
        keep = place < np.repeat(kept, found)
        prefix, suffix = len(self._prefix), len(self._suffix)
        lengths = (kept + prefix + suffix).astype(np.int32)
        starts = np.cumsum(lengths) - lengths
        total = int(lengths.sum())
        content_at = np.repeat(starts + prefix, kept) + place[keep]
        prefix_at = (starts[:, None] + np.arange(prefix)).ravel()
        suffix_at = ((starts + prefix + kept)[:, None] + np.arange(suffix)).ravel()
        ids = np.empty(total, dtype=np.int32)
        ids[content_at] = content[keep]
        ids[prefix_at] = np.tile(self._prefix, rows)
        ids[suffix_at] = np.tile(self._suffix, rows)
        encoded = {"input_ids": ids, "lengths": lengths}
        if token_types:
            types = np.full(total, self._sequence_type, dtype=np.int32)
            types[prefix_at] = np.tile(self._prefix_types, rows)
            types[suffix_at] = np.tile(self._suffix_types, rows)
            encoded["token_type_ids"] = types
        return encoded


def _single_template(post: dict | None) -> tuple[list[tuple[int, int]], int, list[tuple[int, int]]] | None:
    """(prefix (id, type) pairs, the text's type id, suffix pairs) of a post-processor for single texts, or
    ``None`` for post-processors other than none, ``BertProcessing`` and a one-sequence ``TemplateProcessing``."""
    if post is None:
        return [], 0, []
    if post.get("type") == "BertProcessing":
        return [(post["cls"][1], 0)], 0, [(post["sep"][1], 0)]
    if post.get("type") != "TemplateProcessing":
        return None
    prefix, suffix, sequence_type = [], [], None
    for piece in post["single"]:
        if "Sequence" in piece:
            if sequence_type is not None or piece["Sequence"]["id"] != "A":
                return None
            sequence_type = piece["Sequence"]["type_id"]
            continue
        special = piece["SpecialToken"]
        ids = post["special_tokens"][special["id"]]["ids"]
        (prefix if sequence_type is None else suffix).extend((i, special["type_id"]) for i in ids)
    return (prefix, sequence_type, suffix) if sequence_type is not None else None
