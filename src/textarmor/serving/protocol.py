"""The wire format of a prediction request, shared by the server, ``handler.py`` and ``score.py``.

It is the Hugging Face Inference Endpoints schema for text classification::

    {"inputs": "a gripping, funny film", "parameters": {"top_k": 2, "threshold": 0.8}}
    -> [[{"label": "positive", "score": 0.98, "uncertain": false}, {"label": "negative", ...}]]

The answer is one list of ``top_k`` dicts per input, for a single string too: the shape of the Hugging Face
Inference API, which its clients read (``InferenceClient.text_classification`` and the JS client take the
first list). A transformers ``pipeline`` (and so the Hugging Face toolkit's default handler) answers a
single string with a flat list instead; docs/serving.md compares the two.
Everything here is cheap bookkeeping: scores come from :class:`textarmor.classifier.Classifier`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from textarmor.classifier import Classifier, apply_function
from textarmor.errors import ParameterError, TextArmorError
from textarmor.textcheck import first_invalid

EXAMPLE_TEXT = "a gripping, funny film"


class Parameters(BaseModel):
    """Options of the Hugging Face text-classification pipeline."""

    model_config = ConfigDict(extra="forbid")

    top_k: int | None = Field(1, ge=1, description="How many labels to return per input; null returns all.")
    function_to_apply: Literal["softmax", "sigmoid", "none"] | None = Field(
        None, description="Turns logits into scores; default from the model (softmax for single-label).")
    threshold: float | None = Field(None, ge=0.0, le=1.0, description=(
        "Scores under it are marked uncertain (default: the model directory's threshold, if any)."))
    truncation: bool = Field(True, description="Cut inputs to the model's maximum length; when false, "
                                               "a longer input is refused instead.")


class PredictRequest(BaseModel):
    """``inputs``: one text or a list of texts; ``parameters``: optional pipeline options."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"inputs": EXAMPLE_TEXT, "parameters": {"top_k": 2}},
                     {"inputs": [EXAMPLE_TEXT, "a tedious mess"]}]})

    inputs: str | list[str]
    parameters: Parameters = Field(default_factory=Parameters)

    @field_validator("inputs")
    @classmethod
    def _valid_text(cls, inputs: str | list[str]) -> str | list[str]:
        return check_inputs(inputs)

    @property
    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


class ExplainRequest(BaseModel):
    """Word attributions for a few texts. Gradient methods run ``n_steps`` model passes per text, so the
    server takes at most ``MAX_EXPLAIN_INPUTS`` texts per request and explains one request at a time."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"inputs": EXAMPLE_TEXT, "methods": ["ig", "occlusion"], "n_steps": 32}]})

    inputs: str | list[str]
    # Attention methods are left out: they switch the shared model to eager attention while they run.
    methods: list[Literal["ig", "grad_input", "occlusion"]] = Field(["ig", "occlusion"], min_length=1)
    n_steps: int = Field(32, ge=2, le=256, description="Integrated-gradients steps.")

    @field_validator("inputs")
    @classmethod
    def _valid_text(cls, inputs: str | list[str]) -> str | list[str]:
        return check_inputs(inputs)

    @property
    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


MAX_EXPLAIN_INPUTS = 8


def check_inputs(inputs: str | list[str]) -> str | list[str]:
    """The text rule of :mod:`textarmor.textcheck` for a request's ``inputs`` (422 naming the input, not its text)."""
    found = first_invalid([inputs] if isinstance(inputs, str) else inputs)
    if found is not None:
        item, position, description = found
        where = "" if isinstance(inputs, str) else f" {item}"
        raise ValueError(f"input{where} has {description} at character {position + 1}; send valid Unicode "
                         "text without NUL characters")
    return inputs


class LabelScore(BaseModel):
    label: str
    score: float
    uncertain: bool | None = Field(None, description="Present when a threshold applies: score < threshold.")


PredictResponse = list[list[LabelScore]]


class LimitError(TextArmorError, ValueError):
    """A request is larger than this server accepts (HTTP 413)."""


@dataclass(frozen=True)
class Limits:
    """Bounds on one request: texts per request and characters per text."""

    max_inputs: int = 64
    max_chars: int = 10_000

    def check(self, texts: list[str]) -> None:
        if len(texts) > self.max_inputs:
            raise LimitError(f"The request has {len(texts)} inputs; this server accepts at most {self.max_inputs} "
                             "per request (max_inputs). Split it into smaller requests.")
        for i, text in enumerate(texts):
            if len(text) > self.max_chars:
                raise LimitError(f"Input {i} has {len(text)} characters; the limit is {self.max_chars} per input "
                                 "(max_chars). Shorten or split it.")


def parse_request(data: Any) -> PredictRequest:
    """Validate a decoded JSON body; errors name the field and never echo the user's text."""
    if not isinstance(data, dict) or "inputs" not in data:
        raise ParameterError('The request body must be a JSON object with "inputs" (a string or a list of '
                             'strings), e.g. {"inputs": "a gripping, funny film"}.')
    try:
        return PredictRequest.model_validate(data)
    except ValidationError as exc:
        raise ParameterError(describe_validation_errors(exc.errors())) from None


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    """pydantic's errors as one line per field, without the offending input values."""
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {str(err.get('msg', 'invalid')).removeprefix('Value error, ')}")
    return "Invalid request: " + "; ".join(parts) + "."


def check_token_lengths(tokenizer, max_length: int, texts: list[str]) -> None:
    """With ``truncation: false``, refuse inputs longer than the model reads instead of cutting them."""
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    for i, n in enumerate(lengths):
        if n > max_length:
            raise LimitError(f"Input {i} has {n} tokens; the model reads at most {max_length} and "
                             "truncation is off. Shorten it or leave truncation on.")


def model_scores(clf: Classifier, texts: list[str]) -> np.ndarray:
    """Calibrated logits (temperature applied, no squashing) of a batch: what the server's batches compute,
    so that requests with different ``function_to_apply`` can share one forward pass."""
    return clf.predict_proba(texts, function_to_apply="none")


def format_response(clf: Classifier, request: PredictRequest, calibrated_logits: np.ndarray) -> list:
    params = request.parameters
    scores = apply_function(calibrated_logits, params.function_to_apply or clf.default_function)
    return clf.rank(scores, top_k=params.top_k, threshold=params.threshold)


def predict(clf: Classifier, data: Any, limits: Limits | None = None) -> list:
    """Answer one request without a server: what ``handler.py`` and ``score.py`` call."""
    request = parse_request(data)
    texts = request.texts
    (limits or Limits()).check(texts)
    if not request.parameters.truncation:
        check_token_lengths(clf.tokenizer, clf.max_length, texts)
    return format_response(clf, request, model_scores(clf, texts)) if texts else []
