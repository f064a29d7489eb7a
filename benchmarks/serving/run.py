"""Load benchmark of `textarmor serve`: throughput and latency with and without dynamic batching.

Starts the server as its own process on 127.0.0.1 (loopback only), then for each concurrency level sends a
fixed number of requests (one SST-2 dev sentence each) from that many concurrent clients (httpx, asyncio)
and records requests/s, p50/p99 latency and errors (non-200 answers, timeouts, dropped connections).

    # CPU (the numbers in docs/benchmarks.md), a MiniLM SST-2 model directory:
    nice -n 10 python benchmarks/serving/run.py --model runs/demo-sst2 --model-name minilm-l6-sst2
    # GPU (lead): a roberta-base-shaped model with random weights costs what roberta-base costs
    python benchmarks/serving/run.py --random-roberta-base --device cuda --requests 4000 \
        --concurrency 32 64 128 --out benchmarks/results/serving_gpu.json

Rows are appended to (or replace same-key rows in) ``--out``: model, device, batching, concurrency,
requests, rps, p50_ms, p99_ms, errors.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "src" / "textarmor" / "data" / "sst2_dev.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, batching: bool, device: str | None, extra: list[str]) -> subprocess.Popen:
    args = [sys.executable, "-c", "from textarmor.cli import main; main()", "serve", model, "--host", "127.0.0.1",
            "--port", str(port), "--max-queue", "1024", "--batching" if batching else "--no-batching", *extra]
    if device:
        args += ["--device", device]
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TEXTARMOR_API_KEY": ""}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + proc.stderr.read().decode(errors="replace")[-2000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not start within 300 s")


async def post_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int,
                    body: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 keep-alive POST on an open connection. A raw client: on a 2-core machine the load
    generator shares the CPU with the server, and httpx's per-request overhead would be measured too."""
    writer.write(b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (port, len(body), body))
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return status, await reader.readexactly(length)


async def load(port: int, texts: list[str], concurrency: int, requests: int) -> dict:
    """``concurrency`` clients, each on its own connection, send ``requests`` in all; latency per request."""
    bodies = [json.dumps({"inputs": t}).encode() for t in texts]
    latencies: list[float] = []
    errors = 0
    next_index = 0

    async def client() -> None:
        nonlocal next_index, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while next_index < requests:
                i = next_index
                next_index += 1
                started = time.perf_counter()
                try:
                    status, payload = await post_json(reader, writer, port, bodies[i % len(bodies)])
                    ok = status == 200 and isinstance(json.loads(payload), list)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    ok = False
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                latencies.append(time.perf_counter() - started)
                errors += not ok
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    assert len(latencies) == requests, "every request is answered or counted as an error"
    return {"requests": requests, "rps": round(requests / elapsed, 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "errors": int(errors), "seconds": round(elapsed, 2)}


def random_roberta_base(root: Path, tokenizer_ref: str) -> str:
    """A roberta-base-shaped classifier (12 layers, hidden 768) with random weights; its cost per token is
    roberta-base's whatever the tokenizer (MiniLM's by default, a different vocabulary size only)."""
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from textarmor.models import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_ref)
    # Positions start after the padding index in RoBERTa: 514 positions read 512 tokens.
    config = RobertaConfig(vocab_size=len(tokenizer), num_labels=2, pad_token_id=tokenizer.pad_token_id,
                           max_position_embeddings=512 + tokenizer.pad_token_id + 1,
                           id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    RobertaForSequenceClassification(config).save_pretrained(root, safe_serialization=True)
    tokenizer.save_pretrained(root)
    return str(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="Model directory to serve.")
    parser.add_argument("--random-roberta-base", action="store_true", help="Serve a random roberta-base-shaped model.")
    parser.add_argument("--tokenizer", default="minilm-l6",
                        help="Tokenizer of --random-roberta-base (alias or folder; default minilm-l6).")
    parser.add_argument("--model-name", help="Name in the results (default: the folder name).")
    parser.add_argument("--device", default=None, help="cpu, cuda (default: the server's choice).")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--requests", type=int, default=512, help="Requests per concurrency level.")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--model-batch-tokens", type=int, default=None,
                        help="Server's token budget per forward pass (CPU: 512; default: the Classifier's).")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="Server's PyTorch threads (1 on a busy shared CPU; default: PyTorch's choice).")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serving.json"))
    args = parser.parse_args()
    if not args.model and not args.random_roberta_base:
        parser.error("pass --model DIR or --random-roberta-base")
    sys.path.insert(0, str(ROOT / "src"))
    tmp = tempfile.TemporaryDirectory()
    model = random_roberta_base(Path(tmp.name), args.tokenizer) if args.random_roberta_base else args.model
    name = args.model_name or ("roberta-base-random" if args.random_roberta_base else Path(model).name)
    device = args.device or "cpu"
    texts = [json.loads(line)["text"] for line in DEV.read_text().splitlines()]

    rows = []
    for batching in (True, False):
        port = free_port()
        extra = ["--max-wait-ms", str(args.max_wait_ms)]
        extra += ["--torch-threads", str(args.torch_threads)] if args.torch_threads else []
        extra += ["--model-batch-tokens", str(args.model_batch_tokens)] if args.model_batch_tokens else []
        server = start_server(model, port, batching, args.device, extra)
        try:
            asyncio.run(load(port, texts, 8, 64))  # warm-up: first calls allocate memory and pick kernels
            for concurrency in args.concurrency:
                result = asyncio.run(load(port, texts, concurrency, args.requests))
                row = {"model": name, "device": device, "batching": batching, "concurrency": concurrency, **result,
                       "torch_threads": args.torch_threads, "model_batch_tokens": args.model_batch_tokens}
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)

    out = Path(args.out)
    existing = json.loads(out.read_text())["rows"] if out.exists() else []
    def key(row: dict) -> tuple:
        return tuple(row.get(k) for k in ("model", "device", "batching", "concurrency", "torch_threads",
                                          "model_batch_tokens"))

    keys = {key(r) for r in rows}
    kept = [r for r in existing if key(r) not in keys]
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    for row in rows:
        row["command"] = command
    out.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores", "rows": kept + rows},
                              indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
