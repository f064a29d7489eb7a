"""Packed passes: rows laid end to end without padding score as padded batches do, and the feeder packs
only the passes whose rows all fit the kernel (on CUDA: test_short_attention's classifier test)."""
import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tests.test_classifier import QueueingBackend
from textarmor import Classifier
from textarmor.backends import packed, tokenize_pool
from textarmor.backends import short_attention as sa
from textarmor.backends.torch_backend import TorchBackend
from textarmor.errors import ParameterError

TEXTS = ["the film was great", "a dull , tedious plot and a bland cast , sadly", "superb", "not bad at all"]


@pytest.mark.parametrize("which", ["tiny_base", "minilm_path"])
def test_a_packed_pass_scores_as_the_padded_batch(which, request):
    path = request.getfixturevalue(which)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, attn_implementation="sdpa").eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    pairs = ["and the cast", "fine", "the end", "x"] if which == "minilm_path" else None  # token types too
    encoded = tokenizer(TEXTS, pairs, return_attention_mask=False)
    flat = tokenize_pool.pack(encoded["input_ids"], encoded.get("token_type_ids"))
    padded = tokenize_pool.pad_rows(flat, np.arange(len(TEXTS)), tokenizer.pad_token_id)
    with torch.inference_mode():
        reference = model(**{k: torch.from_numpy(v) for k, v in padded.items()}).logits
        model.set_attn_implementation(sa.register())  # packed rows need attention that keeps to each row
        arrays = {k: torch.from_numpy(v) for k, v in packed.host_arrays(model.config, flat).items()}
        logits = packed.packed_logits(model, arrays, int(flat["lengths"].max()))
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-5)


def test_positions_restart_at_every_row():
    class Config:
        model_type, pad_token_id = "roberta", 1

    flat = {"input_ids": np.arange(6, dtype=np.int32), "lengths": np.array([2, 3, 1], dtype=np.int32)}
    arrays = packed.host_arrays(Config, flat)
    assert arrays["position_ids"].tolist() == [2, 3, 2, 3, 4, 2]  # RoBERTa counts from padding_idx + 1
    assert arrays["starts"].tolist() == [0, 2, 5, 6]
    Config.model_type = "bert"
    assert packed.host_arrays(Config, flat)["position_ids"].tolist() == [0, 1, 0, 1, 2, 0]


class PackingBackend(QueueingBackend):
    """Records padded and packed passes; each row's logits are a function of its own ids."""

    name, packs_up_to = "packing", 16

    def __init__(self):
        super().__init__()
        self.packed = []

    def submit_packed(self, encoded: dict):
        lengths = encoded["lengths"]
        self.packed.append(lengths.copy())
        rows = np.repeat(np.arange(len(lengths)), lengths)
        sums = np.bincount(rows, weights=encoded["input_ids"], minlength=len(lengths))
        return np.stack([sums, lengths], axis=1).astype(np.float32)



def test_the_feeder_packs_passes_of_short_rows_and_pads_the_rest(tiny_base):
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base)
    texts = [f"{'good ' * (i % 9)}plot {i}" for i in range(60)]  # 6 to 38 tokens
    kwargs = dict(model_config=model.config, tokenize_processes=0, max_tokens_per_batch=128, max_batch_size=64)
    mixed = Classifier(None, tokenizer, backend=PackingBackend(), tokenize_chunk=8, **kwargs)
    plain = Classifier(None, tokenizer, backend=PackingBackend(), tokenize_chunk=1000, **kwargs)
    plain.backend.packs_up_to = 0
    np.testing.assert_array_equal(mixed.logits(texts), plain.logits(texts))  # every row its own scores
    backend = mixed.backend
    assert backend.packed and backend.shapes
    assert all(lengths.max() <= 16 and lengths.sum() <= 128 for lengths in backend.packed)
    assert all(width > 16 for _, width in backend.shapes)  # the padded passes
    assert sum(len(lengths) for lengths in backend.packed) + sum(rows for rows, _ in backend.shapes) == 60


def test_packing_needs_the_kernel(tiny_base):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base)
    with pytest.raises(ParameterError, match="packed=True needs the short-row kernel"):
        TorchBackend(model, device="cpu", packed=True)
    assert TorchBackend(model, device="cpu").packs_up_to == 0


def test_length_bucket_is_the_kernels_tile():
    assert [packed.length_bucket(n) for n in (1, 5, 16, 17, 32, 33, 64)] == [16, 16, 16, 32, 32, 64, 64]
