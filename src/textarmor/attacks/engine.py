"""The engine: advances many examples at once and scores all their candidates in one model call.

Each example is an :meth:`Attack.run` coroutine. Every round, the engine collects the pending requests
of up to ``concurrency`` examples, sends them to :meth:`Classifier.predict_proba` as ONE list (the
Classifier cuts it into token-budget batches and serves repeats from its cache), and hands each
example its rows back. An example's query budget counts the texts it asked to score, its original
included (TextAttack's count); a request that would pass the budget is cut short.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from textarmor.attacks.attack import Attack
from textarmor.attacks.report import AttackResult
from textarmor.attacks.search import SearchOutcome
from textarmor.attacks.text import AttackedText

# Examples in flight. A search asks for a few texts per round (DeepWordBug: 4), so the model batch is about
# concurrency × that. More texts per call also means the length-sorted batches span fewer lengths: on 500
# SST-2 examples of DeepWordBug (a replay of its calls), padding falls from 42% of the tokens at 64 in flight
# to 21% at 256.
DEFAULT_CONCURRENCY = 256


@dataclass
class Example:
    index: int
    text: str
    label: int


@dataclass
class _InFlight:
    example: Example
    coroutine: object
    request: list[str]
    queries: int = 0


class AttackEngine:
    """Runs an :class:`Attack` over examples against a :class:`~textarmor.Classifier`.

    Parameters
    ----------
    attack: the composed attack (see :mod:`textarmor.attacks.recipes`).
    classifier: the victim; every query goes through its ``predict_proba`` (raw softmax, no temperature).
    query_budget: most texts scored per example (``None``: unlimited).
    concurrency: examples in flight at once; more means larger model batches with less padding, and more memory.
    seed: seeds each example's random choices from ``(seed, index)``, so results do not depend on batching
        or on resuming.
    """

    def __init__(self, attack: Attack, classifier, *, query_budget: int | None = None,
                 concurrency: int = DEFAULT_CONCURRENCY, seed: int = 0):
        self.attack, self.classifier = attack, classifier
        self.query_budget, self.concurrency, self.seed = query_budget, concurrency, seed
        self.model_calls = 0

    def run(self, examples: Iterable[Example],
            on_result: Callable[[AttackResult], None] | None = None) -> list[AttackResult]:
        """Attack every example; ``on_result`` is called as each one finishes (in finishing order)."""
        pending = iter(examples)
        flying: list[_InFlight] = []
        results: list[AttackResult] = []
        exhausted = False
        while flying or not exhausted:
            while not exhausted and len(flying) < self.concurrency:
                example = next(pending, None)
                if example is None:
                    exhausted = True
                    break
                rng = np.random.default_rng([self.seed, example.index])
                coroutine = self.attack.run(example.text, example.label, rng)
                flying.append(_InFlight(example, coroutine, next(coroutine)))
            if not flying:
                break
            asked = [self._within_budget(job) for job in flying]
            flat = [text for texts in asked for text in texts]
            probs = self.classifier.predict_proba(flat, calibrated=False) if flat else np.zeros((0, 0))
            self.model_calls += 1
            still: list[_InFlight] = []
            start = 0
            for job, texts in zip(flying, asked):
                rows, start = probs[start:start + len(texts)], start + len(texts)
                job.queries += len(texts)
                try:
                    job.request = job.coroutine.send(rows)
                    still.append(job)
                except StopIteration as stop:
                    result = self._result(job, *stop.value)
                    results.append(result)
                    if on_result is not None:
                        on_result(result)
            flying = still
        return results

    def _within_budget(self, job: _InFlight) -> list[str]:
        if self.query_budget is None:
            return job.request
        return job.request[:max(self.query_budget - job.queries, 0)]

    def _result(self, job: _InFlight, status: str, original_probs: np.ndarray,
                outcome: SearchOutcome) -> AttackResult:
        labels = self.classifier.labels
        example = job.example
        original = AttackedText.from_text(example.text)
        changed = outcome.text.changed_indices(original) if status != "skipped" else []
        return AttackResult(
            index=example.index, status=status, original_text=example.text, perturbed_text=outcome.text.text,
            ground_truth=labels[example.label], original_label=labels[int(np.argmax(original_probs))],
            perturbed_label=labels[int(np.argmax(outcome.probs))],
            original_score=float(original_probs[example.label]),
            perturbed_score=float(outcome.probs[example.label]), num_words=len(original),
            words_changed=[{"index": i, "original": original.words[i], "perturbed": outcome.text.words[i]}
                           for i in changed],
            queries=job.queries)
