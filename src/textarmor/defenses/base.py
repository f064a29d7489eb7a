"""The defence interface and :class:`DefendedClassifier`, which puts a defence on the one query path.

A defence turns a base :class:`~textarmor.Classifier` into a new score function: it makes copies of each
input (masked, augmented, or scored by a second model), asks the base classifier for all of them in ONE call
(so the copies of many inputs share token-budget batches), and combines the rows into one probability
vector per input. :class:`DefendedClassifier` is a ``Classifier`` whose raw scores are those vectors, so
everything that takes a ``Classifier`` (predict, evaluate, the robustness report, the attack engine, the
server) uses the defended model unchanged, and an attack sees exactly what a user gets.
"""
from __future__ import annotations

import hashlib
import inspect
from dataclasses import replace
from typing import Any

import numpy as np

from textarmor.classifier import Classifier
from textarmor.errors import ParameterError

# Probabilities become logits as log(p); a floor keeps a zero vote share finite.
_LOG_FLOOR = 1e-7


def text_rng(seed: int, text: str, text_pair: str | None = None, stream: int = 0) -> np.random.Generator:
    """A generator that depends only on ``(seed, text, text_pair, stream)``: the same text gets the same copies
    in any batch and any process (Python's ``hash`` is salted per process, so a digest is used instead)."""
    digest = hashlib.blake2b(f"{text}\x00{text_pair or ''}".encode(), digest_size=8).digest()
    return np.random.default_rng([seed, stream, int.from_bytes(digest, "little")])


class Defense:
    """An inference-time defence. Subclasses set ``name``, ``summary``, ``paper`` and implement :meth:`scores`;
    ``__init__`` only stores options (validated), so a defence is cheap to build and to describe."""

    name = "defense"
    summary = ""
    paper = ""

    def scores(self, clf: Classifier, texts: list[str], text_pairs: list[str] | None) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities (n, num_labels), forward passes per input (n,))`` of the defended model, asking
        ``clf`` (the base classifier) for every copy in as few calls as possible."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The constructor's arguments as set (for reports and run settings)."""
        return {name: _plain(getattr(self, name)) for name in inspect.signature(type(self).__init__).parameters
                if name != "self" and hasattr(self, name)}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "options": self.options(), "paper": self.paper}


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(getattr(value, "name", None) or type(value).__name__)


class DefendedClassifier(Classifier):
    """A :class:`~textarmor.Classifier` whose scores are ``defense``'s over ``base``.

    ``logits`` are ``log`` of the defended probabilities, so ``predict_proba`` (softmax) returns them as they
    are while the temperature is 1. The defended model has its own ``config``: labels, threshold and abstain
    label come from the base model's; the temperature starts at 1 and the conformal scores empty (unless
    ``config`` is given, as for a defence stored with the model), because the base model's were fitted to other
    scores (fit them anew on the defended scores, e.g. with
    :func:`textarmor.evaluation.calibration.fit_temperature` on ``defended.logits(...)``). Copies are scored
    by ``base`` with its own temperature. ``cache_size`` caches defended scores (attacks repeat texts).

    Attributes: ``base``, ``defense``, ``num_queries`` (inputs the defence scored, cache hits excluded) and
    ``forward_passes`` (base-model inputs those cost, before the base model's own cache).
    """

    def __init__(self, base: Classifier, defense: Defense, *, cache_size: int = 0, config=None):
        if base.default_function != "softmax":
            raise ParameterError("Defences combine class probabilities of single-label models; this model is "
                                 "multi-label (sigmoid scores). Use it without --defense.")
        self.base, self.defense = base, defense
        self.source = base.source
        self.tokenizer, self.model_config, self.labels = base.tokenizer, base.model_config, base.labels
        # A defence stored with the model was calibrated as a whole: ``config`` then carries its temperature.
        self.config = config if config is not None else replace(base.config, temperature=1.0, conformal={},
                                                                robustness={})
        self.backend, self.max_length = base.backend, base.max_length
        self.max_tokens_per_batch, self.max_batch_size = base.max_tokens_per_batch, base.max_batch_size
        self.tokenize_chunk, self.tokenize_chunk_chars = base.tokenize_chunk, base.tokenize_chunk_chars
        self.tokenize_workers = base.tokenize_workers
        self.tokenize_processes = base.tokenize_processes
        self._pool, self._pool_broken = None, False
        self.cache_size = cache_size
        self._cache = type(base._cache)()
        self.num_queries = 0
        self.forward_passes = 0.0

    def close(self) -> None:
        """Stop the base model's tokeniser processes, if any (see :meth:`Classifier.close`)."""
        self.base.close()

    @property
    def passes_per_input(self) -> float:
        """Base-model inputs per defended input so far (the defence's cost factor)."""
        return self.forward_passes / self.num_queries if self.num_queries else 0.0

    @property
    def default_function(self) -> str:
        return "softmax"

    def _forward(self, texts: list[str], text_pairs: list[str] | None) -> np.ndarray:
        self.num_queries += len(texts)
        probs, passes = self.defense.scores(self.base, texts, text_pairs)
        self.forward_passes += float(np.sum(passes))
        return np.log(np.maximum(probs, _LOG_FLOOR)).astype(np.float32)

    def __repr__(self) -> str:
        return f"DefendedClassifier(defense={self.defense.name}, options={self.defense.options()})"
