"""Run the app under uvicorn: what ``textarmor serve`` calls."""
from __future__ import annotations

import ipaddress
import logging
import os

from textarmor.serving.auth import API_KEY_ENV


def serve(model_dir: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8080, api_key: str | None = None,
          max_batch_tokens: int = 8192, max_wait_ms: float = 5.0, max_queue: int = 256, max_inputs: int = 64,
          max_chars: int = 10_000, batching: bool = True, cors_origins: list[str] | None = None,
          device: str | None = None, model_batch_tokens: int | None = None, torch_threads: int | None = None,
          graceful_timeout_s: float = 30.0, log_level: str = "info", defense: str | None = None,
          defense_options: dict | None = None, public_docs: bool = False, public_metrics: bool = False) -> None:
    """Serve ``model_dir`` until SIGINT/SIGTERM, then stop taking connections, finish in-flight requests
    (up to ``graceful_timeout_s``) and exit. The API key comes from ``api_key`` or ``$TEXTARMOR_API_KEY``.

    ``torch_threads`` sets PyTorch's intra-op threads for this process. On a CPU shared with other busy
    processes, 1 avoids stalls: every parallel operator waits at a barrier for its slowest thread, and a
    descheduled thread makes each of a forward pass's many operators wait a scheduler time slice.
    ``defense``/``defense_options`` serve the model behind an inference-time defence (see
    :mod:`textarmor.defenses`). ``public_docs``/``public_metrics``: see :func:`~textarmor.serving.create_app`.

    The model is loaded before the port opens, so a folder that cannot load is a
    :class:`~textarmor.errors.TextArmorError` here, not a failed startup. Serving beyond this machine without a
    key logs a warning.
    """
    import uvicorn

    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)

    from textarmor.serving.app import create_app

    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    app = create_app(model_dir, max_batch_tokens=max_batch_tokens, max_wait_ms=max_wait_ms, max_queue=max_queue,
                     max_inputs=max_inputs, max_chars=max_chars, api_key=key,
                     cors_origins=cors_origins, batching=batching, device=device,
                     model_batch_tokens=model_batch_tokens, defense=defense, defense_options=defense_options,
                     public_docs=public_docs, public_metrics=public_metrics, preload=True)
    if key is None and not _is_loopback(host):
        logging.getLogger("textarmor.serving").warning(
            "WARNING: serving on %s without an API key: anyone who can reach this port can query the model. Set "
            "%s (or --api-key), or put an authenticating proxy in front.", host, API_KEY_ENV)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=graceful_timeout_s)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: assume it reaches beyond this machine
        return False
