"""A Hub round trip keeps what textarmor.json adds: ``package --push-to-hub`` uploads the folder (huggingface_hub's
HfApi, stopped at the network), the uploaded files are laid out as huggingface_hub caches a download, and a
fresh process with ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE`` pointing there loads the model by its hub id with
its temperature, threshold and abstain label (the lookup runs huggingface_hub's own hf_hub_download and
snapshot_download)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.hub_cache import add_repo
from textarmor.classifier import Classifier
from textarmor.cli import main
from textarmor.deploy import export_onnx, package
from textarmor.model_dir import TextArmorConfig

SRC = Path(__file__).resolve().parents[1] / "src"
TEXTS = ["the film was great", "a dull and tedious plot", "quite a story"]
# Loads each hub id in a fresh process (huggingface_hub reads HF_HUB_OFFLINE and HF_HUB_CACHE at import).
LOADER = """
import json, sys
from textarmor import Classifier
from textarmor.errors import TextArmorError
from textarmor.serving import create_app
texts, out = json.loads(sys.argv[1]), {}
for repo in sys.argv[2:]:
    try:
        clf = Classifier.from_pretrained(repo, device="cpu")
    except TextArmorError as exc:
        out[repo] = {"error": str(exc)}
        continue
    out[repo] = {"temperature": clf.temperature, "threshold": clf.config.threshold,
                 "abstain_label": clf.config.abstain_label, "backend": clf.backend.name,
                 "probs": clf.predict_proba(texts).tolist(), "labels": [p.label for p in clf.predict(texts)]}
    try:  # `textarmor serve ORG/NAME` resolves the same way (the model loads at startup)
        out[repo]["serve"] = create_app(repo).state.info["model"]
    except TextArmorError as exc:
        out[repo]["serve"] = "error: " + str(exc)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def calibrated(tiny_trained, tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("hub") / "tiny"
    shutil.copytree(tiny_trained, source)
    config = TextArmorConfig.load(source)
    config.temperature, config.threshold, config.abstain_label = 0.5, 0.8, "unsure"
    config.save(source)
    return source


@pytest.fixture(scope="module")
def hub_cache(calibrated, tmp_path_factory):
    """The cache after `package --push-to-hub` of the model and of its ONNX int8 export, plus a plain Hugging
    Face repository (no textarmor.json)."""
    root = tmp_path_factory.mktemp("hub-cache")
    cache = root / "cache"
    uploads = {}

    class RecordingHfApi:  # huggingface_hub.HfApi up to the network: what would be uploaded, and where
        def create_repo(self, repo_id, **kwargs):
            uploads.setdefault(repo_id, {})["create"] = kwargs

        def upload_folder(self, *, repo_id, folder_path, **kwargs):
            snapshot = root / "uploaded" / repo_id
            shutil.copytree(folder_path, snapshot)
            uploads[repo_id].update(folder=snapshot, kwargs=kwargs)

    with pytest.MonkeyPatch.context() as patch:
        import huggingface_hub

        patch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
        with pytest.raises(SystemExit) as done:
            main(["package", str(calibrated), "--target", "hf-endpoint", "--out", str(root / "pkg"),
                  "--push-to-hub", "my-org/tiny", "--private"])
        assert done.value.code in (0, None)
        int8 = export_onnx(calibrated, root / "tiny-int8", quantize="int8")
        package(int8, target="hf-endpoint", out=root / "pkg-int8", repo_id="my-org/tiny-int8", push_to_hub=True)
    for repo_id, upload in uploads.items():
        add_repo(cache, repo_id, upload["folder"])
    plain = root / "plain"
    shutil.copytree(calibrated, plain)
    (plain / "textarmor.json").unlink()
    add_repo(cache, "my-org/plain", plain)
    return cache, uploads, int8


def _load_by_id(cache: Path, *repos: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "PYTHONPATH": str(SRC)}
    env.pop("HF_HOME", None)
    done = subprocess.run([sys.executable, "-c", LOADER, json.dumps(TEXTS), *repos], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_push_to_hub_uploads_the_package(hub_cache):
    _, uploads, _ = hub_cache
    upload = uploads["my-org/tiny"]
    assert upload["create"]["private"] is True and upload["create"]["exist_ok"] is True
    files = {p.name for p in upload["folder"].iterdir()}
    assert {"README.md", "handler.py", "requirements.txt", "textarmor.json", "model.safetensors"} <= files
    assert 'Classifier.from_pretrained("my-org/tiny")' in (upload["folder"] / "README.md").read_text()


def test_hub_id_loads_with_textarmor_json_from_the_hub_cache(hub_cache, calibrated):
    cache, _, int8 = hub_cache
    loaded = _load_by_id(cache, "my-org/tiny", "my-org/tiny-int8", "my-org/plain", "my-org/missing")
    local = Classifier.from_pretrained(calibrated, device="cpu")
    tiny = loaded["my-org/tiny"]
    assert (tiny["temperature"], tiny["threshold"], tiny["abstain_label"]) == (0.5, 0.8, "unsure")
    assert tiny["serve"] == "my-org/tiny"
    np.testing.assert_allclose(tiny["probs"], local.predict_proba(TEXTS), rtol=1e-5)
    assert tiny["labels"] == [p.label for p in local.predict(TEXTS)]
    onnx = loaded["my-org/tiny-int8"]
    assert onnx["backend"] == "onnx" and onnx["temperature"] == 0.5
    np.testing.assert_allclose(onnx["probs"], Classifier.from_pretrained(int8).predict_proba(TEXTS), rtol=1e-5)
    # A repository without textarmor.json is a plain Hugging Face model: transformers loads it, uncalibrated.
    plain = loaded["my-org/plain"]
    assert plain["temperature"] == 1.0 and plain["threshold"] is None and plain["backend"] == "torch"
    assert plain["serve"].startswith("error:") and "textarmor.json" in plain["serve"]
    assert "my-org/missing" in loaded["my-org/missing"]["error"] and "hub" in loaded["my-org/missing"]["error"]


def test_lookup_asks_huggingface_hub_for_textarmor_json(monkeypatch, tmp_path, calibrated):
    """Which files the lookup fetches: textarmor.json first, then the model files, never the package's others."""
    import huggingface_hub

    from textarmor import models

    calls = []
    snapshot = tmp_path / "snapshot"
    shutil.copytree(calibrated, snapshot)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download",
                        lambda repo, name, revision=None: calls.append(("file", repo, name)) or str(snapshot / name))
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo, revision=None, allow_patterns=None: calls.append(
                            ("snapshot", repo, tuple(allow_patterns))) or str(snapshot))
    assert models.resolve_model_dir("my-org/tiny") == str(snapshot)
    assert calls[0] == ("file", "my-org/tiny", "textarmor.json")
    patterns = calls[1][2]
    assert "textarmor.json" in patterns and "model.onnx" in patterns and "*.safetensors" in patterns
    assert not {"handler.py", "*.whl", "Dockerfile", "requirements.txt"} & set(patterns)
