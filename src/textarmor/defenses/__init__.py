"""Inference-time defences: make any model more robust at prediction time, without retraining it.

    >>> from textarmor import Classifier
    >>> clf = Classifier.from_pretrained("runs/sst2", defense="smooth", defense_options={"k": 16, "rate": 0.3})
    >>> clf(["a gripping, funny film"])            # a vote over 16 masked copies

Every defence is a :class:`Defense` in :data:`DEFENSES`; :func:`defend` wraps a
:class:`~textarmor.Classifier` in a :class:`DefendedClassifier`, which is itself a ``Classifier``, so
predict, evaluate, the robustness report, attacks and the server use the defended scores unchanged.
On the command line: ``--defense NAME --defense-option KEY=VALUE`` (repeatable).

- ``smooth``: vote over k masked (RanMASK) or synonym-substituted (SAFER) copies; certificates for masking.
- ``tta``: mean over typo-repaired, synonym-canonicalised and synonym-swapped copies, optionally only for
  uncertain inputs.
- ``mix``: mix a standard and a robust model, with a fixed weight or a small detector (adaptive smoothing).
- ``rewrite``: one pass on the input with typos repaired and rare synonyms canonicalised (the defence the
  ``robust`` training preset stores with its model, so that predict, evaluate, attack and serve use it).
"""
from __future__ import annotations

import inspect
from typing import Any

from textarmor.defenses.base import DefendedClassifier, Defense, text_rng
from textarmor.defenses.certify import certified_radius, clopper_pearson_lower, mask_delta, summarize_certificates
from textarmor.defenses.mix import Mix, MixDetector
from textarmor.defenses.rewrite import Rewrite, Rewriter
from textarmor.defenses.smooth import Certificate, Smooth
from textarmor.defenses.tta import TTA
from textarmor.errors import ParameterError

DEFENSES: dict[str, type[Defense]] = {"smooth": Smooth, "tta": TTA, "mix": Mix, "rewrite": Rewrite}


def make_defense(name: str, **options: Any) -> Defense:
    """The defence ``name`` built with ``options`` (each checked against the defence's parameters)."""
    if name not in DEFENSES:
        raise ParameterError(f"Unknown defence {name!r}; choose one of {sorted(DEFENSES)}.")
    cls = DEFENSES[name]
    known = _parameters(cls)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ParameterError(f"{name}: unknown option(s) {unknown}; its options are {sorted(known)}.")
    return cls(**options)


def defend(classifier, defense: str | Defense, *, cache_size: int = 0, **options: Any) -> DefendedClassifier:
    """``classifier`` (a :class:`~textarmor.Classifier`) behind ``defense`` (a name plus ``options``, or a
    :class:`Defense`)."""
    if isinstance(defense, Defense):
        if options:
            raise ParameterError("Pass options either to the Defense you built or with its name, not both.")
        built = defense
    else:
        built = make_defense(defense, **options)
    return DefendedClassifier(classifier, built, cache_size=cache_size)


def load_stored_defense(base, *, cache_size: int = 0) -> DefendedClassifier:
    """``base`` behind the defence its ``textarmor.json`` stores (``{"name", "options"}``). The stored
    temperature and conformal scores were fitted on the defended scores, so they move to the defended model and
    the base model scores raw."""
    from dataclasses import replace

    stored = dict(base.config.defense)
    name, options = stored.get("name"), stored.get("options") or {}
    if name not in DEFENSES or not isinstance(options, dict):
        raise ParameterError(f"textarmor.json stores the defence {stored!r}, which this textarmor cannot build "
                             f"(defences: {sorted(DEFENSES)}); load the model with defense='none' (--defense none) "
                             "or upgrade textarmor.")
    built = make_defense(name, **options)
    defended_config = base.config
    base.config = replace(base.config, temperature=1.0, conformal={}, defense={})
    return DefendedClassifier(base, built, cache_size=cache_size, config=defended_config)


def stored_defense(defense: Defense) -> dict[str, Any]:
    """What ``textarmor.json`` stores for ``defense``: its name and options."""
    return {"name": defense.name, "options": defense.options()}


def defense_metrics(defended: DefendedClassifier, texts, text_pairs, predicted, labels) -> dict[str, Any]:
    """What a defence adds to an evaluation of ``texts`` already scored by ``defended``: its name and options,
    forward passes per input and, for ``smooth`` with ``certify``, the certificate summary
    (:func:`~textarmor.defenses.certify.summarize_certificates`) for the ``predicted`` labels."""
    out: dict[str, Any] = {**defended.defense.describe(), "passes_per_input": round(defended.passes_per_input, 3)}
    if isinstance(defended.defense, Smooth) and defended.defense.certify:
        certificates = defended.defense.certify_texts(defended.base, list(texts),
                                                      list(text_pairs) if text_pairs is not None else None,
                                                      labels=predicted)
        out["certificates"] = {**summarize_certificates([c.radius for c in certificates], predicted, labels),
                               "alpha": defended.defense.alpha, "samples": defended.defense.certify_samples}
    return out


def parse_defense_options(name: str | None, items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["k=32", "mode=mask", "certify=true"]`` to typed options of defence ``name`` (types from the
    defaults of its parameters): what ``--defense-option`` gives the library."""
    if not items:
        return {}
    if name is None:
        raise ParameterError("--defense-option needs --defense NAME (the defence the options belong to).")
    if name not in DEFENSES:
        raise ParameterError(f"Unknown defence {name!r}; choose one of {sorted(DEFENSES)}.")
    params = _parameters(DEFENSES[name])
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ParameterError(f"--defense-option takes KEY=VALUE, e.g. --defense-option k=32; got {item!r}.")
        if key not in params:
            raise ParameterError(f"{name}: unknown option {key!r}; its options are {sorted(params)}.")
        options[key] = _convert(name, key, raw.strip(), params[key].default)
    return options


def _parameters(cls: type[Defense]) -> dict[str, inspect.Parameter]:
    return {k: p for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}


def _convert(name: str, key: str, raw: str, default: Any) -> Any:
    if raw.lower() in ("none", "null", "") and not isinstance(default, str):
        return None
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float) or default is None and _looks_numeric(raw):
            return float(raw)
    except ValueError:
        kind = "true or false" if isinstance(default, bool) else type(default).__name__
        raise ParameterError(f"{name}: option {key} takes {kind}; got {raw!r}.") from None
    return raw


def _looks_numeric(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True


__all__ = ["DEFENSES", "Certificate", "DefendedClassifier", "Defense", "Mix", "MixDetector", "Rewrite", "Rewriter",
           "Smooth", "TTA",
           "certified_radius", "clopper_pearson_lower", "defend", "defense_metrics", "make_defense", "mask_delta",
           "load_stored_defense", "parse_defense_options", "stored_defense", "summarize_certificates", "text_rng"]
