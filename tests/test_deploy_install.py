"""A packaged folder deploys from its own files.

Its install line (the Dockerfile's ``RUN pip install``, which names the package's requirements.txt) resolves
in a clean virtual environment against the indexes pip is configured with here, as CI configures them; and
its entry points answer requests with textarmor installed from the wheel the package carries (the other
dependencies come from this test environment): ``handler.py`` as the Hugging Face toolkit calls it,
``score.py`` under Azure's ``azmlinfsrv``, and the Dockerfile's ``CMD`` line run directly (no docker here).

The resolution runs in the background from the first test on and is checked by the last one.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.dockerfile import Dockerfile
from textarmor.classifier import Classifier
from textarmor.deploy import export_onnx, package
from textarmor.model_dir import TextArmorConfig

pytest.importorskip("onnxruntime")
PIP = [sys.executable, "-m", "pip"]
TEXTS = ["the film was great", "a dull and tedious plot"]


@pytest.fixture(scope="module")
def packages(tiny_trained, tmp_path_factory):
    """An hf-endpoint package of the calibrated tiny model, and an azureml package of its ONNX int8 export."""
    root = tmp_path_factory.mktemp("install")
    source = root / "tiny"
    shutil.copytree(tiny_trained, source)
    config = TextArmorConfig.load(source)
    config.temperature, config.threshold = 0.7, 0.6
    config.save(source)
    int8 = export_onnx(source, root / "tiny-int8", quantize="int8")
    return SimpleNamespace(root=root, source=source, int8=int8,
                           hf=package(source, target="hf-endpoint", out=root / "hf", repo_id="my-org/tiny").out,
                           az=package(int8, target="azureml", out=root / "az").out)


@pytest.fixture(scope="module")
def resolution(packages):
    """pip resolving the azureml Dockerfile's install line (CPU torch and textarmor[serve,azureml,onnx] from the
    bundled wheel: a superset of what the hf-endpoint folder installs) in a fresh venv, from another folder."""
    venv = packages.root / "clean-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    report = packages.root / "report.json"
    args = Dockerfile.read(packages.az / "Dockerfile").pip_install()
    # --retries 0: an index this machine cannot reach (the PyTorch CPU index, where CI has no route) fails
    # at once instead of after pip's back-off; what the other indexes hold decides.
    command = [*PIP, "--python", str(venv / "bin" / "python"), "install", "--dry-run", "--quiet", "--retries", "0",
               "--report", str(report), *args]
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=packages.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    yield SimpleNamespace(proc=proc, report=report, started=started)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def wheel_site(packages):
    """textarmor installed from the package's own wheel, and nothing else."""
    site = packages.root / "wheel-site"
    wheel = next(packages.hf.glob("textarmor-*.whl"))
    subprocess.run([*PIP, "install", "--no-deps", "--no-index", "--quiet", "--target", str(site), str(wheel)],
                   check=True)
    return site


def _env(site: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(site), "PATH": f"{site / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "HF_HUB_OFFLINE": "1", **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, url: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-3000:]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not become healthy"
        time.sleep(0.2)


def _expected(model_dir: Path, **options) -> list:
    clf = Classifier.from_pretrained(model_dir, device="cpu")
    return clf.rank(clf.predict_proba(TEXTS), **options)


def test_requirements_pin_the_wheel_they_carry(packages, resolution, tmp_path):
    wheels = sorted(p.name for p in packages.hf.glob("*.whl"))
    assert len(wheels) == 1 and wheels == sorted(p.name for p in (packages.az / "environment").glob("*.whl"))
    version = wheels[0].split("-")[1]
    assert "+" in version  # a local version: no public index can serve it in the wheel's place
    lines = (packages.hf / "requirements.txt").read_text().splitlines()
    assert "--find-links ." in lines and f"textarmor[serve]=={version}" in lines
    azure = (packages.az / "environment" / "requirements.txt").read_text().splitlines()
    assert f"textarmor[serve,azureml,onnx]=={version}" in azure
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in azure
    assert any(line.startswith("torch==") and line.endswith("+cpu") for line in azure)
    # pip reads --find-links relative to the requirements file, so it finds the wheel from any folder.
    report = tmp_path / "report.json"
    subprocess.run([*PIP, "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet", "--report",
                    str(report), "-r", str(packages.hf / "requirements.txt")], cwd=tmp_path, check=True)
    (item,) = json.loads(report.read_text())["install"]
    assert item["metadata"]["version"] == version
    assert item["download_info"]["url"].startswith((packages.hf / "textarmor").resolve().as_uri())


def test_dockerfiles_copy_the_install_files_before_installing(packages):
    for folder in (packages.hf, packages.az):
        docker = Dockerfile.read(folder / "Dockerfile")
        run = next(i for i, step in enumerate(docker.steps) if step == "RUN")
        assert docker.steps.index("COPY") < run  # requirements.txt and the wheel are in the image first
        args = docker.pip_install()
        requirements = Path(args[args.index("-r") + 1])
        assert requirements.is_file() and any(requirements.parent.glob("textarmor-*.whl"))
        assert "/app/model" in docker.copies and (docker.copies["/app/model"] / "config.json").is_file()
    hf_args = Dockerfile.read(packages.hf / "Dockerfile").pip_install()
    assert any(a.startswith("torch==") and a.endswith("+cpu") for a in hf_args)  # a CPU image: CPU torch
    azure_image = Dockerfile.read(packages.az / "environment" / "Dockerfile").pip_install()
    assert Path(azure_image[azure_image.index("-r") + 1]).parent == packages.az / "environment"


def test_handler_from_the_wheel_answers_as_the_toolkit_calls_it(packages, wheel_site):
    # The toolkit imports handler.py from the repository folder, builds EndpointHandler(path) and calls it.
    script = ("import importlib.util, json, sys, textarmor\n"
              "spec = importlib.util.spec_from_file_location('handler', sys.argv[1] + '/handler.py')\n"
              "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
              "handler = module.EndpointHandler(path=sys.argv[1])\n"
              "answers = [handler(json.loads(body)) for body in sys.argv[2:]]\n"
              "print(json.dumps({'textarmor': textarmor.__file__, 'answers': answers}))\n")
    bodies = [{"inputs": TEXTS, "parameters": {"top_k": 2}}, {"inputs": TEXTS[0]}]
    done = subprocess.run([sys.executable, "-c", script, str(packages.hf), *map(json.dumps, bodies)],
                          cwd=packages.root, env=_env(wheel_site), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["textarmor"]).is_relative_to(wheel_site)
    expected = _expected(packages.source, top_k=2)
    batch, single = result["answers"]
    assert [[d["label"] for d in row] for row in batch] == [[d["label"] for d in row] for row in expected]
    assert batch[1][0]["score"] == pytest.approx(expected[1][0]["score"], rel=1e-5)
    # The stored threshold (0.6) and temperature (0.7) travel with the package.
    assert all("uncertain" in d for row in batch for d in row)
    assert len(single) == 1 and single[0][0]["label"] == expected[0][0]["label"]


def test_score_py_from_the_wheel_served_by_azmlinfsrv(packages, wheel_site):
    server = Path(sys.executable).parent / "azmlinfsrv"
    if importlib.util.find_spec("azureml_inference_server_http") is None or not server.exists():
        pytest.skip("azmlinfsrv missing: pip install 'textarmor[azureml]' (azureml-inference-server-http)")
    port = _free_port()
    proc = subprocess.Popen([str(server), "--entry_script", str(packages.az / "code" / "score.py"), "--port",
                             str(port)], env=_env(wheel_site, AZUREML_MODEL_DIR=str(packages.az)),
                            cwd=packages.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url + "/")  # "Healthy" once init() has loaded the ONNX int8 model
        r = httpx.post(url + "/score", json={"inputs": TEXTS, "parameters": {"top_k": 2}}, timeout=60)
        assert r.status_code == 200, r.text
        expected = _expected(packages.int8, top_k=2)
        assert [[d["label"] for d in row] for row in r.json()] == [[d["label"] for d in row] for row in expected]
        assert r.json()[1][0]["score"] == pytest.approx(expected[1][0]["score"], rel=1e-5)
        bad = httpx.post(url + "/score", json={"inputs": "x", "parameters": {"top_k": 0}}, timeout=60)
        assert bad.status_code == 400 and "top_k" in bad.json()["error"]
        swagger = httpx.get(url + "/swagger.json", timeout=10).json()
        assert "inputs" in swagger["definitions"]["ServiceInput"]["properties"]
    finally:
        proc.terminate()
        proc.wait(30)


def test_dockerfile_cmd_serves_the_packaged_onnx_model(packages, wheel_site):
    docker = Dockerfile.read(packages.az / "Dockerfile")
    command = docker.local(docker.cmd)
    port = _free_port()
    command[command.index("--port") + 1] = str(port)  # what `docker run -p PORT:8080` maps
    command[command.index("--host") + 1] = "127.0.0.1"
    assert command[:2] == ["textarmor", "serve"] and Path(command[2]) == packages.az / "model"
    proc = subprocess.Popen(command, env=_env(wheel_site, **docker.env), cwd=packages.root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url + "/health")
        r = httpx.post(url + "/", json={"inputs": TEXTS, "parameters": {"top_k": 2}}, timeout=60)
        assert r.status_code == 200, r.text
        expected = _expected(packages.int8, top_k=2)
        assert [[d["label"] for d in row] for row in r.json()] == [[d["label"] for d in row] for row in expected]
    finally:
        proc.send_signal(signal.SIGTERM)  # docker stop
        code = proc.wait(60)
    # uvicorn finishes in-flight work, then re-raises SIGTERM so the exit status reports it (docker: 143).
    assert code in (0, -signal.SIGTERM) and "Finished server process" in proc.stdout.read().decode(errors="replace")


def test_clean_venv_resolves_the_dockerfile_install_line(resolution, packages):
    output = resolution.proc.communicate(timeout=600)[0].decode(errors="replace")
    seconds = time.monotonic() - resolution.started
    assert resolution.proc.returncode == 0, output[-3000:]
    installs = {item["metadata"]["name"].lower().replace("_", "-"): item
                for item in json.loads(resolution.report.read_text())["install"]}
    textarmor = installs["textarmor"]
    assert textarmor["download_info"]["url"].startswith((packages.az / "environment").resolve().as_uri())
    assert set(textarmor["requested_extras"]) == {"serve", "azureml", "onnx"}
    assert installs["torch"]["metadata"]["version"].endswith("+cpu")
    assert not [name for name in installs if name.startswith(("nvidia-", "cuda-"))]  # no CUDA on a CPU target
    assert {"fastapi", "uvicorn", "azureml-inference-server-http", "inference-schema", "onnxruntime",
            "transformers"} <= set(installs)
    print(f"clean-venv resolution: {len(installs)} distributions in {seconds:.1f} s (overlapping the tests above)")
