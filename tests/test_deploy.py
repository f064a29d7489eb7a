"""`textarmor package`: what the folder holds (an allowlist, no local paths), the model card's metadata as
huggingface_hub reads it, the checks made before anything is written, handler.py called as the Hugging Face
toolkit calls it, and the ONNX layout Optimum expects. Installing and serving a package from its own files:
tests/test_deploy_install.py."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from textarmor.classifier import Classifier
from textarmor.cli import main
from textarmor.deploy import package, render_model_card
from textarmor.deploy.model_card import epochs_table
from textarmor.errors import ModelReferenceError, ParameterError
from textarmor.model_dir import TextArmorConfig

# The shape `textarmor evaluate --report` stores (evaluation.report.summary_numbers): accuracies in percent.
ROBUSTNESS = {"clean_accuracy": 91.2, "accuracy_under_attack": {"pwws": 41.0, "textfooler": 38.5},
              "ece": 0.031, "noise_accuracy": {"0.1": 88.0}, "attack_examples": 200}


@pytest.fixture(scope="module")
def model_dir(tiny_trained, tmp_path_factory) -> Path:
    """The tiny model with robustness results and a hub base model recorded, as a real run would have."""
    target = tmp_path_factory.mktemp("card") / "sst2-tiny"
    shutil.copytree(tiny_trained, target)
    config = TextArmorConfig.load(target)
    config.robustness = ROBUSTNESS
    config.base_model = "minilm-l6"
    config.training["train_data"] = "builtin:sst2"
    config.save(target)
    return target


@pytest.fixture(scope="module")
def clf(tiny_trained):
    return Classifier.from_pretrained(tiny_trained, device="cpu")


def _card(readme: str):
    from huggingface_hub import ModelCard

    return ModelCard(readme, ignore_metadata_errors=False)  # raises on a malformed model-index


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_hf_endpoint_package_files_and_model_card(model_dir, tmp_path):
    result = package(model_dir, target="hf-endpoint", out=tmp_path / "hf", repo_id="my-org/sst2-tiny")
    assert {"config.json", "model.safetensors", "tokenizer.json", "textarmor.json", "metrics.json", "README.md",
            "handler.py", "requirements.txt", "Dockerfile"} <= set(result.files)
    assert [f for f in result.files if f.endswith(".whl")] == [f"textarmor-{result.requirement.split('==')[1]}"
                                                               "-py3-none-any.whl"]
    readme = (result.out / "README.md").read_text()
    card = _card(readme)
    data = card.data
    assert data.pipeline_tag == "text-classification" and data.library_name == "transformers"
    assert data.license == "apache-2.0" and data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.language == ["en"] and data.datasets == ["stanfordnlp/sst2"]
    metrics = {r.metric_name: r for r in data.eval_results}
    assert all(0.0 <= r.metric_value <= 1.0 for r in data.eval_results)  # one scale: fractions
    assert metrics["Accuracy"].metric_type == "accuracy" and metrics["Accuracy"].metric_value >= 0.9
    pwws = metrics["Robustness: accuracy_under_attack / pwws"]
    assert pwws.metric_type == "accuracy_under_attack" and pwws.metric_value == 0.41
    assert metrics["Robustness: noise_accuracy / 0.1"].metric_value == 0.88
    assert metrics["Robustness: ece"].metric_value == 0.031
    assert not any("attack_examples" in name for name in metrics)
    assert "| accuracy_under_attack / textfooler | 38.5 |" in readme
    epochs = json.loads((model_dir / "metrics.json").read_text())["epochs"]
    assert "| Epoch | Step | Training loss | Validation loss | Accuracy | Precision (macro) | Recall (macro) " \
           "| F1 (macro) |" in readme
    assert readme.count("\n| ") >= len(epochs) + 2
    # Usage: the repository id, and the warning that a plain pipeline skips textarmor.json.
    assert 'Classifier.from_pretrained("my-org/sst2-tiny")' in readme
    assert 'pipeline("text-classification", model="my-org/sst2-tiny")' in readme
    assert "A plain `pipeline()` ignores `textarmor.json`" in readme and "temperature" in readme
    assert 'InferenceClient(base_url=ENDPOINT_URL' in readme
    dockerfile = (result.out / "Dockerfile").read_text()
    assert '"textarmor", "serve", "/app/model"' in dockerfile and "COPY . /app/model" in dockerfile


def test_epochs_table_names_the_columns_a_log_lacks():
    table = epochs_table([{"epoch": 1.0, "step": 10, "train_loss": 0.5, "loss": 0.4, "accuracy": 0.8,
                           "macro_f1": 0.79}])
    assert "| Epoch | Step | Training loss | Validation loss | Accuracy | F1 (macro) |" in table
    assert "| 1 | 10 | 0.5 | 0.4 | 0.8 | 0.79 |" in table
    assert "Not recorded in this model's training log: Precision (macro), Recall (macro)." in table


def test_handler_called_like_the_hugging_face_toolkit(model_dir, clf, tmp_path):
    out = package(model_dir, target="hf-endpoint", out=tmp_path / "hf").out
    # The toolkit imports handler.py from the repository folder and calls EndpointHandler(path)(data).
    spec = importlib.util.spec_from_file_location("handler", out / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.EndpointHandler(path=str(out))
    texts = ["the film was great", "a dull and tedious plot"]
    answer = handler({"inputs": texts, "parameters": {"top_k": 2, "threshold": 0.6}})
    expected = clf.rank(clf.predict_proba(texts), top_k=2, threshold=0.6)
    assert [[d["label"] for d in row] for row in answer] == [[d["label"] for d in row] for row in expected]
    assert answer[0][0]["score"] == pytest.approx(expected[0][0]["score"], rel=1e-5)
    assert "uncertain" in answer[0][0]
    single = handler({"inputs": "the film was great"})  # one list per input, a single string included
    assert len(single) == 1 and single[0][0]["label"] == expected[0][0]["label"] and "uncertain" not in single[0][0]
    with pytest.raises(ValueError, match='"inputs"'):
        handler({"text": "x"})
    with pytest.raises(ValueError, match="max_inputs"):
        handler({"inputs": ["x"] * 65})


def test_azureml_package_layout(model_dir, tmp_path):
    result = package(model_dir, target="azureml", out=tmp_path / "az")
    assert {"model/model.safetensors", "model/README.md", "code/score.py", "deployment.yml", "Dockerfile",
            "environment/Dockerfile", "environment/requirements.txt"} <= set(result.files)
    assert any(f.startswith("environment/textarmor-") and f.endswith(".whl") for f in result.files)
    deployment = yaml.safe_load((result.out / "deployment.yml").read_text())
    assert deployment["code_configuration"] == {"code": "./code", "scoring_script": "score.py"}
    assert (result.out / deployment["model"]["path"] / "config.json").exists()
    assert (result.out / deployment["environment"]["build"]["path"] / "Dockerfile").exists()
    assert deployment["endpoint_name"] == "sst2-tiny"
    assert "azureml" in (result.out / "environment" / "requirements.txt").read_text()
    assert "COPY model /app/model" in (result.out / "Dockerfile").read_text()
    assert "`pip install -r environment/requirements.txt`" in (result.out / "model" / "README.md").read_text()


def test_package_ships_an_allowlist_and_never_follows_links_out(model_dir, tmp_path, capsys):
    source = tmp_path / "model"
    shutil.copytree(model_dir, source)
    outside = tmp_path / "secret.txt"
    outside.write_text("the content of a file outside the model folder")
    (source / ".env").write_text("HF_TOKEN=hf_secret\n")
    (source / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (source / ".git").mkdir()
    (source / "checkpoint-10").mkdir()
    (source / "checkpoint-10" / "optimizer.pt").write_bytes(b"pickle")
    (source / "pytorch_model.bin").write_bytes(b"pickle")
    (source / "README.md").write_text("an old card")
    (source / "notes.txt").symlink_to(outside)
    result = package(source, target="hf-endpoint", out=tmp_path / "pkg")
    shipped = set(result.files)
    assert not {".env", "id_rsa", ".git", "notes.txt", "pytorch_model.bin"} & shipped
    assert not [f for f in shipped if f.startswith(("checkpoint", "."))]
    assert set(result.left_out) >= {".env", "id_rsa", ".git/", "checkpoint-10/", "notes.txt", "pytorch_model.bin"}
    everything = b"".join(p.read_bytes() for p in result.out.rglob("*") if p.is_file() and p.suffix != ".whl")
    assert b"hf_secret" not in everything and b"outside the model folder" not in everything
    assert b"an old card" not in everything  # the card is written, never copied

    # A model file that links out of the folder is refused (nothing followed, nothing written) ...
    (source / "vocab.txt").symlink_to(outside)
    with pytest.raises(SystemExit) as refused:
        main(["package", str(source), "--target", "hf-endpoint", "--out", str(tmp_path / "pkg2")])
    assert refused.value.code == 2 and "vocab.txt" in capsys.readouterr().err
    assert not (tmp_path / "pkg2").exists()
    # ... one that links inside it is copied as a file.
    (source / "vocab.txt").unlink()
    (source / "kept").mkdir()
    shutil.move(source / "metrics.json", source / "kept" / "metrics.json")
    (source / "metrics.json").symlink_to(Path("kept") / "metrics.json")
    linked = package(source, target="hf-endpoint", out=tmp_path / "pkg3").out
    assert not (linked / "metrics.json").is_symlink()
    assert (linked / "metrics.json").read_text() == (source / "kept" / "metrics.json").read_text()


def test_package_checks_the_folder_loads_and_keeps_a_good_package(model_dir, tmp_path, capsys):
    out = tmp_path / "pkg"
    package(model_dir, target="hf-endpoint", out=out)
    before = _tree_digest(out)

    def refused(source: Path, *words: str) -> None:
        with pytest.raises(SystemExit) as done:
            main(["package", str(source), "--target", "hf-endpoint", "--out", str(out), "--overwrite"])
        err = capsys.readouterr().err
        assert done.value.code == 2 and all(w in err for w in words), err
        assert len(err.strip().splitlines()) == 1
        assert _tree_digest(out) == before  # the earlier package is untouched
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".pkg")] == []  # no staging left behind

    truncated = tmp_path / "truncated"
    shutil.copytree(model_dir, truncated)
    weights = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    refused(truncated, "model.safetensors", "truncated")

    no_config = tmp_path / "no-config"
    shutil.copytree(model_dir, no_config)
    (no_config / "config.json").unlink()
    refused(no_config, "config.json")

    relabelled = tmp_path / "relabelled"
    shutil.copytree(model_dir, relabelled)
    config = TextArmorConfig.load(relabelled)
    config.labels = list(reversed(config.labels))
    config.save(relabelled)
    refused(relabelled, "labels", "id2label")

    broken_tokenizer = tmp_path / "broken-tokenizer"
    shutil.copytree(model_dir, broken_tokenizer)
    (broken_tokenizer / "tokenizer.json").write_text("{not json")
    refused(broken_tokenizer, "tokenizer")

    with pytest.raises(ParameterError, match="overlaps the model folder"):
        package(model_dir, target="hf-endpoint", out=model_dir / "pkg", overwrite=True)


def test_package_cli(model_dir, tmp_path, capsys):
    out = tmp_path / "pkg"
    with pytest.raises(SystemExit) as done:
        main(["package", str(model_dir), "--target", "hf-endpoint", "--out", str(out)])
    assert done.value.code in (0, None) and (out / "handler.py").exists()
    assert "handler.py" in capsys.readouterr().out
    with pytest.raises(SystemExit) as again:
        main(["package", str(model_dir), "--target", "hf-endpoint", "--out", str(out)])
    assert again.value.code == 2 and "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        main(["package", str(model_dir), "--target", "sagemaker", "--out", str(tmp_path / "x")])
    assert bad.value.code == 2 and "hf-endpoint" in capsys.readouterr().err
    (tmp_path / "nosafe").mkdir()
    (tmp_path / "nosafe" / "config.json").write_text("{}")
    with pytest.raises(SystemExit) as unsafe:
        main(["package", str(tmp_path / "nosafe"), "--target", "azureml", "--out", str(tmp_path / "y")])
    assert unsafe.value.code == 2 and "safetensors" in capsys.readouterr().err
    with pytest.raises(SystemExit) as push:
        main(["package", str(model_dir), "--target", "azureml", "--out", str(tmp_path / "z"),
              "--push-to-hub", "my-org/x"])
    assert push.value.code == 2 and "hf-endpoint" in capsys.readouterr().err


def test_nothing_package_writes_holds_a_local_path(model_dir, tiny_base, tmp_path):
    source = tmp_path / "private-run"
    shutil.copytree(model_dir, source)
    config = TextArmorConfig.load(source)
    config.base_model = str(tiny_base)  # trained from a local folder
    config.training.update(train_data=str(tmp_path / "alice" / "train.jsonl"), eval_data="/home/alice/dev.jsonl")
    config.save(source)
    for target in ("hf-endpoint", "azureml"):
        out = package(source, target=target, out=tmp_path / target).out
        for path in out.rglob("*"):
            if path.is_file() and path.suffix not in (".whl", ".safetensors"):
                text = path.read_text(encoding="utf-8")
                for local in (str(tmp_path), str(tiny_base), "/home/alice", os.path.expanduser("~") + "/"):
                    assert local not in text, f"{path.relative_to(out)} holds {local}"
        shipped = json.loads(next(out.rglob("textarmor.json")).read_text())
        assert shipped["training"]["train_data"] == "train.jsonl" and shipped["base_model"] == tiny_base.name
        assert shipped["temperature"] == config.temperature and shipped["labels"] == config.labels


def test_model_card_escapes_the_name_and_checks_licence_and_language(model_dir, tmp_path):
    name = 'Evil <script>alert(1)</script> *bold* [link](http://x) `code` | "quoted"'
    card_text = render_model_card(model_dir, name, repo_id="my-org/evil")
    body = card_text.split("\n---\n", 1)[1]  # the Markdown the Hub renders (the YAML above is data)
    title = next(line for line in body.splitlines() if line.startswith("# "))
    assert "<script>" not in body and "&lt;script&gt;" in title
    assert r"\*bold\*" in title and r"\[link\]" in title and r"\`code\`" in title and r"\|" in title
    assert _card(card_text).data.model_name == name  # YAML keeps the name exactly
    with pytest.raises(ParameterError, match="one line"):
        render_model_card(model_dir, "two\nlines")
    with pytest.raises(ParameterError, match="repo_id"):
        render_model_card(model_dir, "x", repo_id="not a repo id")

    with pytest.raises(ParameterError, match="licence identifier"):
        render_model_card(model_dir, "x", license="my-own")
    with pytest.raises(ParameterError, match="license_name"):
        render_model_card(model_dir, "x", license="other")
    other = _card(render_model_card(model_dir, "x", license="other", license_name="acme-1.0",
                                    license_link="LICENSE")).data
    assert (other.license, other.license_name, other.license_link) == ("other", "acme-1.0", "LICENSE")
    with pytest.raises(ParameterError, match="ISO 639-1"):
        render_model_card(model_dir, "x", language=["English"])
    assert _card(render_model_card(model_dir, "x", language=["de", "fr"])).data.language == ["de", "fr"]

    unknown = tmp_path / "unknown-base"
    shutil.copytree(model_dir, unknown)
    config = TextArmorConfig.load(unknown)
    config.base_model, config.training["train_data"] = None, None
    config.save(unknown)
    result = package(unknown, target="hf-endpoint", out=tmp_path / "pkg")
    data = _card((result.out / "README.md").read_text()).data
    assert data.license == "unknown" and data.language is None  # never guessed
    assert any("--language" in note for note in result.notes)


def test_model_card_shows_the_given_example_and_no_local_paths(model_dir, tmp_path):
    source = tmp_path / "card-model"
    shutil.copytree(model_dir, source)
    config = TextArmorConfig.load(source)
    config.training.update(train_data="/home/alice/private/train.jsonl", eval_data="/home/alice/private/dev.jsonl")
    config.save(source)
    example = "I can't help with \"that\" request."
    card = render_model_card(source, "refusals", example=example)

    assert "/home/alice" not in card
    assert "`dev.jsonl`" in card and "`train.jsonl`" in card
    assert f"clf.predict([{json.dumps(example)}])" in card
    assert 'Classifier.from_pretrained("your-org/refusals")' in card and "--repo-id" in card
    curl = next(line for line in card.splitlines() if line.strip().startswith("-d '"))
    body = subprocess.run(["bash", "-c", f"printf '%s' {curl.strip()[3:]}"], capture_output=True, text=True).stdout
    assert json.loads(body)["inputs"] == example  # the shell line sends the example intact, quotes included


# ------------------------------------------------------------------ ONNX exports
@pytest.fixture(scope="module")
def onnx_int8(tiny_trained, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from textarmor.deploy import export_onnx

    return export_onnx(tiny_trained, tmp_path_factory.mktemp("onnx") / "tiny-int8", quantize="int8")


def test_onnx_export_keeps_optimums_layout(onnx_int8):
    """What optimum.onnxruntime.ORTModelForSequenceClassification reads: the file model.onnx beside config.json
    (with id2label) and the tokenizer; int64 inputs input_ids / attention_mask (token_type_ids for BERT-style
    tokenizers) over (batch_size, sequence_length); one float output logits of shape (batch_size, num_labels)."""
    onnx = pytest.importorskip("onnx")
    assert {"model.onnx", "config.json", "tokenizer.json", "textarmor.json"} <= {p.name for p in onnx_int8.iterdir()}
    graph = onnx.load(str(onnx_int8 / "model.onnx"), load_external_data=False).graph
    int64 = onnx.TensorProto.INT64
    inputs = {i.name: i.type.tensor_type for i in graph.input}
    assert set(inputs) == {"input_ids", "attention_mask"}  # RoBERTa's tokenizer makes no token_type_ids
    for tensor in inputs.values():
        assert tensor.elem_type == int64
        assert [d.dim_param for d in tensor.shape.dim] == ["batch_size", "sequence_length"]
    (output,) = graph.output
    num_labels = len(json.loads((onnx_int8 / "config.json").read_text())["id2label"])
    assert output.name == "logits" and output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = output.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch_size" and dims[1].dim_value == num_labels


def test_onnx_int8_export_packages_and_serves_through_handler(onnx_int8, tmp_path):
    result = package(onnx_int8, target="hf-endpoint", out=tmp_path / "hf", repo_id="my-org/tiny-int8")
    assert "model.onnx" in result.files and not [f for f in result.files if f.endswith(".safetensors")]
    assert result.requirement.startswith("textarmor[serve,onnx]==")
    readme = (result.out / "README.md").read_text()
    assert "onnx" in _card(readme).data.tags and "int8-static quantized ONNX export" in readme
    assert 'ORTModelForSequenceClassification.from_pretrained("my-org/tiny-int8")' in readme
    assert json.loads((result.out / "textarmor.json").read_text())["onnx"]["exported_from"] == "tiny"
    spec = importlib.util.spec_from_file_location("handler_onnx", result.out / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.EndpointHandler(path=str(result.out))
    direct = Classifier.from_pretrained(onnx_int8)
    assert handler.classifier.backend.name == "onnx"
    answer = handler({"inputs": ["the film was great"], "parameters": {"top_k": 2}})
    expected = direct.rank(direct.predict_proba(["the film was great"]), top_k=2)
    assert [d["label"] for d in answer[0]] == [d["label"] for d in expected[0]]
    assert answer[0][0]["score"] == pytest.approx(expected[0][0]["score"], rel=1e-6)
    truncated = tmp_path / "truncated-onnx"
    shutil.copytree(onnx_int8, truncated)
    data = (truncated / "model.onnx").read_bytes()
    (truncated / "model.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelReferenceError, match="model.onnx"):
        package(truncated, target="hf-endpoint", out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_plain_pipeline_loads_the_package_but_not_its_calibration(model_dir, tmp_path):
    """What the card warns about, checked: transformers' pipeline() reads the packaged folder, with raw scores."""
    from transformers import pipeline

    source = tmp_path / "calibrated"
    shutil.copytree(model_dir, source)
    config = TextArmorConfig.load(source)
    config.temperature = 0.5
    config.save(source)
    out = package(source, target="hf-endpoint", out=tmp_path / "hf").out
    text = "the film was great"
    plain = pipeline("text-classification", model=str(out), device="cpu")([text], top_k=None)[0]
    clf = Classifier.from_pretrained(out, device="cpu")
    raw = Classifier.from_pretrained(out, device="cpu")
    raw.config.temperature = 1.0
    by_label = {d["label"]: d["score"] for d in plain}
    assert by_label == pytest.approx(dict(zip(raw.labels, raw.predict_proba([text])[0].tolist())), rel=1e-5)
    assert by_label != pytest.approx(dict(zip(clf.labels, clf.predict_proba([text])[0].tolist())), rel=1e-3)
