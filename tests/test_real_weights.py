"""The bundled all-MiniLM-L6-v2: real pretrained weights through the same paths as the tiny model."""
from __future__ import annotations

import json

import pytest

from tests.conftest import SHARED_DATA, write_jsonl

pytestmark = pytest.mark.real_weights


@pytest.fixture(scope="module")
def sst2_small(tmp_path_factory):
    from textarmor.data import builtin_path

    root = tmp_path_factory.mktemp("sst2")
    train = [json.loads(line) for line in builtin_path("sst2").read_text().splitlines()[:400]]
    dev = [json.loads(line) for line in builtin_path("sst2-dev").read_text().splitlines()[:200]]
    return write_jsonl(root / "train.jsonl", train), write_jsonl(root / "dev.jsonl", dev)


def test_short_minilm_finetune_beats_70_percent(sst2_small, tmp_path):
    from textarmor import Classifier, evaluate, train

    result = train(sst2_small[0], eval_data=sst2_small[1], out_dir=tmp_path / "minilm", model="minilm-l6",
                   epochs=3, learning_rate=1e-4, batch_size=16, max_length=64, seed=0, progress=False)
    metrics = evaluate(result.model_dir, sst2_small[1])
    assert metrics["accuracy"] > 0.70, metrics["accuracy"]
    clf = Classifier.from_pretrained(result.model_dir, device="cpu")
    assert clf(["an utterly charming and funny film", "a dull, lifeless mess"], top_k=1)[0]["label"] == "positive"


def test_minilm_alias_loads_with_a_new_head():
    from textarmor.models import load_model

    model = load_model("minilm-l6", num_labels=3, id2label={0: "a", 1: "b", 2: "c"})
    assert model.config.num_labels == 3 and model.config.model_type == "bert"


def test_shared_data_is_readable():
    if not SHARED_DATA.exists():
        pytest.skip("shared/data is not beside this checkout")
    from textarmor.data import load_dataset

    ds, _ = load_dataset(SHARED_DATA / "trec" / "test.jsonl")
    assert ds.num_rows == 500 and len(set(ds["label"])) == 6
