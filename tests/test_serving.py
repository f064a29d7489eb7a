"""The server over real HTTP: uvicorn on 127.0.0.1, httpx clients, the tiny trained model."""
from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tests.serving_helpers import running
from textarmor.classifier import Classifier
from textarmor.errors import ModelReferenceError
from textarmor.serving import MicroBatcher, QueueFull, create_app, predict
from textarmor.serving.auth import require_api_key

KEY = "s3cret-key"
TEXTS = ["the film was great and charming", "a dull and tedious plot", "really superb acting",
         "the ending was awful", "quite a brilliant story", "bland music and clumsy script"]


@pytest.fixture(scope="module")
def clf(tiny_trained):
    return Classifier.from_pretrained(tiny_trained, device="cpu")


@pytest.fixture(scope="module")
def server(clf):
    app = create_app(clf, max_inputs=8, max_chars=200, max_wait_ms=20)
    with running(app) as url:
        yield url


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


def test_predict_routes_answer_the_hugging_face_schema(http, clf):
    expected = clf.rank(clf.predict_proba(["the film was great"]))[0]
    for route in ("/", "/predict", "/score"):
        r = http.post(route, json={"inputs": "the film was great"})
        assert r.status_code == 200, r.text
        body = r.json()
        # One list per input, a single string included: the Hugging Face Inference API's shape.
        assert len(body) == 1 and [d["label"] for d in body[0]] == [d["label"] for d in expected] == ["positive"]
        assert body[0][0]["score"] == pytest.approx(expected[0]["score"], rel=1e-5)
        assert "uncertain" not in body[0][0]


@pytest.fixture
def loopback_client(monkeypatch):
    """huggingface_hub's InferenceClient, allowed to call the local test server: the suite runs with
    HF_HUB_OFFLINE=1, which makes the client refuse every URL (it talks to 127.0.0.1 only here)."""
    import huggingface_hub.constants
    from huggingface_hub import InferenceClient

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return InferenceClient


def test_huggingface_hub_inference_client_gets_every_label(server, clf, loopback_client):
    """The official client, as users call it: it reads the first list of the answer (parse_obj_as_list(...)[0])."""
    assert server.startswith("http://127.0.0.1:")
    client = loopback_client(base_url=server)

    text = "a tedious mess"
    expected = clf.rank(clf.predict_proba([text]), top_k=None)[0]
    answer = client.text_classification(text, top_k=2)
    assert isinstance(answer, list) and len(answer) == 2
    assert [(a.label, round(a.score, 5)) for a in answer] == [(e["label"], round(e["score"], 5)) for e in expected]
    top = client.text_classification(text)
    assert len(top) == 1 and top[0].label == expected[0]["label"]
    logits = client.text_classification(text, top_k=2, function_to_apply="none")
    assert logits[0].score == pytest.approx(float(clf.predict_proba([text], function_to_apply="none").max()), rel=1e-5)


def test_inference_client_sends_the_api_key(clf, loopback_client):
    from huggingface_hub.errors import HfHubHTTPError

    with running(create_app(clf, api_key=KEY)) as url:
        assert len(loopback_client(base_url=url, api_key=KEY).text_classification("great", top_k=2)) == 2
        with pytest.raises(HfHubHTTPError, match="401"):
            loopback_client(base_url=url, api_key="nope").text_classification("great")


def test_list_input_gives_list_of_lists_and_parameters_apply(http, clf):
    r = http.post("/", json={"inputs": TEXTS[:3], "parameters": {"top_k": None, "threshold": 0.99}})
    assert r.status_code == 200
    body = r.json()
    assert len(body) == 3 and all(len(row) == 2 for row in body)
    assert {d["label"] for d in body[0]} == set(clf.labels)
    assert all(d["uncertain"] == (d["score"] < 0.99) for row in body for d in row)
    logits = http.post("/", json={"inputs": [TEXTS[0]], "parameters": {"function_to_apply": "none"}}).json()
    expected = clf.predict_proba([TEXTS[0]], function_to_apply="none").max()
    assert logits[0][0]["score"] == pytest.approx(float(expected), rel=1e-5)


def test_liveness_health_metrics_and_openapi(http):
    for route in ("/", "/health"):
        r = http.get(route)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert set(r.json()["labels"]) == {"positive", "negative"}
    http.post("/predict", json={"inputs": "great"})
    metrics = http.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'textarmor_requests_total{method="POST",route="/predict",status="200"}' in text
    assert "textarmor_request_seconds_bucket" in text and "textarmor_batch_inputs_count" in text
    assert "textarmor_queue_depth" in text
    spec = http.get("/swagger.json").json()
    assert spec["openapi"].startswith("3.") and {"/", "/predict", "/score", "/health"} <= set(spec["paths"])
    assert "PredictRequest" in spec["components"]["schemas"]
    assert http.get("/openapi.json").json() == spec
    assert http.get("/docs").status_code == 200


@pytest.mark.parametrize("payload, code, words", [
    ({"parameters": {"top_k": 1}}, 400, '"inputs"'),
    ([1, 2], 400, '"inputs"'),
    ({"inputs": ["ok", 3]}, 422, "inputs"),
    ({"inputs": "ok", "parameters": {"top_k": 0}}, 422, "top_k"),
    ({"inputs": "ok", "parameters": {"function_to_apply": "tanh"}}, 422, "function_to_apply"),
    ({"inputs": "ok", "parameters": {"threshold": 2}}, 422, "threshold"),
    ({"inputs": "ok", "parameters": {"beam": 3}}, 422, "beam"),
    ({"inputs": ["ok"] * 9}, 413, "max_inputs"),
    ({"inputs": "secret words " * 20}, 413, "max_chars"),
])
def test_bad_requests_get_json_errors_that_name_the_problem(http, payload, code, words):
    r = http.post("/", json=payload)
    assert r.status_code == code, r.text
    message = r.json()["error"]
    assert words in message
    assert "secret words" not in message  # never echo the user's text


def test_non_json_body_oversized_body_and_unknown_route(http):
    r = http.post("/", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "inputs" in r.json()["error"]
    r = http.post("/", content=b"x" * 20_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.json()["error"]
    chunked = http.post("/", content=iter([b'{"inputs": "', b"x" * 20_000, b'"}']),
                        headers={"Content-Type": "application/json"})  # no Content-Length: counted as read
    assert chunked.status_code == 413 and "bytes" in chunked.json()["error"]
    r = http.get("/nowhere")
    assert r.status_code == 404 and "error" in r.json()


def test_truncation_off_on_long_input(clf):
    app = create_app(clf, max_chars=5000)
    long_text = " ".join(["great"] * 300)
    with running(app) as url:
        r = httpx.post(url + "/", json={"inputs": long_text, "parameters": {"truncation": False}}, timeout=60)
        assert r.status_code == 413 and "tokens" in r.json()["error"] and str(clf.max_length) in r.json()["error"]
        r = httpx.post(url + "/", json={"inputs": long_text}, timeout=60)
        assert r.status_code == 200
        r = httpx.post(url + "/", json={"inputs": "great film", "parameters": {"truncation": False}}, timeout=60)
        assert r.status_code == 200


def test_api_key_is_required_when_set(clf, monkeypatch):
    app = create_app(clf, api_key=KEY)
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.post("/", json={"inputs": "great"}).status_code == 401
        wrong = client.post("/score", json={"inputs": "great"}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert "nope" not in wrong.text
        ok = client.post("/score", json={"inputs": "great"}, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        assert client.get("/health").status_code == 200  # liveness stays open for load balancers
        app.dependency_overrides[require_api_key] = lambda: None
        assert client.post("/", json={"inputs": "great"}).status_code == 200


def test_cors_is_off_by_default_and_on_for_listed_origins(clf, server):
    headers = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in httpx.options(server + "/", headers=headers).headers
    app = create_app(clf, cors_origins=["https://app.example"])
    with running(app) as url:
        r = httpx.options(url + "/", headers=headers)
        assert r.headers["access-control-allow-origin"] == "https://app.example"


def test_refuses_model_dir_without_safetensors(tiny_trained, tmp_path):
    for f in tiny_trained.iterdir():
        if f.suffix != ".safetensors" and f.is_file():
            (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelReferenceError, match="safetensors"):
        create_app(tmp_path)
    with pytest.raises(ModelReferenceError, match="does not exist"):
        create_app(tmp_path / "missing")


def test_serves_an_onnx_int8_export(tiny_trained, tmp_path):
    pytest.importorskip("onnxruntime")
    from textarmor.deploy import export_onnx

    exported = export_onnx(tiny_trained, tmp_path / "int8", quantize="int8")
    direct = Classifier.from_pretrained(exported)
    texts = ["the film was great", "a dull and tedious plot"]
    expected = direct.rank(direct.predict_proba(texts), top_k=2)
    with running(create_app(exported)) as url:
        health = httpx.get(url + "/health", timeout=60).json()
        answer = httpx.post(url + "/", json={"inputs": texts, "parameters": {"top_k": 2}}, timeout=60).json()
    assert health["model"] == "int8" and set(health["labels"]) == {"positive", "negative"}
    assert [[d["label"] for d in row] for row in answer] == [[d["label"] for d in row] for row in expected]
    assert answer[1][0]["score"] == pytest.approx(expected[1][0]["score"], rel=1e-5)


def test_model_dir_loads_at_startup(tiny_trained):
    with running(create_app(tiny_trained, device="cpu")) as url:
        assert httpx.post(url + "/", json={"inputs": "great film"}, timeout=60).json()[0][0]["label"] == "positive"


def test_concurrent_batched_requests_equal_unbatched_answers_in_order(clf):
    """Many clients at once: each gets exactly what it would get alone (same labels, same order,
    scores equal up to float rounding of padded batches)."""
    app = create_app(clf, max_wait_ms=50, max_batch_tokens=4096)
    bodies = []
    for i in range(40):
        chunk = [TEXTS[(i + j) % len(TEXTS)] + " " * j for j in range(1 + i % 4)]
        params = {"top_k": None} if i % 3 == 0 else {"threshold": 0.7} if i % 3 == 1 else {}
        bodies.append({"inputs": chunk if i % 2 else chunk[0], "parameters": params})

    async def fire(url):
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            return await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))

    with running(app) as url:
        responses = asyncio.run(fire(url))
        batches = httpx.get(url + "/metrics").text
    assert all(r.status_code == 200 for r in responses)
    for body, response in zip(bodies, responses):
        expected = predict(clf, body)
        got = response.json()
        assert _labels(got) == _labels(expected)
        np.testing.assert_allclose(_scores(got), _scores(expected), rtol=1e-5, atol=1e-6)
    assert "textarmor_batch_requests_count" in batches


def _labels(x):
    return [_labels(v) for v in x] if isinstance(x, list) else x["label"]


def _scores(x):
    return np.asarray([_scores(v) for v in x] if isinstance(x, list) else x["score"], dtype=np.float64).ravel()


# ------------------------------------------------------------------ the batcher itself
def _gated_batcher(**kwargs):
    """A batcher whose first model call waits on a gate, so later requests pile up deterministically."""
    gate, entered, calls = threading.Event(), threading.Event(), []

    def run_batch(texts):
        if not calls:
            entered.set()
            gate.wait(30)
        calls.append(list(texts))
        return np.asarray([[float(len(t))] for t in texts], dtype=np.float32)

    return MicroBatcher(run_batch, **kwargs), gate, entered, calls


def test_batcher_merges_waiting_requests_and_routes_rows_back():
    batcher, gate, entered, calls = _gated_batcher(max_batch_cost=100, max_wait_s=0.0)

    async def scenario():
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.to_thread(entered.wait, 30)  # the worker holds the first request at the gate
        rest = [asyncio.ensure_future(batcher.submit(["b" * i, "c" * (i + 10)])) for i in range(1, 6)]
        await asyncio.sleep(0)
        gate.set()
        return await first, await asyncio.gather(*rest)

    try:
        first, rest = asyncio.run(scenario())
    finally:
        batcher.stop()
    assert first.ravel().tolist() == [1.0]
    assert [r.ravel().tolist() for r in rest] == [[i, i + 10] for i in range(1, 6)]
    assert [len(c) for c in calls] == [1, 10]  # the five waiting requests ran as one batch


def test_batcher_respects_budget_and_batch1_mode():
    batcher, gate, entered, calls = _gated_batcher(max_batch_cost=4, max_wait_s=0.0)
    solo, solo_gate, solo_entered, solo_calls = _gated_batcher(max_requests=1)

    async def scenario(b, g, e):
        b.start()
        first = asyncio.ensure_future(b.submit(["a"]))
        await asyncio.to_thread(e.wait, 30)
        rest = [asyncio.ensure_future(b.submit(["x", "y"])) for _ in range(4)]
        await asyncio.sleep(0)
        g.set()
        await first
        return await asyncio.gather(*rest)

    try:
        asyncio.run(scenario(batcher, gate, entered))
        asyncio.run(scenario(solo, solo_gate, solo_entered))
    finally:
        batcher.stop()
        solo.stop()
    assert [len(c) for c in calls] == [1, 4, 4]  # 2 requests of cost 2 fill the budget of 4
    assert [len(c) for c in solo_calls] == [1, 2, 2, 2, 2]


def test_full_queue_refuses_and_errors_reach_every_request():
    batcher, gate, entered, _ = _gated_batcher(max_queue=2, max_wait_s=0.0, max_requests=1)

    async def scenario():
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.to_thread(entered.wait, 30)
        queued = [asyncio.ensure_future(batcher.submit(["b"])) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull, match="max_queue"):
            await batcher.submit(["c"])
        gate.set()
        return await asyncio.gather(first, *queued)

    try:
        assert len(asyncio.run(scenario())) == 3
    finally:
        batcher.stop()

    def broken(texts):
        raise RuntimeError("model failed")

    failing = MicroBatcher(broken).start()
    try:
        with pytest.raises(RuntimeError, match="model failed"):
            asyncio.run(failing.submit(["a"]))
    finally:
        failing.stop()


def _gated_classifier(clf):
    """A copy of ``clf`` whose scoring calls wait at a gate (and say when one has arrived there)."""
    gate, entered = threading.Event(), threading.Event()

    def gated_predict_proba(*args, **kwargs):
        entered.set()
        gate.wait(30)
        return clf.predict_proba(*args, **kwargs)

    gated = Classifier.__new__(Classifier)
    gated.__dict__.update(clf.__dict__)
    gated.predict_proba = gated_predict_proba
    return gated, gate, entered


def test_full_queue_is_http_429(clf):
    gated, gate, entered = _gated_classifier(clf)
    app = create_app(gated, max_queue=1, batching=False)

    async def scenario(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            running_one = asyncio.ensure_future(client.post("/", json={"inputs": "great 0"}))
            assert await asyncio.to_thread(entered.wait, 30)  # the model is busy with the first request
            queued = asyncio.ensure_future(client.post("/", json={"inputs": "great 1"}))
            for _ in range(30_000):  # until the second request has reached the queue
                if app.state.batcher.depth:
                    break
                await asyncio.sleep(0.001)
            assert app.state.batcher.depth == 1
            refused = await asyncio.gather(*(client.post("/", json={"inputs": "great"}) for _ in range(2)))
            gate.set()
            return refused, await asyncio.gather(running_one, queued)

    with running(app) as url:
        refused, served = asyncio.run(scenario(url))
        metrics = httpx.get(url + "/metrics").text
    assert [r.status_code for r in refused] == [429, 429]
    assert refused[0].headers["retry-after"] == "1" and "max_queue" in refused[0].json()["error"]
    assert [r.status_code for r in served] == [200, 200]  # nothing queued is dropped
    assert "textarmor_rejected_total 2.0" in metrics


def test_graceful_shutdown_finishes_in_flight_requests(clf):
    gated, gate, entered = _gated_classifier(clf)
    app = create_app(gated)
    result = {}

    def call(url):
        result["response"] = httpx.post(url + "/", json={"inputs": "great film"}, timeout=60)

    # The model is held until uvicorn has begun shutting down; the request must still be answered.
    with running(app, while_stopping=gate.set) as url:
        client = threading.Thread(target=call, args=(url,))
        client.start()
        assert entered.wait(30)
    client.join(30)
    assert result["response"].status_code == 200 and result["response"].json()[0][0]["label"] == "positive"


def test_serve_cli_takes_the_api_key_from_the_environment(monkeypatch, tiny_trained):
    import textarmor.serving
    from textarmor.cli import main

    seen = {}
    monkeypatch.setattr(textarmor.serving, "serve", lambda model_dir, **kw: seen.update(kw, model_dir=model_dir))
    monkeypatch.setenv("TEXTARMOR_API_KEY", KEY)
    with pytest.raises(SystemExit) as done:
        main(["serve", str(tiny_trained), "--port", "9", "--no-batching", "--max-wait-ms", "2"])
    assert done.value.code in (0, None)
    assert seen["api_key"] == KEY and seen["batching"] is False and seen["port"] == 9 and seen["max_wait_ms"] == 2


def test_explain_route_returns_word_attributions(http, clf):
    pytest.importorskip("captum")
    r = http.post("/explain", json={"inputs": ["the film was great", "a dull plot"], "methods": ["ig", "occlusion"],
                                    "n_steps": 8})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body) == 2
    first = body[0]
    assert first["label"] == clf.predict(["the film was great"])[0].top_label
    assert set(first["scores"]) == {"ig", "occlusion"}
    assert len(first["scores"]["ig"]) == len(first["words"]) == 4
    assert http.post("/explain", json={"inputs": ["x"] * 9}).status_code == 413
    assert http.post("/explain", json={"inputs": "x", "methods": ["attention"]}).status_code == 422
