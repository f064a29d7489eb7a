"""`textarmor package`: the folder's files, the model card, handler.py called as the Hugging Face
toolkit calls it, and score.py served by Azure's own local server (azmlinfsrv) over HTTP."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from textarmor.classifier import Classifier
from textarmor.cli import main
from textarmor.deploy import package
from textarmor.deploy.model_card import epochs_table
from textarmor.model_dir import TextArmorConfig

SRC = Path(__file__).resolve().parents[1] / "src"
# The shape `textarmor evaluate --report` stores (evaluation.report.summary_numbers).
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


def _front_matter(readme: str) -> dict:
    head, sep, _ = readme.removeprefix("---\n").partition("\n---\n")
    assert sep, "the card starts with a YAML block"
    return yaml.safe_load(head)


def test_hf_endpoint_package_files_and_model_card(model_dir, tmp_path):
    result = package(model_dir, target="hf-endpoint", out=tmp_path / "hf")
    assert {"config.json", "model.safetensors", "tokenizer.json", "textarmor.json", "metrics.json", "README.md",
            "handler.py", "requirements.txt", "Dockerfile"} <= set(result.files)
    readme = (result.out / "README.md").read_text()
    meta = _front_matter(readme)
    assert meta["pipeline_tag"] == "text-classification" and meta["library_name"] == "transformers"
    assert meta["license"] == "apache-2.0" and meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["datasets"] == ["stanfordnlp/sst2"]
    metrics = {m["name"]: m for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert metrics["Accuracy"]["type"] == "accuracy" and 0.9 <= metrics["Accuracy"]["value"] <= 1.0
    robust = metrics["Robustness: accuracy_under_attack / pwws"]
    assert robust == {"type": "accuracy_under_attack", "value": 41.0,
                      "name": "Robustness: accuracy_under_attack / pwws"}
    assert metrics["Robustness: noise_accuracy / 0.1"]["value"] == 88.0
    assert not any("attack_examples" in name for name in metrics)
    assert "| accuracy_under_attack / textfooler | 38.5 |" in readme
    epochs = json.loads((model_dir / "metrics.json").read_text())["epochs"]
    assert "| Epoch | Step | Training loss | Validation loss | Accuracy | Precision (macro) | Recall (macro) " \
           "| F1 (macro) |" in readme
    assert readme.count("\n| ") >= len(epochs) + 2
    assert "Not recorded" not in readme
    requirements = (result.out / "requirements.txt").read_text()
    assert "textarmor[serve]==" in requirements
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
    single = handler({"inputs": "the film was great"})
    assert len(single) == 1 and single[0]["label"] == expected[0][0]["label"] and "uncertain" not in single[0]
    with pytest.raises(ValueError, match='"inputs"'):
        handler({"text": "x"})
    with pytest.raises(ValueError, match="max_inputs"):
        handler({"inputs": ["x"] * 65})


def test_azureml_package_layout(model_dir, tmp_path):
    result = package(model_dir, target="azureml", out=tmp_path / "az")
    assert {"model/model.safetensors", "model/README.md", "code/score.py", "environment.yml", "deployment.yml",
            "requirements.txt", "Dockerfile"} <= set(result.files)
    deployment = yaml.safe_load((result.out / "deployment.yml").read_text())
    assert deployment["code_configuration"] == {"code": "./code", "scoring_script": "score.py"}
    assert (result.out / deployment["model"]["path"] / "config.json").exists()
    assert (result.out / deployment["environment"]["conda_file"]).exists()
    assert deployment["endpoint_name"] == "sst2-tiny"
    env = yaml.safe_load((result.out / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(p.startswith("azureml-inference-server-http") for p in pip)
    assert "COPY model /app/model" in (result.out / "Dockerfile").read_text()


def test_score_py_served_by_azmlinfsrv(model_dir, clf, tmp_path):
    server = Path(sys.executable).parent / "azmlinfsrv"
    if importlib.util.find_spec("azureml_inference_server_http") is None or not server.exists():
        pytest.skip("azmlinfsrv missing: pip install 'textarmor[azureml]' (azureml-inference-server-http)")
    import httpx

    out = package(model_dir, target="azureml", out=tmp_path / "az").out
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "AZUREML_MODEL_DIR": str(out), "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([str(server), "--entry_script", str(out / "code" / "score.py"), "--port", str(port)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # readiness: the server answers "Healthy" once init() has loaded the model
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-2000:]
            try:
                if httpx.get(url + "/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "azmlinfsrv did not become healthy"
            time.sleep(0.2)
        texts = ["the film was great", "a dull and tedious plot"]
        r = httpx.post(url + "/score", json={"inputs": texts, "parameters": {"top_k": 2}}, timeout=60)
        assert r.status_code == 200, r.text
        expected = clf.rank(clf.predict_proba(texts), top_k=2)
        assert [[d["label"] for d in row] for row in r.json()] == [[d["label"] for d in row] for row in expected]
        assert r.json()[1][0]["score"] == pytest.approx(expected[1][0]["score"], rel=1e-5)
        single = httpx.post(url + "/score", json={"inputs": "the film was great"}, timeout=60).json()
        assert single[0]["label"] == expected[0][0]["label"]
        bad = httpx.post(url + "/score", json={"inputs": "x", "parameters": {"top_k": 0}}, timeout=60)
        assert bad.status_code == 400 and "top_k" in bad.json()["error"]
        swagger = httpx.get(url + "/swagger.json", timeout=10).json()
        assert "inputs" in swagger["definitions"]["ServiceInput"]["properties"]
    finally:
        proc.terminate()
        proc.wait(30)


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


def test_model_card_shows_the_given_example_and_no_local_paths(model_dir, tmp_path):
    from textarmor.deploy import render_model_card

    source = tmp_path / "card-model"
    shutil.copytree(model_dir, source)
    config = TextArmorConfig.load(source)
    config.training.update(train_data="/home/alice/private/train.jsonl", eval_data="/home/alice/private/dev.jsonl")
    config.save(source)
    example = "I can't help with \"that\" request."
    card = render_model_card(source, "refusals", example=example)

    assert "/home/alice" not in card
    assert "`dev.jsonl`" in card and "`train.jsonl`" in card
    assert f"clf([{json.dumps(example)}])" in card
    curl = next(line for line in card.splitlines() if line.strip().startswith("-d '"))
    body = subprocess.run(["bash", "-c", f"printf '%s' {curl.strip()[3:]}"], capture_output=True, text=True).stdout
    assert json.loads(body)["inputs"] == example  # the shell line sends the example intact, quotes included
