"""The result type every explainer returns, and what explainers share.

Explainers follow Captum's shape: what is fixed (the classifier, a layer, a head, a seed) goes to the
constructor; what varies (the texts, the class to explain, step counts) goes to ``.attribute(...)``, which
always returns one :class:`Attribution` and never changes the explainer.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from textarmor.classifier import _OFFSET_POSITION_MODELS, Classifier, TorchBackend
from textarmor.errors import ParameterError
from textarmor.explain.encoding import EncodedBatch, encode, words_from_tokens


@dataclass
class Attribution:
    """Scores of one method for a batch of texts; every list has one item per text.

    ``token_scores[i]`` has one score per real token of ``tokens[i]`` (special tokens included, scored 0
    by methods that only see words); ``word_scores[i]`` one per ``words[i]``, the sum over its tokens;
    ``spans[i]`` the words' character offsets in ``texts[i]``.
    Positive scores speak for ``targets[i]`` (a class index), negative ones against it.
    ``convergence_delta[i]`` is integrated gradients' completeness error, sum of attributions minus
    (f(x) − f(baseline)); ``None`` for methods without one.
    """

    method: str
    texts: list[str]
    tokens: list[list[str]]
    token_scores: list[np.ndarray]
    words: list[list[str]]
    spans: list[list[tuple[int, int]]]
    word_scores: list[np.ndarray]
    targets: list[int]
    truncated: list[bool]
    convergence_delta: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)


class Explainer:
    """Base class: holds the classifier and turns token or word scores into an :class:`Attribution`."""

    name = "base"
    needs_torch = True

    def __init__(self, classifier: Classifier):
        if not isinstance(classifier, Classifier):
            raise ParameterError(f"{type(self).__name__} needs a textarmor Classifier, got "
                                 f"{type(classifier).__name__}. Load one with Classifier.from_pretrained(dir).")
        if self.needs_torch:
            torch_model(classifier)  # fail at construction, not half-way through a batch
        self.classifier = classifier

    def attribute(self, texts: Sequence[str], target: int | str | Sequence[int | str] | None = None) -> Attribution:
        """Attribute ``texts`` (one string or a sequence) for ``target``: a class index or label name, one
        for all texts or one per text; default the predicted class."""
        batch = self._encode(texts)
        return self.attribute_encoded(batch, self._targets(batch, target))

    def attribute_encoded(self, batch: EncodedBatch, targets: list[int]) -> Attribution:
        """Attribute an already encoded batch (:func:`~textarmor.explain.encoding.encode`), so that several
        methods share one tokenisation."""
        raise NotImplementedError

    def _encode(self, texts: Sequence[str]) -> EncodedBatch:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ParameterError("texts is empty; pass at least one text to explain.")
        device = torch_model(self.classifier).device if self.needs_torch else None
        return encode(self.classifier.tokenizer, texts, max_length=self.classifier.max_length, device=device)

    def _targets(self, batch: EncodedBatch, target: int | str | Sequence[int | str] | None) -> list[int]:
        return resolve_targets(self.classifier, batch.texts, target)

    def _result(self, batch: EncodedBatch, targets: list[int], token_scores: list[np.ndarray],
                word_scores: list[np.ndarray] | None = None, delta: np.ndarray | None = None) -> Attribution:
        if word_scores is None:
            word_scores = [words_from_tokens(s, batch.word_index[i], len(batch.words[i]))
                           for i, s in enumerate(token_scores)]
        return Attribution(method=self.name, texts=batch.texts, tokens=batch.tokens, token_scores=token_scores,
                           words=batch.words, spans=batch.spans, word_scores=word_scores, targets=targets,
                           truncated=batch.truncated, convergence_delta=delta)


def resolve_targets(classifier: Classifier, texts: list[str],
                    target: int | str | Sequence[int | str] | None) -> list[int]:
    """Class indices to explain: the predicted class by default, else an index or label name per text."""
    if target is None:
        return classifier.predict_proba(texts).argmax(axis=-1).tolist()
    values = [target] * len(texts) if isinstance(target, (int, str, np.integer)) else list(target)
    if len(values) != len(texts):
        raise ParameterError(f"target has {len(values)} items but there are {len(texts)} texts; "
                             "pass one target per text, one for all, or None for the predicted class.")
    out = []
    for value in values:
        if isinstance(value, str):
            if value not in classifier.labels:
                raise ParameterError(f"target label {value!r} is not one of the model's labels "
                                     f"{classifier.labels}.")
            out.append(classifier.labels.index(value))
        elif 0 <= int(value) < len(classifier.labels):
            out.append(int(value))
        else:
            raise ParameterError(f"target index {value} is out of range for {len(classifier.labels)} labels.")
    return out


def torch_model(classifier: Classifier):
    """The ``torch.nn.Module`` behind a Classifier, from ``classifier.backend.model`` (a ``TorchBackend``).

    Gradient and attention methods need the network itself; predicted labels and every removal-based
    score still go through the Classifier, the one query path.
    """
    backend = classifier.backend
    if not isinstance(backend, TorchBackend) and getattr(backend, "model", None) is None:
        raise ParameterError(f"Gradient and attention explanations need a torch model, but this Classifier "
                             f"runs on a '{getattr(backend, 'name', type(backend).__name__)}' backend. Load it "
                             "with Classifier.from_pretrained(dir) (torch), or use method 'occlusion', which "
                             "only needs scores.")
    return backend.model


@contextmanager
def eager_attention(model) -> Iterator[None]:
    """Run ``model`` with eager attention inside the block, then restore its own implementation.

    SDPA and flash attention return no attention weights. Switching only for the attention methods keeps
    every other forward pass (gradients, the Classifier's queries) on the fast kernel.
    """
    current = getattr(model.config, "_attn_implementation", "eager")
    if current == "eager":
        yield
        return
    if not hasattr(model, "set_attn_implementation"):
        raise ParameterError(f"This model uses '{current}' attention, which returns no attention weights, and "
                             "this transformers version cannot switch it. Load the model with "
                             "attn_implementation='eager' for the attention methods.")
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(current)


OUTPUTS = ("probability", "logit")


def score_function(classifier: Classifier, output: str = "logit"):
    """``f(input_ids, attention_mask) -> (batch, num_labels)``: what gradient methods differentiate.

    ``output="logit"`` (default): raw logits, which do not saturate, so integrated gradients converge in
    few steps even on very confident models. ``output="probability"``: the calibrated scores
    ``Classifier.predict_proba`` gives (temperature, then softmax/sigmoid), so attributions add up to the
    change of the very score the Classifier reports. Position ids are fixed from the attention mask for
    models that otherwise derive them from the token ids (RoBERTa), so that a padding-token baseline
    moves only the word embeddings, not the positions.
    """
    import torch

    if output not in OUTPUTS:
        raise ParameterError(f"output must be one of {OUTPUTS}, got {output!r}.")
    model = torch_model(classifier)
    temperature = classifier.temperature if output == "probability" else 1.0
    function = classifier.default_function if output == "probability" else "none"
    offset_positions = getattr(model.config, "model_type", "") in _OFFSET_POSITION_MODELS
    padding_idx = getattr(model.config, "pad_token_id", 1) or 0

    def forward(input_ids, attention_mask):
        kwargs = {}
        if offset_positions:
            kwargs["position_ids"] = torch.cumsum(attention_mask, dim=1) * attention_mask + padding_idx
        logits = model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits.float() / temperature
        if function == "sigmoid":
            return torch.sigmoid(logits)
        if function == "none":
            return logits
        return torch.softmax(logits, dim=-1)

    return forward
