"""ONNX export and the ONNX Runtime backend: parity with torch, static int8 within bounds."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from tests.conftest import synthetic_rows  # noqa: E402
from textarmor import Classifier, TextArmorConfig  # noqa: E402
from textarmor.deploy import export_onnx  # noqa: E402


@pytest.fixture(scope="module")
def onnx_dirs(tiny_trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    return export_onnx(tiny_trained, root / "fp32"), export_onnx(tiny_trained, root / "int8", quantize="int8")


def test_export_writes_a_model_dir_the_classifier_loads_with_onnx(onnx_dirs):
    fp32, int8 = onnx_dirs
    assert (fp32 / "model.onnx").exists() and not list(fp32.glob("*.safetensors"))
    assert TextArmorConfig.load(int8).onnx["quantization"] == "int8-static"
    clf = Classifier.from_pretrained(fp32)
    assert clf.backend.name == "onnx"


def test_onnx_fp32_matches_torch(tiny_trained, onnx_dirs):
    texts = [r["text"] for r in synthetic_rows(64, seed=11)] + ["great " * 200, "x"]
    torch_probs = Classifier.from_pretrained(tiny_trained, device="cpu").predict_proba(texts)
    onnx_probs = Classifier.from_pretrained(onnx_dirs[0]).predict_proba(texts)
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-4)


def test_int8_keeps_accuracy_and_is_batch_independent(tiny_trained, onnx_dirs):
    rows = synthetic_rows(200, seed=12)
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    ref = Classifier.from_pretrained(tiny_trained, device="cpu")
    int8 = Classifier.from_pretrained(onnx_dirs[1])
    ref_acc = np.mean([p.label == y for p, y in zip(ref.predict(texts), labels)])
    int8_acc = np.mean([p.label == y for p, y in zip(int8.predict(texts), labels)])
    assert int8_acc >= ref_acc - 0.02
    alone = np.stack([int8.predict_proba([t])[0] for t in texts[:10]])
    together = int8.predict_proba(texts[:10] + texts[100:150])[:10]
    np.testing.assert_allclose(alone, together, atol=1e-6)  # static ranges: batch-mates change nothing


def test_int8_quantizes_weight_matmul_inputs_and_keeps_their_outputs_fp32(onnx_dirs):
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(onnx_dirs[1] / "model.onnx")).graph
    weights = {init.name for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    linear = [n for n in graph.node if n.op_type == "MatMul" and producer.get(n.input[1]) is not None
              and producer[n.input[1]].input[0] in weights]
    assert linear, "no quantized linear layers in the int8 graph"
    for node in linear:
        assert producer[node.input[0]].op_type == "DequantizeLinear"  # activations enter as int8
        assert "QuantizeLinear" not in consumers.get(node.output[0], [])  # no re-quantization after


def test_cpu_token_budget_default_fits_the_model_length(tiny_trained):
    clf = Classifier.from_pretrained(tiny_trained, device="cpu")
    assert clf.max_tokens_per_batch == max(1024, clf.max_length)


def test_threaded_tokenisation_slices_match_one_pass(tiny_trained):
    texts = [r["text"] for r in synthetic_rows(50, seed=13)]
    one = Classifier.from_pretrained(tiny_trained, device="cpu").logits(texts)
    sliced = Classifier.from_pretrained(tiny_trained, device="cpu", tokenize_chunk=7).logits(texts)
    np.testing.assert_allclose(one, sliced, atol=1e-5)


def test_minilm_onnx_parity(minilm_path, tmp_path):
    pytest.importorskip("onnx")
    from textarmor.models import load_model, load_tokenizer

    model = load_model(minilm_path, num_labels=2, id2label={0: "negative", 1: "positive"})
    model.save_pretrained(tmp_path / "m")
    load_tokenizer(minilm_path).save_pretrained(tmp_path / "m")
    out = export_onnx(tmp_path / "m", tmp_path / "onnx")
    texts = ["a gripping film", "the plot is a mess " * 10, "fine"]
    np.testing.assert_allclose(Classifier.from_pretrained(out).logits(texts),
                               Classifier.from_pretrained(tmp_path / "m", device="cpu").logits(texts), atol=1e-4)


def test_export_refuses_existing_output(tiny_trained, tmp_path):
    from textarmor.errors import OutputExistsError

    (tmp_path / "taken").mkdir()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_onnx(tiny_trained, tmp_path / "taken")
