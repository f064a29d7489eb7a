"""Fuzzing the edges: generated data files (encodings, sizes, columns, malformed lines), generated option values
and generated HTTP requests against a live server on 127.0.0.1. Whatever comes:

- the command line exits 0, or exits 2 with exactly one ``error:`` line and no traceback;
- the server answers 2xx or 4xx, and every 4xx (and every answer of a JSON route) is a JSON body;
- outputs of earlier runs are unchanged unless a run succeeds in replacing them (``--overwrite``).

The CLI runs in this process (``textarmor.cli.main``): a subprocess per case would cost seconds of imports.
Examples per test are fixed (``derandomize``: the same cases every run) so the suite keeps to its time budget;
a soak run draws new cases and many more of them::

    TEXTARMOR_FUZZ_EXAMPLES=2000 TEXTARMOR_FUZZ_REPORT=fuzz.json pytest tests/test_fuzz.py

``TEXTARMOR_FUZZ_REPORT`` writes the tally: cases tried, exit codes and HTTP statuses by code, seconds.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FILLER, NEGATIVE, POSITIVE
from textarmor.cli import main

SOAK = int(os.environ.get("TEXTARMOR_FUZZ_EXAMPLES", "0"))


def examples(default: int) -> settings:
    """``default`` cases, the same each run; under a soak run, ``TEXTARMOR_FUZZ_EXAMPLES`` new ones."""
    return settings(max_examples=SOAK or default, derandomize=not SOAK, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])


TALLY: dict = {"cli_cases": 0, "exit_codes": Counter(), "http_cases": 0, "http_statuses": Counter(),
               "seconds": Counter(), "exit_codes_by_test": {}, "error_kinds": Counter()}


@pytest.fixture(scope="module", autouse=True)
def report_tally():
    yield
    path = os.environ.get("TEXTARMOR_FUZZ_REPORT")
    if path:
        tally = {k: v for k, v in TALLY.items() if k != "current"}
        Path(path).write_text(json.dumps({**tally, "examples_per_test": SOAK or "default"}, indent=2) + "\n")


@pytest.fixture(autouse=True)
def timed(request):
    started = time.perf_counter()
    TALLY["exit_codes_by_test"][request.node.name] = TALLY["current"] = Counter()
    yield
    TALLY["seconds"][request.node.name] += round(time.perf_counter() - started, 2)


# ------------------------------------------------------------------------------------------- the CLI side
def invoke(args: list, stdin: bytes | None = None) -> tuple[int, str, str]:
    """Run ``textarmor ARGS`` here; returns (exit code, stdout, stderr). Anything but SystemExit propagates
    (an uncaught exception is a crash, and fails the test)."""
    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin = saved_stdin
    return code, out.getvalue(), err.getvalue()


def check_exit(code: int, err: str) -> None:
    TALLY["cli_cases"] += 1
    TALLY["exit_codes"][str(code)] += 1
    TALLY["current"][str(code)] += 1
    assert "Traceback" not in err, err[-3000:]
    assert code in (0, 2), f"exit {code}: {err[-3000:]}"
    if code == 2:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, err[-3000:]
        TALLY["error_kinds"][_kind(errors[0])] += 1


def _kind(line: str) -> str:
    """An error line without its paths and numbers, to count which errors the cases met."""
    words = [w for w in line.removeprefix("error: ").split() if "/" not in w and not any(c.isdigit() for c in w)]
    return " ".join(words[:7])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


WORDS = st.sampled_from(FILLER + POSITIVE + NEGATIVE)
ODD = st.sampled_from(["\ud800", "\udfff", "\x00", "é", "\ufeff", "\r", "\n", "\r\n", ",", '"', "\t", "\\", "{",
                       "}", "'", "\u2028", "😀", "\x1b", " ", ""])
CLEAN_TEXT = st.lists(WORDS, min_size=0, max_size=8).map(" ".join)
TEXT = st.one_of(CLEAN_TEXT, st.lists(st.one_of(WORDS, ODD), max_size=10).map("".join), st.text(max_size=30))
GOOD_LABEL = st.sampled_from(["positive", "negative"])
LABEL = st.one_of(GOOD_LABEL, st.sampled_from(["", "neutral", "1", "0", "1.0"]), st.none(), st.integers(-2, 2))
# Weighted towards files that should be read, so that successful runs (and what they replace) are tried too.
ENCODINGS = ["utf-8"] * 6 + ["utf-8-sig", "utf-16", "latin-1", "cp1252"]
MALFORMS = [None] * 12 + ["truncate", "unclosed_quote", "extra_field", "junk_line", "nul_byte", "long_field",
                          "blank_lines", "crlf", "non_object", "header_only", "empty", "binary"]
COLUMNS = [("text", "label")] * 6 + [("review", "label"), ("text", "stars"), ("text",)]


@st.composite
def data_files(draw, min_rows: int = 2, formats=("txt", "csv", "tsv", "jsonl", "json")) -> tuple[str, bytes]:
    """``(suffix, bytes)`` of a generated data file: rows of text and label in some format and encoding, and
    now and then a malformation. Half the files hold plain words only, the others any text."""
    fmt = draw(st.sampled_from(formats))
    text = CLEAN_TEXT if draw(st.booleans()) else TEXT
    label = st.one_of(GOOD_LABEL, GOOD_LABEL, LABEL)
    rows = draw(st.lists(st.tuples(text, label), min_size=min_rows, max_size=max(8, min_rows)))
    columns = draw(st.sampled_from(COLUMNS))
    malform = draw(st.sampled_from(MALFORMS))
    if malform == "long_field":
        rows = rows + [("great " * 24_000, "positive")]  # 144,000 characters: over the csv module's default limit
    records = [dict(zip(columns, row)) for row in rows]
    if fmt == "txt":
        content = "\n".join(text for text, _ in rows) + "\n"
    elif fmt in ("csv", "tsv"):
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="," if fmt == "csv" else "\t")
        writer.writerow(columns)
        writer.writerows([[("" if v is None else v) for v in r.values()] for r in records])
        content = buffer.getvalue()
    elif fmt == "jsonl":
        ascii_only = draw(st.booleans())
        content = "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in records)
    else:
        content = json.dumps(records, ensure_ascii=draw(st.booleans()))
    if malform == "truncate":
        content = content[: draw(st.integers(0, max(0, len(content) - 1)))]
    elif malform == "unclosed_quote":
        content += '"an unclosed quote, label\n'
    elif malform == "extra_field":
        content += "one,two,three,four\n"
    elif malform == "junk_line":
        content += draw(st.sampled_from(["{not json", "[1, 2]", "null", "{}", '{"text": 5}', '{"text": ["a"]}',
                                         '{"text": {"a": 1}, "label": 1}', "[" * 5000])) + "\n"
    elif malform == "nul_byte":
        content = content[: len(content) // 2] + "\x00" + content[len(content) // 2:]
    elif malform == "blank_lines":
        content = "\n\n" + content.replace("\n", "\n\n")
    elif malform == "crlf":
        content = content.replace("\n", "\r\n")
    elif malform == "non_object" and fmt in ("jsonl", "json"):
        content = json.dumps([r.get("text") for r in records])
    elif malform == "header_only":
        content = content.splitlines(keepends=True)[0] if content else ""
    elif malform == "empty":
        content = ""
    encoding = draw(st.sampled_from(ENCODINGS))
    errors = "surrogatepass" if encoding.startswith("utf-8") else "replace"
    data = content.encode(encoding, errors=errors)
    if malform == "binary":
        data = draw(st.binary(min_size=1, max_size=300))
    return fmt, data


@pytest.fixture(scope="module")
def models(tiny_trained, tmp_path_factory):
    """Copies of the tiny model that verbs may modify (calibrate writes textarmor.json)."""
    root = tmp_path_factory.mktemp("fuzz-models")
    return {"trained": tiny_trained, "root": root}


def file_verb_args(verb: str, model: Path, data: Path, out: Path, overwrite: bool) -> list:
    tail = ["--overwrite"] if overwrite else []
    return {
        "predict": ["predict", model, data, "--out", out / "predictions.jsonl", *tail],
        "evaluate": ["evaluate", model, "--data", data, "--out", out / "metrics.json"],
        "explain": ["explain", model, "--input", data, "--methods", "attention", "--out", out, *tail],
        "attack": ["attack", model, "--data", data, "--recipe", "typos", "--n", 2, "--out", out / "attack",
                   "--resume"],
        "calibrate": ["calibrate", model, "--data", data],
    }[verb]


EARLIER = {"predictions.jsonl": b'{"line": 1, "label": "earlier"}\n', "metrics.json": b'{"accuracy": 0.5}\n',
           "explanations.json": b"{}\n"}


@examples(70)
@given(file=data_files(), verb=st.sampled_from(["predict", "predict", "evaluate", "explain", "attack", "calibrate"]),
       overwrite=st.sampled_from([True, True, False]), earlier=st.booleans())
def test_generated_data_files(models, file, verb, overwrite, earlier):
    fmt, data = file
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / f"data.{fmt}"
        path.write_bytes(data)
        out = root / "out"
        out.mkdir()
        if earlier:
            for name, content in EARLIER.items():
                (out / name).write_bytes(content)
        model = models["trained"]
        if verb == "calibrate":  # it writes into the model folder: a copy per case
            model = root / "model"
            shutil.copytree(models["trained"], model)
        before_out, before_model = snapshot(out), snapshot(model)
        code, _, err = invoke(file_verb_args(verb, model, path, out, overwrite))
        check_exit(code, err)
        if code != 0:
            assert snapshot(out) == before_out, "a failed run changed earlier outputs"
            assert snapshot(model) == before_model, "a failed run changed the model folder"
        else:
            for name, content in before_out.items():  # kept unless this run wrote that output on purpose
                replaced = overwrite or verb == "evaluate" and name == "metrics.json"
                assert replaced or snapshot(out)[name] == content
        assert not [p for p in root.rglob("*.partial") if p.stat().st_size == 0], "an empty .partial was left"


@examples(25)
@given(file=data_files())
def test_generated_stdin(models, file):
    _, data = file
    code, out, err = invoke(["predict", models["trained"], "-"], stdin=data)
    check_exit(code, err)
    if code == 0:
        assert all(json.loads(line)["label"] in ("negative", "positive") for line in out.splitlines())


def labelled_rows(rows: list[tuple[str, str]], fmt: str) -> bytes:
    if fmt == "jsonl":
        return "".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows).encode()
    buffer = io.StringIO()
    csv.writer(buffer).writerows([("text", "label"), *rows])
    return buffer.getvalue().encode()


# Training costs seconds a case: two in three files are plain labelled rows, so that runs that train are tried.
PLAIN_LABELLED = st.tuples(st.sampled_from(["csv", "jsonl"]), st.lists(st.tuples(CLEAN_TEXT, GOOD_LABEL), min_size=4,
                                                                       max_size=30))
TRAINING_FILES = st.one_of(PLAIN_LABELLED.map(lambda c: (c[0], labelled_rows(c[1], c[0]))),
                           PLAIN_LABELLED.map(lambda c: (c[0], labelled_rows(c[1], c[0]))),
                           data_files(min_rows=12, formats=("csv", "tsv", "jsonl", "json")))


@examples(6)
@given(file=TRAINING_FILES, eval_file=st.booleans())
def test_generated_training_files(tiny_base, file, eval_file):
    fmt, data = file
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / f"data.{fmt}"
        path.write_bytes(data)
        extra = ["--eval-data", path] if eval_file else []
        code, _, err = invoke(["train", "--data", path, "--model", tiny_base, "--out", root / "model", "--epochs",
                               1, "--max-length", 16, *extra])
        check_exit(code, err)
        if code != 0:
            assert not (root / "model").exists() and not (root / "model.partial").exists()


# ---------------------------------------------------------------------------------------- option values
def numbers(*good):
    return st.one_of(st.sampled_from([str(g) for g in good]), st.integers(-10**12, 10**12).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(str), st.sampled_from(["", "x", "1e400",
                                                                                               "-0", "0x10", "nan"]))


def words(*good):
    return st.one_of(st.sampled_from(list(good)), st.text(max_size=12))


OPTIONS = {
    "predict": {"--threshold": numbers(0.5, 0.9), "--top-k": numbers(1, 2, 3), "--coverage": numbers(0.9),
                "--conformal-method": words("lac", "aps"), "--function-to-apply": words("softmax", "sigmoid", "none"),
                "--format": words("txt", "csv", "jsonl"), "--text-column": words("text", "review"),
                "--batch-tokens": numbers(64, 1024), "--backend": words("auto", "torch", "onnx"),
                "--device": words("cpu", "cuda", "mps"), "--abstain-label": words("unsure"),
                "--engine": words("local").filter(lambda s: s.strip() != "ray"),
                "--defense": words("smooth", "tta", "mix"),
                "--defense-option": words("k=4", "rate=0.3", "augmentations=repair", "k=x", "nope=1")},
    "evaluate": {"--threshold": numbers(0.5), "--batch-tokens": numbers(64, 1024),
                 "--text-column": words("text"), "--label-column": words("label", "stars"),
                 "--backend": words("auto", "torch"), "--device": words("cpu", "cuda"),
                 "--defense": words("tta", "smooth"), "--defense-option": words("k=4", "rate=2")},
    "attack": {"--recipe": words("deepwordbug", "typos", "charnoise"), "--n": numbers(1, 2, 3),
               "--query-budget": numbers(5, 50), "--max-modify-rate": numbers(0.1, 0.3),
               "--seed": numbers(0, 1), "--target": words("positive", "negative"),
               "--concurrency": numbers(1, 8), "--batch-tokens": numbers(64, 1024),
               "--engine": words("local").filter(lambda s: s.strip() != "ray")},
    "explain": {"--methods": words("attention", "grad_input", "occlusion", "ig,attention", "random"),
                "--n-steps": st.sampled_from(["2", "4", "0", "-3", "x", "1e9"]),
                "--batch-size": numbers(1, 4), "--layer": numbers(-1, 0, 1), "--head": numbers(0, 1),
                "--internal-batch-size": numbers(2, 8), "--device": words("cpu", "cuda"),
                "--dtype": words("float32", "bfloat16", "float16", "int8")},
    "serve": {"--port": numbers(9, 8080), "--host": words("127.0.0.1", "0.0.0.0", "::1"),
              "--max-batch-tokens": numbers(64, 8192), "--max-wait-ms": numbers(0, 5), "--max-queue": numbers(1, 8),
              "--max-inputs": numbers(1, 64), "--max-chars": numbers(10, 1000), "--device": words("cpu", "cuda"),
              "--model-batch-tokens": numbers(64, 1024), "--torch-threads": numbers(1, 2),
              "--api-key": words("k3y", " "), "--cors-origin": words("https://a.example"),
              "--defense": words("tta", "smooth"), "--defense-option": words("k=4", "weight=3")},
}
FLAGS = {"predict": ["--all-scores", "--strict"], "explain": ["--faithfulness"],
         "serve": ["--no-batching", "--public-docs", "--public-metrics"], "evaluate": [], "attack": []}


@st.composite
def option_sets(draw, verb: str) -> list[str]:
    chosen = draw(st.lists(st.sampled_from(sorted(OPTIONS[verb])), max_size=4, unique=True))
    args = []
    for name in chosen:
        args += [name, draw(OPTIONS[verb][name])]
    flags = st.lists(st.sampled_from(FLAGS[verb]), max_size=2, unique=True) if FLAGS[verb] else st.just([])
    return args + draw(flags)


def option_case(verb: str):
    return st.tuples(st.just(verb), option_sets(verb))


@examples(90)
@given(case=st.one_of(*(option_case(verb) for verb in OPTIONS)))
def test_generated_option_values(models, synthetic_files, case, monkeypatch):
    import uvicorn

    verb, options = case
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))  # serve: up to the listening
    with tempfile.TemporaryDirectory() as tmp:
        texts = Path(tmp) / "texts.txt"
        texts.write_text("a great film\nthe plot was dull\n")
        model, data = models["trained"], synthetic_files[1]
        positional = {"predict": [model, texts], "evaluate": [model, "--data", data],
                      "attack": [model, "--data", data] + ([] if "--n" in options else ["--n", "2"]),
                      "explain": [model, "a great film"], "serve": [model]}[verb]
        if verb == "attack" and "--recipe" not in options:
            options = options + ["--recipe", "typos"]
        code, _, err = invoke([verb, *positional, *options])
        check_exit(code, err)


@examples(12)
@given(opset=st.one_of(st.integers(-5, 30).map(str), st.sampled_from(["x", "17.5", ""])))
def test_generated_export_opsets(models, opset):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "onnx"
        code, _, err = invoke(["export", models["trained"], "--out", out, "--opset", opset])
        check_exit(code, err)
        assert (code == 0) == out.exists()


# -------------------------------------------------------------------------------------------- HTTP side
KEY = "fuzz-key"
AUTH = st.one_of(st.just(f"Bearer {KEY}"), st.sampled_from([None, "Bearer wrong", "Basic Zm9vOmJhcg==", "Bearer",
                                                            "bearer " + KEY, KEY, f"Bearer {KEY}" + "x" * 300]))
HTTP_TEXT = st.one_of(TEXT, st.text(min_size=150, max_size=400), st.sampled_from(["", " "]))
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), HTTP_TEXT)
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                                                   inner, max_size=4),
                          max_leaves=12)
PARAMETERS = st.fixed_dictionaries({}, optional={
    "top_k": st.one_of(st.none(), st.integers(-3, 10**6), st.text(max_size=3), st.floats()),
    "function_to_apply": st.one_of(st.sampled_from(["softmax", "sigmoid", "none"]), st.text(max_size=5)),
    "threshold": st.one_of(st.floats(), st.none(), st.text(max_size=3)),
    "truncation": st.one_of(st.booleans(), st.integers(), st.text(max_size=3)),
    "extra": JSON_LEAF})
PREDICT_BODY = st.fixed_dictionaries({"inputs": st.one_of(HTTP_TEXT, st.lists(HTTP_TEXT, max_size=10), JSON_VALUE)},
                                     optional={"parameters": st.one_of(PARAMETERS, JSON_VALUE)})
EXPLAIN_BODY = st.fixed_dictionaries({"inputs": st.one_of(HTTP_TEXT, st.lists(HTTP_TEXT, max_size=10))},
                                     optional={"methods": st.one_of(st.lists(st.sampled_from(
                                         ["ig", "grad_input", "occlusion", "rollout", "x"]), max_size=3), JSON_LEAF),
                                         "n_steps": st.one_of(st.integers(-2, 12), st.integers(257, 10**9), JSON_LEAF)})
ANY_BODY = st.one_of(
    PREDICT_BODY.map(lambda b: json.dumps(b).encode()),
    PREDICT_BODY.map(lambda b: json.dumps(b, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    EXPLAIN_BODY.map(lambda b: json.dumps(b).encode()),
    JSON_VALUE.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.just(b'{"inputs": "' + b"a" * 200_000 + b'"}'),
    st.none())
PATHS = st.sampled_from(["/", "/predict", "/score", "/explain", "/health", "/metrics", "/openapi.json",
                         "/swagger.json", "/docs", "/redoc", "/nope", "/predict/", "//", "/%00", "/score?x=1"])
CONTENT_TYPES = st.sampled_from([None, "application/json", "application/json", "text/plain",
                                 "application/json; charset=latin-1", "multipart/form-data; boundary=x",
                                 "application/x-www-form-urlencoded"])
# Most requests are what clients send, a prediction or an explanation with a generated body; the rest are
# anything: any method, route and body.
REQUESTS = st.one_of(
    st.tuples(st.just("POST"), st.sampled_from(["/", "/predict", "/score"]),
              st.one_of(PREDICT_BODY.map(lambda b: json.dumps(b).encode()),
                        PREDICT_BODY.map(lambda b: json.dumps(b, ensure_ascii=False).encode("utf-8", "surrogatepass"))),
              st.sampled_from(["application/json"] * 4 + [None])),
    st.tuples(st.just("POST"), st.just("/explain"), EXPLAIN_BODY.map(lambda b: json.dumps(b).encode()),
              st.just("application/json")),
    st.tuples(st.sampled_from(["POST", "GET", "PUT", "DELETE"]), PATHS, ANY_BODY, CONTENT_TYPES))
JSON_ROUTES = {"/", "/predict", "/score", "/explain", "/health", "/openapi.json", "/swagger.json"}


@pytest.fixture(scope="module")
def live_server(models):
    pytest.importorskip("fastapi")
    from tests.serving_helpers import running
    from textarmor.serving import create_app

    app = create_app(models["trained"], api_key=KEY, max_inputs=8, max_chars=300, max_queue=4, device="cpu")
    with running(app) as url:
        yield url


@examples(250)
@given(request=REQUESTS, auth=AUTH)
def test_generated_http_requests(live_server, request, auth):
    method, path, body, content_type = request
    import httpx

    headers = {k: v for k, v in (("Authorization", auth), ("Content-Type", content_type)) if v is not None}
    response = httpx.request(method, live_server + path, content=body, headers=headers, timeout=60)
    TALLY["http_cases"] += 1
    TALLY["http_statuses"][str(response.status_code)] += 1
    assert response.status_code < 500, response.text[:500]
    is_json = response.headers.get("content-type", "").startswith("application/json")
    route = path.split("?")[0]
    if response.status_code >= 400 or route in JSON_ROUTES:
        assert is_json, (response.status_code, response.headers.get("content-type"))
        payload = response.json()
        if response.status_code >= 400:
            assert isinstance(payload.get("error"), str) and payload["error"]
    assert httpx.get(live_server + "/health", timeout=60).json()["status"] == "ok"  # still serving
