"""``Attack``: a goal function, a transformation, constraints and a search method, composed."""
from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from textarmor.attacks.constraints import PostConstraint, PreConstraint
from textarmor.attacks.search import SearchMethod, SearchOutcome
from textarmor.attacks.text import AttackedText
from textarmor.attacks.transformations import Transformation


@dataclass
class Attack:
    """What a recipe builds. ``run`` is the per-example coroutine the engine drives."""

    goal: object
    transformation: Transformation
    constraints: list[PreConstraint | PostConstraint] = field(default_factory=list)
    search: SearchMethod | None = None
    name: str = "attack"

    @property
    def pre_constraints(self) -> list[PreConstraint]:
        return [c for c in self.constraints if isinstance(c, PreConstraint)]

    @property
    def post_constraints(self) -> list[PostConstraint]:
        return [c for c in self.constraints if isinstance(c, PostConstraint)]

    def modifiable(self, current: AttackedText, original: AttackedText) -> set[int]:
        allowed = set(range(len(current)))
        for constraint in self.pre_constraints:
            allowed &= constraint.allowed(current, original)
        return allowed

    def candidates(self, current: AttackedText, original: AttackedText, indices: list[int],
                   rng: np.random.Generator) -> list[AttackedText]:
        """Every transformed text at ``indices`` that all constraints accept."""
        return [text for texts in self.candidates_by_index(current, original, indices, rng) for text in texts]

    def candidates_by_index(self, current: AttackedText, original: AttackedText, indices: list[int],
                            rng: np.random.Generator) -> list[list[AttackedText]]:
        """The accepted candidates of each index in ``indices``, in that order (an empty list where none).
        The pre-constraints run once for all indices: searches that rank every word ask for all at once."""
        allowed = self.modifiable(current, original)
        out: list[list[AttackedText]] = []
        for index in indices:
            if index not in allowed:
                out.append([])
                continue
            texts = [current.replace(index, word) for word in self.transformation(current, index, rng)
                     if word != current.words[index]]
            for constraint in self.post_constraints:
                if not texts:
                    break
                texts = [t for t, ok in zip(texts, constraint.check(texts, current, original, index)) if ok]
            out.append(texts)
        return out

    def run(self, text: str, true_label: int, rng: np.random.Generator
            ) -> Generator[list[str], np.ndarray, tuple[str, np.ndarray, SearchOutcome]]:
        """Score the original; skip it when the goal already holds, else search.
        Returns ``(status, original_probs, outcome)``."""
        original = AttackedText.from_text(text)
        probs = yield [text]
        if self.goal.succeeded(probs, true_label)[0]:
            return "skipped", probs[0], SearchOutcome(original, probs[0], False)
        outcome = yield from self.search.search(self, original, probs[0], true_label, rng)
        return ("successful" if outcome.succeeded else "failed"), probs[0], outcome
