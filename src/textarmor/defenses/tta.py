"""``tta``: average the scores of augmented copies (test-time augmentation in the spirit of LLM-TTA,
"Improving Black-box Robustness with In-Context Rewriting", O'Brien et al. 2024, without an LLM).

Copies: the input with one-edit typos repaired by vocabulary lookup (``repair``), then with rare words
mapped to their most frequent WordNet synonym (``canonical``, synonym canonicalisation after the Synonym
Encoding Method, Wang, Jin & He 2021: a synonym swap maps back before the model sees it), as one copy; and
``n`` copies with random WordNet synonym swaps (``synonyms``, each word swapped with probability ``rate``;
stop words kept), drawn from that copy, each canonicalised again when ``canonical`` is on; plus the input
itself with ``include_original``.
With ``entropy_threshold``, only inputs whose base prediction has normalised entropy (entropy / log of the
number of labels, in [0, 1]) at least that value are augmented; the others keep the base prediction, at one
forward pass (an input that is augmented costs that pass plus its copies). ``change_threshold`` also augments
confident inputs in which the repaired/canonicalised copy changes at least that many words: an attack that
pushed the base model to a confident wrong label has usually swapped in several rare synonyms or typos.
"""
from __future__ import annotations

import numpy as np

from textarmor.attacks.text import split_words
from textarmor.classifier import Classifier
from textarmor.defenses.base import Defense, text_rng
from textarmor.defenses.perturb import Synonyms, swap_synonyms
from textarmor.defenses.rewrite import Rewriter
from textarmor.errors import ParameterError

AUGMENTATIONS = ("repair", "canonical", "synonyms")


class TTA(Defense):
    """Mean probability over augmented copies.

    Parameters
    ----------
    augmentations: comma-separated subset of ``repair``, ``canonical``, ``synonyms`` (a list or tuple also
        works); ``repair`` and ``canonical`` together make one copy (repaired, then canonicalised).
    n: synonym-swapped copies per input.
    rate: probability of swapping each word for a synonym.
    include_original: also average the unmodified input.
    entropy_threshold: augment only inputs at least this uncertain (``None``: all).
    change_threshold: with ``entropy_threshold``, also augment inputs whose repaired/canonicalised copy differs
        from them in at least this many words (0: uncertainty alone decides).
    vocab_size: words of the typo-repair vocabulary (most frequent GloVe 6B words).
    canonical_rank: ``canonical`` maps only words whose GloVe 6B frequency rank is this or worse (rarer words)
        to their most frequent WordNet synonym; 0 maps every word that has a more frequent synonym.
    seed: copies depend on ``(seed, text)`` only.
    """

    name = "tta"
    summary = ("mean over typo-repaired, synonym-canonicalised and synonym-swapped copies, optionally only for "
               "uncertain inputs")
    paper = "LLM-TTA: O'Brien et al. 2024, Improving Black-box Robustness with In-Context Rewriting (no LLM here)"

    def __init__(self, augmentations: str = "repair,synonyms", n: int = 4, rate: float = 0.2,
                 include_original: bool = False, entropy_threshold: float | None = None, vocab_size: int = 50_000,
                 canonical_rank: int = 20_000, change_threshold: int = 0, seed: int = 0):
        chosen = [a.strip() for a in augmentations.split(",")] if isinstance(augmentations, str) else list(
            augmentations)
        unknown = [a for a in chosen if a not in AUGMENTATIONS]
        if unknown or not chosen:
            raise ParameterError(f"tta: augmentations must be a comma-separated subset of {AUGMENTATIONS}, "
                                 f"got {augmentations!r}.")
        if not isinstance(n, int) or n < 0 or ("synonyms" in chosen and n < 1):
            raise ParameterError(f"tta: n must be a positive number of synonym copies, got {n!r}.")
        if not 0.0 <= rate <= 1.0:
            raise ParameterError(f"tta: rate must be in [0, 1], got {rate!r}.")
        if entropy_threshold is not None and not 0.0 <= entropy_threshold <= 1.0:
            raise ParameterError("tta: entropy_threshold is a normalised entropy in [0, 1], "
                                 f"got {entropy_threshold!r}.")
        if not isinstance(change_threshold, int) or change_threshold < 0 or change_threshold and (
                entropy_threshold is None or not {"repair", "canonical"} & set(chosen)):
            raise ParameterError("tta: change_threshold is a number of changed words (0: off) and needs "
                                 "entropy_threshold and the repair or canonical augmentation, "
                                 f"got {change_threshold!r}.")
        if not isinstance(canonical_rank, int) or canonical_rank < 0:
            raise ParameterError(f"tta: canonical_rank must be a frequency rank >= 0, got {canonical_rank!r}.")
        self.augmentations = ",".join(chosen)
        self.n, self.rate, self.include_original = n, rate, include_original
        self.entropy_threshold, self.vocab_size, self.seed = entropy_threshold, vocab_size, seed
        self.canonical_rank, self.change_threshold = canonical_rank, change_threshold
        self._synonyms = Synonyms() if "synonyms" in chosen or "canonical" in chosen else None
        self._rewriter = Rewriter("repair" in chosen, "canonical" in chosen, vocab_size, canonical_rank,
                                  synonyms=self._synonyms)
        self._canonical = Rewriter(False, True, vocab_size, canonical_rank, synonyms=self._synonyms) \
            if "canonical" in chosen else None
        self._swap = "synonyms" in chosen

    def _rewrite(self, text: str) -> str:
        """The repaired, then canonicalised copy (``text`` itself when neither augmentation is on)."""
        return self._rewriter(text)

    def _augment(self, text: str, pair: str | None) -> list[str]:
        base = self._rewrite(text)
        out = [text] if self.include_original else []
        if self._rewriter.active:
            out.append(base)
        if self._swap:
            from textarmor.attacks.resources import stop_words

            rng = text_rng(self.seed, text, pair)
            swapped = [swap_synonyms(base, self.rate, self._synonyms, rng, skip=stop_words()) for _ in range(self.n)]
            out += [self._canonical(s) for s in swapped] if self._canonical is not None else swapped
        return out

    def scores(self, clf: Classifier, texts, text_pairs):
        n = len(texts)
        probs = np.zeros((n, len(clf.labels)), dtype=np.float64)
        passes = np.zeros(n, dtype=np.int64)
        todo = list(range(n))
        if self.entropy_threshold is not None:
            first = clf.predict_proba(texts, text_pairs)
            probs[:] = first
            passes += 1
            gate = normalised_entropy(first) >= self.entropy_threshold
            if self.change_threshold:
                gate |= np.array([changed_words(t, self._rewrite(t)) >= self.change_threshold for t in texts])
            todo = np.flatnonzero(gate).tolist()
        flat, flat_pairs, owner = [], [] if text_pairs is not None else None, []
        for i in todo:
            pair = text_pairs[i] if text_pairs is not None else None
            copies = self._augment(texts[i], pair)
            flat += copies
            owner += [i] * len(copies)
            if flat_pairs is not None:
                flat_pairs += [pair] * len(copies)
        if flat:
            rows = clf.predict_proba(flat, flat_pairs)
            owner_arr = np.asarray(owner)
            sums = np.zeros_like(probs)
            np.add.at(sums, owner_arr, rows)
            counts = np.bincount(owner_arr, minlength=n)
            done = counts > 0
            probs[done] = sums[done] / counts[done, None]
            passes += np.bincount(owner_arr, minlength=n)
        return probs.astype(np.float32), passes


def changed_words(text: str, rewritten: str) -> int:
    """How many words of ``text`` its rewrite (same word count: repair and canonical map word to word) changes."""
    before, after = split_words(text)[0], split_words(rewritten)[0]
    return sum(a != b for a, b in zip(before, after)) + abs(len(before) - len(after))


def normalised_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy of each row divided by log(number of labels): 0 for a certain, 1 for a uniform prediction."""
    p = np.clip(probs, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1) / np.log(probs.shape[-1])
