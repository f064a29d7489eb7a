"""The short-row attention kernel: where it applies, what it falls back to, and its arithmetic.

The kernel itself needs Triton on CUDA (or Triton's interpreter: ``TRITON_INTERPRET=1``); without either,
its arithmetic test is skipped and the fallback tests still run.
"""
import os

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from textarmor.backends import short_attention as sa
from textarmor.backends.tokenize_pool import plan_slices
from textarmor.backends.torch_backend import TorchBackend
from textarmor.errors import ParameterError

KERNEL_DEVICE = ("cuda" if torch.cuda.is_available() and sa.triton_available()
                 else "cpu" if os.environ.get("TRITON_INTERPRET") == "1" and sa.triton_available() else None)


def test_key_masks_the_kernel_serves():
    keys = torch.tensor([[True, True, False], [True, False, False]])
    assert sa.key_mask_of(None, 2, 3) is None
    assert torch.equal(sa.key_mask_of(keys, 2, 3), keys)
    assert torch.equal(sa.key_mask_of(keys[:, None, None, :], 2, 3), keys)
    per_query = keys[:, None, :, None] & keys[:, None, None, :]  # (batch, 1, queries, keys)
    assert sa.key_mask_of(per_query, 2, 3) is False
    assert sa.key_mask_of(torch.zeros(2, 1, 1, 3), 2, 3) is False  # additive float masks go to SDPA
    assert sa.key_mask_of(keys, 2, 4) is False


def test_on_cpu_the_registered_attention_is_sdpa(tiny_base):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base, attn_implementation="sdpa").eval()
    ids = torch.randint(5, 200, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 5:] = False
    with torch.inference_mode():
        reference = model(input_ids=ids, attention_mask=mask[:, None, None, :]).logits
        model.set_attn_implementation(sa.register())
        query = torch.zeros(3, 2, 9, 16)
        assert not sa.serves(model, query, query, mask, 0.0, {})  # a CPU tensor: the kernel is CUDA's
        switched = model(input_ids=ids, attention_mask=mask[:, None, None, :]).logits
    torch.testing.assert_close(switched, reference)


def test_asking_for_the_kernel_without_cuda_says_what_it_needs(tiny_base):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base)
    with pytest.raises(ParameterError, match="CUDA device and Triton"):
        TorchBackend(model, device="cpu", short_attention=True)
    assert TorchBackend(model, device="cpu").short_attention is False


@pytest.mark.skipif(KERNEL_DEVICE is None, reason="needs Triton on CUDA, or TRITON_INTERPRET=1 with Triton")
@pytest.mark.parametrize("length, head_dim", [(1, 16), (14, 32), (33, 64), (64, 32)])
def test_the_kernel_matches_sdpa(length, head_dim):
    torch.manual_seed(length)
    batch, heads = 3, 4
    # (batch, heads, length, head_dim) views of one (batch, length, 3, heads, head_dim) projection, as the
    # attention modules pass them
    qkv = torch.randn(batch, length, 3, heads, head_dim, device=KERNEL_DEVICE, dtype=torch.float32)
    query, key, value = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    lengths = torch.tensor([length, max(1, length // 2), 1], device=KERNEL_DEVICE)
    keys = torch.arange(length, device=KERNEL_DEVICE)[None] < lengths[:, None]
    for mask in (keys, None):
        out = sa.short_attention(query, key, value, mask)
        reference = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=None if mask is None else mask[:, None, None, :]).transpose(1, 2)
        assert out.shape == (batch, length, heads, head_dim) and out.is_contiguous()
        torch.testing.assert_close(out, reference, atol=2e-3, rtol=2e-3)  # tf32 products on a GPU


def test_the_first_slices_ramp_up():
    order = np.arange(100)
    chars = np.full(100, 10)
    slices = plan_slices(order, chars, max_texts=16, ramp=3)
    assert [len(s) for s in slices[:5]] == [2, 4, 8, 16, 16]
    assert np.array_equal(np.concatenate(slices), order)
    capped = plan_slices(order, chars, max_texts=16, max_chars=80, ramp=2)  # the ramp shrinks both caps
    assert [len(s) for s in capped[:4]] == [2, 4, 8, 8]
    assert [len(s) for s in plan_slices(order, chars, max_texts=16)] == [16] * 6 + [4]


@pytest.mark.skipif(not (torch.cuda.is_available() and sa.triton_available()), reason="needs CUDA and Triton")
def test_a_cuda_classifier_scores_the_same_with_the_kernel_and_packed(tiny_base):
    from transformers import AutoTokenizer

    from textarmor import Classifier

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    texts = ["the film was great", "a dull , tedious plot and a bland cast", "superb"] * 50 + ["x " * 80]
    scores = {}
    for kernel, packed in ((False, False), (True, False), (True, True)):  # SDPA; the kernel; packed passes
        model = AutoModelForSequenceClassification.from_pretrained(tiny_base, attn_implementation="sdpa")
        backend = TorchBackend(model, device="cuda", dtype="float16", short_attention=kernel, packed=packed)
        assert backend.short_attention is kernel
        scores[kernel, packed] = Classifier(model, tokenizer, backend=backend, tokenize_chunk=16).predict_proba(texts)
    np.testing.assert_allclose(scores[True, False], scores[False, False], atol=5e-3)
    np.testing.assert_allclose(scores[True, True], scores[False, False], atol=5e-3)


@pytest.mark.skipif(KERNEL_DEVICE is None, reason="needs Triton on CUDA, or TRITON_INTERPRET=1 with Triton")
def test_packed_rows_attend_within_their_row_as_the_reference_does():
    torch.manual_seed(0)
    heads, head_dim, lengths = 2, 32, [5, 1, 17, 9]
    starts = torch.tensor([0, *np.cumsum(lengths)], dtype=torch.int32, device=KERNEL_DEVICE)
    total = int(starts[-1])
    qkv = torch.randn(1, total, 3, heads, head_dim, device=KERNEL_DEVICE, dtype=torch.float32)
    query, key, value = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    out = sa.varlen_attention(query, key, value, starts, max(lengths))
    reference = sa.varlen_reference(query, key, value, starts)
    assert out.shape == (1, total, heads, head_dim) and out.is_contiguous()
    torch.testing.assert_close(out, reference, atol=2e-3, rtol=2e-3)
    # each row alone, through the padded kernel's reference: packing changes nothing
    for b, n in enumerate(lengths):
        rows = slice(int(starts[b]), int(starts[b]) + n)
        alone = torch.nn.functional.scaled_dot_product_attention(query[:, :, rows], key[:, :, rows],
                                                                 value[:, :, rows]).transpose(1, 2)
        torch.testing.assert_close(reference[:, rows], alone, atol=1e-5, rtol=1e-5)
