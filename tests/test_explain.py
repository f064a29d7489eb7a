"""textarmor.explain on the tiny RoBERTa (byte-level BPE) and, marked, on MiniLM (WordPiece)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import synthetic_rows, write_jsonl
from textarmor import Classifier
from textarmor.cli import main
from textarmor.errors import ParameterError
from textarmor.explain import (
    METHODS,
    Attention,
    AttentionRollout,
    IntegratedGradients,
    Occlusion,
    attention_rollout,
    compare,
    explain,
    explain_texts,
    faithfulness,
    to_html,
    write_outputs,
)
from textarmor.explain.attribution import eager_attention, score_function, torch_model
from textarmor.explain.encoding import encode, keep_words, remove_words, words_from_tokens
from textarmor.explain.faithfulness import selections

pytest.importorskip("captum")


@pytest.fixture(scope="module")
def clf(tiny_trained) -> Classifier:
    return Classifier.from_pretrained(tiny_trained, device="cpu", max_batch_size=64)


@pytest.fixture(scope="module")
def dev_texts() -> list[str]:
    return [r["text"] for r in synthetic_rows(40, seed=7)]


def _baseline_scores(clf: Classifier, texts: list[str], targets: list[int], output: str) -> np.ndarray:
    """f(baseline): every non-special token replaced by padding, through the same score function."""
    import torch

    batch = encode(clf.tokenizer, texts, max_length=clf.max_length)
    ids = batch.input_ids
    special = torch.isin(ids, torch.tensor(clf.tokenizer.all_special_ids))
    baseline = torch.where(special, ids, torch.full_like(ids, clf.tokenizer.pad_token_id))
    with torch.no_grad():
        scores = score_function(clf, output)(baseline, batch.attention_mask)
    return scores[torch.arange(len(texts)), torch.tensor(targets)].numpy()


def _check_completeness(clf: Classifier, texts: list[str], output: str, n_steps: int) -> np.ndarray:
    """Sum of attributions = f(x) − f(baseline) within the reported delta, f(x) taken from the Classifier."""
    attr = IntegratedGradients(clf, output=output).attribute(texts, n_steps=n_steps, internal_batch_size=16)
    scores = clf.predict_proba(texts) if output == "probability" else clf.logits(texts)
    fx = scores[np.arange(len(texts)), attr.targets]
    fb = _baseline_scores(clf, texts, attr.targets, output)
    for i in range(len(texts)):
        total = attr.token_scores[i].sum()
        assert abs(total - (fx[i] - fb[i])) <= abs(attr.convergence_delta[i]) + 1e-4
        assert np.isclose(attr.word_scores[i].sum(), total, atol=1e-6)  # special tokens carry nothing
    return np.abs(attr.convergence_delta)


# ------------------------------------------------------------------------------------ methods, tiny RoBERTa
@pytest.mark.parametrize("output", ["probability", "logit"])
def test_integrated_gradients_completeness_tiny_roberta(clf, dev_texts, output):
    coarse = _check_completeness(clf, dev_texts[:6], output, n_steps=4)
    fine = _check_completeness(clf, dev_texts[:6], output, n_steps=64)
    if output == "logit":  # a saturated probability path need not converge by 128 steps; the logit's does
        assert fine.mean() <= coarse.mean() + 1e-6


def test_rollout_rows_sum_to_one_and_identity_attention_is_fixed_point(clf, dev_texts):
    import torch

    model = torch_model(clf)
    batch = encode(clf.tokenizer, dev_texts[:3], max_length=clf.max_length)
    with eager_attention(model), torch.no_grad():
        attentions = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                           output_attentions=True).attentions
    for i in range(3):
        real = batch.attention_mask[i].nonzero(as_tuple=True)[0]
        rollout = attention_rollout([a[i][:, real][:, :, real] for a in attentions])
        assert rollout.shape == (len(real), len(real))
        assert torch.allclose(rollout.sum(dim=-1), torch.ones(len(real)), atol=1e-5)
        assert (rollout >= 0).all()
    eye = [torch.eye(4).expand(2, 4, 4)] * 3
    assert torch.allclose(attention_rollout(eye), torch.eye(4))
    scores = AttentionRollout(clf).attribute(dev_texts[:3]).token_scores
    assert all(np.isclose(s.sum(), 1.0, atol=1e-5) for s in scores)


def test_attention_switches_to_eager_only_inside_and_selects_layer_and_head(clf, dev_texts):
    model = torch_model(clf)
    before = model.config._attn_implementation
    last_mean = Attention(clf).attribute(dev_texts[:2]).token_scores[0]
    head0 = Attention(clf, layer=0, head=0).attribute(dev_texts[:2]).token_scores[0]
    head1 = Attention(clf, layer=0, head=1).attribute(dev_texts[:2]).token_scores[0]
    assert model.config._attn_implementation == before
    assert np.isclose(last_mean.sum(), 1.0, atol=1e-5) and np.isclose(head0.sum(), 1.0, atol=1e-5)
    assert not np.allclose(head0, head1)
    with pytest.raises(ParameterError, match="head must be in"):
        Attention(clf, head=7)
    with pytest.raises(ParameterError, match="layer must be in"):
        Attention(clf, layer=5)


def test_occlusion_is_the_score_drop_without_each_word(clf):
    text = "the plot was dreadful and the cast"
    attr = Occlusion(clf).attribute(text)
    t = attr.targets[0]
    full = clf.predict_proba([text])[0, t]
    expected = [full - clf.predict_proba([remove_words(text, attr.spans[0], [j])])[0, t]
                for j in range(len(attr.words[0]))]
    assert np.allclose(attr.word_scores[0], expected, atol=1e-6)
    assert clf.labels[t] == "negative"
    assert attr.word_scores[0].argmax() == attr.words[0].index("dreadful")  # the only cue matters most


def test_word_aggregation_byte_level_bpe(clf):
    text = "the film's ending, superb"
    batch = encode(clf.tokenizer, [text], max_length=clf.max_length)
    assert batch.words[0] == ["the", "film", "'s", "ending", ",", "superb"]
    for j, word in enumerate(batch.words[0]):
        pieces = [tok for tok, w in zip(batch.tokens[0], batch.word_index[0]) if w == j]
        assert "".join(pieces).replace("Ġ", "") == word
        assert text[slice(*batch.spans[0][j])] == word
    assert batch.word_index[0][0] == -1 and batch.word_index[0][-1] == -1  # <s>, </s>
    scores = words_from_tokens(np.arange(len(batch.tokens[0]), dtype=float), batch.word_index[0], 6)
    expected = [sum(t for t, w in enumerate(batch.word_index[0]) if w == j) for j in range(6)]
    assert np.allclose(scores, expected)
    assert remove_words(text, batch.spans[0], [1, 2]) == "the ending, superb"
    assert keep_words(text, batch.spans[0], [1, 2, 5]) == "film's superb"


def test_long_inputs_are_truncated_with_a_warning(clf):
    long_text = " ".join(["the plot was really quite superb"] * 40)
    with pytest.warns(UserWarning, match="truncated"):
        [e] = explain(clf, [long_text], methods="grad_input,occlusion")
    assert e.truncated and len(e.text) < len(long_text) and long_text.startswith(e.text)
    assert len(e.tokens) == clf.max_length


def test_faithfulness_selections_follow_ferret():
    picks = selections(np.array([0.1, 0.5, -0.2, 0.3, 0.0]))
    assert [p.tolist() for p in picks] == [[1], [1, 3], [1, 3, 0], [1, 3, 0, 4], [1, 3, 0, 4, 2]]
    assert selections(np.array([])) == []


def test_faithfulness_in_range_and_ig_beats_random_on_trained_model(clf, dev_texts):
    explanations = explain(clf, dev_texts, methods="ig,occlusion,random", n_steps=16)
    scores = faithfulness(clf, explanations)
    for name, row in scores.summary.items():
        assert -1.0 <= row["aopc_comprehensiveness"] <= 1.0 and -1.0 <= row["aopc_sufficiency"] <= 1.0, name
        assert len(scores.per_text[name]) == len(dev_texts)
    ig, rnd = scores.summary["ig"], scores.summary["random"]
    assert ig["aopc_comprehensiveness"] > rnd["aopc_comprehensiveness"]
    assert ig["aopc_sufficiency"] < rnd["aopc_sufficiency"]
    assert scores.best_method() != "random"


def test_thousand_texts_stay_within_batch_sizes(clf):
    """Memory is bounded by rows per forward pass: never more than batch_size texts, and integrated
    gradients' text × step rows never more than internal_batch_size."""
    model = torch_model(clf)
    rows: list[int] = []

    def record(module, args, kwargs):
        rows.append((kwargs.get("input_ids") if "input_ids" in kwargs else args[0]).shape[0])

    texts = [r["text"] for r in synthetic_rows(1000, seed=3)]
    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        out = explain(clf, texts, methods="ig,rollout", n_steps=2, batch_size=50, internal_batch_size=40)
    finally:
        handle.remove()
    assert len(out) == 1000 and [e.text for e in out] == texts
    assert max(rows) <= 50
    assert rows.count(40) >= 1000 * 2 // 40  # every IG pass: 40 rows (text × step), as asked


# ------------------------------------------------------------------------------------------- outputs, CLI
def test_html_renders_every_method_and_png_is_written(clf, tmp_path):
    names = list(METHODS)
    explanations = explain(clf, ["the cast was <script>superb</script> & charming"], methods=names, n_steps=8)
    page = to_html(explanations, faithfulness=faithfulness(clf, explanations))
    for name in names:
        assert f'class="row-{name}"' in page
    assert "&lt;" in page and "&amp;" in page and "<script" not in page  # user text escaped
    assert "http" not in page and "src=" not in page  # self-contained
    files = write_outputs(tmp_path, explanations)
    png = tmp_path / "text-1.png"
    assert png in files and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "explanations.json").read_text())["explanations"][0]
    assert set(data["scores"]) == set(names) and len(data["scores"]["ig"]) == len(data["words"])
    assert data["label"] in clf.labels and 0.0 <= data["score"] <= 1.0


def test_explain_texts_gives_json_ready_rows_for_a_server(clf):
    [row] = explain_texts(clf, ["a superb film"], methods=["occlusion", "rollout"])
    assert json.loads(json.dumps(row)) == row
    assert row["words"] == ["a", "superb", "film"] and row["label"] == "positive"
    assert set(row["scores"]) == {"occlusion", "rollout"} and row["convergence_delta"] is None


def test_compare_marks_the_swapped_word_as_moving_the_prediction(clf):
    [c] = compare(clf, [("the plot was superb and the cast", "the plot was dreadful and the cast")],
                  methods="ig,occlusion", n_steps=32)
    assert c.original.label == "positive" and c.adversarial.label == "negative" and c.label_flipped
    assert c.adversarial.target == "positive"  # both explained for the original's class
    [change] = c.changes
    assert change["original"] == ["superb"] and change["adversarial"] == ["dreadful"]
    assert change["moved"]["ig"] < 0 and change["moved"]["occlusion"] < 0
    assert c.adversarial_target_score < c.original.score


def test_cli_attack_results_writes_outputs(tiny_trained, tmp_path, capsys):
    rows = [{"original_text": "a superb film", "perturbed_text": "a dreadful film"},
            {"original_text": "a dull film", "perturbed_text": None}]
    attack = write_jsonl(tmp_path / "attack.jsonl", rows)
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", str(tiny_trained), "--attack-results", str(attack), "--methods", "ig,rollout",
              "--n-steps", "8", "--out", str(tmp_path / "out"), "--faithfulness"])
    assert exit_info.value.code in (0, None)
    data = json.loads((tmp_path / "out" / "explanations.json").read_text())
    assert len(data["comparisons"]) == 1 and data["comparisons"][0]["changes"][0]["adversarial"] == ["dreadful"]
    assert set(data["faithfulness"]["summary"]) == {"ig", "rollout", "random"}
    assert (tmp_path / "out" / "pair-1.png").exists()
    with pytest.raises(SystemExit) as exit_info:  # never silently replaces earlier results
        main(["explain", str(tiny_trained), "a film", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "--overwrite" in capsys.readouterr().err


def test_cli_prints_json_and_rejects_bad_methods(tiny_trained, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", str(tiny_trained), "a superb film", "--methods", "grad_input,attention", "--head", "1"])
    assert exit_info.value.code in (0, None)
    [row] = json.loads(capsys.readouterr().out)["explanations"]
    assert row["words"] == ["a", "superb", "film"] and set(row["scores"]) == {"grad_input", "attention"}
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", str(tiny_trained), "a film", "--methods", "ig,lime"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "methods must be names from" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------- MiniLM, WordPiece
@pytest.mark.real_weights
def test_minilm_wordpiece_words_completeness_and_rollout(minilm_path):
    clf = Classifier.from_pretrained(minilm_path, device="cpu")
    text = "Un-believable, the film's ending!"
    batch = encode(clf.tokenizer, [text], max_length=clf.max_length)
    assert batch.words[0] == ["Un", "-", "believable", ",", "the", "film", "'", "s", "ending", "!"]
    for j, word in enumerate(batch.words[0]):
        pieces = [tok for tok, w in zip(batch.tokens[0], batch.word_index[0]) if w == j]
        assert "".join(p.removeprefix("##") for p in pieces) == word.lower()
    delta = _check_completeness(clf, [text, "a dull, lifeless mess"], "logit", n_steps=32)
    assert delta.max() < 1e-3  # an untrained head is smooth: 32 steps suffice
    rollout = AttentionRollout(clf).attribute([text]).token_scores[0]
    assert np.isclose(rollout.sum(), 1.0, atol=1e-5)
