"""Train, save, load, predict and evaluate the tiny RoBERTa on a task it can learn."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import synthetic_rows
from textarmor import Classifier, TextArmorConfig, evaluate


def test_training_writes_a_complete_model_dir(tiny_trained):
    files = {p.name for p in tiny_trained.iterdir()}
    assert {"config.json", "model.safetensors", "textarmor.json", "metrics.json", "tokenizer.json"} <= files
    assert not any(name.endswith((".bin", ".pt")) for name in files)
    config = TextArmorConfig.load(tiny_trained)
    assert config.labels == ["negative", "positive"]
    assert config.training["method"] == "standard"
    hf_config = json.loads((tiny_trained / "config.json").read_text())
    assert hf_config["id2label"] == {"0": "negative", "1": "positive"}
    epochs = json.loads((tiny_trained / "metrics.json").read_text())["epochs"]
    assert [round(e["epoch"]) for e in epochs] == list(range(1, len(epochs) + 1))
    assert config.metrics["eval"]["accuracy"] == max(e["accuracy"] for e in epochs)
    assert not tiny_trained.with_name(tiny_trained.name + ".partial").exists()


def test_trained_tiny_model_learns_the_task(tiny_trained, synthetic_files):
    metrics = evaluate(tiny_trained, synthetic_files[1])
    assert metrics["accuracy"] >= 0.9
    assert metrics["n"] == 80
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 80
    assert 0.0 <= metrics["ece"] <= 1.0


def test_loaded_classifier_matches_evaluation(tiny_trained):
    clf = Classifier.from_pretrained(tiny_trained, device="cpu")
    rows = synthetic_rows(40, seed=7)
    probs = clf.predict_proba([r["text"] for r in rows])
    assert probs.shape == (40, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    preds = clf.predict([r["text"] for r in rows])
    assert [p.label for p in preds] == [clf.labels[i] for i in probs.argmax(axis=1)]
    out = clf([r["text"] for r in rows[:3]])
    assert isinstance(out, list) and len(out) == 3 and set(out[0]) == {"label", "score"}


def test_evaluate_with_threshold_reports_coverage(tiny_trained, synthetic_files):
    metrics = evaluate(tiny_trained, synthetic_files[1], threshold=0.99)
    assert 0.0 <= metrics["coverage"] <= 1.0
    assert metrics["uncertain"] == round((1 - metrics["coverage"]) * metrics["n"])


def test_sentence_pairs_train_and_predict(tiny_base, tmp_path):
    from tests.conftest import write_jsonl
    from textarmor import train

    rows = []
    for i, r in enumerate(synthetic_rows(120, seed=3)):
        same = i % 2 == 0
        rows.append({"premise": r["text"], "hypothesis": r["text"] if same else "entirely different words here",
                     "label": "entailment" if same else "neutral"})
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    result = train(data, out_dir=tmp_path / "nli", model=str(tiny_base), epochs=1, batch_size=16,
                   text_column="premise", text_pair_column="hypothesis", progress=False)
    assert TextArmorConfig.load(result.model_dir).text_pair is True
    clf = Classifier.from_pretrained(result.model_dir, device="cpu")
    probs = clf.predict_proba([r["premise"] for r in rows[:6]], [r["hypothesis"] for r in rows[:6]])
    assert probs.shape == (6, 2)
    single = clf.predict_proba([r["premise"] for r in rows[:6]])
    assert not np.allclose(probs, single)  # the second text reaches the model


def test_existing_output_is_refused_then_replaced_only_on_success(tiny_base, synthetic_files, tmp_path):
    from textarmor import train
    from textarmor.errors import ModelReferenceError, OutputExistsError

    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("earlier result")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        train(synthetic_files[0], out_dir=out, model=str(tiny_base), epochs=1, progress=False)
    with pytest.raises(ModelReferenceError):  # fails after the run started
        train(synthetic_files[0], out_dir=out, model=str(tmp_path / "no-such-model"), epochs=1, progress=False,
              overwrite=True)
    assert (out / "keep.txt").read_text() == "earlier result"
