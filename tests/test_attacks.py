"""Attacks: metric definitions, constraints as properties, batching across examples, recipes on real
models, the CLI with resume, and bad input."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from tests.conftest import NEGATIVE, POSITIVE, synthetic_rows, write_jsonl
from textarmor.attacks import AttackedText, AttackEngine, AttackReport, AttackResult, Example, build_recipe
from textarmor.attacks.resources import stop_words, wordnet_available
from textarmor.cli import main

needs_wordnet = pytest.mark.skipif(not wordnet_available(), reason="WordNet 3.0 is not installed: "
                                   "`apt-get install wordnet-base wordnet-sense-index` (make test does it as root)")


class KeywordClassifier:
    """A stand-in victim: positive iff it sees more positive than negative keywords. Records each call."""

    labels = ("negative", "positive")

    def __init__(self):
        self.calls: list[list[str]] = []

    def predict_proba(self, texts, calibrated=True):
        self.calls.append(list(texts))
        margin = np.array([sum(w in POSITIVE for w in t.split()) - sum(w in NEGATIVE for w in t.split())
                           for t in texts], dtype=np.float32)
        pos = 1 / (1 + np.exp(-2 * margin - 0.1))
        return np.stack([1 - pos, pos], axis=1)


def result(status, words_changed=0, num_words=10, queries=5, index=0):
    return AttackResult(index=index, status=status, original_text="a b", perturbed_text="a c", ground_truth="x",
                        original_label="x", perturbed_label="y", original_score=0.9, perturbed_score=0.1,
                        num_words=num_words, queries=queries,
                        words_changed=[{"index": i, "original": "a", "perturbed": "b"} for i in range(words_changed)])


def test_metrics_follow_textattack_definitions():
    results = [result("successful", 1, 10, 20), result("successful", 3, 20, 40), result("failed", 0, 10, 100),
               result("skipped", 0, 5, 1)]
    s = AttackReport(results, recipe="x", wall_seconds=2.0).summary()
    assert (s["successful"], s["failed"], s["skipped"], s["total"]) == (2, 1, 1, 4)
    assert s["original_accuracy"] == 75.0  # (total - skipped) / total
    assert s["accuracy_under_attack"] == 25.0  # failed / total
    assert s["attack_success_rate"] == pytest.approx(66.67)  # successful / (successful + failed)
    assert s["avg_perturbed_word_pct"] == 12.5  # mean of 10% and 15%, successes only
    assert s["avg_queries"] == pytest.approx(53.33)  # skipped examples excluded
    assert s["avg_num_words"] == 11.25 and s["examples_per_second"] == 2.0


def test_metrics_without_attacked_examples_are_none():
    s = AttackReport([result("skipped")]).summary()
    assert s["attack_success_rate"] is None and s["avg_perturbed_word_pct"] is None and s["avg_queries"] is None


def test_attacked_text_round_trips_and_replaces_in_place():
    text = "it 's a  -- fun, well-made ex-wife movie!"
    t = AttackedText.from_text(text)
    assert t.text == text and t.words == ("it", "s", "a", "fun", "well-made", "ex-wife", "movie")
    changed = t.replace(3, "dull")
    assert changed.text == "it 's a  -- dull, well-made ex-wife movie!" and changed.modified == {3}
    assert changed.changed_indices(t) == [3] and t.with_word(3, "") == "it 's a  -- , well-made ex-wife movie!"


def test_engine_batches_candidates_of_many_examples_in_one_call():
    rows = synthetic_rows(12, seed=3)
    clf = KeywordClassifier()
    engine = AttackEngine(build_recipe("deepwordbug"), clf, concurrency=12)
    results = engine.run([Example(i, r["text"], clf.labels.index(r["label"])) for i, r in enumerate(rows)])
    assert len(results) == 12
    assert len(clf.calls[0]) == 12  # the originals of all examples in one call
    assert max(len(c) for c in clf.calls) > max(r.queries for r in results) / 2
    assert len(clf.calls) < sum(r.queries for r in results) / 4
    # One negative keyword decides; a typo on it tips the (slightly positive) bias over.
    assert all(r.status == "successful" for r in results if r.ground_truth == "negative")


@pytest.mark.parametrize("recipe", ["deepwordbug", "typos"])
def test_results_do_not_depend_on_how_many_examples_are_in_flight(recipe):
    rows = synthetic_rows(20, seed=5)
    clf = KeywordClassifier()
    examples = [Example(i, r["text"], clf.labels.index(r["label"])) for i, r in enumerate(rows)]
    runs = [sorted(AttackEngine(build_recipe(recipe), clf, concurrency=c, seed=1).run(examples),
                   key=lambda r: r.index) for c in (1, 7, 256)]
    assert [r.to_dict() for r in runs[0]] == [r.to_dict() for r in runs[1]] == [r.to_dict() for r in runs[2]]


def test_candidates_by_index_groups_what_candidates_returns():
    attack = build_recipe("deepwordbug")
    text = AttackedText.from_text("the brilliant film was moving")
    indices = [0, 1, 2, 4]
    grouped = attack.candidates_by_index(text, text, indices, np.random.default_rng(0))
    flat = attack.candidates(text, text, indices, np.random.default_rng(0))
    assert len(grouped) == len(indices) and grouped[0] == []  # "the" is a stop word
    assert [t for found in grouped for t in found] == flat and all(grouped[1:])
    assert all(t.modified == {i} for i, found in zip(indices, grouped) for t in found)


sentences = st.lists(st.sampled_from(POSITIVE + NEGATIVE + ["the", "film", "was", "and", "very", "plot", "it"]),
                     min_size=1, max_size=14).map(" ".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(sentences, min_size=1, max_size=5), rate=st.sampled_from([0.1, 0.3, 0.5]),
       budget=st.integers(1, 40), recipe=st.sampled_from(["deepwordbug", "typos", "charnoise"]),
       max_distance=st.integers(1, 6), seed=st.integers(0, 3))
def test_constraints_hold_on_every_result(texts, rate, budget, recipe, max_distance, seed):
    clf = KeywordClassifier()
    options = {"max_edit_distance": max_distance} if recipe == "deepwordbug" else {}
    attack = build_recipe(recipe, max_modify_rate=rate, **options)
    examples = [Example(i, t, int(clf.predict_proba([t])[0].argmax() if i % 2 else 1)) for i, t in enumerate(texts)]
    for r in AttackEngine(attack, clf, query_budget=budget, concurrency=3, seed=seed).run(examples):
        original, perturbed = AttackedText.from_text(r.original_text), AttackedText.from_text(r.perturbed_text)
        assert r.queries <= budget
        assert all(c["original"].lower() not in stop_words() for c in r.words_changed)  # stop words untouched
        assert len(r.words_changed) <= max(math.ceil(rate * len(original)), 1)  # modification rate
        assert len(perturbed) == len(original) or r.status != "skipped"
        if recipe == "deepwordbug":
            assert Levenshtein.distance(r.original_text, r.perturbed_text) <= max_distance
        truth = clf.labels.index(r.ground_truth)
        label = int(clf.predict_proba([r.perturbed_text])[0].argmax())
        assert (label != truth) == (r.status in ("successful", "skipped"))  # the goal, checked afresh
        assert r.status != "skipped" or r.perturbed_text == r.original_text


@needs_wordnet
def test_pwws_swaps_only_wordnet_synonyms():
    from textarmor.attacks.resources import wordnet

    clf = KeywordClassifier()
    rows = [{"text": "the film was brilliant and moving", "label": "positive"}]
    results = AttackEngine(build_recipe("pwws"), clf).run([Example(0, rows[0]["text"], 1)])
    assert results[0].status in ("successful", "failed") and results[0].queries > 1
    for change in results[0].words_changed:
        lemmas = {lemma for s in wordnet().synsets(change["original"]) for lemma in s.lemma_names()}
        assert change["perturbed"] in lemmas


@needs_wordnet
def test_memoised_synsets_match_wordnet():
    from textarmor.attacks.resources import synsets, wordnet

    assert list(synsets("moving")) == wordnet().synsets("moving") and synsets("moving") is synsets("moving")
    assert synsets("qzxv") == ()


def test_attack_takes_rows_and_a_target_label_name(tmp_path):
    from textarmor.attacks import attack

    rows = [{"text": "", "label": "positive"}, {"text": "a superb dull plot", "label": "positive"},
            {"text": "a dull plot", "label": "negative"}]
    report = attack(KeywordClassifier(), rows, recipe="deepwordbug", target="negative", out_dir=tmp_path / "o")
    assert [r.status for r in report.results] == ["successful", "skipped"]  # the empty text is left out
    assert report.settings["data"] == "3 rows given"
    assert len((tmp_path / "o" / "results.jsonl").read_text().splitlines()) == 2


def test_targeted_goal_skips_examples_already_at_the_target():
    clf = KeywordClassifier()
    attack = build_recipe("deepwordbug", target=0)
    out = AttackEngine(attack, clf).run([Example(0, "a dull plot", 0), Example(1, "a superb dull plot", 1)])
    by_index = {r.index: r for r in out}
    assert by_index[0].status == "skipped" and by_index[1].status == "successful"
    assert by_index[1].perturbed_label == "negative"


def test_import_loads_no_lexical_resources():
    code = "import sys, textarmor.attacks; sys.exit(any(m in sys.modules for m in ('nltk', 'torch', 'pyarrow')))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ----------------------------------------------------------------- recipes on real (tiny and MiniLM) models
ALL_RECIPES = ["deepwordbug", "pwws", "textfooler", "typos", "charnoise"]


def _check_against_model(report, clf):
    assert report.results
    for r in report.results:
        truth = clf.labels.index(r.ground_truth)
        label = int(clf.predict_proba([r.perturbed_text], calibrated=False)[0].argmax())
        if r.status == "successful":
            assert label != truth and r.perturbed_text != r.original_text
        elif r.status == "failed":
            assert label == truth


@pytest.mark.parametrize("recipe", ALL_RECIPES)
def test_recipe_on_tiny_roberta(recipe, tiny_trained, synthetic_files):
    if recipe in ("pwws", "textfooler") and not wordnet_available():
        pytest.skip("WordNet 3.0 is not installed: `apt-get install wordnet-base wordnet-sense-index`")
    from textarmor import Classifier
    from textarmor.attacks import attack

    clf = Classifier.from_pretrained(tiny_trained, device="cpu", cache_size=10_000)
    report = attack(clf, synthetic_files[1], recipe=recipe, n=6, query_budget=300)
    _check_against_model(report, clf)
    assert report.summary()["original_accuracy"] >= 80


@pytest.mark.real_weights
@pytest.mark.parametrize("recipe", ALL_RECIPES)
def test_recipe_on_minilm(recipe, minilm_path):
    if recipe in ("pwws", "textfooler") and not wordnet_available():
        pytest.skip("WordNet 3.0 is not installed: `apt-get install wordnet-base wordnet-sense-index`")
    from textarmor import Classifier, TextArmorConfig
    from textarmor.attacks import attack
    from textarmor.models import load_model, load_tokenizer

    # A fresh classification head: the scores are arbitrary but come from the real encoder and tokenizer.
    clf = Classifier(load_model(minilm_path), load_tokenizer(minilm_path), device="cpu", cache_size=10_000,
                     config=TextArmorConfig(labels=["negative", "positive"]))
    report = attack(clf, "builtin:sst2-dev", recipe=recipe, n=4, query_budget=200)
    _check_against_model(report, clf)


# ---------------------------------------------------------------------------------------- CLI and resume
def run(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_cli_writes_results_summary_and_html(tiny_trained, synthetic_files, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(["attack", tiny_trained, "--data", synthetic_files[1], "--recipe", "deepwordbug",
                             "--n", 5, "--out", out], capsys)
    assert code == 0, err
    assert "success rate" in stdout
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(5))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total"] == 5 and summary["settings"]["recipe"] == "deepwordbug"
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
    if summary["successful"]:
        assert "<ins>" in page and "<del>" in page


def test_resume_continues_a_killed_run_and_matches_an_uninterrupted_one(tiny_trained, synthetic_files,
                                                                         tmp_path, capsys):
    args = ["attack", tiny_trained, "--data", synthetic_files[1], "--recipe", "deepwordbug", "--n", 6, "--seed", 1]
    assert run(args + ["--out", tmp_path / "full"], capsys)[0] == 0
    full = (tmp_path / "full" / "results.jsonl").read_text().splitlines()
    killed = tmp_path / "killed"
    assert run(args + ["--out", killed], capsys)[0] == 0
    (killed / "results.jsonl").write_text("\n".join(full[:2]) + "\n" + full[2][:25])  # killed mid-line
    code, _, err = run(args + ["--out", killed], capsys)
    assert code == 2 and "--resume" in err
    assert run(args + ["--out", killed, "--resume"], capsys)[0] == 0
    resumed = (killed / "results.jsonl").read_text().splitlines()
    rows_resumed, rows_full = (sorted((json.loads(x) for x in lines), key=lambda r: r["index"])
                               for lines in (resumed, full))
    # Scores may differ in the last float bits: the batches mix other examples' candidates (padding shapes).
    scores = ("original_score", "perturbed_score")
    assert [{k: v for k, v in r.items() if k not in scores} for r in rows_resumed] == \
        [{k: v for k, v in r.items() if k not in scores} for r in rows_full]
    assert [r[k] for r in rows_resumed for k in scores] == pytest.approx([r[k] for r in rows_full for k in scores],
                                                                           abs=1e-5)
    code, _, err = run(args[:-2] + ["--seed", 2, "--out", killed, "--resume"], capsys)
    assert code == 2 and "seed" in err


def test_attack_help_has_examples(capsys):
    code, out, _ = run(["attack", "--help"], capsys)
    assert code == 0 and "textarmor attack" in out and "--resume" in out


@pytest.mark.parametrize("case,pattern", [
    ("unknown_recipe", "deepwordbug, pwws, textfooler, adaptive, typos, charnoise"),
    ("n_too_large", "at most 4"),
    ("empty_texts", "no usable rows"),
    ("resume_without_out", "--out"),
    ("bad_rate", "max_modify_rate"),
    ("unknown_label", "model's labels"),
])
def test_bad_input_exits_2_with_a_clear_message(case, pattern, tiny_trained, tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", synthetic_rows(4))
    extra = {"n_too_large": ["--n", 10],
             "resume_without_out": ["--resume"], "bad_rate": ["--max-modify-rate", 1.5]}.get(case, [])
    if case == "empty_texts":
        data = write_jsonl(tmp_path / "e.jsonl",
                           [{"text": "", "label": "positive"}, {"text": " ", "label": "negative"}])
    if case == "unknown_label":
        data = write_jsonl(tmp_path / "u.jsonl", [{"text": "great film", "label": "neutral"}])
    recipe = "bertattack" if case == "unknown_recipe" else "deepwordbug"
    args = ["attack", tiny_trained, "--data", data, "--recipe", recipe] + extra
    code, _, err = run(args, capsys)
    assert code == 2, err
    assert pattern in err
