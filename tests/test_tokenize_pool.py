"""Tokenisation in worker processes: the same arrays and logits as the thread path, in input order; a
pool that lives across calls, stops on close and survives a dead worker. One pool per model serves
the module (spawned workers take a moment to start)."""
from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pytest

from textarmor import Classifier
from textarmor.backends import tokenize_pool
from textarmor.errors import ParameterError

TEXTS = ["the film was great", "dull " * 300, "x", "ünïcödé and emoji 🎬 here", "", "a plot " * 7,
         "Premise here, long " * 80] + [f"text {i} was {'great' if i % 3 else 'dull'} " * (i % 9 + 1)
                                        for i in range(40)]
PAIRS = ["a hypothesis", "another one " * 100, "y", "z", "", "b", "short"] + [f"pair {i}" * (i % 4 + 1)
                                                                             for i in range(40)]


def imported_heavy_modules() -> list[str]:
    """Run in a worker: which of torch and transformers it has imported."""
    return sorted({name.split(".")[0] for name in sys.modules} & {"torch", "transformers"})


@pytest.fixture(scope="module")
def pair(tiny_trained):
    """The tiny RoBERTa twice: with threads, and with two worker processes over slices of 5 texts."""
    threads = Classifier.from_pretrained(tiny_trained, device="cpu", tokenize_chunk=5, tokenize_processes=0,
                                         max_tokens_per_batch=256)
    processes = Classifier.from_pretrained(tiny_trained, device="cpu", tokenize_chunk=5, tokenize_processes=2,
                                           max_tokens_per_batch=256)
    yield threads, processes
    processes.close()


def padded(clf: Classifier, encoded: dict) -> list[dict]:
    return [clf._pad(encoded, batch) for batch in clf.plan_batches(encoded["lengths"].tolist())]


def assert_same_batches(left: list[dict], right: list[dict]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key].dtype == np.int64 and b[key].dtype == np.int64
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("with_pairs", [False, True])
def test_workers_encode_like_the_thread_path(pair, with_pairs):
    threads, processes = pair
    second = PAIRS if with_pairs else None
    pool = processes._process_pool(2)
    from_worker = pool.submit(TEXTS, second).result()
    here = threads._tokenize(TEXTS, second, np.arange(len(TEXTS)))
    assert from_worker.keys() == here.keys()
    for key in here:
        assert from_worker[key].dtype == np.int32
        np.testing.assert_array_equal(from_worker[key], here[key])
    assert_same_batches(padded(processes, from_worker), padded(threads, here))
    assert int(from_worker["lengths"].max()) == processes.max_length  # the long texts were truncated


@pytest.mark.parametrize("with_pairs", [False, True])
def test_rows_taken_and_joined_keep_their_ids(pair, with_pairs):
    """The feeder's pool operations: rows taken out of a flat slice, and slices joined, pad like the source."""
    threads, _ = pair
    second = PAIRS if with_pairs else None
    encoded = threads._tokenize(TEXTS, second, np.arange(len(TEXTS)))
    order = np.random.default_rng(0).permutation(len(TEXTS))
    taken = tokenize_pool.take_rows(encoded, order)
    assert taken["lengths"].tolist() == encoded["lengths"][order].tolist()
    assert_same_batches([threads._pad(taken, np.arange(len(order)))], [threads._pad(encoded, order)])
    halves = [tokenize_pool.take_rows(encoded, part) for part in np.array_split(np.arange(len(TEXTS)), 2)]
    joined = tokenize_pool.concat_encoded(halves)
    for key in encoded:
        np.testing.assert_array_equal(joined[key], encoded[key])


def test_padding_matches_the_tokenizer(pair):
    threads, _ = pair
    encoded = threads._tokenize(TEXTS, PAIRS, np.arange(len(TEXTS)))
    arrays = threads._pad(encoded, list(range(len(TEXTS))))
    reference = threads.tokenizer(TEXTS, PAIRS, truncation=True, max_length=threads.max_length, padding=True,
                                  return_tensors="np")
    np.testing.assert_array_equal(arrays["input_ids"], reference["input_ids"])
    np.testing.assert_array_equal(arrays["attention_mask"], reference["attention_mask"])


@pytest.mark.parametrize("with_pairs", [False, True])
def test_process_path_gives_the_thread_paths_logits_in_input_order(pair, with_pairs):
    threads, processes = pair
    second = PAIRS if with_pairs else None
    expected = threads.logits(TEXTS, second)
    pool = processes._process_pool(2)
    got = processes.logits(TEXTS, second)
    assert processes._pool is pool and pool.started  # this call went through the workers
    np.testing.assert_array_equal(got, expected)
    alone = np.stack([threads.logits([t], None if second is None else [p])[0]
                      for t, p in zip(TEXTS, second or TEXTS)])
    np.testing.assert_allclose(got, alone, atol=1e-5)


def test_pool_is_reused_across_calls_and_stops_on_close(tiny_trained):
    clf = Classifier.from_pretrained(tiny_trained, device="cpu", tokenize_chunk=4, tokenize_processes=1)
    clf.logits(TEXTS[:12])
    pool = clf._pool
    pid = pool._executor.submit(os.getpid).result()
    assert pool._executor.submit(imported_heavy_modules).result() == []
    clf.logits(TEXTS[12:30])
    assert clf._pool is pool and pool._executor.submit(os.getpid).result() == pid
    clf.close()
    assert clf._pool is None and not pool.started
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with clf:  # usable after close: the next call starts a new pool
        clf.logits(TEXTS[:12])
        assert clf._pool is not None
    assert clf._pool is None


def test_dead_worker_falls_back_to_threads_with_a_warning(tiny_trained):
    clf = Classifier.from_pretrained(tiny_trained, device="cpu", tokenize_chunk=4, tokenize_processes=1)
    expected = clf.logits(TEXTS)
    os.kill(clf._pool._executor.submit(os.getpid).result(), signal.SIGKILL)
    with pytest.warns(RuntimeWarning, match="tokeniser worker process died"):
        got = clf.logits([t + "!" for t in TEXTS] + TEXTS)
    np.testing.assert_allclose(got[len(TEXTS):], expected, atol=1e-6)
    assert clf._pool is None and clf._processes_for(10) == 0


def test_auto_uses_threads_on_cpu_and_processes_only_where_they_pay(pair, monkeypatch):
    threads, _ = pair
    auto = Classifier(None, threads.tokenizer, backend=threads.backend, model_config=threads.model_config)
    assert auto.tokenize_processes is None
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert auto._processes_for(100) == 0  # a CPU backend
    monkeypatch.setattr(auto.backend, "device", "cuda:0")
    assert auto._processes_for(100) == 12  # the feeding thread and the host keep four cores
    assert auto._processes_for(4) == 0  # too few slices to pay for the workers
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert auto._processes_for(100) == 6
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert auto._processes_for(100) == 0
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(tokenize_pool, "main_module_is_importable", lambda: False)
    assert auto._processes_for(100) == 0


@pytest.mark.parametrize("bad", [-1, "many", 1.5, True])
def test_bad_process_counts_are_refused(pair, bad):
    threads, _ = pair
    with pytest.raises(ParameterError, match="tokenize_processes"):
        Classifier(None, threads.tokenizer, backend=threads.backend, model_config=threads.model_config,
                   tokenize_processes=bad)


def test_main_module_check(tmp_path, monkeypatch):
    import types

    guarded, bare = tmp_path / "guarded.py", tmp_path / "bare.py"
    guarded.write_text("import os\n\nif __name__ == '__main__':\n    print(1)\n")
    bare.write_text("print(1)\n")
    for path, expected in ((guarded, True), (bare, False)):
        main = types.ModuleType("__main__")
        main.__file__, main.__spec__ = str(path), None
        monkeypatch.setitem(sys.modules, "__main__", main)
        assert tokenize_pool.main_module_is_importable() is expected
    bare.write_text("if __name__ == '__main__':\n    print(1)\n")  # the answer follows an edited file
    assert tokenize_pool.main_module_is_importable() is True


def test_wordpiece_pairs_with_token_types(minilm_path):
    from textarmor.models import load_model, load_tokenizer

    model, tokenizer = load_model(minilm_path, num_labels=2, id2label={0: "a", 1: "b"}), load_tokenizer(minilm_path)
    threads = Classifier(model, tokenizer, device="cpu", tokenize_chunk=8, tokenize_processes=0)
    with Classifier(model, tokenizer, device="cpu", tokenize_chunk=8, tokenize_processes=2) as processes:
        here = threads._tokenize(TEXTS, PAIRS, np.arange(len(TEXTS)))
        from_worker = processes._process_pool(2).submit(TEXTS, PAIRS).result()
        assert "token_type_ids" in here and here.keys() == from_worker.keys()
        for key in here:
            np.testing.assert_array_equal(from_worker[key], here[key])
        assert_same_batches(padded(processes, from_worker), padded(threads, here))
        np.testing.assert_array_equal(processes.logits(TEXTS, PAIRS), threads.logits(TEXTS, PAIRS))
