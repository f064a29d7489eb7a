"""``smooth``: predict by a vote over randomly masked (RanMASK) or synonym-substituted (SAFER) copies.

RanMASK (Zeng et al. 2021, "Certified Robustness to Text Adversarial Attacks by Randomized [MASK]",
arXiv:2105.03743): each copy masks ``round(rate * h)`` of the ``h`` words with the tokenizer's mask token.
SAFER (Ye et al. 2020, "SAFER: A Structure-free Approach for Certified Robustness to Adversarial Word
Substitutions", ACL): each word is swapped for a random WordNet synonym with probability ``rate``.

Departures from the papers: the base model is used as it is (RanMASK and SAFER fine-tune it on perturbed
copies; a standard model tolerates only low rates, see docs/defenses.md); SAFER's perturbation sets come from
WordNet, not from counter-fitted embeddings, and SAFER's certificate is not computed (``certify`` needs
``mode="mask"``). Certificates follow Cohen et al. 2019's CERTIFY: the label comes from the ``k`` voting
copies, the Clopper-Pearson bound from ``certify_samples`` further copies drawn independently.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textarmor.attacks.text import split_words
from textarmor.classifier import Classifier
from textarmor.defenses.base import Defense, text_rng
from textarmor.defenses.certify import certified_radius, clopper_pearson_lower
from textarmor.defenses.perturb import Synonyms, mask_words, num_masked, swap_synonyms
from textarmor.errors import ParameterError

MODES = ("mask", "synonym")
AGGREGATES = ("vote", "mean")


@dataclass
class Certificate:
    """One input's certificate: the smoothed ``label`` (index), its ``votes`` among ``samples`` fresh copies,
    the Clopper-Pearson lower bound ``p_lower`` on its share, and the certified ``radius`` in words
    (``-1``: not certified at all; ``0``: certified as it is, against no change)."""

    label: int
    votes: int
    samples: int
    p_lower: float
    radius: int
    num_words: int


class Smooth(Defense):
    """Majority vote over ``k`` perturbed copies of each input.

    Parameters
    ----------
    k: copies per input (forward passes per input).
    mode: ``mask`` (RanMASK) or ``synonym`` (SAFER).
    rate: fraction of words masked (``mask``), or probability of swapping each word (``synonym``).
    aggregate: ``vote`` (share of copies per label; ties broken by the mean probability) or ``mean``
        (mean probability over copies).
    seed: copies depend on ``(seed, text)`` only.
    certify: also compute :class:`Certificate` s (:meth:`certify_texts`); ``mode`` must be ``mask``.
    alpha: 1 - confidence of the certificate's lower bound.
    certify_samples: copies drawn for the bound (on top of the ``k`` voting copies).
    """

    name = "smooth"
    summary = "vote over k randomly masked or synonym-substituted copies (RanMASK / SAFER)"
    paper = "Zeng et al. 2021 (RanMASK), arXiv:2105.03743; Ye et al. 2020 (SAFER), ACL"

    def __init__(self, k: int = 16, mode: str = "mask", rate: float = 0.3, aggregate: str = "vote", seed: int = 0,
                 certify: bool = False, alpha: float = 0.05, certify_samples: int = 100):
        if not isinstance(k, int) or k < 1:
            raise ParameterError(f"smooth: k must be a positive number of copies, got {k!r}.")
        if mode not in MODES:
            raise ParameterError(f"smooth: mode must be one of {MODES}, got {mode!r}.")
        if not 0.0 <= rate <= 1.0:
            raise ParameterError(f"smooth: rate must be in [0, 1], got {rate!r}.")
        if aggregate not in AGGREGATES:
            raise ParameterError(f"smooth: aggregate must be one of {AGGREGATES}, got {aggregate!r}.")
        if certify and mode != "mask":
            raise ParameterError("smooth: certify needs mode=mask (SAFER's synonym certificate is not implemented).")
        if not 0.0 < alpha < 1.0:
            raise ParameterError(f"smooth: alpha must be in (0, 1), e.g. 0.05 for 95% confidence; got {alpha!r}.")
        if not isinstance(certify_samples, int) or certify_samples < 1:
            raise ParameterError(f"smooth: certify_samples must be a positive integer, got {certify_samples!r}.")
        self.k, self.mode, self.rate, self.aggregate, self.seed = k, mode, rate, aggregate, seed
        self.certify, self.alpha, self.certify_samples = certify, alpha, certify_samples
        self._synonyms = Synonyms()

    # ----------------------------------------------------------------- copies
    def _perturb(self, clf: Classifier, text: str, rng: np.random.Generator) -> str:
        if self.mode == "mask":
            return mask_words(text, self.rate, clf.tokenizer.mask_token or clf.tokenizer.unk_token, rng)
        return swap_synonyms(text, self.rate, self._synonyms, rng)

    def copies(self, clf: Classifier, texts: list[str], text_pairs: list[str] | None, count: int,
               stream: int = 0) -> tuple[list[str], list[str] | None]:
        """``count`` copies of every input, input-major (copy ``j`` of input ``i`` at ``i * count + j``); a
        pair's two texts are perturbed alike, each by its own draws."""
        flat, flat_pairs = [], [] if text_pairs is not None else None
        for i, text in enumerate(texts):
            pair = text_pairs[i] if text_pairs is not None else None
            rng = text_rng(self.seed, text, pair, stream)
            for _ in range(count):
                flat.append(self._perturb(clf, text, rng))
                if flat_pairs is not None:
                    flat_pairs.append(self._perturb(clf, pair, rng))
        return flat, flat_pairs

    def _copy_probs(self, clf: Classifier, texts, text_pairs, count: int, stream: int) -> np.ndarray:
        flat, flat_pairs = self.copies(clf, texts, text_pairs, count, stream)
        return clf.predict_proba(flat, flat_pairs).reshape(len(texts), count, len(clf.labels))

    # ----------------------------------------------------------------- scores
    def scores(self, clf, texts, text_pairs):
        probs = self._copy_probs(clf, texts, text_pairs, self.k, stream=0)
        passes = np.full(len(texts), self.k)
        return combine(probs, self.aggregate), passes

    def certify_texts(self, clf: Classifier, texts: list[str], text_pairs: list[str] | None = None,
                      labels: np.ndarray | None = None) -> list[Certificate]:
        """Certificates of ``texts``: the label voted by the ``k`` copies (or ``labels`` when given, e.g. the
        defended predictions already made), bounded with ``certify_samples`` independent copies."""
        if self.mode != "mask":
            raise ParameterError("smooth: certificates need mode=mask.")
        if labels is None:
            labels = combine(self._copy_probs(clf, texts, text_pairs, self.k, stream=0), self.aggregate).argmax(-1)
        votes = vote_counts(self._copy_probs(clf, texts, text_pairs, self.certify_samples, stream=1))
        out = []
        for i, text in enumerate(texts):
            label = int(labels[i])
            count = int(votes[i, label])
            p_lower = clopper_pearson_lower(count, self.certify_samples, self.alpha)
            h = len(split_words(text)[0])
            out.append(Certificate(label, count, self.certify_samples, p_lower,
                                   certified_radius(p_lower, h, num_masked(h, self.rate)), h))
        return out


def vote_counts(probs: np.ndarray) -> np.ndarray:
    """Votes per label, shape ``(n, num_labels)``, from copy probabilities ``(n, copies, num_labels)``."""
    n, _, num_labels = probs.shape
    counts = np.zeros((n, num_labels), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), probs.shape[1]), probs.argmax(-1).ravel()), 1)
    return counts


def combine(probs: np.ndarray, aggregate: str) -> np.ndarray:
    """One probability row per input from ``(n, copies, num_labels)``: vote shares or mean probabilities.
    Vote ties go to the higher mean probability: a shift far below one vote (``1e-3 / copies``) is added."""
    mean = probs.mean(axis=1)
    if aggregate == "mean":
        return mean
    copies = probs.shape[1]
    shares = vote_counts(probs) / copies + (1e-3 / copies) * (mean - mean.mean(axis=1, keepdims=True))
    shares = np.maximum(shares, 0.0)
    return shares / shares.sum(axis=1, keepdims=True)
