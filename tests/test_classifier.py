"""The query path: batching by token budget, input order, thresholds, pipeline format, cache."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textarmor import Classifier
from textarmor.backends.feeder import Feeder
from textarmor.errors import ParameterError


@pytest.fixture(scope="module")
def clf(tiny_trained):
    return Classifier.from_pretrained(tiny_trained, device="cpu", max_tokens_per_batch=128)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=128), min_size=1, max_size=60))
def test_batch_plan_covers_every_index_once_within_budget(lengths):
    planner = Classifier.__new__(Classifier)
    planner.max_tokens_per_batch, planner.max_batch_size = 256, 8
    batches = planner.plan_batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 8
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 256


def test_length_sorted_batches_return_input_order(clf):
    texts = ["good " * n for n in (1, 20, 3, 11, 2, 25, 7)] + ["the plot was dull"] * 2
    together = clf.logits(texts)
    alone = np.stack([clf.logits([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_pipeline_format(clf):
    one = clf("the film was great")
    assert isinstance(one, list) and len(one) == 1 and set(one[0]) == {"label", "score"}
    ranked = clf("the film was great", top_k=None)
    assert [r["label"] for r in ranked] != [] and len(ranked) == 2
    assert ranked[0]["score"] >= ranked[1]["score"]
    batch = clf(["great", "dull"], top_k=2)
    assert len(batch) == 2 and all(len(r) == 2 for r in batch)


def test_threshold_marks_uncertain_and_abstains(clf):
    texts = ["the film was great", "dull plot", "the of and a"]
    scores = clf.predict_proba(texts).max(axis=1)
    cut = float(np.median(scores))
    preds = clf.predict(texts, threshold=cut, abstain_label="unsure")
    for pred, score in zip(preds, scores):
        assert pred.uncertain == (score < cut)
        assert pred.label == ("unsure" if score < cut else pred.top_label)
    assert all(not p.uncertain for p in clf.predict(texts, threshold=0.0))
    assert all(p.uncertain and p.label is None for p in clf.predict(texts, threshold=1.0)
               if p.score < 1.0)


@pytest.mark.parametrize("bad", [-0.1, 1.5, "high"])
def test_threshold_outside_unit_interval_is_refused(clf, bad):
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        clf.predict(["x"], threshold=bad)


def test_temperature_scales_scores_not_ranking(clf):
    texts = ["the film was great", "dull plot"]
    base = clf.predict_proba(texts)
    clf.config.temperature = 4.0
    try:
        hot = clf.predict_proba(texts)
    finally:
        clf.config.temperature = 1.0
    assert (hot.argmax(1) == base.argmax(1)).all()
    assert hot.max(1).max() < base.max(1).max()


def test_function_to_apply(clf):
    logits = clf.logits(["great"])
    none = clf.predict_proba(["great"], function_to_apply="none")
    np.testing.assert_allclose(none, logits, atol=1e-6)
    sig = clf.predict_proba(["great"], function_to_apply="sigmoid")
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-logits)), atol=1e-6)
    with pytest.raises(ParameterError, match="softmax"):
        clf.predict_proba(["great"], function_to_apply="relu")


def test_cache_skips_repeated_queries(tiny_trained):
    clf = Classifier.from_pretrained(tiny_trained, device="cpu", cache_size=10)
    first = clf.logits(["great film", "dull film"])
    assert clf.num_queries == 2
    again = clf.logits(["dull film", "great film", "new text", "new text"])
    assert clf.num_queries == 3  # one new distinct text
    np.testing.assert_allclose(again[:2], first[::-1])


def test_iter_predict_streams_in_order(clf):
    texts = [f"text number {i} was {'great' if i % 3 else 'dull'}" for i in range(25)]
    streamed = list(clf.iter_predict(iter(texts), chunk_size=4))
    direct = clf.predict(texts)
    assert [p.top_label for p in streamed] == [p.top_label for p in direct]
    np.testing.assert_allclose([p.score for p in streamed], [p.score for p in direct], atol=1e-5)


def test_truncates_to_model_length(clf):
    assert clf.max_length <= 128
    long_text = "great " * 2000
    assert clf.predict_proba([long_text]).shape == (1, 2)


def test_non_string_inputs_are_refused(clf):
    with pytest.raises(ParameterError, match="item 1"):
        clf.predict_proba(["fine", 3])


@pytest.mark.parametrize("pairs", [False, True])
def test_fast_tokenisation_matches_the_tokenizer(clf, pairs):
    texts = ["the film was great", "dull " * 300, "x", "ünïcödé and emoji 🎬 here"]
    second = ["a hypothesis", "another one " * 100, "y", "z"] if pairs else None
    indices = np.arange(len(texts))
    fast = clf._tokenize(texts, second, indices)
    reference = clf.tokenizer(texts, second, truncation=True, max_length=clf.max_length)
    assert rows(fast, "input_ids") == reference["input_ids"]


def test_fast_tokenisation_matches_wordpiece_pairs(minilm_path):
    from textarmor.models import load_model, load_tokenizer

    clf = Classifier(load_model(minilm_path, num_labels=2, id2label={0: "a", 1: "b"}), load_tokenizer(minilm_path),
                     device="cpu")
    texts, second = ["Premise here, long " * 80, "short"], ["hypothesis", "Another HYPOTHESIS " * 90]
    fast = clf._tokenize(texts, second, np.arange(2))
    reference = clf.tokenizer(texts, second, truncation=True, max_length=clf.max_length)
    assert rows(fast, "input_ids") == reference["input_ids"]
    assert rows(fast, "token_type_ids") == reference["token_type_ids"]


def rows(encoded: dict, key: str) -> list[list[int]]:
    """A flat encoded slice back as one list of ids per row."""
    return [part.tolist() for part in np.split(encoded[key], np.cumsum(encoded["lengths"])[:-1])]


def test_prebuilt_attention_mask_gives_the_same_logits(tiny_trained):
    from textarmor.backends.torch_backend import TorchBackend
    from textarmor.models import load_model, load_tokenizer

    texts = ["great " * n for n in (1, 7, 30)] + ["the dull plot"]
    results = []
    for prebuilt in (False, True):
        model = load_model(str(tiny_trained))
        if prebuilt and not TorchBackend._mask_compatible(model):
            pytest.skip("model does not use SDPA attention")
        backend = TorchBackend(model, device="cpu", prebuilt_mask=prebuilt)
        clf = Classifier(None, load_tokenizer(str(tiny_trained)), backend=backend, model_config=model.config)
        results.append(clf.logits(texts))
    np.testing.assert_allclose(results[0], results[1], atol=1e-5)


def test_slices_respect_the_text_and_character_caps():
    from textarmor.backends.tokenize_pool import plan_slices

    chars = np.array([900, 500, 400, 300, 120, 100, 80, 10, 10, 5])  # longest first, as the classifier orders
    order = np.arange(len(chars))[::-1].copy()  # any index order; chars are given in that order
    slices = plan_slices(order, chars, max_texts=4, max_chars=600)
    assert np.array_equal(np.concatenate(slices), order)  # every input once, in order
    start = 0
    for part in slices:
        span = chars[start:start + len(part)]
        start += len(part)
        assert len(part) <= 4
        assert span.sum() <= 600 or len(part) == 1  # a text longer than the cap gets a slice of its own
    assert [len(s) for s in slices] == [1, 1, 1, 4, 3]
    assert [len(s) for s in plan_slices(order, chars, max_texts=4)] == [4, 4, 2]  # no cap: by count only


def test_a_character_cap_on_slices_leaves_the_scores_unchanged(clf):
    texts = ["good " * n for n in (1, 40, 3, 25, 2, 60, 7, 15)] + ["the plot was dull"] * 3
    capped = Classifier(clf.backend.model, clf.tokenizer, config=clf.config, device="cpu", tokenize_chunk=4,
                        tokenize_chunk_chars=80, tokenize_processes=0)
    np.testing.assert_allclose(capped.logits(texts), clf.logits(texts), atol=1e-5)
    with pytest.raises(ParameterError, match="tokenize_chunk_chars"):
        Classifier(clf.backend.model, clf.tokenizer, device="cpu", tokenize_chunk_chars=0)


class QueueingBackend:
    """An asynchronous backend stand-in: always busy, and each row's logits are a function of its own ids,
    so stacked batches show whether every row comes back to its input."""

    name, device, asynchronous = "queueing", "cpu", True

    def __init__(self):
        self.shapes = []

    def busy(self) -> bool:
        return True

    def submit(self, arrays: dict):
        self.shapes.append(arrays["input_ids"].shape)
        ids = np.where(arrays["attention_mask"] == 1, arrays["input_ids"], 0)
        return np.stack([ids.sum(1), arrays["attention_mask"].sum(1)], axis=1).astype(np.float32)

    def collect(self, handles: list) -> list[np.ndarray]:
        return handles


def test_a_busy_device_gets_stacked_batches_and_every_row_its_own_scores(clf):
    texts = [f"the plot was {'really ' * (i % 7)}dull number {i}" for i in range(40)]
    single = Classifier(None, clf.tokenizer, backend=QueueingBackend(), model_config=clf.model_config,
                        tokenize_chunk=1000, max_tokens_per_batch=4096, max_batch_size=256)
    stacked = Classifier(None, clf.tokenizer, backend=QueueingBackend(), model_config=clf.model_config,
                         tokenize_chunk=4, tokenize_processes=0, max_tokens_per_batch=4096, max_batch_size=16)
    reference = single.logits(texts)
    np.testing.assert_array_equal(stacked.logits(texts), reference)
    shapes = stacked.backend.shapes
    assert len(shapes) < 10  # 10 slices of 4 texts went as fewer, stacked batches
    assert all(rows <= 16 and rows * width <= 4096 for rows, width in shapes)  # within the budget
    assert shapes[0][0] == 4  # the first batch goes at once, so the device starts


def test_passes_are_cut_from_rows_pooled_across_slices_with_less_padding(clf):
    """Character length misleads about token length ("a a a a" is short, "extraordinarily" long); rows pooled
    across slices and taken longest first pad less than batches cut within each slice, and score the same."""
    from textarmor.backends import tokenize_pool

    texts = [("a " * (i % 9 + 1)) if i % 2 else "extraordinarily " * (i % 3 + 1) for i in range(48)]
    pooled = Classifier(None, clf.tokenizer, backend=QueueingBackend(), model_config=clf.model_config,
                        tokenize_chunk=8, tokenize_processes=0, max_tokens_per_batch=4096, max_batch_size=16)
    reference = Classifier(None, clf.tokenizer, backend=QueueingBackend(), model_config=clf.model_config,
                           tokenize_chunk=1000, max_tokens_per_batch=4096, max_batch_size=256)
    np.testing.assert_array_equal(pooled.logits(texts), reference.logits(texts))
    padded = sum(rows * width for rows, width in pooled.backend.shapes)
    chars = np.array([len(t) for t in texts])
    order = np.argsort(-chars, kind="stable")
    per_slice = 0
    for part in tokenize_pool.plan_slices(order, chars[order], 8):
        lengths = pooled._tokenize(texts, None, part)["lengths"]
        per_slice += sum(len(b) * int(lengths[b].max()) for b in pooled.plan_batches(lengths.tolist()))
    assert padded < per_slice


def test_an_idle_device_waits_for_a_stack_worth_a_forward_pass(clf):
    idle = QueueingBackend()
    idle.busy = lambda: False
    texts = [f"the plot was dull number {i}" for i in range(40)]
    stacked = Classifier(None, clf.tokenizer, backend=idle, model_config=clf.model_config, tokenize_chunk=2,
                         tokenize_processes=0, tokenize_workers=1, max_tokens_per_batch=100_000, max_batch_size=16)
    stacked.logits(texts)
    rows = [shape[0] for shape in idle.shapes]
    assert rows[0] == 2 and sum(rows) == 40
    wanted = Feeder.IDLE_FLUSH_FRACTION * 16
    assert wanted > 2 and all(r >= wanted for r in rows[1:-1])  # more than one slice each, save the last stack


def test_slices_come_as_they_are_ready_while_an_idle_device_is_offered_passes():
    """With a device to watch, a slow first slice does not hold back later ones, and the waiting caller keeps
    offering the device a pass; without one, results come in order."""
    import threading
    from concurrent.futures import Future

    from textarmor.backends.feeder import results_as_ready

    futures = [Future() for _ in range(3)]
    offers = []
    futures[2].set_result("c")
    threading.Timer(0.05, lambda: futures[1].set_result("b")).start()
    threading.Timer(0.10, lambda: futures[0].set_result("a")).start()
    got = list(results_as_ready(futures, lambda: offers.append(1), poll_seconds=0.002))
    assert got == [(2, "c"), (1, "b"), (0, "a")]
    assert len(offers) >= 10  # polled while nothing was ready
    assert list(results_as_ready(futures)) == [(0, "a"), (1, "b"), (2, "c")]


class SameHash(str):
    """A string whose hash collides with every other's, so that only equality tells keys apart."""

    __slots__ = ()

    def __hash__(self) -> int:
        return 7


@pytest.mark.parametrize("make", [str, SameHash])
def test_distinct_keys_and_the_map_back(make):
    from textarmor.classifier import _distinct

    rng = np.random.default_rng(0)
    keys = [make(f"text {i}") for i in rng.integers(0, 30, size=200)] + [make("alone")]
    distinct, inverse = _distinct(keys)
    expected = list(dict.fromkeys(keys))
    assert distinct == expected  # first appearance order
    assert [distinct[j] for j in inverse] == keys
    unique = [make(f"u{i}") for i in range(50)]
    assert _distinct(unique)[0] == unique and _distinct(unique)[1].tolist() == list(range(50))
    pairs = [(k, "p") for k in keys]
    assert [_distinct(pairs)[0][j] for j in _distinct(pairs)[1]] == pairs
