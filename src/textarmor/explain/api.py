"""Explaining many texts at once, and original/adversarial pairs side by side.

:func:`explain` runs several methods over texts in batches (with a progress bar) and returns one
:class:`Explanation` per text; :func:`compare` does the same for (original, adversarial) pairs and marks the
words an attack changed; :func:`explain_texts` is the JSON-ready form for a ``POST /explain`` route.
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from textarmor.classifier import Classifier
from textarmor.errors import ParameterError
from textarmor.explain.attribution import Explainer, resolve_targets, torch_model
from textarmor.explain.encoding import encode
from textarmor.explain.methods import DEFAULT_METHODS, METHODS, Attention, IntegratedGradients, RandomBaseline


@dataclass
class Explanation:
    """One text explained by several methods.

    ``label``/``score`` are the Classifier's top class and its (calibrated) probability; ``target`` is the
    class the scores explain (the predicted one unless asked otherwise). ``word_scores[method]`` has one
    score per ``words`` item, ``token_scores[method]`` one per ``tokens`` item. ``spans`` are the words'
    character offsets in ``text`` (cut to what the model reads when ``truncated``).
    """

    text: str
    label: str
    score: float
    target: str
    target_index: int
    tokens: list[str]
    words: list[str]
    spans: list[tuple[int, int]]
    word_scores: dict[str, list[float]] = field(default_factory=dict)
    token_scores: dict[str, list[float]] = field(default_factory=dict)
    convergence_delta: float | None = None
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "truncated": self.truncated, "label": self.label, "score": self.score,
                "target": self.target, "tokens": self.tokens, "words": self.words,
                "spans": [list(s) for s in self.spans], "scores": self.word_scores,
                "token_scores": self.token_scores, "convergence_delta": self.convergence_delta}


def check_methods(methods: str | Sequence[str]) -> list[str]:
    """Validate method names (a comma-separated string or a sequence)."""
    names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise ParameterError(f"methods must be names from {sorted(METHODS)}, got {names or 'nothing'}; "
                             f"e.g. methods='{','.join(DEFAULT_METHODS)}'.")
    return list(dict.fromkeys(names))


def build_explainers(classifier: Classifier, methods: Sequence[str], *, layer: int = -1,
                     head: int | None = None, seed: int = 0, output: str = "logit") -> dict[str, Explainer]:
    """One explainer per method name, with the fixed settings (attention layer/head, random seed, what
    gradient methods differentiate)."""
    out: dict[str, Explainer] = {}
    for name in check_methods(methods):
        if name == "attention":
            out[name] = Attention(classifier, layer=layer, head=head)
        elif name == "random":
            out[name] = RandomBaseline(classifier, seed=seed)
        elif name in ("ig", "grad_input"):
            out[name] = METHODS[name](classifier, output=output)
        else:
            out[name] = METHODS[name](classifier)
    return out


def gradient_batch_size(classifier: Classifier, padded_length: int) -> int:
    """Rows per integrated-gradients pass: a quarter of the Classifier's token budget, since a backward
    pass keeps every layer's activations."""
    return max(1, classifier.max_tokens_per_batch // (4 * max(1, padded_length)))


def explain(classifier: Classifier, texts: Sequence[str], *, methods: str | Sequence[str] = DEFAULT_METHODS,
            target: int | str | Sequence[int | str] | None = None, batch_size: int = 32, n_steps: int = 50,
            internal_batch_size: int | None = None, layer: int = -1, head: int | None = None, seed: int = 0,
            output: str = "logit", progress: bool = False) -> list[Explanation]:
    """Explain ``texts`` with each method in ``methods``; one :class:`Explanation` per text, in input order.

    Parameters
    ----------
    classifier:
        The model. Labels and scores come from it; gradient and attention methods use its torch model
        (``classifier.backend.model``).
    methods:
        Names from :data:`~textarmor.explain.methods.METHODS` (``ig``, ``grad_input``, ``rollout``,
        ``attention``, ``occlusion``, ``random``), as a list or comma-separated.
    target:
        The class to explain: index or label, one or one per text; default the predicted class.
    batch_size:
        Texts per batch. Every method sees at most this many texts at once.
    n_steps, internal_batch_size:
        Integrated gradients' steps and rows (text × step) per pass; default rows: a quarter of the
        Classifier's token budget over the batch's padded length.
    layer, head:
        Raw attention's layer (default the last) and head (default the mean of all heads).
    output:
        What ``ig`` and ``grad_input`` differentiate: ``"logit"`` (default; does not saturate) or
        ``"probability"`` (the Classifier's calibrated score). Occlusion always uses the probability.
    progress:
        Show a progress bar over batches.
    """
    from rich.console import Console
    from rich.progress import track

    texts = [texts] if isinstance(texts, str) else list(texts)
    if batch_size < 1:
        raise ParameterError(f"batch_size must be a positive integer, got {batch_size}.")
    if target is not None and not isinstance(target, (int, str, np.integer)) and len(list(target)) != len(texts):
        raise ParameterError(f"target has {len(list(target))} items but there are {len(texts)} texts.")
    explainers = build_explainers(classifier, methods, layer=layer, head=head, seed=seed, output=output)
    starts = range(0, len(texts), batch_size)
    results: list[Explanation] = []
    # stderr, so that JSON on stdout stays clean
    for start in track(starts, description="Explaining", total=len(starts), disable=not progress,
                       transient=True, console=Console(stderr=True)):
        chunk = texts[start:start + batch_size]
        chunk_target = target if target is None or isinstance(target, (int, str, np.integer)) \
            else list(target)[start:start + batch_size]
        results.extend(_explain_batch(classifier, chunk, explainers, chunk_target, n_steps, internal_batch_size))
    return results


def _explain_batch(classifier: Classifier, texts: list[str], explainers: dict[str, Explainer], target,
                   n_steps: int, internal_batch_size: int | None) -> list[Explanation]:
    # One tokenisation (and one truncation warning) per batch, shared by every method.
    device = next((torch_model(classifier).device for e in explainers.values() if e.needs_torch), None)
    batch = encode(classifier.tokenizer, texts, max_length=classifier.max_length, device=device)
    probs = classifier.predict_proba(batch.texts)
    targets = probs.argmax(axis=-1).tolist() if target is None else resolve_targets(classifier, texts, target)
    attributions = {}
    for name, explainer in explainers.items():
        if isinstance(explainer, IntegratedGradients):
            rows = internal_batch_size or gradient_batch_size(classifier, batch.input_ids.shape[1])
            attributions[name] = explainer.attribute_encoded(batch, targets, n_steps=n_steps,
                                                             internal_batch_size=rows)
        else:
            attributions[name] = explainer.attribute_encoded(batch, targets)
    first = next(iter(attributions.values()))
    out = []
    for i in range(len(texts)):
        top = int(probs[i].argmax())
        ig = attributions.get("ig")
        out.append(Explanation(
            text=first.texts[i], label=classifier.labels[top], score=float(probs[i, top]),
            target=classifier.labels[targets[i]], target_index=targets[i], tokens=first.tokens[i],
            words=first.words[i], spans=first.spans[i],
            word_scores={m: [float(x) for x in a.word_scores[i]] for m, a in attributions.items()},
            token_scores={m: [float(x) for x in a.token_scores[i]] for m, a in attributions.items()},
            convergence_delta=None if ig is None else float(ig.convergence_delta[i]),
            truncated=first.truncated[i]))
    return out


def explain_texts(classifier: Classifier, texts: Sequence[str],
                  methods: str | Sequence[str] = ("ig", "occlusion"), **options: Any) -> list[dict[str, Any]]:
    """JSON-ready explanations, for a ``POST /explain`` route: ``[{text, label, score, target, tokens,
    words, spans, scores: {method: [word scores]}, token_scores, convergence_delta, truncated}]``.

    ``options`` go to :func:`explain` (``n_steps``, ``batch_size``, ``target``, ``layer``, ``head``). The
    server should bound the number and length of texts, since gradients cost ``n_steps`` passes per text.
    """
    return [e.to_dict() for e in explain(classifier, texts, methods=methods, **options)]


@dataclass
class Comparison:
    """An original text and its adversarial version, both explained for the original's predicted class.

    ``changes`` lists the edits (from a word alignment): for each, the original and adversarial words and,
    per method, the summed score of those words on each side. ``moved[method]`` is the adversarial side's
    sum minus the original side's: how much support for the original class the edit took away (negative)
    or added.
    """

    original: Explanation
    adversarial: Explanation
    changes: list[dict[str, Any]]
    adversarial_target_score: float  # the adversarial text's probability of the original's class

    @property
    def label_flipped(self) -> bool:
        return self.original.label != self.adversarial.label

    def to_dict(self) -> dict[str, Any]:
        return {"original": self.original.to_dict(), "adversarial": self.adversarial.to_dict(),
                "label_flipped": self.label_flipped,
                "original_label_score": {"original": self.original.score,
                                         "adversarial": self.adversarial_target_score},
                "changes": self.changes}


def word_changes(original: Explanation, adversarial: Explanation) -> list[dict[str, Any]]:
    """Align the two word lists (case-insensitive) and describe every replaced, inserted or deleted run."""
    matcher = difflib.SequenceMatcher(a=[w.lower() for w in original.words],
                                      b=[w.lower() for w in adversarial.words], autojunk=False)
    changes = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            continue
        row: dict[str, Any] = {"op": op, "original_index": list(range(a0, a1)),
                               "adversarial_index": list(range(b0, b1)),
                               "original": original.words[a0:a1], "adversarial": adversarial.words[b0:b1],
                               "scores": {}, "moved": {}}
        for method in original.word_scores:
            before = float(sum(original.word_scores[method][a0:a1]))
            after = float(sum(adversarial.word_scores[method][b0:b1]))
            row["scores"][method] = {"original": before, "adversarial": after}
            row["moved"][method] = after - before
        changes.append(row)
    return changes


def compare(classifier: Classifier, pairs: Sequence[tuple[str, str]], **options: Any) -> list[Comparison]:
    """Explain each (original, adversarial) pair, both for the original's predicted class.

    ``options`` go to :func:`explain` (methods, n_steps, batch_size, ...), except ``target``.
    """
    pairs = list(pairs)
    if not pairs:
        raise ParameterError("pairs is empty; pass (original, adversarial) text pairs.")
    if "target" in options:
        raise ParameterError("compare explains both texts for the original's predicted class; drop target.")
    originals = explain(classifier, [p[0] for p in pairs], **options)
    adversarials = explain(classifier, [p[1] for p in pairs], target=[e.target_index for e in originals],
                           **options)
    adv_probs = classifier.predict_proba([e.text for e in adversarials])
    out = []
    for i, (o, a) in enumerate(zip(originals, adversarials)):
        out.append(Comparison(original=o, adversarial=a, changes=word_changes(o, a),
                              adversarial_target_score=float(adv_probs[i, o.target_index])))
    return out
