"""The explanation methods. Each is a small :class:`Explainer` with one ``.attribute(texts, target)``.

| name | class | what a word's score is |
|---|---|---|
| ``attention`` | :class:`Attention` | attention from the first token (``[CLS]``/``<s>``), one layer, one head or all |
| ``rollout`` | :class:`AttentionRollout` | Abnar & Zuidema (2020) attention rollout from the first token |
| ``grad_input`` | :class:`GradientXInput` | gradient of the target score × word embedding, summed over dimensions |
| ``ig`` | :class:`IntegratedGradients` | Captum ``LayerIntegratedGradients`` on the word embeddings, pad baseline |
| ``occlusion`` | :class:`Occlusion` | drop of the target score when the word is left out (through the Classifier) |
| ``random`` | :class:`RandomBaseline` | uniform noise: the floor any method must beat on faithfulness |

Attention and rollout do not depend on the class; the others explain ``target`` (default: the predicted
class) and are signed: positive supports it.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from textarmor.classifier import Classifier
from textarmor.errors import ParameterError
from textarmor.explain.attribution import Attribution, Explainer, eager_attention, score_function, torch_model
from textarmor.explain.encoding import EncodedBatch, remove_words, token_scores_of, tokens_from_words

Target = int | str | Sequence[int | str] | None


def attention_rollout(attentions: Sequence, residual: bool = True):
    """Attention rollout of one text (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

    ``attentions``: one ``(heads, n, n)`` tensor per layer, over the text's real tokens only. Heads are
    averaged; with ``residual`` the identity is added for the skip connection (``0.5·A + 0.5·I``); each
    row is renormalised to sum to 1; layers are multiplied from the first up. Returns the ``(n, n)`` rollout,
    whose row ``i`` says how much of token ``i``'s top-layer representation flows from each input token.
    """
    import torch

    result = None
    for layer in attentions:
        a = layer.float().mean(dim=0)
        if residual:
            a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], device=a.device)
        a = a / a.sum(dim=-1, keepdim=True)
        result = a if result is None else a @ result
    return result


def _attentions(classifier: Classifier, batch: EncodedBatch) -> tuple:
    """Every layer's attention weights ``(batch, heads, length, length)``, from one eager forward pass."""
    import torch

    model = torch_model(classifier)
    with eager_attention(model), torch.inference_mode():
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_attentions=True)
    if not out.attentions:
        raise ParameterError(f"The model ({type(model).__name__}) returned no attention weights; attention "
                             "methods need an encoder that supports output_attentions.")
    return out.attentions


def _real_positions(batch: EncodedBatch, i: int):
    return batch.attention_mask[i].nonzero(as_tuple=True)[0]


class Attention(Explainer):
    """Raw attention paid by the first token to each token.

    Parameters
    ----------
    classifier:
        A :class:`~textarmor.Classifier` on a torch backend (``classifier.backend.model`` is used).
    layer:
        Layer index, negative counts from the top (default ``-1``, the last layer).
    head:
        Head index, or ``None`` (default) for the mean over heads.
    """

    name = "attention"

    def __init__(self, classifier: Classifier, layer: int = -1, head: int | None = None):
        super().__init__(classifier)
        config = torch_model(classifier).config
        layers, heads = config.num_hidden_layers, config.num_attention_heads
        if not -layers <= layer < layers:
            raise ParameterError(f"layer must be in [{-layers}, {layers - 1}] for this {layers}-layer model, "
                                 f"got {layer}.")
        if head is not None and not 0 <= head < heads:
            raise ParameterError(f"head must be in [0, {heads - 1}] (or None for the mean), got {head}.")
        self.layer = layer
        self.head = head

    def attribute_encoded(self, batch: EncodedBatch, targets: list[int]) -> Attribution:
        """Attention from the first token in ``layer`` (``targets`` only label the result)."""
        weights = _attentions(self.classifier, batch)[self.layer]
        weights = weights.mean(dim=1) if self.head is None else weights[:, self.head]
        scores = []
        for i in range(len(batch)):
            real = _real_positions(batch, i)
            scores.append(weights[i, real[0], real].float().cpu().numpy().astype(np.float64))
        return self._result(batch, targets, scores)


class AttentionRollout(Explainer):
    """Attention rollout from the first token (see :func:`attention_rollout`), residual-added."""

    name = "rollout"

    def attribute_encoded(self, batch: EncodedBatch, targets: list[int]) -> Attribution:
        """Rollout row of the first token over each text's real tokens (rows sum to 1)."""
        attentions = _attentions(self.classifier, batch)
        scores = []
        for i in range(len(batch)):
            real = _real_positions(batch, i)
            layers = [layer[i][:, real][:, :, real] for layer in attentions]
            scores.append(attention_rollout(layers)[0].cpu().numpy().astype(np.float64))
        return self._result(batch, targets, scores)


class GradientXInput(Explainer):
    """Gradient of the target score with respect to the word embeddings, times the embeddings.

    Through Captum's ``LayerGradientXActivation`` on ``model.get_input_embeddings()``; a token's score is
    the sum over embedding dimensions. One forward and one backward pass per batch. ``output`` is
    ``"logit"`` (default, the target's raw logit) or ``"probability"`` (the Classifier's calibrated score,
    whose gradient vanishes on confident predictions).
    """

    name = "grad_input"

    def __init__(self, classifier: Classifier, output: str = "logit"):
        super().__init__(classifier)
        self.forward = score_function(classifier, output)  # validates output
        self.output = output

    def attribute_encoded(self, batch: EncodedBatch, targets: list[int]) -> Attribution:
        import torch
        from captum.attr import LayerGradientXActivation

        model = torch_model(self.classifier)
        method = LayerGradientXActivation(self.forward, model.get_input_embeddings())
        attr = method.attribute(batch.input_ids, target=torch.tensor(targets, device=batch.input_ids.device),
                                additional_forward_args=(batch.attention_mask,))
        padded = attr.sum(dim=-1).detach().float().cpu().numpy()
        return self._result(batch, targets, token_scores_of(batch, padded))


class IntegratedGradients(Explainer):
    """Integrated gradients (Sundararajan et al. 2017) on the word-embedding layer, through Captum.

    The baseline replaces every non-special token by the padding token (``[CLS]``/``[SEP]``, ``<s>``/``</s>``
    stay). ``f`` is the target's logit (default) or, with ``output="probability"``, the calibrated
    probability the Classifier reports; each text's attributions add up to ``f(x) − f(baseline)`` up to
    the reported ``convergence_delta``. Logits are the default because they do not saturate: on a confident
    model the probability can jump within a few steps' width of the path, and the delta stays large even
    at 128 steps (seen on the tiny test model), while the logit path converges.
    """

    name = "ig"

    def __init__(self, classifier: Classifier, output: str = "logit"):
        super().__init__(classifier)
        self.forward = score_function(classifier, output)  # validates output
        self.output = output

    def attribute(self, texts: Sequence[str], target: Target = None, *, n_steps: int = 50,
                  internal_batch_size: int | None = None) -> Attribution:
        """Attribute ``texts``.

        Parameters
        ----------
        texts:
            One string or a sequence of strings.
        target:
            Class index or label name (one, or one per text); default the predicted class.
        n_steps:
            Integration steps (Gauss-Legendre, Captum's default). More steps, smaller delta.
        internal_batch_size:
            Rows (text × step) per forward/backward pass; bounds memory whatever ``n_steps``. Texts are
            attributed in groups of at most this many. Default: all steps of the batch at once.
        """
        batch = self._encode(texts)
        return self.attribute_encoded(batch, self._targets(batch, target), n_steps=n_steps,
                                      internal_batch_size=internal_batch_size)

    def attribute_encoded(self, batch: EncodedBatch, targets: list[int], *, n_steps: int = 50,
                          internal_batch_size: int | None = None) -> Attribution:
        import torch
        from captum.attr import LayerIntegratedGradients

        if not isinstance(n_steps, int) or n_steps < 1:
            raise ParameterError(f"n_steps must be a positive integer, got {n_steps!r}; 50 is a common choice.")
        if internal_batch_size is not None and internal_batch_size < 1:
            raise ParameterError(f"internal_batch_size must be a positive integer or None, got "
                                 f"{internal_batch_size!r}.")
        model = torch_model(self.classifier)
        method = LayerIntegratedGradients(self.forward, model.get_input_embeddings())
        ids, mask = batch.input_ids, batch.attention_mask
        special = torch.isin(ids, torch.tensor(self.classifier.tokenizer.all_special_ids, device=ids.device))
        baselines = torch.where(special, ids, torch.full_like(ids, self.classifier.tokenizer.pad_token_id or 0))
        group = len(batch) if internal_batch_size is None else min(len(batch), internal_batch_size)
        padded, deltas = [], []
        for start in range(0, len(batch), group):
            rows = slice(start, start + group)
            attr, delta = method.attribute(
                ids[rows], baselines=baselines[rows], target=torch.tensor(targets[rows], device=ids.device),
                additional_forward_args=(mask[rows],), n_steps=n_steps, internal_batch_size=internal_batch_size,
                return_convergence_delta=True)
            padded.append(attr.sum(dim=-1).detach().float().cpu().numpy())
            deltas.append(delta.detach().float().cpu().numpy())
        padded_all = np.concatenate(padded, axis=0)
        return self._result(batch, targets, token_scores_of(batch, padded_all),
                            delta=np.concatenate(deltas).astype(np.float64))


class Occlusion(Explainer):
    """Leave-one-word-out: the target score minus the score with that word cut from the text.

    Needs only scores, so it works on any Classifier backend (ONNX included); all variants of a batch go
    to the Classifier in one call, which batches them by its token budget.
    """

    name = "occlusion"
    needs_torch = False

    def attribute_encoded(self, batch: EncodedBatch, targets: list[int]) -> Attribution:
        variants = [remove_words(text, batch.spans[i], [j])
                    for i, text in enumerate(batch.texts) for j in range(len(batch.words[i]))]
        full = self.classifier.predict_proba(batch.texts)
        left_out = self.classifier.predict_proba(variants) if variants else np.empty((0, full.shape[1]))
        word_scores, cursor = [], 0
        for i, t in enumerate(targets):
            n = len(batch.words[i])
            word_scores.append((full[i, t] - left_out[cursor:cursor + n, t]).astype(np.float64))
            cursor += n
        token_scores = [tokens_from_words(w, batch.word_index[i]) for i, w in enumerate(word_scores)]
        return self._result(batch, targets, token_scores, word_scores)


class RandomBaseline(Explainer):
    """Uniform random word scores in [-1, 1], seeded by ``seed`` and the text (so batching changes nothing).

    Not an explanation: the reference any method must beat on faithfulness.
    """

    name = "random"
    needs_torch = False

    def __init__(self, classifier: Classifier, seed: int = 0):
        super().__init__(classifier)
        self.seed = seed

    def attribute_encoded(self, batch: EncodedBatch, targets: list[int]) -> Attribution:
        word_scores = [np.random.default_rng([self.seed, zlib.crc32(text.encode("utf-8"))])
                       .uniform(-1.0, 1.0, len(batch.words[i])) for i, text in enumerate(batch.texts)]
        token_scores = [tokens_from_words(w, batch.word_index[i]) for i, w in enumerate(word_scores)]
        return self._result(batch, targets, token_scores, word_scores)


METHODS: dict[str, type[Explainer]] = {cls.name: cls for cls in (
    IntegratedGradients, GradientXInput, AttentionRollout, Attention, Occlusion, RandomBaseline)}
DEFAULT_METHODS = ("ig", "grad_input", "rollout", "attention", "occlusion")
