"""The ``robust`` preset's wiring (the model is trained through the rewrite it stores, and predict, evaluate,
attack and serve apply it by default), the ``adaptive`` recipe's candidate filter, and continuing a model
onto new labels."""
from __future__ import annotations

import json

import numpy as np
import pytest

from textarmor.attacks.constraints import CharacterEditBudget, ForSwaps, PostConstraint, is_character_edit
from textarmor.attacks.resources import wordnet_available
from textarmor.attacks.text import AttackedText
from textarmor.attacks.transformations import DefenseAware, RealWordEdits, Transformation
from textarmor.classifier import Classifier
from textarmor.defenses import DefendedClassifier, Rewrite, Rewriter
from textarmor.errors import ParameterError

needs_wordnet = pytest.mark.skipif(not wordnet_available(), reason="WordNet 3.0 is not installed (make wordnet)")


# ------------------------------------------------------------------ adaptive: candidate filter
class Fixed(Transformation):
    name = "fixed"

    def __init__(self, words):
        self.words = words

    def __call__(self, text, index, rng):
        return list(self.words)


def _text(*words):
    return AttackedText(tuple(words), ("",) + (" ",) * (len(words) - 1) + ("",))


def test_defense_aware_drops_candidates_the_rewrite_maps_back():
    codes = {"film": "movie", "flick": "movie", "picture": "movie", "show": "show", "film's": "film's"}
    aware = DefenseAware(Fixed(["flick", "picture", "show", "Movie", "documentary"]),
                         lambda w: codes.get(w.lower(), w.lower()))
    # "flick", "picture" and "Movie" read as "movie" to the defended model: no change, so no candidate.
    assert aware(_text("a", "film"), 1, None) == ["show", "documentary"]


def test_real_word_edits_are_one_edit_dictionary_words():
    vocabulary = {"bed", "bid", "bud", "bat", "bade", "ad", "band", "bad", "dab", "cat"}
    edits = RealWordEdits(known=vocabulary.__contains__)
    found = edits(_text("a", "bad", "film"), 1, None)
    assert found == sorted(["bed", "bid", "bud", "bat", "bade", "ad", "band"])  # never the word itself
    assert "cat" not in found and "dab" not in found  # two edits away
    assert edits(_text("Bad"), 0, None)[0][0].isupper()  # capitalisation kept
    assert edits(_text("r2d2"), 0, None) == []  # only words of letters are edited


def test_adaptive_recipe_filters_by_the_attacked_models_rewrite(monkeypatch):
    from textarmor.attacks import transformations
    from textarmor.attacks.recipes import build_recipe

    class StubGlove:
        def neighbours(self, word, k, min_cos):
            return [("flick", 0.9), ("picture", 0.8), ("documentary", 0.7)]

    monkeypatch.setattr(transformations.resources, "glove", lambda vocab_size=100_000: StubGlove())
    monkeypatch.setattr(transformations, "_antonyms", lambda word: set())

    class StubRewriter:
        repair = True

        def word_code(self, word):
            return {"flick": "film", "fils": "film"}.get(word.lower(), word.lower())

        def known(self, lower):
            return lower in {"fill", "file", "fils", "firm", "flim"}

    class StubDefense:
        rewriter = StubRewriter()

    attack = build_recipe("adaptive", defense=StubDefense())
    candidates = attack.transformation(_text("a", "film"), 1, np.random.default_rng(0))
    # neighbours less "flick" (rewritten to "film"); real-word edits less "fils" (rewritten to "film")
    assert candidates == ["picture", "documentary", "file", "fill", "firm", "flim"]
    # Without a defence the classes are the words themselves.
    plain = build_recipe("adaptive").transformation
    assert "flick" in plain(_text("a", "film"), 1, np.random.default_rng(0))


def test_swap_constraints_leave_character_edits_to_the_edit_budget():
    class RejectAll(PostConstraint):
        def check(self, candidates, current, original, index):
            return [False] * len(candidates)

    original = _text("a", "bad", "film")
    candidates = [original.replace(1, "bed"), original.replace(1, "awful")]
    assert ForSwaps(RejectAll()).check(candidates, original, original, 1) == [True, False]
    assert is_character_edit("bad", "Bed") and not is_character_edit("bad", "awful")
    spent = original.replace(1, "bed").replace(2, "flim")  # a substitution (1) and a transposition (2)
    assert CharacterEditBudget(3).check([spent], spent, original, 2) == [True]
    assert CharacterEditBudget(2).check([spent], spent, original, 2) == [False]
    swapped = original.replace(1, "awful")  # a word swap costs no edit budget
    assert CharacterEditBudget(0).check([swapped], swapped, original, 1) == [True]


# ------------------------------------------------------------------ the rewrite defence
@needs_wordnet
def test_rewrite_repairs_typos_then_canonicalises():
    rewriter = Rewriter()
    assert rewriter("the flim was borign") == "the film was boring"
    assert rewriter.word_code("Flim") == "film"
    assert rewriter.known("film") and not rewriter.known("flim")
    assert Rewriter(repair=False)("the flim") == "the flim"
    with pytest.raises(ParameterError, match="neither"):
        Rewrite(repair=False, canonical=False)


# ------------------------------------------------------------------ the preset, end to end on a tiny model
@pytest.fixture(scope="module")
def robust_tiny(tiny_base, synthetic_files, tmp_path_factory):
    if not wordnet_available():
        pytest.skip("WordNet 3.0 is not installed (make wordnet)")
    from textarmor import train

    train_file, dev_file = synthetic_files
    out = tmp_path_factory.mktemp("preset") / "robust"
    result = train(train_file, eval_data=dev_file, out_dir=out, model=str(tiny_base), preset="robust",
                   method_options={"augment_sample": 24}, epochs=2, learning_rate=3e-3, batch_size=16,
                   max_length=32, seed=0, progress=False)
    return result


def test_preset_stores_its_defence_and_records_the_run(robust_tiny):
    config = json.loads((robust_tiny.model_dir / "textarmor.json").read_text())
    assert config["defense"]["name"] == "rewrite"
    assert config["training"]["preset"] == "robust" and config["training"]["method"] == "ascc+augment"
    rounds = config["training"]["objective_report"]["augment"]["rounds"]
    assert len(rounds) == 1 and rounds[0]["attacked"] == 24


def test_loading_applies_the_stored_defence_unless_told_not_to(robust_tiny):
    path = robust_tiny.model_dir
    defended = Classifier.from_pretrained(path, device="cpu")
    alone = Classifier.from_pretrained(path, device="cpu", defense="none")
    assert isinstance(defended, DefendedClassifier) and not isinstance(alone, DefendedClassifier)
    texts = ["the flim was graet and charmnig", "a dull and tedoius plot"]
    rewritten = [defended.defense.rewriter(t) for t in texts]
    assert rewritten != texts
    np.testing.assert_allclose(defended.predict_proba(texts), alone.predict_proba(rewritten), atol=1e-6)
    assert defended.passes_per_input == 1.0
    other = Classifier.from_pretrained(path, device="cpu", defense="smooth", defense_options={"k": 2})
    assert other.defense.name == "smooth"


def test_calibration_of_a_preset_model_belongs_to_the_defended_scores(robust_tiny, synthetic_files, tmp_path):
    import shutil

    from textarmor.evaluation.calibrate import calibrate

    path = tmp_path / "model"
    shutil.copytree(robust_tiny.model_dir, path)
    report = calibrate(path, synthetic_files[1], holdout=0.0)
    defended = Classifier.from_pretrained(path, device="cpu")
    assert defended.config.temperature == pytest.approx(report["temperature"])
    assert defended.base.config.temperature == 1.0  # applied once, to the defended scores
    texts = ["the film was great", "a dull plot"]
    raw = defended.predict_proba(texts, calibrated=False)
    scaled = np.exp(np.log(raw) / report["temperature"])
    np.testing.assert_allclose(defended.predict_proba(texts), scaled / scaled.sum(1, keepdims=True), atol=1e-5)


def _cli(args):
    from textarmor.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


def test_cli_verbs_use_the_stored_defence(robust_tiny, synthetic_files, tmp_path, capsys):
    path = str(robust_tiny.model_dir)
    report = tmp_path / "eval.json"
    assert _cli(["evaluate", path, "--data", str(synthetic_files[1]), "--out", str(report)]) in (0, None)
    assert json.loads(report.read_text())["defense"]["name"] == "rewrite"
    assert _cli(["evaluate", path, "--data", str(synthetic_files[1]), "--out", str(report), "--defense",
                 "none"]) in (0, None)
    assert "defense" not in json.loads(report.read_text())
    out = tmp_path / "attack"
    assert _cli(["attack", path, "--data", str(synthetic_files[1]), "--recipe", "adaptive", "--n", "2",
                 "--out", str(out)]) in (0, None)
    assert json.loads((out / "run.json").read_text())["defense"]["name"] == "rewrite"
    inputs = tmp_path / "in.txt"
    inputs.write_text("the flim was graet\n")
    capsys.readouterr()
    assert _cli(["predict", path, str(inputs)]) in (0, None)
    defended = Classifier.from_pretrained(path, device="cpu")
    want = defended.predict(["the flim was graet"])[0]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["label"] == want.label


def test_server_answers_with_the_stored_defence(robust_tiny):
    pytest.importorskip("fastapi")
    import httpx

    from tests.serving_helpers import running
    from textarmor.serving import create_app

    path = robust_tiny.model_dir
    expected = Classifier.from_pretrained(path, device="cpu")
    texts = ["the flim was graet", "a dull and tedoius plot"]
    want = expected.rank(expected.predict_proba(texts))
    with running(create_app(path, max_wait_ms=1)) as url, httpx.Client(base_url=url, timeout=60) as http:
        body = http.post("/", json={"inputs": texts}).json()
        health = http.get("/health").json()
    assert [row[0]["score"] for row in body] == pytest.approx([row[0]["score"] for row in want], rel=1e-4)
    assert health["defense"]["name"] == "rewrite"


# ------------------------------------------------------------------ continuing onto new labels
def test_new_head_for_other_labels_of_the_same_count(tiny_trained):
    from textarmor.models import load_model

    def head(model):
        return {k: v.clone() for k, v in model.state_dict().items() if k.startswith("classifier.")}

    source = load_model(str(tiny_trained))
    same = load_model(str(tiny_trained), num_labels=2, id2label=dict(enumerate(source.config.id2label.values())),
                      new_head_unless_same_labels=True)
    other = load_model(str(tiny_trained), num_labels=2, id2label={0: "sports", 1: "world"},
                       new_head_unless_same_labels=True)
    for key, value in head(source).items():
        assert np.allclose(value, head(same)[key])  # same labels: the head continues
    assert not all(np.allclose(value, head(other)[key]) for key, value in head(source).items())
    encoder = "roberta.encoder.layer.0.attention.self.query.weight"
    assert np.allclose(source.state_dict()[encoder], other.state_dict()[encoder])  # the encoder is kept


def test_augment_deals_rows_to_recipes_and_takes_shares():
    from textarmor.training.augment import AdversarialAugmentation, _recipes

    assert _recipes("pwws, adaptive") == ["pwws", "adaptive"]
    assert AdversarialAugmentation(sample=0.25).rows_per_round(100) == 25
    assert AdversarialAugmentation(sample=500).rows_per_round(100) == 100
    with pytest.raises(ParameterError, match="share"):
        AdversarialAugmentation(sample=1.5)
    with pytest.raises(ParameterError, match="recipe"):
        _recipes(" , ")


def test_preset_refuses_a_conflicting_method():
    from textarmor.training.presets import resolve_preset

    method, options, defense = resolve_preset("robust", None, {"ascc_beta": 2.0})
    assert method == "ascc+augment" and options["ascc_beta"] == 2.0 and defense["name"] == "rewrite"
    with pytest.raises(ParameterError, match="drop --method"):
        resolve_preset("robust", "pgd", None)
    with pytest.raises(ParameterError, match="Unknown preset"):
        resolve_preset("sturdy", None, None)
