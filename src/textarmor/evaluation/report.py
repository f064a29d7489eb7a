"""The multi-perspective robustness report (after RoAST's unified evaluation, plus natural noise).

One call measures a model from six angles on data the user names, and writes ``report.json``,
``report.md`` (a summary the model card embeds) and a self-contained ``report.html`` with plots:

- in-distribution accuracy, macro-F1 and ECE;
- distribution shift: the same metrics on other labelled sets;
- adversarial robustness: accuracy under each attack recipe, attacked twice when the model is calibrated,
  with raw and with temperature-scaled scores: a badly calibrated model can look robust only because its
  saturated scores give the attack no signal (Raina et al., "the illusion of robustness");
- calibration: ECE before and after temperature scaling (fitted on calibration data, or on half of the
  in-distribution set and measured on the other half);
- anomaly detection: AUROC and FPR at 95% TPR of max-softmax and energy scores, in-distribution against
  each out-of-distribution set;
- natural noise: accuracy under random keyboard typos at several rates;
- with a defence (``ReportSpec.defense``), a defence column beside the undefended model: clean accuracy,
  accuracy under each attack (the attack queries the defended model), forward passes per input, and for
  ``smooth`` with ``certify`` the fraction of inputs certified at radius 1, 2 and 3 words.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import softmax

from textarmor.classifier import Classifier
from textarmor.data import LabelMap, load_dataset
from textarmor.errors import OutputExistsError, ParameterError
from textarmor.evaluation.calibration import fit_temperature
from textarmor.evaluation.metrics import classification_metrics, expected_calibration_error
from textarmor.evaluation.ood import energy_score, max_softmax_score, ood_metrics
from textarmor.model_dir import TextArmorConfig


@dataclass
class ReportSpec:
    """What to measure. Every set is a data file (or ``builtin:`` name) with ``text`` and ``label``
    (``ood`` sets need only ``text``)."""

    data: str
    shift: dict[str, str] = field(default_factory=dict)
    ood: dict[str, str] = field(default_factory=dict)
    attacks: list[str] = field(default_factory=lambda: ["deepwordbug", "pwws"])
    attack_n: int | None = 100
    query_budget: int | None = None
    noise_rates: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2])
    calibration_data: str | None = None
    seed: int = 0
    defense: str | None = None
    defense_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides) -> ReportSpec:
        import yaml

        raw = yaml.safe_load(Path(path).read_text()) or {}
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise ParameterError(f"{path}: unknown report setting(s) {unknown}; "
                                 f"known: {sorted(cls.__dataclass_fields__)}.")
        return cls(**{**raw, **{k: v for k, v in overrides.items() if v is not None}})


def _labelled(clf: Classifier, source: str) -> tuple[list[str], np.ndarray]:
    dataset, _ = load_dataset(source)
    return list(dataset["text"]), np.asarray(LabelMap(clf.labels).encode(dataset["label"], source=f"'{source}'"))


def _calibration(clf: Classifier, spec: ReportSpec, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Temperature and ECE before/after, measured on data the temperature was not fitted on."""
    rng = np.random.default_rng(spec.seed)
    if spec.calibration_data:
        texts, cal_labels = _labelled(clf, spec.calibration_data)
        temperature = fit_temperature(clf.logits(texts), cal_labels)
        eval_logits, eval_labels, fitted_on = logits, labels, spec.calibration_data
    else:
        order = rng.permutation(len(labels))
        fit, held = order[: len(order) // 2], order[len(order) // 2:]
        temperature = fit_temperature(logits[fit], labels[fit])
        eval_logits, eval_labels, fitted_on = logits[held], labels[held], "half of the in-distribution set"
    return {"temperature": temperature, "fitted_on": fitted_on, "n": int(len(eval_labels)),
            "ece_before": expected_calibration_error(softmax(eval_logits, axis=1), eval_labels),
            "ece_after": expected_calibration_error(softmax(eval_logits / temperature, axis=1), eval_labels),
            "reliability": {"before": _reliability(softmax(eval_logits, axis=1), eval_labels),
                            "after": _reliability(softmax(eval_logits / temperature, axis=1), eval_labels)}}


def _reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    bins = np.clip((confidence * n_bins).astype(int), 0, n_bins - 1)
    return [{"bin": b, "confidence": float(confidence[bins == b].mean()), "accuracy": float(correct[bins == b].mean()),
             "count": int((bins == b).sum())} for b in range(n_bins) if (bins == b).any()]


def _attack_rows(clf: Classifier, spec: ReportSpec, texts: list[str], labels: np.ndarray, recipe: str,
                 temperature: float, n: int | None = None, **options) -> dict[str, Any]:
    from textarmor.attacks import attack

    saved = clf.config.temperature
    clf.config.temperature = temperature  # the scores the attack sees
    try:
        rows = [{"text": t, "label": clf.labels[y]} for t, y in zip(texts, labels)]
        report = attack(clf, rows, recipe=recipe, n=n or min(spec.attack_n or len(rows), len(rows)),
                        query_budget=spec.query_budget, seed=spec.seed, **options)
    finally:
        clf.config.temperature = saved
    s = report.summary()
    return {k: s[k] for k in ("total", "original_accuracy", "accuracy_under_attack", "attack_success_rate",
                              "avg_perturbed_word_pct", "avg_queries", "wall_seconds")}


def _defense_column(clf: Classifier, spec: ReportSpec, texts: list[str], labels: np.ndarray,
                    report: dict[str, Any], log) -> dict[str, Any]:
    """The undefended and the defended model side by side; every attack queries the defended model."""
    from textarmor.defenses import defend, defense_metrics

    defended = defend(clf, spec.defense, cache_size=200_000, **spec.defense_options)
    log(f"defence {spec.defense}: clean accuracy on {len(texts)} texts")
    predicted = defended.predict_proba(texts, calibrated=False).argmax(axis=1)
    column: dict[str, Any] = {"clean_accuracy": float((predicted == labels).mean()), "attacks": {}}
    column.update(defense_metrics(defended, texts, None, predicted, labels))
    for recipe in spec.attacks:
        log(f"defence {spec.defense}: attack {recipe}")
        before = defended.forward_passes
        row = _attack_rows(defended, spec, texts, labels, recipe, 1.0)
        row["forward_passes_per_example"] = round((defended.forward_passes - before) / max(row["total"], 1), 1)
        column["attacks"][recipe] = row
    undefended = {"clean_accuracy": report["in_distribution"]["accuracy"], "passes_per_input": 1.0,
                  "attacks": {r: e["raw"] for r, e in report["adversarial"].items()}}
    return {"name": spec.defense, "options": column["options"], "columns": {"none": undefended, spec.defense: column}}


def robustness_report(model: str | os.PathLike | Classifier, spec: ReportSpec, out_dir: str | os.PathLike, *,
                      overwrite: bool = False, store_in_model: bool = True, log=print) -> dict[str, Any]:
    """Measure ``model`` as ``spec`` says; write report.json/.md/.html to ``out_dir``; return the report."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"Report folder '{out}' is not empty. Pass --overwrite, or choose another folder.")
    clf = model if isinstance(model, Classifier) else Classifier.from_pretrained(model, cache_size=200_000)
    texts, labels = _labelled(clf, spec.data)
    logits = clf.logits(texts)
    report: dict[str, Any] = {"spec": asdict(spec), "labels": clf.labels}
    log(f"in-distribution: {len(texts)} texts")
    report["in_distribution"] = _headline(classification_metrics(labels, softmax(logits, axis=1), clf.labels))
    report["calibration"] = calibration = _calibration(clf, spec, logits, labels)
    if (clf.config.conformal or {}).get("scores"):
        # Coverage of the model's stored conformal sets on this data (not the data they were calibrated on,
        # as long as --data differs from what `textarmor calibrate` saw).
        from textarmor.evaluation.conformal import METHODS, empirical_coverage

        stored = softmax(logits / clf.temperature, axis=1)
        report["conformal"] = {m: {str(c): empirical_coverage(stored, labels, clf.config.conformal, c, m)
                                   for c in (0.9, 0.95)} for m in METHODS}
    temperature = calibration["temperature"]
    report["shift"] = {}
    for name, source in spec.shift.items():
        log(f"distribution shift: {name}")
        shift_texts, shift_labels = _labelled(clf, source)
        probs = softmax(clf.logits(shift_texts), axis=1)
        report["shift"][name] = _headline(classification_metrics(shift_labels, probs, clf.labels))
    report["ood"] = {}
    for name, source in spec.ood.items():
        log(f"anomaly detection: {name}")
        ood_logits = clf.logits(list(load_dataset(source, label_column=None)[0]["text"]))
        report["ood"][name] = {
            "msp": ood_metrics(max_softmax_score(logits, temperature), max_softmax_score(ood_logits, temperature)),
            "energy": ood_metrics(energy_score(logits, temperature), energy_score(ood_logits, temperature)),
            "roc": {kind: _roc(fn(logits, temperature), fn(ood_logits, temperature))
                    for kind, fn in (("msp", max_softmax_score), ("energy", energy_score))}}
    report["adversarial"] = {}
    for recipe in spec.attacks:
        log(f"attack: {recipe} on {min(spec.attack_n or len(texts), len(texts))} texts")
        entry = {"raw": _attack_rows(clf, spec, texts, labels, recipe, 1.0)}
        if abs(temperature - 1.0) > 0.05:
            entry["calibrated"] = _attack_rows(clf, spec, texts, labels, recipe, temperature)
        report["adversarial"][recipe] = entry
    if spec.defense:
        report["defense"] = _defense_column(clf, spec, texts, labels, report, log)
    report["noise"] = []
    for rate in spec.noise_rates:
        log(f"natural noise: typos at rate {rate} on all {len(texts)} texts")
        result = _attack_rows(clf, spec, texts, labels, "typos", 1.0, n=len(texts), max_modify_rate=None,
                              recipe_options={"rate": rate})
        report["noise"].append({"rate": rate, "accuracy": result["accuracy_under_attack"]})
    _write(report, out)
    if store_in_model and not isinstance(model, Classifier) and Path(str(model)).is_dir():
        config = TextArmorConfig.load(model)
        if config is not None:
            config.robustness = {**summary_numbers(report), "summary_markdown": to_markdown(report)}
            config.save(model)
    return report


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in ("n", "accuracy", "macro_f1", "ece")}


def _roc(in_scores: np.ndarray, out_scores: np.ndarray, points: int = 50) -> dict[str, list[float]]:
    from sklearn.metrics import roc_curve

    y = np.r_[np.ones(len(in_scores)), np.zeros(len(out_scores))]
    fpr, tpr, _ = roc_curve(y, np.r_[in_scores, out_scores])
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).astype(int))
    return {"fpr": [round(float(x), 4) for x in fpr[keep]], "tpr": [round(float(x), 4) for x in tpr[keep]]}


def summary_numbers(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers (percentages) the model card and ``textarmor.json`` keep."""
    adversarial = {recipe: entry["raw"]["accuracy_under_attack"] for recipe, entry in report["adversarial"].items()}
    calibrated = {recipe: entry["calibrated"]["accuracy_under_attack"]
                  for recipe, entry in report["adversarial"].items() if "calibrated" in entry}
    return {
        "clean_accuracy": round(100 * report["in_distribution"]["accuracy"], 2),
        "accuracy_under_attack": adversarial,
        **({"accuracy_under_attack_calibrated_scores": calibrated} if calibrated else {}),
        "shift_accuracy": {k: round(100 * v["accuracy"], 2) for k, v in report["shift"].items()},
        "ece": round(report["in_distribution"]["ece"], 4),
        "ece_after_temperature": round(report["calibration"]["ece_after"], 4),
        "ood_auroc_msp": {k: round(v["msp"]["auroc"], 4) for k, v in report["ood"].items()},
        "noise_accuracy": {str(r["rate"]): r["accuracy"] for r in report["noise"]},
        "attack_examples": report["spec"]["attack_n"],
    }


def to_markdown(report: dict[str, Any]) -> str:
    s = summary_numbers(report)
    lines = ["| perspective | measure | value |", "|---|---|---|",
             f"| in-distribution | accuracy | {s['clean_accuracy']:.2f}% |",
             f"| calibration | ECE (10 bins) on {report['calibration']['n']} held-out texts, before → after "
             f"temperature {report['calibration']['temperature']:.2f} | {report['calibration']['ece_before']:.4f} → "
             f"{s['ece_after_temperature']:.4f} |"]
    for recipe, acc in s["accuracy_under_attack"].items():
        extra = s.get("accuracy_under_attack_calibrated_scores", {}).get(recipe)
        more = f" (calibrated scores: {extra:.2f}%)" if extra is not None else ""
        lines.append(f"| adversarial | accuracy under {recipe} ({s['attack_examples']} examples) | {acc:.2f}%{more} |")
    for method, levels in report.get("conformal", {}).items():
        lines += [f"| conformal ({method}) | empirical coverage at {c} (mean set size {r['mean_set_size']:.2f}) "
                  f"| {100 * r['coverage']:.2f}% |" for c, r in levels.items()]
    lines += [f"| distribution shift | accuracy on {k} | {v:.2f}% |" for k, v in s["shift_accuracy"].items()]
    lines += [f"| anomaly detection | AUROC (max-softmax) vs {k} | {v:.4f} |" for k, v in s["ood_auroc_msp"].items()]
    lines += [f"| natural noise | accuracy with typos at rate {k} | {v:.2f}% |" for k, v in s["noise_accuracy"].items()]
    if "defense" in report:
        lines += ["", *defense_markdown(report["defense"])]
    return "\n".join(lines) + "\n"


def defense_markdown(section: dict[str, Any]) -> list[str]:
    """The defence table: one column per model (undefended, defended), one row per measure."""
    names = list(section["columns"])
    cols = [section["columns"][n] for n in names]
    lines = [f"| measure | {' | '.join('no defence' if n == 'none' else n for n in names)} |",
             "|---|" + "---:|" * len(names),
             "| clean accuracy | " + " | ".join(f"{100 * c['clean_accuracy']:.2f}%" for c in cols) + " |"]
    for recipe in cols[0]["attacks"]:
        lines.append(f"| accuracy under {recipe} ({cols[0]['attacks'][recipe]['total']} examples) | "
                     + " | ".join(f"{c['attacks'][recipe]['accuracy_under_attack']:.2f}%" if recipe in c["attacks"]
                                  else "n/a" for c in cols) + " |")
    lines.append("| forward passes per input | " + " | ".join(f"{c['passes_per_input']:g}" for c in cols) + " |")
    certified = cols[-1].get("certificates")
    if certified:
        for r, frac in certified["certified_fraction"].items():
            lines.append(f"| certified at radius {r} (accuracy) | n/a | {100 * frac:.2f}% "
                         f"({100 * certified['certified_accuracy'][r]:.2f}%) |")
    options = ", ".join(f"{k}={v}" for k, v in section["options"].items())
    return lines + ["", f"Defence: {section['name']} ({options}); attacks query the defended model."]


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ParameterError(f"{flag} takes NAME=FILE, e.g. {flag} imdb=imdb.jsonl; got {item!r}.")
        pairs[name] = path
    return pairs


def report_from_options(model, data: str, out_dir, *, spec=None, shift=(), ood=(), attacks: str | None = None,
                        attack_n: int | None = None, noise_rates: str | None = None,
                        calibration_data: str | None = None, defense: str | None = None,
                        defense_options: dict[str, Any] | None = None, overwrite: bool = False, log=print) -> str:
    """The CLI's entry: build a :class:`ReportSpec` from a YAML file and/or flags, run it, return the Markdown."""
    overrides = {"data": data, "attack_n": attack_n, "calibration_data": calibration_data,
                 "defense": defense, "defense_options": defense_options or None,
                 "shift": _pairs(list(shift), "--shift") or None, "ood": _pairs(list(ood), "--ood") or None,
                 "attacks": [a.strip() for a in attacks.split(",") if a.strip()] if attacks is not None else None,
                 "noise_rates": [float(r) for r in noise_rates.split(",") if r.strip()] if noise_rates else None}
    if spec is not None:
        report_spec = ReportSpec.from_yaml(spec, **overrides)
    else:
        report_spec = ReportSpec(**{k: v for k, v in overrides.items() if v is not None})
    from textarmor.attacks.recipes import check_recipe

    for recipe in report_spec.attacks:
        check_recipe(recipe)
    if report_spec.defense:  # a bad name or option fails before the model loads
        from textarmor.defenses import make_defense

        make_defense(report_spec.defense, **report_spec.defense_options)
    report = robustness_report(model, report_spec, out_dir, overwrite=overwrite, log=log)
    return to_markdown(report) + f"\nreport written to {out_dir}/report.html (and report.json, report.md)"


def _write(report: dict[str, Any], out: Path) -> None:
    from textarmor.evaluation.report_html import render_html

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text("# Robustness report\n\n" + to_markdown(report))
    (out / "report.html").write_text(render_html(report, to_markdown(report)), encoding="utf-8")
