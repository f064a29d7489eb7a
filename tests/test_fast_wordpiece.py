"""The word-cache WordPiece path gives the Rust tokenizer's ids exactly: on every bundled dataset, on texts
built to break it (added tokens, control characters, non-ASCII, long words, truncation), for a cased
variant, and through a Classifier's threads and worker processes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from textarmor import Classifier
from textarmor.backends import tokenize_pool
from textarmor.backends.fast_wordpiece import CachedWordPiece

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
AWKWARD = ["", " ", "   ", "a", "Hello, World!!", "it's-a 'test' (really)...", "[MASK] is here", "x [cls] y",
           "[SEP][SEP]", "[PAD ]", "tab\there", "new\nline", "nul\x00inside", "del\x7fchar", "café au lait",
           "naïve ünïcödé 🎬", "日本語 text", "under_score and__double", "digits 12345 and 3.14 and 1,000",
           "UPPER lower MiXeD", "~`!@#$%^&*()-_=+[]{}\\|;:'\",<.>/?", "a" * 150 + " end",
           "supercalifragilisticexpialidocious unaffable", "word " * 600, "  leading and trailing  ",
           "multiple     spaces", "\x1f unit separator", "\u00a0non-breaking space"]


def rust_and_cached(path: str, max_length: int, lowercase: bool | None = None):
    spec = json.loads(Path(path, "tokenizer.json").read_text())
    if lowercase is not None:
        spec["normalizer"]["lowercase"] = lowercase
    tokenizer = tokenize_pool.configured_tokenizer(json.dumps(spec), max_length)
    cached = CachedWordPiece.for_tokenizer(tokenizer, max_length)
    assert cached is not None
    return tokenizer, cached


def assert_same(tokenizer, cached: CachedWordPiece, texts: list[str]) -> None:
    expected = tokenize_pool.encode_rust(tokenizer, texts, None, True)
    got = cached.encode(texts, True)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key].dtype == np.int32
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def bundled_texts() -> dict[str, list[str]]:
    sets = {}
    for file in sorted(DATA.rglob("*.jsonl")):
        rows = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
        key = next((k for k in ("text", "sentence", "prompt") if rows and k in rows[0]), None)
        if key is not None:
            sets[str(file.relative_to(DATA))] = [r[key] for r in rows if isinstance(r.get(key), str)]
    return sets


def test_every_bundled_dataset_gets_the_rust_ids(minilm_path):
    sets = bundled_texts()
    if not sets:
        pytest.skip(f"no datasets under {DATA}")
    tokenizer, cached = rust_and_cached(minilm_path, 512)
    short_tokenizer, short_cached = rust_and_cached(minilm_path, 12)
    for texts in sets.values():
        for start in range(0, len(texts), 4096):  # slices as a call cuts them
            assert_same(tokenizer, cached, texts[start:start + 4096])
        assert_same(short_tokenizer, short_cached, texts[:3000])
    sst2 = sets.get("sst2/train.jsonl", [])
    assert sum(map(cached.eligible, sst2)) > 0.95 * len(sst2)  # the fast path itself did the work


@pytest.mark.parametrize("lowercase", [True, False])
@pytest.mark.parametrize("max_length", [3, 8, 512])
def test_awkward_texts_alone_and_mixed(minilm_path, lowercase, max_length):
    tokenizer, cached = rust_and_cached(minilm_path, max_length, lowercase)
    assert_same(tokenizer, cached, AWKWARD)
    for text in AWKWARD:
        assert_same(tokenizer, cached, [text])
        assert_same(tokenizer, cached, ["plain words", text, "more plain words"])
    eligible = [text for text in AWKWARD if cached.eligible(text)]
    assert "[MASK] is here" not in eligible and "café au lait" not in eligible and "new\nline" not in eligible
    assert "Hello, World!!" in eligible and "a" * 150 + " end" in eligible


def test_a_small_cache_empties_and_still_agrees(minilm_path, monkeypatch):
    tokenizer, cached = rust_and_cached(minilm_path, 64)
    monkeypatch.setattr(CachedWordPiece, "MAX_WORDS", 5)
    texts = [f"word{i} another{i % 7} plain text" for i in range(200)]
    for start in range(0, 200, 20):
        assert_same(tokenizer, cached, texts[start:start + 20])
    assert len(cached._words) < 200


def test_other_tokenizers_keep_to_rust(tiny_base, minilm_path):
    tiny = tokenize_pool.configured_tokenizer(Path(tiny_base, "tokenizer.json").read_text(), 64)
    assert CachedWordPiece.for_tokenizer(tiny, 64) is None  # byte-level BPE
    spec = json.loads(Path(minilm_path, "tokenizer.json").read_text())
    spec["pre_tokenizer"] = {"type": "Whitespace"}
    other = tokenize_pool.configured_tokenizer(json.dumps(spec), 64)
    assert CachedWordPiece.for_tokenizer(other, 64) is None
    encoder = tokenize_pool.SliceEncoder(other, token_types=True)
    assert not encoder.word_cache


def test_classifier_logits_are_the_same_with_and_without_the_cache(minilm_path):
    from textarmor.models import load_model, load_tokenizer

    model = load_model(minilm_path, num_labels=2, id2label={0: "a", 1: "b"})
    tokenizer = load_tokenizer(minilm_path)
    # A Classifier refuses NUL (textarmor.textcheck); the tokenizer-level tests above cover it.
    texts = [t for t in AWKWARD if "\x00" not in t] + [f"the film number {i} was {'great' if i % 3 else 'dull'}."
                                                       for i in range(60)]
    plain = Classifier(model, tokenizer, device="cpu", tokenize_chunk=16, tokenize_processes=0, word_cache=False)
    cached = Classifier(model, tokenizer, device="cpu", tokenize_chunk=16, tokenize_processes=0)
    assert cached._slice_encoder().word_cache and not plain._slice_encoder().word_cache
    expected = plain.logits(texts)
    np.testing.assert_array_equal(cached.logits(texts), expected)
    with Classifier(model, tokenizer, device="cpu", tokenize_chunk=16, tokenize_processes=2) as processes:
        np.testing.assert_array_equal(processes.logits(texts), expected)
        assert processes._pool is not None and processes._pool.started and processes._pool.word_cache
