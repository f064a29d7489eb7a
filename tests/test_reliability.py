"""User mistakes end in one line and exit 2, never a traceback, and lose nothing: damaged model folders in
every verb, text that is not valid Unicode in files, requests and the API, resumes that would mix two runs,
and the server's key, documents and errors."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import synthetic_rows, write_jsonl
from tests.serving_helpers import running
from textarmor.cli import main
from textarmor.errors import ParameterError


def run(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def one_error_line(err: str) -> str:
    """The error line of a failed run; fails the test unless there is exactly one and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# ----------------------------------------------------------------------------------- damaged model folders
def damaged(model: Path, root: Path, kind: str) -> Path:
    """A copy of ``model`` with one file damaged the way an interrupted copy or a careless edit leaves it."""
    folder = root / f"damaged-{kind}"
    shutil.copytree(model, folder)
    if kind == "truncated_weights":
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif kind == "no_config":
        (folder / "config.json").unlink()
    elif kind == "bad_tokenizer":
        (folder / "tokenizer.json").write_text('{"version": ')
    elif kind == "bad_textarmor_json":
        (folder / "textarmor.json").write_text("[1, 2")
    elif kind == "bad_onnx":
        (folder / "model.onnx").write_bytes(b"\x08\x07 not a protobuf " * 10)
    return folder


DAMAGE = {"truncated_weights": "model.safetensors", "no_config": "config.json", "bad_tokenizer": "tokenizer.json",
          "bad_textarmor_json": "textarmor.json"}


@pytest.fixture(scope="module")
def onnx_model(tiny_trained, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from textarmor.deploy import export_onnx

    return export_onnx(tiny_trained, tmp_path_factory.mktemp("onnx") / "tiny-onnx")


def verb_args(verb: str, model: Path, data: Path, tmp: Path) -> list:
    texts = tmp / "texts.txt"
    texts.write_text("a great film\n")
    return {
        "predict": ["predict", model, texts],
        "evaluate": ["evaluate", model, "--data", data],
        "attack": ["attack", model, "--data", data, "--recipe", "deepwordbug", "--n", 2],
        "explain": ["explain", model, "a great film", "--methods", "grad_input"],
        "calibrate": ["calibrate", model, "--data", data],
        "export": ["export", model, "--out", tmp / "exported"],
        "serve": ["serve", model, "--port", 9],
        "train": ["train", "--data", data, "--eval-data", data, "--model", model, "--out", tmp / "trained",
                  "--epochs", 1],
    }[verb]


@pytest.mark.parametrize("verb", ["predict", "evaluate", "attack", "explain", "calibrate", "export", "serve", "train"])
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_model_folder_is_one_line_naming_the_file_in_every_verb(verb, kind, tiny_trained, tmp_path,
                                                                          capsys, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("serve reached uvicorn with a damaged model"))
    if verb == "train" and kind == "bad_textarmor_json":
        pytest.skip("a base model's textarmor.json is not read by train (a new head is trained)")
    model = damaged(tiny_trained, tmp_path, kind)
    data = write_jsonl(tmp_path / "data.jsonl", synthetic_rows(12))
    code, _, err = run(verb_args(verb, model, data, tmp_path), capsys)
    assert code == 2, err
    line = one_error_line(err)
    assert DAMAGE[kind] in line, line
    assert not (tmp_path / "trained.partial").exists() and not (tmp_path / "exported").exists()


@pytest.mark.parametrize("verb", ["predict", "evaluate", "serve"])
def test_a_damaged_onnx_export_is_one_line(verb, onnx_model, tmp_path, capsys, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("serve reached uvicorn with a damaged model"))
    model = damaged(onnx_model, tmp_path, "bad_onnx")
    data = write_jsonl(tmp_path / "data.jsonl", synthetic_rows(4))
    code, _, err = run(verb_args(verb, model, data, tmp_path), capsys)
    assert code == 2 and "model.onnx" in one_error_line(err) and "textarmor export" in err


def test_serve_loads_an_onnx_export_and_refuses_pickles(onnx_model, tmp_path, monkeypatch, capsys):
    import uvicorn

    from textarmor.serving import create_app

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app))
    code, _, err = run(["serve", onnx_model, "--port", 9], capsys)
    assert code == 0, err
    assert served["app"].state.info["model"] == onnx_model.name
    pickled = tmp_path / "pickled"
    shutil.copytree(onnx_model, pickled)
    (pickled / "model.onnx").rename(pickled / "pytorch_model.bin")
    with pytest.raises(Exception, match="safetensors"):
        create_app(pickled)


# ---------------------------------------------------------------------------- text that is not valid Unicode
SURROGATE_JSONL = '{"text": "a \\ud800 film", "label": "positive"}\n'


def bad_file(tmp_path: Path, kind: str) -> Path:
    rows = "".join(json.dumps(r) + "\n" for r in synthetic_rows(6))
    if kind == "surrogate":
        path = tmp_path / "bad.jsonl"
        path.write_text(rows + SURROGATE_JSONL)
    elif kind == "nul":
        path = tmp_path / "bad.jsonl"
        path.write_text(rows + '{"text": "a \\u0000 film", "label": "positive"}\n')
    elif kind == "invalid_utf8_jsonl":
        path = tmp_path / "bad.jsonl"
        path.write_bytes(rows.encode() + b'{"text": "caf\xe9 au lait", "label": "positive"}\n')
    elif kind == "utf16_csv":
        path = tmp_path / "bad.csv"
        path.write_bytes(("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in synthetic_rows(6)))
                         .encode("utf-16"))
    else:  # a binary file passed by mistake
        path = tmp_path / "bad.txt"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return path


@pytest.mark.parametrize("kind,words", [
    ("surrogate", "lone surrogate"), ("nul", "NUL"), ("invalid_utf8_jsonl", "not valid UTF-8 (byte 0xE9"),
    ("utf16_csv", "UTF-16"), ("binary", "not valid UTF-8")])
@pytest.mark.parametrize("verb", ["predict", "explain", "evaluate", "train", "attack"])
def test_text_that_is_not_valid_unicode_is_refused_with_file_and_line(verb, kind, words, tiny_trained, tiny_base,
                                                                      tmp_path, capsys):
    if kind == "binary" and verb in ("evaluate", "train", "attack"):
        pytest.skip("labelled data has a format; a binary .txt is refused for its extension")
    path = bad_file(tmp_path, kind)
    args = {"predict": ["predict", tiny_trained, path, "--out", tmp_path / "out.jsonl"],
            "explain": ["explain", tiny_trained, "--input", path, "--methods", "grad_input"],
            "evaluate": ["evaluate", tiny_trained, "--data", path],
            "train": ["train", "--data", path, "--eval-data", path, "--model", tiny_base, "--out", tmp_path / "t"],
            "attack": ["attack", tiny_trained, "--data", path, "--recipe", "deepwordbug", "--out", tmp_path / "a"],
            }[verb]
    code, _, err = run(args, capsys)
    assert code == 2, err
    line = one_error_line(err)
    assert words in line and path.name in line
    assert "line " in line or "row " in line
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.jsonl.partial").exists()
    assert not (tmp_path / "t.partial").exists() and not (tmp_path / "a" / "results.jsonl").exists()


def test_the_python_api_refuses_surrogates_and_nul_naming_the_item(tiny_trained):
    from textarmor import Classifier

    clf = Classifier.from_pretrained(tiny_trained, device="cpu")
    with pytest.raises(ParameterError, match=r"texts\[1\] has a lone surrogate"):
        clf.predict(["fine", "bad \ud800"])
    with pytest.raises(ParameterError, match=r"texts\[0\] has a NUL"):
        clf("a\x00b")
    assert clf(["café, naïve"])[0]["label"] in clf.labels  # other non-ASCII text is untouched


def test_a_byte_order_mark_and_long_csv_fields_are_read(tiny_trained, tmp_path, capsys):
    long_text = "great " * 30_000  # 180,000 characters, over the csv module's default field limit of 131,072
    path = tmp_path / "long.csv"
    path.write_bytes(("text,label\n" + f'"{long_text}",positive\nboring,negative\n').encode("utf-8-sig"))
    for args in (["predict", tiny_trained, path], ["evaluate", tiny_trained, "--data", path],
                 ["explain", tiny_trained, "--input", path, "--methods", "attention", "--out", tmp_path / "x"]):
        code, out, err = run(args, capsys)
        assert code == 0, err
    code, out, err = run(["predict", tiny_trained, path], capsys)
    assert [json.loads(line)["line"] for line in out.splitlines()] == [2, 3]


# ------------------------------------------------------------------------------------------ predict --out
def test_a_failed_predict_leaves_no_partial_and_the_next_run_hears_of_an_old_one(tiny_trained, tmp_path, capsys):
    out = tmp_path / "pred.jsonl"
    bad = tmp_path / "bad.txt"
    bad.write_text("a great film\nfine\nbroken \x00 line\n")
    code, _, err = run(["predict", tiny_trained, bad, "--out", out], capsys)
    assert code == 2 and "line 3" in one_error_line(err)
    assert not out.exists() and not out.with_name("pred.jsonl.partial").exists()

    out.with_name("pred.jsonl.partial").write_text('{"line": 1}\n')  # an earlier run, killed
    good = tmp_path / "good.txt"
    good.write_text("a great film\n")
    code, _, err = run(["predict", tiny_trained, good, "--out", out], capsys)
    assert code == 0 and "pred.jsonl.partial" in err and "earlier run" in err
    assert len(out.read_text().splitlines()) == 1 and not out.with_name("pred.jsonl.partial").exists()


# ------------------------------------------------------------------------------------------- small verbs
def test_train_on_too_few_rows_without_eval_data_is_one_line_and_leaves_nothing(tiny_base, tmp_path, capsys):
    data = write_jsonl(tmp_path / "five.jsonl", synthetic_rows(5))
    code, _, err = run(["train", "--data", data, "--model", tiny_base, "--out", tmp_path / "t"], capsys)
    assert code == 2 and "--eval-data" in one_error_line(err)
    assert not (tmp_path / "t").exists() and not (tmp_path / "t.partial").exists()


def test_a_training_run_that_fails_before_its_first_checkpoint_leaves_no_partial(tiny_base, tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", synthetic_rows(40))
    missing_model = tmp_path / "no-such-model"
    code, _, err = run(["train", "--data", data, "--model", missing_model, "--out", tmp_path / "t"], capsys)
    assert code == 2 and "does not exist" in one_error_line(err)
    assert not (tmp_path / "t.partial").exists()


@pytest.mark.parametrize("opset", [3, 10, 21])
def test_export_refuses_an_opset_it_cannot_write(opset, tiny_trained, tmp_path, capsys):
    code, _, err = run(["export", tiny_trained, "--out", tmp_path / "x", "--opset", opset], capsys)
    assert code == 2 and "--opset" in one_error_line(err)
    assert not (tmp_path / "x").exists()
    from textarmor.deploy.onnx_export import export_onnx
    from textarmor.errors import ParameterError

    with pytest.raises(ParameterError, match="opset"):  # the Python API refuses it too, before any work
        export_onnx(tiny_trained, tmp_path / "y", opset=opset)
    assert not (tmp_path / "y").exists()


def test_an_unknown_conformal_method_is_named_as_such(tiny_trained, synthetic_files, tmp_path, capsys):
    model = tmp_path / "calibrated"
    shutil.copytree(tiny_trained, model)
    assert run(["calibrate", model, "--data", synthetic_files[1]], capsys)[0] == 0
    texts = tmp_path / "t.txt"
    texts.write_text("a great film\n")
    code, _, err = run(["predict", model, texts, "--coverage", "0.9", "--conformal-method", "nope"], capsys)
    line = one_error_line(err)
    assert code == 2 and "lac, aps" in line and "nope" in line and "calibrat" not in line
    assert run(["predict", model, texts, "--coverage", "0.9", "--conformal-method", "aps"], capsys)[0] == 0


def test_evaluate_and_attack_say_how_many_empty_rows_they_left_out(tiny_trained, tmp_path, capsys):
    rows = synthetic_rows(6) + [{"text": "", "label": "positive"}, {"text": "  ", "label": "negative"},
                                {"text": "fine", "label": ""}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    code, _, err = run(["evaluate", tiny_trained, "--data", data], capsys)
    assert code == 0 and "3 rows with an empty text or label left out" in err
    code, _, err = run(["attack", tiny_trained, "--data", data, "--recipe", "deepwordbug", "--n", 2], capsys)
    assert code == 0 and "3 rows with an empty text or label left out" in err


def test_option_mistakes_are_one_line_too(tiny_trained, capsys):
    for args in (["predict", tiny_trained, "-", "--top-k", "many"], ["predict"], ["nope"],
                 ["predict", tiny_trained, "--no-such-option"]):
        code, _, err = run(args, capsys)
        assert code == 2 and one_error_line(err)


# ----------------------------------------------------------------------------------------------- resumes
def attack_args(model, data, out):
    return ["attack", model, "--data", data, "--recipe", "deepwordbug", "--n", 4, "--seed", 1, "--out", out]


def test_attack_resume_refuses_another_model_and_records_the_model(tiny_trained, synthetic_files, tmp_path,
                                                                    capsys):
    out = tmp_path / "run"
    assert run(attack_args(tiny_trained, synthetic_files[1], out), capsys)[0] == 0
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["model_path"] == str(tiny_trained) and recorded["model"]["digest"].startswith("sha256:")
    assert recorded["data_digest"].startswith("sha256:")
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:2]) + "\n")  # as if killed after two examples
    before = (out / "results.jsonl").read_bytes()

    other = tmp_path / "other-model"  # same files, calibrated differently: other scores
    shutil.copytree(tiny_trained, other)
    config = json.loads((other / "textarmor.json").read_text())
    (other / "textarmor.json").write_text(json.dumps({**config, "temperature": 2.5}))
    code, _, err = run(attack_args(other, synthetic_files[1], out) + ["--resume"], capsys)
    assert code == 2 and "model" in one_error_line(err)
    assert (out / "results.jsonl").read_bytes() == before

    code, _, err = run(attack_args(tiny_trained, synthetic_files[1], out) + ["--resume", "--batch-tokens", 512,
                                                                            "--defense", "tta"], capsys)
    assert code == 2 and "defense" in one_error_line(err)

    moved = tmp_path / "moved-model"  # the same model in another folder is the same model
    shutil.copytree(tiny_trained, moved)
    assert run(attack_args(moved, synthetic_files[1], out) + ["--resume"], capsys)[0] == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == 4


def test_attack_resume_refuses_changed_data_under_the_same_name(tiny_trained, tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", synthetic_rows(8, seed=3))
    out = tmp_path / "run"
    assert run(attack_args(tiny_trained, data, out), capsys)[0] == 0
    write_jsonl(data, synthetic_rows(8, seed=4))
    code, _, err = run(attack_args(tiny_trained, data, out) + ["--resume"], capsys)
    assert code == 2 and "data_digest" in one_error_line(err)


def train_args(data, eval_data, base, out, *extra):
    return ["train", "--data", data, "--eval-data", eval_data, "--model", base, "--out", out, "--epochs", 2,
            "--batch-size", 16, "--max-length", 32, "--lr", "3e-3", *extra]


class Interrupted(Exception):
    pass


@pytest.fixture
def interrupted_training(tiny_base, tmp_path, monkeypatch):
    """A run of 2 epochs stopped after epoch 1's checkpoint, as a kill would leave it."""
    from textarmor import train
    from textarmor.training.trainer import EpochTimer

    data = write_jsonl(tmp_path / "train.jsonl", synthetic_rows(96, seed=11))
    dev = write_jsonl(tmp_path / "dev.jsonl", synthetic_rows(24, seed=12))
    original = EpochTimer.on_epoch_begin

    def stop_at_second_epoch(self, args, state, control, **kwargs):
        if state.epoch and state.epoch >= 1:
            raise Interrupted
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(EpochTimer, "on_epoch_begin", stop_at_second_epoch)
    out = tmp_path / "model"
    with pytest.raises(Interrupted):
        train(data, eval_data=dev, out_dir=out, model=str(tiny_base), epochs=2, learning_rate=3e-3,
              batch_size=16, max_length=32, seed=0, progress=False)
    monkeypatch.setattr(EpochTimer, "on_epoch_begin", original)
    return data, dev, out


def test_train_resume_refuses_other_settings_or_data(interrupted_training, tiny_base, capsys):
    data, dev, out = interrupted_training
    staging = out.with_name(out.name + ".partial")
    record = json.loads((staging / "run.json").read_text())
    assert record["data_digest"].startswith("sha256:") and record["model_digest"].startswith("sha256:")
    code, _, err = run(train_args(data, dev, tiny_base, out, "--resume", "--seed", 7), capsys)
    assert code == 2 and "seed" in one_error_line(err)
    write_jsonl(data, synthetic_rows(96, seed=13))  # other rows under the same file name
    code, _, err = run(train_args(data, dev, tiny_base, out, "--resume"), capsys)
    assert code == 2 and "data_digest" in one_error_line(err)
    assert any((staging / "checkpoints").glob("checkpoint-*")) and not out.exists()  # nothing lost


def test_train_resume_keeps_the_best_epoch_that_was_reloaded(interrupted_training, tiny_base, monkeypatch):
    """Epoch 1 (before the interruption) scores best: the model written is epoch 1's, and so is the recorded
    best epoch, and metrics.json still holds both epochs."""
    import numpy as np
    from safetensors.numpy import load_file

    import textarmor.training.api as training_api
    from textarmor import TextArmorConfig, train

    data, dev, out = interrupted_training
    staging = out.with_name(out.name + ".partial")
    epoch1 = load_file(staging / "checkpoints" / "checkpoint-6" / "model.safetensors")
    # Epoch 1 was evaluated before the interruption; from here on every evaluation scores lower.
    monkeypatch.setattr(training_api, "_compute_metrics", lambda eval_pred: {"accuracy": -0.5, "macro_f1": 0.0})
    result = train(data, eval_data=dev, out_dir=out, model=str(tiny_base), epochs=2, learning_rate=3e-3,
                   batch_size=16, max_length=32, seed=0, progress=False, resume=True)
    assert [row["step"] for row in result.epochs] == [6, 12]
    assert result.metrics["step"] == 6 and result.metrics["accuracy"] > -0.5
    assert TextArmorConfig.load(out).metrics["eval"]["step"] == 6
    written = load_file(out / "model.safetensors")
    assert all(np.array_equal(written[name], epoch1[name]) for name in written)


# ---------------------------------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def clf(tiny_trained):
    from textarmor import Classifier

    return Classifier.from_pretrained(tiny_trained, device="cpu")


@pytest.mark.parametrize("inputs", ["a \ud800 film", ["fine", "bad \udfff"], "a \x00 b"])
@pytest.mark.parametrize("route", ["/", "/score", "/explain"])
def test_the_server_refuses_invalid_text_with_json_422(route, inputs, clf):
    from textarmor.serving import create_app

    if route == "/explain":
        pytest.importorskip("captum")
    body = json.dumps({"inputs": inputs}).encode()  # json escapes the surrogate: legal JSON
    with running(create_app(clf)) as url:
        r = httpx.post(url + route, content=body, headers={"Content-Type": "application/json"}, timeout=60)
        assert r.status_code == 422 and r.headers["content-type"] == "application/json"
        assert "input" in r.json()["error"] and "character" in r.json()["error"]
        assert httpx.get(url + "/health", timeout=60).status_code == 200


def test_an_unforeseen_server_error_is_json(clf, monkeypatch):
    import textarmor.serving.app as app_module
    from textarmor.serving import create_app

    def broken(classifier, texts):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app_module, "model_scores", broken)
    with running(create_app(clf)) as url:
        r = httpx.post(url + "/", json={"inputs": "great"}, timeout=60)
    assert r.status_code == 500 and r.json() == {"error": "Internal server error; the server's log has the details."}


def test_an_empty_api_key_is_refused(clf, tiny_trained, monkeypatch, capsys):
    from textarmor.serving import create_app

    for key in ("", "   "):
        with pytest.raises(ParameterError, match="empty"):
            create_app(clf, api_key=key)
    with pytest.raises(ParameterError, match="ASCII"):
        create_app(clf, api_key="clé secrète")
    monkeypatch.setenv("TEXTARMOR_API_KEY", "")
    code, _, err = run(["serve", tiny_trained, "--host", "0.0.0.0", "--port", 9], capsys)
    assert code == 2 and "TEXTARMOR_API_KEY" in one_error_line(err)


def test_serving_beyond_loopback_without_a_key_warns(tiny_trained, monkeypatch, caplog):
    import uvicorn

    from textarmor.serving import serve

    monkeypatch.delenv("TEXTARMOR_API_KEY", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    with caplog.at_level(logging.WARNING, logger="textarmor.serving"):
        serve(tiny_trained, host="127.0.0.1", port=9)
        assert not caplog.records
        serve(tiny_trained, host="0.0.0.0", port=9)
    assert "without an API key" in caplog.text


KEY = "k3y-for-tests"
GUARDED = ["/metrics", "/docs", "/redoc", "/openapi.json", "/swagger.json"]


@pytest.mark.parametrize("public_docs,public_metrics", [(False, False), (True, False), (False, True)])
def test_documents_and_metrics_need_the_key_unless_made_public(clf, public_docs, public_metrics):
    from textarmor.serving import create_app

    app = create_app(clf, api_key=KEY, public_docs=public_docs, public_metrics=public_metrics)
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        for path in GUARDED:
            public = public_metrics if path == "/metrics" else public_docs
            anonymous = client.get(path)
            assert anonymous.status_code == (200 if public else 401), path
            if not public:
                assert anonymous.json()["error"].startswith("Missing or wrong API key")
            assert client.get(path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200, path
        assert client.get("/health").json() == {"status": "ok"}  # liveness tells strangers nothing more
        full = client.get("/health", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert full["labels"] == clf.labels


# ------------------------------------------------------------------------- what the fuzz suite found
@pytest.mark.parametrize("args", [["--device", "0"], ["--device", "tpu"], ["--device", "cuda:7"]])
def test_an_unknown_or_absent_device_is_one_line(args, tiny_trained, tmp_path, capsys):
    import torch

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    texts = tmp_path / "t.txt"
    texts.write_text("a great film\n")
    code, _, err = run(["predict", tiny_trained, texts, *args], capsys)
    assert code == 2 and "--device" in one_error_line(err)


def test_an_unknown_dtype_is_one_line(tiny_trained, capsys):
    code, _, err = run(["explain", tiny_trained, "a great film", "--methods", "attention", "--dtype", "int8"], capsys)
    assert code == 2 and "float32, float16, bfloat16" in one_error_line(err)


def test_a_trailing_slash_is_a_json_404_not_a_redirect(clf):
    from textarmor.serving import create_app

    with running(create_app(clf)) as url:
        r = httpx.post(url + "/predict/", json={"inputs": "great"}, timeout=60)
    assert r.status_code == 404 and "error" in r.json()


@pytest.mark.parametrize("option", ["--text-column", "--label-column"])
def test_an_empty_column_name_is_one_line(option, tiny_trained, synthetic_files, capsys):
    code, _, err = run(["evaluate", tiny_trained, "--data", synthetic_files[1], option, ""], capsys)
    assert code == 2 and option in one_error_line(err)
