"""The FastAPI app: Hugging Face Inference Endpoints and Azure ML routes over one micro-batched
:class:`~textarmor.classifier.Classifier`.

    POST /, /predict   Hugging Face Inference Endpoints schema ({"inputs", "parameters"})
    POST /score        Azure ML scoring route, same body and answer
    GET  /, /health    liveness (with an API key set, the model's details only to requests that send it)
    GET  /metrics      Prometheus text format
    GET  /swagger.json OpenAPI document (also /openapi.json; browsable at /docs)

With an API key, every route but liveness needs it: /metrics and the API documents too, unless
``public_metrics`` / ``public_docs`` open them. Errors are JSON ``{"error": message}``: 400 malformed body or
no ``inputs``, 401 API key, 413 over a limit, 422 invalid field (text that is not valid Unicode included),
429 queue full; anything unforeseen is a JSON 500. Messages never echo the user's text.
"""
from __future__ import annotations

import asyncio
import copy
import os
import time
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from textarmor.classifier import Classifier
from textarmor.errors import ModelReferenceError, ParameterError
from textarmor.model_dir import check_model_dir
from textarmor.serving.auth import check_api_key, has_api_key, require_api_key
from textarmor.serving.batcher import MicroBatcher, QueueFull
from textarmor.serving.metrics import ServerMetrics
from textarmor.serving.protocol import (
    MAX_EXPLAIN_INPUTS,
    ExplainRequest,
    LimitError,
    Limits,
    PredictRequest,
    PredictResponse,
    check_token_lengths,
    describe_validation_errors,
    format_response,
    model_scores,
)

ERROR_SCHEMA = {"content": {"application/json": {"example": {"error": "What went wrong and how to fix it."}}}}


def create_app(classifier_or_model_dir: Classifier | str | os.PathLike, *, max_batch_tokens: int = 8192,
               max_wait_ms: float = 5.0, max_queue: int = 256, max_inputs: int = 64, max_chars: int = 10_000,
               api_key: str | None = None, cors_origins: list[str] | None = None, batching: bool = True,
               device: str | None = None, model_batch_tokens: int | None = None, defense=None,
               defense_options: dict | None = None, public_docs: bool = False, public_metrics: bool = False,
               preload: bool = False) -> FastAPI:
    """Build the server. A model directory (safetensors, or an ONNX export served by ONNX Runtime; a hub id
    of a textarmor model is fetched first) is checked now and loaded once, at startup (``lifespan``).

    ``max_batch_tokens`` and ``max_wait_ms`` bound a merged batch; ``max_queue`` the requests that may wait
    (one more gets 429); ``max_inputs``/``max_chars`` one request (413); ``api_key`` enables bearer auth;
    ``cors_origins`` enables CORS for those origins (off by default); ``batching=False`` runs every request
    alone (batch-1 serving, through the same bounded queue). ``device`` and ``model_batch_tokens`` (the
    Classifier's token budget per forward pass, into which it cuts a merged batch after sorting by length)
    apply when a model directory is given; on a CPU a small budget (512-1024) is fastest. ``defense`` (a name
    with ``defense_options``, or a ``Defense``) puts the loaded classifier behind that inference-time defence
    (see :mod:`textarmor.defenses`); every prediction route then answers with the defended scores.

    ``api_key`` must not be empty (an empty key would leave the server open unnoticed). With a key,
    ``public_docs`` serves /docs, /redoc, /openapi.json and /swagger.json without it and ``public_metrics``
    /metrics. ``preload`` loads the model now rather than at startup, so that a model that cannot load is an
    error of this call (``serve`` uses it: a damaged folder ends in one line before the port opens).
    """
    api_key = check_api_key(api_key)
    for name, value in (("max_batch_tokens", max_batch_tokens), ("max_queue", max_queue),
                        ("max_inputs", max_inputs), ("max_chars", max_chars)):
        if not isinstance(value, int) or value < 1:
            raise ParameterError(f"{name} must be a positive integer, got {value!r}.")
    if max_wait_ms < 0:
        raise ParameterError(f"max_wait_ms must be >= 0, got {max_wait_ms!r}.")
    if defense is not None and defense != "none":
        from textarmor.defenses import make_defense

        if not hasattr(defense, "scores"):  # a name: check it and its options now, not at startup
            defense = make_defense(defense, **(defense_options or {}))
    if isinstance(classifier_or_model_dir, Classifier):
        preloaded = classifier_or_model_dir
        if defense is not None and defense != "none":
            from textarmor.defenses import defend

            preloaded = defend(preloaded, defense)

        def load() -> Classifier:
            return preloaded

        model_name = "classifier"
    else:
        from textarmor.models import resolve_model_dir

        resolved = Path(resolve_model_dir(classifier_or_model_dir))
        if not resolved.exists():
            raise ModelReferenceError(f"'{classifier_or_model_dir}' is neither a model folder nor a textarmor model "
                                      "on the Hugging Face Hub (a repository with textarmor.json, reachable or "
                                      "cached). Pass a folder written by `textarmor train` or `textarmor export`, "
                                      "or the hub id of a packaged one.")
        path = check_model_dir(resolved)
        options = {"max_tokens_per_batch": model_batch_tokens} if model_batch_tokens else {}
        load = partial(Classifier.from_pretrained, path, device=device, defense=defense, **options)
        model_name = path.name if Path(classifier_or_model_dir).exists() else str(classifier_or_model_dir)  # hub id
        if preload:
            loaded = load()

            def load() -> Classifier:
                return loaded
    limits = Limits(max_inputs=max_inputs, max_chars=max_chars)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        clf = await asyncio.to_thread(load)
        app.state.classifier = clf
        if hasattr(clf, "defense"):  # given here or stored with the model: /health says which one answers
            app.state.info["defense"] = clf.defense.describe()
        # Token counts (batch budget, truncation check) are taken on the event loop with its own tokenizer
        # copy: fast tokenizers fail when used concurrently with different truncation settings.
        tokenizer = app.state.length_tokenizer = copy.deepcopy(clf.tokenizer)
        app.state.batcher = MicroBatcher(
            partial(model_scores, clf), cost=partial(_token_count, tokenizer, clf.max_length),
            max_batch_cost=max_batch_tokens,
            max_wait_s=max_wait_ms / 1000 if batching else 0.0, max_queue=max_queue,
            max_requests=None if batching else 1, on_batch=app.state.metrics.observe_batch).start()
        try:
            yield
        finally:
            # uvicorn has finished in-flight requests by now; this drains whatever is still queued.
            await asyncio.to_thread(app.state.batcher.stop)

    # The documents are routes of their own (below), so that the API key can guard them.
    # No redirect of "/predict/" to "/predict": a client's POST would be answered 307, not served or refused.
    app = FastAPI(title="textarmor classifier", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, redirect_slashes=False,
                  description="Text classification with the Hugging Face Inference Endpoints schema. "
                              "Send `Authorization: Bearer <key>` when the server has an API key.")
    app.state.api_key = api_key
    app.state.batcher = None
    app.state.explain_lock = asyncio.Lock()
    app.state.metrics = ServerMetrics(lambda: app.state.batcher.depth if app.state.batcher else 0)
    app.state.info = {"model": model_name, "batching": batching, "max_inputs": max_inputs, "max_chars": max_chars}
    if defense is not None and defense != "none":
        app.state.info["defense"] = defense.describe()
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    # Every character of text may take up to 6 bytes in JSON (\uXXXX); anything larger is refused unread.
    app.add_middleware(_BodySizeLimit, max_bytes=max_inputs * (max_chars * 6 + 16) + 4096)
    app.add_middleware(_RequestMetrics, metrics=app.state.metrics)
    _add_error_handlers(app)
    _add_routes(app, limits)
    _add_documents(app, public=public_docs)
    _add_metrics(app, public=public_metrics)
    return app


def _token_count(tokenizer, max_length: int, texts: list[str]) -> int:
    """Tokens the model will read (after truncation): the cost of a request against the batch budget."""
    return sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"])


def _add_routes(app: FastAPI, limits: Limits) -> None:
    async def predict(body: PredictRequest, request: Request) -> list:
        texts = body.texts
        limits.check(texts)
        if not texts:
            return []
        state = request.app.state
        if not body.parameters.truncation:
            # On the event loop's tokenizer copy (see lifespan); inputs are bounded by the limits.
            check_token_lengths(state.length_tokenizer, state.classifier.max_length, texts)
        scores = await state.batcher.submit(texts)
        return format_response(state.classifier, body, scores)

    errors = {code: ERROR_SCHEMA for code in (400, 401, 413, 422, 429)}
    for path, summary in (("/", "Classify (Hugging Face Inference Endpoints route)"),
                          ("/predict", "Classify (same as POST /)"),
                          ("/score", "Classify (Azure ML scoring route)")):
        app.add_api_route(path, predict, methods=["POST"], summary=summary, response_model=PredictResponse,
                          response_model_exclude_none=True, dependencies=[Depends(require_api_key)],
                          responses=errors, operation_id=f"classify_{path.strip('/') or 'root'}")

    async def explain(body: ExplainRequest, request: Request) -> list:
        texts = body.texts
        limits.check(texts)
        if len(texts) > MAX_EXPLAIN_INPUTS:
            raise LimitError(f"/explain takes at most {MAX_EXPLAIN_INPUTS} inputs per request; got {len(texts)}.")
        try:
            from textarmor.explain import explain_texts
        except ImportError:
            raise ParameterError("This server has no explanation support: pip install 'textarmor[explain]'.") from None
        state = request.app.state
        async with state.explain_lock:  # gradients are memory-hungry: one explanation at a time
            return await asyncio.to_thread(explain_texts, state.classifier, texts, methods=body.methods,
                                           n_steps=body.n_steps)

    app.add_api_route("/explain", explain, methods=["POST"], summary="Word attributions (integrated gradients, "
                      "gradient x input, occlusion)", dependencies=[Depends(require_api_key)], responses=errors,
                      operation_id="explain")

    def liveness(request: Request, authorized: bool = Depends(has_api_key)) -> dict:
        # Load balancers probe without a key: they learn only that the server is up.
        if not authorized:
            return {"status": "ok"}
        clf = request.app.state.classifier
        return {"status": "ok", **request.app.state.info, "labels": clf.labels}

    app.add_api_route("/", liveness, methods=["GET"], summary="Liveness", operation_id="liveness_root")
    app.add_api_route("/health", liveness, methods=["GET"], summary="Liveness", operation_id="health")


def _guard(public: bool) -> list:
    return [] if public else [Depends(require_api_key)]


def _add_metrics(app: FastAPI, public: bool) -> None:
    @app.get("/metrics", summary="Prometheus metrics", response_class=Response, dependencies=_guard(public))
    def metrics(request: Request) -> Response:
        m = request.app.state.metrics
        return Response(m.render(), media_type=m.content_type)


def _add_documents(app: FastAPI, public: bool) -> None:
    """The OpenAPI document and its browsable pages, behind the API key unless ``public``. (A browser does not
    send the key, so with a key the pages are for clients that do; ``public_docs`` opens them.)"""
    guard = _guard(public)

    def openapi(request: Request) -> dict:
        return request.app.openapi()

    for path in ("/openapi.json", "/swagger.json"):
        app.add_api_route(path, openapi, methods=["GET"], include_in_schema=False, dependencies=guard)

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False, dependencies=guard)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")


def _error(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=code, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        # A body that is not JSON, not an object, or has no "inputs" is malformed (400), as on Hugging Face;
        # a well-formed body with a bad field is unprocessable (422).
        malformed = any(err.get("type") in ("json_invalid", "model_attributes_type", "dict_type")
                        or tuple(err.get("loc", ())) in (("body",), ("body", "inputs")) and err.get("type") == "missing"
                        for err in errors)
        if malformed:
            return _error(400, 'The request body must be a JSON object with "inputs" (a string or a list of '
                               'strings), e.g. {"inputs": "a gripping, funny film"}.')
        return _error(422, describe_validation_errors(errors))

    @app.exception_handler(LimitError)
    async def too_large(request: Request, exc: LimitError) -> JSONResponse:
        return _error(413, str(exc))

    @app.exception_handler(ParameterError)
    async def bad_parameter(request: Request, exc: ParameterError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(QueueFull)
    async def busy(request: Request, exc: QueueFull) -> JSONResponse:
        request.app.state.metrics.rejected.inc()
        return _error(429, f"The server is busy: {exc} Retry shortly.", {"Retry-After": "1"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unforeseen(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not the client's mistake: the client gets JSON without internals; Starlette re-raises the
        # exception after this answer, so the server's log gets the traceback.
        return _error(500, "Internal server error; the server's log has the details.")


class _BodySizeLimit:
    """Refuse bodies larger than the request limits could ever need (413): at once when Content-Length says
    so, and while reading when it is absent (chunked uploads) or understated."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    def _message(self, size: int | str) -> str:
        return (f"The request body has {size} bytes; this server accepts at most {self.max_bytes} "
                "(from max_inputs x max_chars). Send fewer or shorter texts.")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _error(413, self._message(int(length)))(scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # FastAPI re-raises HTTPException from body reading: JSON 413
                raise StarletteHTTPException(413, self._message(f"more than {self.max_bytes}"))
            return message

        return await self.app(scope, counted_receive, send)


class _RequestMetrics:
    """Counts requests and times them, labelled by route template (not raw path: bounded label values)."""

    def __init__(self, app, metrics: ServerMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        code = 500

        async def send_and_record(message):
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_request(route, scope["method"], code, time.perf_counter() - started)
