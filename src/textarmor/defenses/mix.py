"""``mix``: mix the probabilities of a standard and a robust model (adaptive smoothing, Bai et al. 2023,
"Improving the Accuracy-Robustness Trade-Off of Classifiers via Adaptive Smoothing", arXiv:2301.12554).

    p(x) = (1 - w(x)) * p_standard(x) + w(x) * p_robust(x)

``w`` is a fixed ``weight``, or ``weight`` only where the standard model is unsure (``entropy_threshold``: its
normalised entropy at least that, else 0, and the robust model runs only on those inputs), or comes from a
small detector of likely-adversarial inputs (a logistic
regression, :class:`MixDetector`, over features both models give for free: the standard model's and the
robust model's normalised entropy, their total-variation distance, and the fraction of words missing from a
vocabulary). Bai et al. train a neural mixing network on the models' hidden states; this detector is a
deliberately small stand-in that needs no gradients and fits in a second.

The robust model is a model directory (``robust``), optionally wrapped in another defence by name
(``robust_defense``, e.g. ``smooth``: mixing a model with its own smoothed self is adaptive smoothing's
cheapest form; ``robust_options`` sets that defence's options); it loads on first use, on the base model's
device.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from textarmor.attacks.text import split_words
from textarmor.classifier import Classifier
from textarmor.defenses.base import Defense
from textarmor.defenses.tta import normalised_entropy
from textarmor.errors import ParameterError

FEATURES = ("entropy_standard", "entropy_robust", "total_variation", "unknown_word_fraction")


def mix_features(texts: list[str], standard: np.ndarray, robust: np.ndarray, vocabulary) -> np.ndarray:
    """The detector's features, shape ``(n, 4)``, in :data:`FEATURES` order."""
    unknown = []
    for text in texts:
        words = [w.lower() for w in split_words(text)[0] if w.isalpha()]
        unknown.append(sum(w not in vocabulary for w in words) / max(len(words), 1))
    return np.column_stack([normalised_entropy(standard), normalised_entropy(robust),
                            0.5 * np.abs(standard - robust).sum(axis=1), np.asarray(unknown)])


class MixDetector:
    """Logistic regression from :func:`mix_features` to "this input is adversarial"; its probability is the
    mixing weight. ``fit`` learns ``coef_`` and ``intercept_``; ``save``/``load`` keep them as JSON."""

    def __init__(self, C: float = 1.0):
        self.C = C

    def fit(self, features: np.ndarray, adversarial: np.ndarray) -> MixDetector:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=self.C).fit(features, np.asarray(adversarial, dtype=int))
        self.coef_, self.intercept_ = model.coef_[0].astype(float), float(model.intercept_[0])
        return self

    def weight(self, features: np.ndarray) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise ParameterError("mix: the detector is not fitted; call fit(features, adversarial) or load a file.")
        return 1.0 / (1.0 + np.exp(-(features @ self.coef_ + self.intercept_)))

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps({"features": list(FEATURES), "coef": self.coef_.tolist(),
                                    "intercept": self.intercept_, "C": self.C}, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> MixDetector:
        try:
            raw = json.loads(Path(path).read_text())
            detector = cls(raw.get("C", 1.0))
            detector.coef_, detector.intercept_ = np.asarray(raw["coef"], dtype=float), float(raw["intercept"])
        except (OSError, ValueError, KeyError) as exc:
            raise ParameterError(f"mix: could not read a detector from '{path}' ({type(exc).__name__}); pass a "
                                 "file written by MixDetector.save.") from None
        if detector.coef_.shape != (len(FEATURES),):
            raise ParameterError(f"mix: the detector in '{path}' has {detector.coef_.size} weights; expected "
                                 f"{len(FEATURES)} ({', '.join(FEATURES)}).")
        return detector


def _robust_defense_options(robust_defense: str | None, robust_options: str | dict | None) -> dict:
    """``robust_options`` as typed options of ``robust_defense`` (checked now, so a typo fails before a run)."""
    if not robust_options:
        return {}
    if not robust_defense:
        raise ParameterError("mix: robust_options sets the options of robust_defense; name that defence too "
                             "(e.g. --defense-option robust_defense=tta).")
    from textarmor.defenses import parse_defense_options

    if isinstance(robust_options, dict):
        items = [f"{key}={value}" for key, value in robust_options.items()]
    else:
        items = [part for part in robust_options.split(";") if part.strip()]
    return parse_defense_options(robust_defense, items)


class Mix(Defense):
    """``(1 - w) * standard + w * robust`` with a fixed ``weight`` or a fitted ``detector``.

    Parameters
    ----------
    robust: the robust model: a model directory, or a :class:`~textarmor.Classifier` (Python only).
    weight: the robust model's share, in [0, 1]; ignored when ``detector`` is given.
    robust_defense: a defence name applied to the robust model (e.g. ``smooth``), with its default options
        unless ``robust_options`` sets them.
    robust_options: ``robust_defense``'s options, as ``KEY=VALUE`` pairs separated by ``;`` (what one
        ``--defense-option`` takes, e.g. ``augmentations=repair,canonical;canonical_rank=20000``) or a dict.
    detector: a :class:`MixDetector` or the path of one saved as JSON.
    entropy_threshold: mix (with ``weight``) only inputs whose standard prediction has normalised entropy at
        least this; the others keep the standard model's scores at one pass. Attacks that stop at the label
        flip leave their examples near the boundary, where the robust model then answers.
    vocab_size: vocabulary of the unknown-word feature (most frequent GloVe 6B words).
    """

    name = "mix"
    summary = "mix a standard and a robust model's probabilities, fixed weight or a small detector"
    paper = "Bai et al. 2023 (adaptive smoothing), arXiv:2301.12554"

    def __init__(self, robust: str | Classifier | None = None, weight: float = 0.5, robust_defense: str | None = None,
                 detector: str | MixDetector | None = None, entropy_threshold: float | None = None,
                 vocab_size: int = 50_000, robust_options: str | dict | None = None):
        if robust is None:
            raise ParameterError("mix: pass robust=MODEL_DIR, the robust model whose probabilities are mixed in "
                                 "(CLI: --defense-option robust=runs/robust).")
        if not 0.0 <= weight <= 1.0:
            raise ParameterError(f"mix: weight must be in [0, 1], got {weight!r}.")
        if entropy_threshold is not None and (detector is not None or not 0.0 <= entropy_threshold <= 1.0):
            raise ParameterError("mix: entropy_threshold is a normalised entropy in [0, 1] and replaces the "
                                 f"detector (pass one of them), got {entropy_threshold!r}.")
        self.robust, self.weight, self.robust_defense, self.vocab_size = robust, weight, robust_defense, vocab_size
        self.entropy_threshold = entropy_threshold
        self._robust_option_values = _robust_defense_options(robust_defense, robust_options)
        # kept as text, so reports and run settings show the options as they were given
        self.robust_options = ";".join(f"{k}={v}" for k, v in self._robust_option_values.items()) or None
        self.detector = MixDetector.load(detector) if isinstance(detector, (str, os.PathLike)) else detector
        self._robust_clf: Classifier | None = None  # the robust model behind robust_defense, built on first use
        self._vocabulary: frozenset[str] | None = None

    def robust_classifier(self, base: Classifier) -> Classifier:
        if self._robust_clf is None:
            if isinstance(self.robust, Classifier):
                clf = self.robust
            else:
                device = getattr(base.backend, "device", None)
                clf = Classifier.from_pretrained(self.robust, device=str(device) if device is not None else None,
                                                 max_tokens_per_batch=base.max_tokens_per_batch)
            if clf.labels != base.labels:
                raise ParameterError(f"mix: the robust model's labels {clf.labels} differ from the standard "
                                     f"model's {base.labels}; both must be trained on the same labels.")
            if self.robust_defense:
                from textarmor.defenses import defend

                clf = defend(clf, self.robust_defense, **self._robust_option_values)
            self._robust_clf = clf
        return self._robust_clf

    @property
    def vocabulary(self) -> frozenset[str]:
        if self._vocabulary is None:
            from textarmor.attacks.resources import frequent_words

            self._vocabulary = frozenset(frequent_words(self.vocab_size))
        return self._vocabulary

    def components(self, clf: Classifier, texts, text_pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(standard probabilities, robust probabilities, robust passes per input)``."""
        p_robust, passes = self._robust_scores(clf, texts, text_pairs)
        return clf.predict_proba(texts, text_pairs), p_robust, np.full(len(texts), passes)

    def _robust_scores(self, clf: Classifier, texts, text_pairs) -> tuple[np.ndarray, float]:
        """The robust model's probabilities and its forward passes per input (1 unless it is defended)."""
        robust = self.robust_classifier(clf)
        before = getattr(robust, "forward_passes", None)
        p_robust = robust.predict_proba(texts, text_pairs)
        return p_robust, (robust.forward_passes - before) / max(len(texts), 1) if before is not None else 1.0

    def fit_detector(self, clf: Classifier, clean_texts: list[str], adversarial_texts: list[str],
                     C: float = 1.0) -> MixDetector:
        """Fit (and use from now on) a detector on clean texts against adversarial ones, e.g. the perturbed
        texts of successful attacks on held-out data (never the data you report on)."""
        texts = list(clean_texts) + list(adversarial_texts)
        standard, robust, _ = self.components(clf, texts, None)
        target = np.r_[np.zeros(len(clean_texts)), np.ones(len(adversarial_texts))]
        self.detector = MixDetector(C).fit(mix_features(texts, standard, robust, self.vocabulary), target)
        return self.detector

    def scores(self, clf, texts, text_pairs):
        if self.entropy_threshold is not None:
            return self._gated_scores(clf, texts, text_pairs)
        standard, robust, robust_passes = self.components(clf, texts, text_pairs)
        if self.detector is not None:
            w = self.detector.weight(mix_features(texts, standard, robust, self.vocabulary))[:, None]
        else:
            w = self.weight
        return (1.0 - w) * standard + w * robust, 1 + robust_passes

    def _gated_scores(self, clf, texts, text_pairs):
        """The standard model's scores; ``weight`` of the robust model's mixed in where it is unsure."""
        standard = clf.predict_proba(texts, text_pairs).astype(np.float64)
        passes = np.ones(len(texts))
        unsure = np.flatnonzero(normalised_entropy(standard) >= self.entropy_threshold)
        if unsure.size:
            pairs = None if text_pairs is None else [text_pairs[i] for i in unsure]
            p_robust, robust_passes = self._robust_scores(clf, [texts[i] for i in unsure], pairs)
            standard[unsure] = (1.0 - self.weight) * standard[unsure] + self.weight * p_robust
            passes[unsure] += robust_passes
        return standard.astype(np.float32), passes
