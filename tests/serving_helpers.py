"""Run an ASGI app under a real uvicorn server on 127.0.0.1 (a free port chosen by the OS) in a thread."""
from __future__ import annotations

import socket
import threading
from contextlib import contextmanager

import uvicorn


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.ready = threading.Event()
        self.stopping = threading.Event()

    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)
        self.ready.set()

    async def shutdown(self, sockets=None):
        self.stopping.set()
        await super().shutdown(sockets=sockets)


@contextmanager
def running(app, timeout: float = 120.0, while_stopping=None):
    """Yield the base URL of ``app`` served by uvicorn; shut it down (gracefully) on exit, calling
    ``while_stopping()`` once uvicorn has begun its shutdown."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        if not server.ready.wait(timeout) or server.should_exit:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        if while_stopping is not None:
            server.stopping.wait(timeout)
            while_stopping()
        thread.join(timeout)
        sock.close()
