"""Tokenising texts for explanation and mapping subword scores back to words.

A *word* is what the fast tokenizer's pre-tokenizer calls one (``BatchEncoding.word_ids``): for BERT's
WordPiece and RoBERTa's byte-level BPE alike that is a run of letters/digits or one punctuation group, so
``"film's"`` is two words for both. Its text is the character span from the first to the last of its
tokens (``offset_mapping``), which is also what removal-based methods cut out of the text.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from textarmor.errors import ParameterError


@dataclass
class EncodedBatch:
    """A padded batch of texts with the bookkeeping needed to report scores per word.

    ``input_ids`` and ``attention_mask`` are int64 tensors ``(batch, length)`` on the model's device.
    ``word_index[i][t]`` is the word of token ``t`` of text ``i`` (``-1`` for special and padding tokens);
    ``spans[i]`` the ``(start, end)`` character span of each word in ``texts[i]``.
    """

    texts: list[str]
    input_ids: object
    attention_mask: object
    tokens: list[list[str]]
    word_index: list[np.ndarray]
    words: list[list[str]]
    spans: list[list[tuple[int, int]]]
    truncated: list[bool]

    def __len__(self) -> int:
        return len(self.texts)


def encode(tokenizer, texts: Sequence[str], *, max_length: int, device=None) -> EncodedBatch:
    """Tokenise ``texts`` as the Classifier does (same truncation), padded, with word bookkeeping.

    Texts longer than ``max_length`` tokens are truncated, with one warning per call that says how many;
    the returned ``texts`` are then cut after the last token the model reads.
    """
    import torch

    if not getattr(tokenizer, "is_fast", False):
        raise ParameterError("Explanations need a fast (Rust) tokenizer to map tokens to words; this model's "
                             "tokenizer is a slow one. Save the model with a tokenizer.json (AutoTokenizer "
                             "with use_fast=True) and try again.")
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True,
                    return_offsets_mapping=True, return_tensors="pt")
    offsets = enc["offset_mapping"].tolist()
    mask = enc["attention_mask"]
    lengths = mask.sum(dim=1).tolist()
    kept_texts, all_tokens, word_index, words, spans, truncated = [], [], [], [], [], []
    for i, text in enumerate(texts):
        n = int(lengths[i])
        ids = enc["input_ids"][i].tolist()
        # Padding sits right or left depending on the tokenizer; keep the positions the mask marks real.
        real = [t for t in range(len(ids)) if mask[i, t]]
        word_ids = enc.word_ids(i)
        index = np.full(len(ids), -1, dtype=np.int64)
        text_spans: list[tuple[int, int]] = []
        last_word = None
        for t in real:
            word = word_ids[t]
            if word is None:
                continue
            start, end = offsets[i][t]
            if word != last_word:
                text_spans.append((start, end))
                last_word = word
            else:
                text_spans[-1] = (text_spans[-1][0], max(text_spans[-1][1], end))
            index[t] = len(text_spans) - 1
        end = text_spans[-1][1] if text_spans else 0
        cut = bool(text[end:].strip()) and n >= max_length
        kept_texts.append(text[:end] if cut else text)
        truncated.append(cut)
        all_tokens.append(tokenizer.convert_ids_to_tokens([ids[t] for t in real]))
        word_index.append(index[real])
        spans.append(text_spans)
        words.append([text[s:e] for s, e in text_spans])
    if any(truncated):
        warnings.warn(f"{sum(truncated)} of {len(texts)} texts are longer than the model's maximum of "
                      f"{max_length} tokens and were truncated; only the part the model reads is explained.",
                      stacklevel=3)
    if device is not None:
        enc_ids, enc_mask = enc["input_ids"].to(device), mask.to(device)
    else:
        enc_ids, enc_mask = enc["input_ids"], mask
    return EncodedBatch(texts=kept_texts, input_ids=enc_ids, attention_mask=enc_mask.to(torch.long),
                        tokens=all_tokens, word_index=word_index, words=words, spans=spans, truncated=truncated)


def token_scores_of(batch: EncodedBatch, padded: np.ndarray) -> list[np.ndarray]:
    """Per text, the scores of its real tokens taken from a padded ``(batch, length)`` array."""
    mask = batch.attention_mask.detach().cpu().numpy().astype(bool)
    return [np.asarray(padded[i][mask[i]], dtype=np.float64) for i in range(len(batch))]


def words_from_tokens(token_scores: np.ndarray, word_index: np.ndarray, n_words: int) -> np.ndarray:
    """Sum the scores of each word's subword tokens; special tokens (index -1) are left out.

    A sum keeps additive attributions additive: integrated gradients' word scores still add up to
    f(x) − f(baseline), and a word's attention is the attention mass on all its pieces.
    """
    scores = np.zeros(n_words, dtype=np.float64)
    keep = word_index >= 0
    np.add.at(scores, word_index[keep], token_scores[keep])
    return scores


def tokens_from_words(word_scores: np.ndarray, word_index: np.ndarray) -> np.ndarray:
    """Spread word scores evenly over their tokens, so that summing back gives the word scores."""
    counts = np.bincount(word_index[word_index >= 0], minlength=len(word_scores)).astype(np.float64)
    out = np.zeros(len(word_index), dtype=np.float64)
    keep = word_index >= 0
    out[keep] = word_scores[word_index[keep]] / counts[word_index[keep]]
    return out


def remove_words(text: str, spans: Sequence[tuple[int, int]], drop: Sequence[int]) -> str:
    """``text`` with the words at indices ``drop`` cut out and whitespace runs collapsed."""
    pieces, cursor = [], 0
    for j in sorted(set(drop)):
        start, end = spans[j]
        pieces.append(text[cursor:start])
        cursor = end
    pieces.append(text[cursor:])
    return re.sub(r"\s+", " ", "".join(pieces)).strip()


def keep_words(text: str, spans: Sequence[tuple[int, int]], keep: Sequence[int]) -> str:
    """Only the words at indices ``keep``, in their original order and with their own separators."""
    kept = set(keep)
    return remove_words(text, spans, [j for j in range(len(spans)) if j not in kept])
