from __future__ import annotations

from typing import Annotated

import typer

from textarmor.cli import app
from textarmor.cli.defense_flags import DEFENSE_HELP, OPTION_HELP, defense_kwargs


@app.command("serve")
def serve(
    model_dir: Annotated[str, typer.Argument(help="Model directory (safetensors, or a `textarmor export` ONNX "
                                                  "folder), or the hub id of a textarmor model.")],
    host: Annotated[str, typer.Option(help="Interface to listen on; 0.0.0.0 exposes it to the network.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8080,
    api_key: Annotated[str | None, typer.Option(envvar="TEXTARMOR_API_KEY", show_envvar=True,
                                                help="Require 'Authorization: Bearer KEY' on every route but "
                                                     "liveness (an empty key is refused).")] = None,
    public_docs: Annotated[bool, typer.Option("--public-docs", help="With a key: serve /docs, /redoc and the "
                                                                    "OpenAPI document without it.")] = False,
    public_metrics: Annotated[bool, typer.Option("--public-metrics", help="With a key: serve /metrics without "
                                                                          "it (or give Prometheus the key).")] = False,
    max_batch_tokens: Annotated[int, typer.Option(help="Token budget of one merged model batch.")] = 8192,
    max_wait_ms: Annotated[float, typer.Option(help="How long a batch waits for more requests.")] = 5.0,
    batching: Annotated[bool, typer.Option("--batching/--no-batching",
                                           help="Merge concurrent requests (off: one request per model call).")]
    = True,
    max_queue: Annotated[int, typer.Option(help="Requests that may wait; more get HTTP 429.")] = 256,
    max_inputs: Annotated[int, typer.Option(help="Texts per request; more get HTTP 413.")] = 64,
    max_chars: Annotated[int, typer.Option(help="Characters per text; more get HTTP 413.")] = 10_000,
    cors_origin: Annotated[list[str] | None, typer.Option("--cors-origin",
                                                          help="Allow browser calls from this origin "
                                                               "(repeatable; CORS is off without it).")] = None,
    device: Annotated[str | None, typer.Option(help="cuda, cpu or mps (default: best available).")] = None,
    model_batch_tokens: Annotated[int | None, typer.Option(help="Token budget of one forward pass, into which "
                                                                "merged batches are cut (CPU: 512-1024; default: "
                                                                "the Classifier's).")] = None,
    torch_threads: Annotated[int | None, typer.Option(help="PyTorch CPU threads (1 on a busy shared CPU; "
                                                           "default: PyTorch's choice).")] = None,
    defense: Annotated[str | None, typer.Option("--defense", help=DEFENSE_HELP)] = None,
    defense_option: Annotated[list[str] | None, typer.Option("--defense-option", help=OPTION_HELP)] = None,
) -> None:
    """Serve a model over HTTP: Hugging Face Inference Endpoints schema on POST / and /predict (one list of
    labels per input, as huggingface_hub's InferenceClient reads it), Azure ML's POST /score, GET /health,
    /metrics (Prometheus) and /docs. Ctrl-C or SIGTERM finishes in-flight requests.

    Examples:

        textarmor serve runs/sst2

        textarmor serve runs/sst2-int8        # an ONNX int8 export, run by ONNX Runtime

        TEXTARMOR_API_KEY=change-me textarmor serve runs/sst2 --host 0.0.0.0 --port 8080

        curl -s localhost:8080/ -H 'Content-Type: application/json' -d '{"inputs": "a gripping, funny film"}'

        textarmor serve runs/sst2 --defense tta --defense-option augmentations=repair
    """
    from textarmor.serving import serve as run_server

    run_server(model_dir, host=host, port=port, api_key=api_key, max_batch_tokens=max_batch_tokens,
               max_wait_ms=max_wait_ms, batching=batching, max_queue=max_queue, max_inputs=max_inputs,
               max_chars=max_chars, cors_origins=cors_origin, device=device,
               model_batch_tokens=model_batch_tokens, torch_threads=torch_threads, public_docs=public_docs,
               public_metrics=public_metrics, **defense_kwargs(defense, defense_option or []))
