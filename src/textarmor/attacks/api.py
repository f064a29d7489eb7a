"""``attack()``: run a recipe over a labelled data file, streaming results to an output folder.

The folder holds ``run.json`` (the settings, and the identity of the model and data: digests of the model
folder's weights, tokenizer and scoring settings, and of the data file), ``results.jsonl`` (one line per
example, written as each finishes, so a killed run keeps what it did), ``summary.json`` and ``report.html``.
``resume=True`` continues a run in the same folder with the same settings, model and data, attacking only
examples not yet in ``results.jsonl`` (anything else is refused, so one summary never mixes two models); each
example's random choices depend only on ``(seed, index)``, so a resumed run gives what an uninterrupted one would.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textarmor.attacks.engine import DEFAULT_CONCURRENCY, AttackEngine, Example
from textarmor.attacks.recipes import build_recipe, check_recipe
from textarmor.attacks.report import AttackReport, AttackResult
from textarmor.errors import DataError, OutputExistsError, ParameterError
from textarmor.identity import check_resume, data_digest, model_digest, write_record

RESULTS, SUMMARY, SETTINGS, HTML = "results.jsonl", "summary.json", "run.json", "report.html"


def attack(model, data: str | os.PathLike | list[dict], *, recipe: str, n: int | None = None,
           query_budget: int | None = None, max_modify_rate: float | None = None, seed: int = 0,
           out_dir: str | os.PathLike | None = None, resume: bool = False, target: str | None = None,
           concurrency: int | None = None, text_column: str = "text", label_column: str = "label",
           on_result: Callable[[AttackResult], None] | None = None,
           on_start: Callable[[int, list[AttackResult]], None] | None = None,
           recipe_options: dict[str, Any] | None = None, runner: Any = None,
           **classifier_kwargs) -> AttackReport:
    """Attack the first ``n`` examples of ``data`` (all when ``None``) with ``recipe``.

    ``model`` is a model directory (or alias) or a :class:`~textarmor.Classifier`; ``data`` a file, a
    ``builtin:`` name or a list of row dicts. ``target`` names a label for a targeted attack. ``concurrency``:
    examples in flight (default :data:`~textarmor.attacks.engine.DEFAULT_CONCURRENCY`); more gives larger
    model batches. ``on_start(total, already_done_results)`` and ``on_result(result)`` drive progress
    displays. ``runner`` attacks the examples instead of this process's :class:`AttackEngine` (for instance
    :class:`textarmor.distributed.RayAttackRunner`): ``runner.run(examples, on_result=...)`` returns their
    results and ``runner.model_calls`` counts forward passes. Returns the :class:`AttackReport` of all
    examples, resumed ones included.
    """
    from textarmor.classifier import Classifier

    check_recipe(recipe)  # before the model loads: a typo should fail fast
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ParameterError(f"n must be a positive number of examples, got {n!r}.")
    if query_budget is not None and query_budget < 1:
        raise ParameterError(f"query_budget must be at least 1 (the original text is one query), got {query_budget}.")
    clf = model if hasattr(model, "predict_proba") else Classifier.from_pretrained(
        model, cache_size=classifier_kwargs.pop("cache_size", 200_000), **classifier_kwargs)
    target_id = _label_id(clf.labels, target, "target") if target is not None else None
    built = build_recipe(recipe, defense=getattr(clf, "defense", None), max_modify_rate=max_modify_rate,
                         target=target_id, **(recipe_options or {}))

    texts, labels, dropped = _read_examples(data, text_column, label_column)
    if n is not None and n > len(texts):
        raise ParameterError(f"n is {n} but the data has {len(texts)} usable examples; pass n of at most "
                             f"{len(texts)} or leave it out to attack them all.")
    total = n or len(texts)
    examples = [Example(i, texts[i], _label_id(clf.labels, labels[i], f"example {i}")) for i in range(total)]

    source = f"{len(data)} rows given" if isinstance(data, (list, tuple)) else str(data)
    settings = {"recipe": recipe, "data": source, "n": total, "query_budget": query_budget,
                "max_modify_rate": max_modify_rate, "seed": seed, "target": target,
                "recipe_options": recipe_options or {}}
    if hasattr(clf, "defense"):  # a defended model is another model: --resume must not mix the two
        settings["defense"] = clf.defense.describe()
    done: list[AttackResult] = []
    sink = None
    if out_dir is not None:
        out = Path(out_dir)
        _check_resume_possible(out, resume)
        # Digests cost a read of the model and data files: only a run that can be resumed records them.
        settings["model_path"], settings["model"] = _model_identity(model, clf)
        settings["data_digest"] = data_digest(data)
        done = _prepare_output(out, settings, resume)
        sink = (out / RESULTS).open("a", encoding="utf-8")
    finished = {r.index for r in done}
    todo = [e for e in examples if e.index not in finished]
    if on_start is not None:
        on_start(total, done)

    def record(result: AttackResult) -> None:
        if sink is not None:
            sink.write(json.dumps(result.to_dict()) + "\n")
            sink.flush()
        if on_result is not None:
            on_result(result)

    engine = runner or AttackEngine(built, clf, query_budget=query_budget,
                                    concurrency=concurrency or DEFAULT_CONCURRENCY, seed=seed)
    started = time.perf_counter()
    try:
        new = engine.run(todo, on_result=record)
    finally:
        if sink is not None:
            sink.close()
    elapsed = time.perf_counter() - started
    report = AttackReport(sorted(done + new, key=lambda r: r.index), recipe=recipe,
                          settings={**settings, "model_calls": engine.model_calls}, wall_seconds=elapsed,
                          timed_examples=len(new), rows_dropped=dropped)
    if out_dir is not None:
        report.write_summary(Path(out_dir) / SUMMARY)
        (Path(out_dir) / HTML).write_text(report.to_html(), encoding="utf-8")
    return report


def text_attacker(recipe: str, **options) -> Callable[[Any, list[str], list[str]], list[str | None]]:
    """An attacker for adversarial augmentation during training: ``(classifier, texts, labels)`` to the
    successful adversarial text of each input, or ``None`` where the attack failed or was skipped.
    ``options`` go to :func:`attack` (e.g. ``query_budget``, ``max_modify_rate``, ``seed``)."""
    check_recipe(recipe)

    def run(classifier, texts: list[str], labels: list[str]) -> list[str | None]:
        report = attack(classifier, [{"text": t, "label": y} for t, y in zip(texts, labels)], recipe=recipe,
                        **options)
        adversarial: list[str | None] = [None] * len(texts)
        for result in report.results:
            if result.status == "successful":
                adversarial[result.index] = result.perturbed_text
        return adversarial

    return run


def _read_examples(data, text_column: str, label_column: str) -> tuple[list[str], list[str], int]:
    """Texts and label names from a data file (any format :func:`textarmor.data.load_dataset` reads) or from a
    list of row dicts, and how many rows were dropped for an empty text or label."""
    if isinstance(data, (list, tuple)):
        rows = [r for r in data if str(r.get(text_column) or "").strip()]
        if not rows:
            raise DataError(f"The {len(data)} rows given have no usable rows (every text is empty).")
        missing = [i for i, r in enumerate(rows) if r.get(label_column) is None]
        if missing:
            raise DataError(f"Row {missing[0]} has no {label_column!r}; every example needs a label to attack.")
        return [str(r[text_column]) for r in rows], [str(r[label_column]) for r in rows], len(data) - len(rows)
    from textarmor.data import load_dataset

    dataset, loaded = load_dataset(data, text_column=text_column, label_column=label_column)
    return list(dataset["text"]), list(dataset["label"]), loaded.rows_skipped


def _model_identity(model, clf) -> tuple[str, dict[str, Any]]:
    """Where the attacked model came from (for the reader) and its identity: the model folder's digest and the
    settings that change its scores."""
    from textarmor.classifier import Classifier
    from textarmor.models import resolve_model_path

    if not isinstance(clf, Classifier):  # any object with predict_proba: known by its type only
        name = f"{type(clf).__module__}.{type(clf).__qualname__}"
        return name, {"digest": f"reference:{name}", "labels": list(clf.labels)}
    if clf is model:  # a Classifier object: its folder, if it was loaded from one
        reference = clf.source or "in-memory classifier"
        digest = model_digest(clf.source) if clf.source else f"reference:{reference}"
    else:
        reference, digest = str(model), model_digest(resolve_model_path(model))
    return reference, {"digest": digest, "backend": clf.backend.name, "max_length": clf.max_length,
                       "temperature": clf.temperature, "labels": list(clf.labels)}


def load_results(out_dir: str | os.PathLike) -> list[AttackResult]:
    """The results recorded in an output folder; a line cut short by a killed run is ignored."""
    path = Path(out_dir) / RESULTS
    results: list[AttackResult] = []
    if not path.exists():
        return results
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            results.append(AttackResult.from_dict(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return results


def _check_resume_possible(out: Path, resume: bool) -> None:
    if (out / RESULTS).exists() and not resume:
        raise OutputExistsError(f"{out} already holds attack results; pass --resume to continue that run, "
                                "or choose another --out folder.")


def _prepare_output(out: Path, settings: dict[str, Any], resume: bool) -> list[AttackResult]:
    results_path, settings_path = out / RESULTS, out / SETTINGS
    if resume:
        check_resume(settings_path, settings, ignore=("data", "model_path"), run=f"the attack run in {out}")
    out.mkdir(parents=True, exist_ok=True)
    write_record(settings_path, settings)
    done = load_results(out) if resume else []
    if resume and results_path.exists():  # rewrite without a half-written last line
        results_path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in done), encoding="utf-8")
    return done


def _label_id(labels: list[str], name: str, where: str) -> int:
    if name not in labels:
        raise DataError(f"The label of {where} is not one of the model's labels {labels}; "
                        "check --label-column or the model.")
    return labels.index(name)
