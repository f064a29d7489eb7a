"""Search methods, written as coroutines so that one engine can interleave many examples.

A search is a generator: it yields a list of texts to score and receives back the class
probabilities, one row per text, in the same order. A reply shorter than the request means the
example's query budget ran out: the search uses what it got and stops. It returns a
:class:`SearchOutcome`. The engine gathers the requests of every example in flight into one model call.
"""
from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from textarmor.attacks.text import AttackedText

if TYPE_CHECKING:
    from textarmor.attacks.attack import Attack

Scores = Generator[list[str], np.ndarray, "SearchOutcome"]
UNK = "[UNK]"  # what TextAttack substitutes for a word when measuring its importance


@dataclass
class SearchOutcome:
    text: AttackedText
    probs: np.ndarray
    succeeded: bool


class SearchMethod:
    name = "search"

    def search(self, attack: Attack, original: AttackedText, original_probs: np.ndarray, true_label: int,
               rng: np.random.Generator) -> Scores:
        raise NotImplementedError


class GreedyWordSwapWIR(SearchMethod):
    """Rank words by importance, then walk them in order, keeping the best-scoring swap at each word
    when it raises the goal score, until the goal is met or the words run out (TextAttack's
    ``GreedyWordSwapWIR``).

    ``ranking``: ``"unk"`` (score drop when the word becomes ``[UNK]``), ``"delete"`` (the word removed),
    or ``"weighted-saliency"`` (PWWS: softmax of the ``[UNK]`` saliencies times the best swap's score).
    """

    RANKINGS = ("unk", "delete", "weighted-saliency")

    def __init__(self, ranking: str = "unk"):
        if ranking not in self.RANKINGS:
            raise ValueError(f"ranking must be one of {self.RANKINGS}, got {ranking!r}")
        self.ranking = ranking
        self.name = f"greedy-wir-{ranking}"

    def search(self, attack, original, original_probs, true_label, rng):
        goal = attack.goal
        order = yield from self._rank(attack, original, original_probs, true_label, rng)
        current, current_probs = original, original_probs
        current_score = float(goal.scores(original_probs[None], true_label)[0])
        for index in order:
            candidates = attack.candidates(current, original, [index], rng)
            if not candidates:
                continue
            probs = yield [c.text for c in candidates]
            exhausted = len(probs) < len(candidates)
            if len(probs):
                scores = goal.scores(probs, true_label)
                best = int(np.argmax(scores))
                if scores[best] > current_score:
                    current, current_probs, current_score = candidates[best], probs[best], float(scores[best])
                    if goal.succeeded(probs[best:best + 1], true_label)[0]:
                        return SearchOutcome(current, current_probs, True)
            if exhausted:
                break
        return SearchOutcome(current, current_probs, False)

    def _rank(self, attack, original, original_probs, true_label, rng) -> Generator[list[str], np.ndarray,
                                                                                    list[int]]:
        goal = attack.goal
        indices = sorted(attack.modifiable(original, original))
        if not indices:
            return []
        filler = "" if self.ranking == "delete" else UNK
        probs = yield [original.with_word(i, filler) for i in indices]
        indices = indices[:len(probs)]
        importance = goal.scores(probs, true_label) if len(probs) else np.zeros(0)
        if self.ranking == "weighted-saliency" and len(indices):
            saliency = np.exp(importance - importance.max())
            saliency /= saliency.sum()
            per_index = attack.candidates_by_index(original, original, indices, rng)
            swaps = [(i, c) for i, found in zip(indices, per_index) for c in found]
            best = {i: 0.0 for i in indices}
            if swaps:
                probs = yield [c.text for _, c in swaps]
                for (i, _), score in zip(swaps, goal.scores(probs, true_label) if len(probs) else []):
                    best[i] = max(best[i], float(score))
            importance = saliency * np.array([best[i] for i in indices])
        order = np.argsort(-np.asarray(importance))  # numpy's default sort, as TextAttack, so ties break alike
        return [indices[j] for j in order]


class RandomNoise(SearchMethod):
    """Not adversarial: each modifiable word is perturbed with probability ``rate`` (within the
    modification-rate bound), the noisy text is scored once, and success means the label flipped."""

    def __init__(self, rate: float = 0.1):
        self.rate = rate
        self.name = "random-noise"

    def search(self, attack, original, original_probs, true_label, rng):
        current = original
        # A random order, so that the modification-rate bound does not favour the first words.
        for index in rng.permutation(len(original)).tolist():
            if rng.random() >= self.rate or index not in attack.modifiable(current, original):
                continue
            candidates = attack.candidates(current, original, [index], rng)
            if candidates:
                current = candidates[int(rng.integers(0, len(candidates)))]
        if current is original:
            return SearchOutcome(original, original_probs, False)
        probs = yield [current.text]
        if not len(probs):
            return SearchOutcome(original, original_probs, False)
        return SearchOutcome(current, probs[0], bool(attack.goal.succeeded(probs, true_label)[0]))
