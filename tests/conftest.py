"""Shared fixtures: a tiny random RoBERTa with its own small BPE tokenizer, a synthetic task it can
learn in seconds, and the bundled MiniLM for the few real-weight tests."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POSITIVE = ["great", "wonderful", "superb", "delightful", "brilliant", "moving", "charming", "excellent"]
NEGATIVE = ["awful", "boring", "dreadful", "tedious", "clumsy", "bland", "terrible", "dull"]
FILLER = ["the", "film", "was", "plot", "acting", "really", "quite", "story", "and", "a", "movie", "cast",
          "of", "ending", "music", "script"]


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    """Sentiment by one keyword among filler words: separable, so a tiny model must learn it."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        words = rng.sample(FILLER, rng.randint(3, 9))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label == "positive" else NEGATIVE))
        rows.append({"text": " ".join(words), "label": label})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """An untrained 2-layer RoBERTa (hidden 32) with a 400-token byte-level BPE tokenizer, saved as a
    model folder that any `--model` option accepts."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

    root = tmp_path_factory.mktemp("tiny-roberta")
    corpus = [r["text"] for r in synthetic_rows(400)] + [
        json.loads(line)["text"] for line in (Path(__file__).parents[1] / "src/textarmor/data/sst2_dev.jsonl")
        .read_text().splitlines()[:300]]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe._tokenizer.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                     pad_token="<pad>", unk_token="<unk>", mask_token="<mask>", model_max_length=128)
    tokenizer.save_pretrained(root)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=0, eos_token_id=2, num_labels=2)
    import torch

    with torch.random.fork_rng():  # the same weights whichever tests ran first
        torch.manual_seed(1)
        model = RobertaForSequenceClassification(config)
    model.save_pretrained(root, safe_serialization=True)
    return root


@pytest.fixture(scope="session")
def synthetic_files(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    return (write_jsonl(root / "train.jsonl", synthetic_rows(320, seed=1)),
            write_jsonl(root / "dev.jsonl", synthetic_rows(80, seed=2)))


@pytest.fixture(scope="session")
def tiny_trained(tiny_base, synthetic_files, tmp_path_factory) -> Path:
    """The tiny RoBERTa fine-tuned on the synthetic task: a complete textarmor model directory."""
    from textarmor import train

    train_file, dev_file = synthetic_files
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(train_file, eval_data=dev_file, out_dir=out, model=str(tiny_base), epochs=6, learning_rate=3e-3,
          batch_size=16, max_length=32, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from textarmor.models import ALIASES

    path = ALIASES["minilm-l6"].path()
    if path is None:
        pytest.skip("minilm-l6 is not installed (pip install 'textarmor[minilm]')")
    return str(path)
