"""End-to-end inference throughput (tokenisation included) of textarmor against the Hugging Face pipeline.

CPU (this repo's 2-core machine; a fine-tuned MiniLM model dir, e.g. from `make demo`):

    python benchmarks/inference/run.py cpu --model runs/demo-sst2

GPU (roberta-base shape with random weights, which costs exactly what roberta-base costs):

    python benchmarks/inference/run.py gpu --tokenizer DIR --sst2 train.jsonl --imdb imdb.jsonl \
        [--parity-model runs/demo-sst2] [--workers-sweep 4 8] [--processes-sweep 0 2 4 8]

Host side only (tokenisation, batching and padding into the arrays a backend receives, no model), threads
against worker processes, on any machine:

    python benchmarks/inference/run.py host [--tokenizer DIR] [--workers-sweep 2] [--processes-sweep 1 2]

Each run appends rows to benchmarks/results/inference.json with fields device, model_shape, dataset, engine,
dtype, seq_per_s, tokens_per_s, achieved_tflops, frac_of_measured_peak, accuracy, and the tokeniser settings
tokenize_workers and tokenize_processes (0: threads) where a row varies them.
"""
from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import SHARED_DATA, cpu_name, read_jsonl, write_rows  # noqa: E402


def model_flops(model, lengths: np.ndarray) -> float:
    """2 × non-embedding parameters per token, plus attention's QK^T and AV (4 × length² × hidden per layer)."""
    cfg = model.config
    params = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    attention = 4.0 * cfg.num_hidden_layers * cfg.hidden_size * float((lengths.astype(np.float64) ** 2).sum())
    return 2.0 * params * float(lengths.sum()) + attention


def timed(fn, repeats: int = 1) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        _sync()
        best = min(best, time.perf_counter() - start)
    return best, result


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def pipeline_scores(model, tokenizer, texts, device, batch_size=64) -> np.ndarray:
    from transformers import pipeline

    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=device, batch_size=batch_size,
                    top_k=None)
    outputs = pipe(texts, truncation=True)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return np.array([[{d["label"]: d["score"] for d in row}[name] for name in labels] for row in outputs])


def naive_scores(model, tokenizer, texts, device, batch_size=64, max_length=512) -> np.ndarray:
    """The plain model in its dtype with fixed-size batches in input order: what a hand-written loop does."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt").to(device)
            out.append(torch.softmax(model(**enc).logits.float(), -1).cpu().numpy())
    return np.concatenate(out)


def row(device, shape, dataset, engine, dtype, seconds, n, tokens, flops, peak, accuracy=None) -> dict:
    tflops = flops / seconds / 1e12
    return {"device": device, "model_shape": shape, "dataset": dataset, "engine": engine, "dtype": dtype,
            "seq_per_s": round(n / seconds, 1), "tokens_per_s": round(float(tokens) / seconds, 1),
            "achieved_tflops": round(tflops, 4), "frac_of_measured_peak": round(tflops / peak, 4) if peak else None,
            "accuracy": None if accuracy is None else round(float(accuracy), 4), "n": n,
            "wall_s": round(seconds, 3)}


def run_cpu(args) -> list[dict]:
    import torch

    from textarmor import Classifier
    from textarmor.deploy import export_onnx
    from textarmor.models import load_model, load_tokenizer

    torch.set_num_threads(args.threads)
    dev = read_jsonl(args.dev)
    texts = [r["text"] for r in dev]
    model = load_model(args.model).eval()
    tokenizer = load_tokenizer(args.model)
    labels = np.array([model.config.label2id[r["label"]] for r in dev])
    lengths = np.array([len(x) for x in tokenizer(texts, truncation=True, max_length=512)["input_ids"]])
    flops = model_flops(model, lengths)
    device = cpu_name()
    shape = f"{model.config.model_type}-L{model.config.num_hidden_layers}-H{model.config.hidden_size}"
    rows = []

    def add(engine, dtype, fn):
        fn()  # warm-up: first-call allocations and lazy initialisation are not throughput
        seconds, scores = timed(fn, repeats=args.repeats)
        acc = (np.asarray(scores).argmax(1) == labels).mean()
        rows.append(row(device, shape, "sst2-dev", engine, dtype, seconds, len(texts), lengths.sum(), flops, None,
                        acc))
        print(rows[-1], flush=True)

    add("hf-pipeline", "fp32", lambda: pipeline_scores(model, tokenizer, texts, -1))
    clf = Classifier.from_pretrained(args.model, backend="torch", device="cpu")
    add("textarmor-torch", "fp32", lambda: clf.predict_proba(texts))
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(args.model, Path(tmp) / "fp32")
        onnx_fp32 = Classifier.from_pretrained(fp32, threads=args.threads)
        add("textarmor-onnx", "fp32", lambda: onnx_fp32.predict_proba(texts))
        int8 = export_onnx(args.model, Path(tmp) / "int8", quantize="int8", calibration_data=args.calibration)
        onnx_int8 = Classifier.from_pretrained(int8, threads=args.threads)
        add("textarmor-onnx", "int8-static", lambda: onnx_int8.predict_proba(texts))
    return rows


def measured_bf16_peak() -> float:
    """TFLOP/s of back-to-back 8192³ bf16 matmuls: the card's practical ceiling."""
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    iters = 50
    start = time.perf_counter()
    for _ in range(iters):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192**3 * iters / (time.perf_counter() - start) / 1e12


def run_gpu(args) -> list[dict]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, RobertaConfig

    device = torch.cuda.get_device_name(0)
    peak = measured_bf16_peak()
    print(f"{device}: measured bf16 matmul peak {peak:.1f} TFLOP/s", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    torch.manual_seed(0)
    # roberta-base's own config (RobertaConfig()'s defaults differ: 512 positions, 2 token types).
    config = RobertaConfig(num_labels=2, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                           pad_token_id=tokenizer.pad_token_id)
    base = AutoModelForSequenceClassification.from_config(config).eval()
    if args.parity_only:
        return parity(args)
    sets = {"sst2-train": lambda: [r["text"] for r in read_jsonl(args.sst2)],
            # Ten distinct copies: Classifier runs a repeated text once, which would flatter it here.
            "imdb-x10": lambda: [f"{k} {r['text']}" for k in range(10) for r in read_jsonl(args.imdb)]}
    rows = [{"device": device, "engine": "bf16-matmul-8192", "measured_peak_tflops": round(peak, 1)}]
    for name, read in sets.items():
        if args.sets and name not in args.sets:
            continue  # not read either: a set left out needs no file
        texts = read()
        rows += bench_gpu_set(name, texts, base, tokenizer, device, peak, args.repeats, args.baselines, args.dtype,
                              args.compile, args.profile, args.workers_sweep, args.processes_sweep, args.chunk_sweep,
                              args.chunk_chars_sweep, args.timeline, args.sweep_engine, args.idle_flush_sweep,
                              args.engines, args.word_cache_sweep)
    if args.parity_model:
        for item in parity(args):
            rows.append(item)
            print(item, flush=True)
    return rows


def bench_gpu_set(name, texts, base, tokenizer, device, peak, repeats, baselines=True,
                  dtype="bfloat16", compile=False, profile=False, workers_sweep=(), processes_sweep=(),
                  chunk_sweep=(), chunk_chars_sweep=(), timeline=None, sweep_engine="textarmor", idle_flush_sweep=(),
                  only_engines=None, word_cache_sweep=()) -> list[dict]:
    import torch

    from textarmor import Classifier
    from textarmor.backends.feeder import Feeder
    from textarmor.backends.short_attention import triton_available
    from textarmor.backends.torch_backend import TorchBackend

    rows = []
    lengths = np.array([len(x) for x in tokenizer(texts, truncation=True, max_length=512)["input_ids"]])
    flops = model_flops(base, lengths)
    print(f"{name}: {len(texts)} texts, {lengths.sum()} tokens, mean length {lengths.mean():.1f}", flush=True)
    tok_s, _ = timed(lambda: tokenizer(texts, truncation=True, max_length=512), repeats=2)
    rows.append({"device": device, "dataset": name, "engine": "tokenize-only",
                 "seq_per_s": round(len(texts) / tok_s, 1), "tokens_per_s": round(float(lengths.sum()) / tok_s, 1)})
    print(rows[-1], flush=True)

    def add(engine, dtype, fn, repeats=repeats):
        fn()
        seconds, _ = timed(fn, repeats=repeats)
        rows.append(row(device, "roberta-base", name, engine, dtype, seconds, len(texts), lengths.sum(), flops, peak))
        print(rows[-1], flush=True)

    if baselines:
        fp32 = base.to("cuda", dtype=torch.float32)
        add("hf-pipeline", "fp32", lambda: pipeline_scores(fp32, tokenizer, texts, 0), repeats=1)
    bf16 = base.to("cuda", dtype=torch.bfloat16)
    if baselines:
        add("naive-batch64", "bf16", lambda: naive_scores(bf16, tokenizer, texts, "cuda"), repeats=1)
    short = {"bfloat16": "bf16", "float16": "fp16"}[dtype]
    clf = None
    # `-sdpa`: PyTorch's fused attention kernels on every row, without the short-row Triton kernel
    # the default packs passes of rows that fit the short-row kernel (no padding); `-padded` pads every pass
    engines = ([("textarmor-sdpa", False)] if triton_available() else []) + [("textarmor", False)] + (
        [("textarmor-padded", False)] if triton_available() else [])
    for engine, compiled in engines + ([("textarmor-compiled", True)] if compile else []):
        if only_engines and engine not in only_engines:
            continue
        if clf is not None:
            clf.close()
        backend = None
        if engine.endswith("-sdpa"):
            backend = TorchBackend(bf16, device="cuda", dtype=dtype, short_attention=False)
        elif engine.endswith("-padded"):
            backend = TorchBackend(bf16, device="cuda", dtype=dtype, packed=False)
        clf = Classifier(bf16, tokenizer, device="cuda", dtype=dtype, compile=compiled, backend=backend)
        slices = -(-len(texts) // clf.tokenize_chunk)
        started = time.perf_counter()
        add(engine, short, lambda c=clf: c.predict_proba(texts))  # its warm-up call compiles
        rows[-1]["short_attention"] = clf.backend.short_attention
        if compiled:
            rows[-1]["compile_and_first_call_s"] = round(time.perf_counter() - started - repeats * rows[-1]["wall_s"],
                                                         1)
        rows[-1]["tokenize_chunk_chars"] = clf.tokenize_chunk_chars
        default_workers = rows[-1]["tokenize_workers"] = clf.tokenize_workers
        rows[-1]["tokenize_processes"] = clf._processes_for(slices)  # what the default ("auto") chose
        sweeping = engine == sweep_engine  # the other engines get their default and model-only rows
        if timeline and not engine.endswith("-sdpa"):
            write_timeline(timeline, clf, texts, {"device": device, "dataset": name, "engine": engine})
        # how the feeding thread fares against more tokeniser threads
        for workers in workers_sweep if sweeping else ():
            clf.tokenize_workers, clf.tokenize_processes = workers, 0
            add(f"{engine}-workers{workers}", short, lambda c=clf: c.predict_proba(texts))
            rows[-1]["tokenize_workers"], rows[-1]["tokenize_processes"] = workers, 0
        clf.tokenize_workers = default_workers
        for processes in processes_sweep if sweeping else ():  # tokeniser processes (0: threads)
            clf.tokenize_processes = processes
            add(f"{engine}-processes{processes}", short, lambda c=clf: c.predict_proba(texts))  # warm-up spawns
            rows[-1]["tokenize_workers"], rows[-1]["tokenize_processes"] = default_workers, processes
        clf.tokenize_processes = None
        # the word-cache tokenisation path against the Rust tokenizer for every text, alternated
        traced_cache = set()
        for cache in word_cache_sweep if sweeping else ():
            clf.word_cache = cache == "on"
            add(f"{engine}-wordcache-{cache}", short, lambda c=clf: c.predict_proba(texts))  # warm-up respawns
            rows[-1]["word_cache"] = clf.word_cache
            if timeline and cache not in traced_cache:
                traced_cache.add(cache)
                write_timeline(timeline, clf, texts, {"device": device, "dataset": name,
                                                      "engine": f"{engine}-wordcache-{cache}"})
        clf.word_cache = True
        default_chunk = clf.tokenize_chunk
        # larger slices give the GPU larger batches, smaller ones start it sooner
        for chunk in chunk_sweep if sweeping else ():
            clf.tokenize_chunk = chunk
            add(f"{engine}-chunk{chunk}", short, lambda c=clf: c.predict_proba(texts))
            rows[-1]["tokenize_chunk"], rows[-1]["tokenize_processes"] = chunk, clf._processes_for(
                -(-len(texts) // chunk))
        clf.tokenize_chunk = default_chunk
        # slices of long texts cut by characters, so the model starts sooner
        default_chars = clf.tokenize_chunk_chars
        for cap in chunk_chars_sweep if sweeping else ():
            clf.tokenize_chunk_chars = cap
            add(f"{engine}-chunkchars{cap}", short, lambda c=clf: c.predict_proba(texts))
            rows[-1]["tokenize_chunk_chars"] = cap
        clf.tokenize_chunk_chars = default_chars
        # how full the pool must be before an idle device is sent a pass (small passes against idle gaps)
        default_flush, traced = Feeder.IDLE_FLUSH_FRACTION, set()
        for fraction in idle_flush_sweep if sweeping else ():
            Feeder.IDLE_FLUSH_FRACTION = fraction
            add(f"{engine}-idleflush{fraction:g}", short, lambda c=clf: c.predict_proba(texts))
            rows[-1]["idle_flush_fraction"] = fraction
            if timeline and fraction not in traced:
                traced.add(fraction)
                write_timeline(timeline, clf, texts, {"device": device, "dataset": name,
                                                      "engine": f"{engine}-idleflush{fraction:g}"})
        Feeder.IDLE_FLUSH_FRACTION = default_flush
        # The model's share alone, tokenised beforehand. `model-only` plans batches over the whole set (the
        # most rows per batch, the least padding); `model-only-sliced` feeds the call's slices through its
        # Feeder (the call's own forward passes), so the two show what slicing costs the GPU.
        encoded = clf._tokenize(texts, None, np.arange(len(texts)))
        padded = [clf._pad(encoded, batch) for batch in clf.plan_batches(encoded["lengths"].tolist())]
        if not clf.backend.packs_up_to:  # padded batches over the whole set (packed passes: the sliced row)
            add(f"{engine}-model-only", short,
                lambda c=clf, b=padded: c.backend.collect([c.backend.submit(p) for p in b]))
        sliced = [(part, clf._tokenize(texts, None, part)) for part in clf._plan_slices(texts, None)]
        add(f"{engine}-model-only-sliced", short, lambda c=clf, s=sliced: feed_slices(c, s))
        rows[-1]["tokenize_chunk"], rows[-1]["tokenize_chunk_chars"] = clf.tokenize_chunk, clf.tokenize_chunk_chars
        if profile:
            print_kernel_profile(clf, padded[len(padded) // 2])
            print_host_profile(lambda c=clf: c.predict_proba(texts))
    fast_tok_s, _ = timed(lambda: clf._tokenize(texts, None, np.arange(len(texts))), repeats=2)
    rows.append({"device": device, "dataset": name, "engine": "textarmor-tokenize-only",
                 "seq_per_s": round(len(texts) / fast_tok_s, 1),
                 "tokens_per_s": round(float(lengths.sum()) / fast_tok_s, 1)})
    print(rows[-1], flush=True)
    clf.close()
    clf.backend = None  # drop the model reference before freeing cached GPU memory
    gc.collect()
    torch.cuda.empty_cache()
    return rows


def feed_slices(clf, slices: list) -> list:
    """A call's forward passes over slices tokenised beforehand: its Feeder, without the tokenisation; an idle
    device is offered a pass before each slice, as a call offers one while it waits for a slice."""
    from textarmor.backends.feeder import Feeder

    feeder = Feeder(clf.backend, clf.max_tokens_per_batch, clf.max_batch_size, clf._pad_id)
    for indices, encoded in slices:
        feeder.before_wait()
        feeder.add(indices, encoded)
    feeder.flush()
    return clf.backend.collect(feeder.handles)


def write_timeline(path: str, clf, texts: list[str], labels: dict, calls: int = 2) -> None:
    """Append ``calls`` traced calls (timeline.py) to the JSON-lines file ``path``; print each summary."""
    import json

    from benchmarks.inference.timeline import trace_call

    for call in range(calls):
        summary, forwards = trace_call(clf, texts)
        print({"timeline": call, **labels, **summary}, flush=True)
        with open(path, "a") as handle:
            handle.write(json.dumps({**labels, "call": call, "summary": summary, "forwards": forwards}) + "\n")


class HostOnlyBackend:
    """Takes the padded batches a model would get and answers zero logits at once, so a timing holds only the
    host's share: tokenisation, batching, padding. ``feed_ms`` of pure-Python work per batch stands in for
    the thread that launches a GPU's kernels (it holds the GIL as that thread does)."""

    name, device = "host-only", "cpu"

    def __init__(self, num_labels: int, feed_ms: float = 0.0):
        self.num_labels, self.feed_s, self.batches = num_labels, feed_ms / 1000, 0

    def submit(self, arrays: dict) -> int:
        self.batches += 1
        if self.feed_s:
            end = time.perf_counter() + self.feed_s
            while time.perf_counter() < end:
                pass
        return arrays["input_ids"].shape[0]

    def collect(self, handles: list) -> list[np.ndarray]:
        return [np.zeros((n, self.num_labels), dtype=np.float32) for n in handles]


def run_host(args) -> list[dict]:
    """Texts/s of tokenisation + padding, threads against worker processes, with the GPU's slicing and
    batch limits; also the main process's CPU seconds per call (what competes with the feeding thread)."""
    from transformers import AutoConfig

    from textarmor import Classifier
    from textarmor.models import load_tokenizer, resolve_model_path

    path = resolve_model_path(args.tokenizer)
    tokenizer = load_tokenizer(path)
    config = AutoConfig.from_pretrained(path, num_labels=2)
    texts = [r["text"] for r in read_jsonl(args.sst2)]
    backend = HostOnlyBackend(2, args.feed_ms)
    # The GPU's defaults (Classifier picks smaller ones for a CPU backend).
    clf = Classifier(None, tokenizer, backend=backend, model_config=config, tokenize_chunk=args.chunk,
                     max_tokens_per_batch=131072, max_batch_size=8192, tokenize_chunk_chars=100_000)
    clf._slice_ramp = 3  # the GPU's smaller first slices
    lengths = clf._tokenize(texts, None, np.arange(len(texts)))["lengths"]
    device = cpu_name()
    print(f"{device}: {len(texts)} texts, {lengths.sum()} tokens, mean length {lengths.mean():.1f}", flush=True)
    rows = []
    settings = [(w, 0) for w in args.workers_sweep] + [(clf.tokenize_workers, p) for p in args.processes_sweep]
    for workers, processes in settings:
        clf.tokenize_workers, clf.tokenize_processes = workers, processes
        clf.logits(texts)  # warm-up: starts the pool
        best = float("inf")
        for _ in range(args.repeats):
            cpu, start = time.process_time(), time.perf_counter()
            clf.logits(texts)
            seconds = time.perf_counter() - start
            if seconds < best:
                best, cpu_s = seconds, time.process_time() - cpu
        engine = f"host-processes{processes}" if processes else f"host-threads{workers}"
        rows.append({"device": device, "dataset": "sst2-train", "engine": engine + (
                     f"-feed{args.feed_ms:g}ms" if args.feed_ms else ""), "dtype": None,
                     "tokenizer": args.tokenizer, "seq_per_s": round(len(texts) / best, 1),
                     "tokens_per_s": round(float(lengths.sum()) / best, 1), "n": len(texts),
                     "wall_s": round(best, 3), "main_process_cpu_s": round(cpu_s, 3),
                     "tokenize_workers": workers, "tokenize_processes": processes,
                     "tokenize_chunk": clf.tokenize_chunk, "feed_ms_per_batch": args.feed_ms})
        print(rows[-1], flush=True)
        if args.timeline:  # when the first slice reaches the model, and when the last does
            write_timeline(args.timeline, clf, texts, {"device": device, "dataset": "sst2-train", "engine": engine},
                           calls=args.repeats)
    clf.close()
    return rows


def print_kernel_profile(clf, padded: dict, top: int = 15) -> None:
    """The GPU kernels of one forward pass, by total time: where the model's share goes."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        clf.backend.collect([clf.backend.submit(padded)])
        _sync()
    shape = tuple(padded["input_ids"].shape)
    print(f"kernels of one batch {shape}:\n" + prof.key_averages().table(sort_by="cuda_time_total", row_limit=top),
          flush=True)


def print_host_profile(fn, top: int = 20) -> None:
    """Where the thread that feeds the GPU spends its time in one end-to-end call."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(fn)
    _sync()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(out.getvalue(), flush=True)


def parity(args) -> list[dict]:
    """bf16 textarmor scores against the fp32 reference of a fine-tuned model on real text."""
    from textarmor import Classifier

    dev = read_jsonl(args.parity_data) if args.parity_data else []
    texts = [r["text"] for r in dev] + [r["text"] for r in read_jsonl(args.sst2, limit=20000)]
    ref_clf = Classifier.from_pretrained(args.parity_model, device="cuda", dtype="float32")
    ref_clf.backend.prebuilt_mask = False  # the reference runs the model's own mask handling and SDPA
    ref_clf.backend.model.set_attn_implementation("sdpa")
    ref = ref_clf.predict_proba(texts)
    labels = {r["text"]: r["label"] for r in dev}
    names = ref_clf.labels
    rows = []
    from textarmor.backends.short_attention import triton_available
    from textarmor.backends.torch_backend import TorchBackend

    # (dtype, compiled, padded): the defaults pack passes where the short-row kernel runs
    variants = [("bfloat16", False, False), ("float16", False, False)] + (
        [("float16", False, True)] if triton_available() else []) + ([("float16", True, False)] if args.compile else [])
    for dtype, compiled, padded in variants:
        clf = Classifier.from_pretrained(args.parity_model, device="cuda", dtype=dtype, compile=compiled)
        if padded:
            clf.backend = TorchBackend(clf.backend.model, device="cuda", dtype=dtype, packed=False)
        fast = clf.predict_proba(texts)
        accuracy = {tag: round(float(np.mean([names[int(p[i].argmax())] == labels[texts[i]]
                                              for i in range(len(dev))])), 4)
                    for tag, p in (("fp32", ref), (dtype, fast))} if dev else {}
        packed = bool(clf.backend.packs_up_to)
        engine = f"parity-{dtype}{'-compiled' if compiled else ''}{'-packed' if packed else '-padded'}-vs-fp32"
        rows.append({"device": torch_device_name(), "engine": engine,
                     "dataset": "sst2-dev+train20k", "n": len(texts),
                     "max_abs_prob_diff": round(float(np.abs(ref - fast).max()), 5),
                     "argmax_agreement": round(float((ref.argmax(1) == fast.argmax(1)).mean()), 5),
                     "dev_accuracy": accuracy})
    return rows


def torch_device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    cpu = sub.add_parser("cpu")
    cpu.add_argument("--model", required=True)
    cpu.add_argument("--dev", default=str(SHARED_DATA / "sst2" / "dev.jsonl"))
    cpu.add_argument("--calibration", default="builtin:sst2", help="int8 calibration texts (never the test set)")
    cpu.add_argument("--threads", type=int, default=2)
    cpu.add_argument("--repeats", type=int, default=3)
    gpu = sub.add_parser("gpu")
    gpu.add_argument("--tokenizer", required=True)
    gpu.add_argument("--sst2", default=str(SHARED_DATA / "sst2" / "train.jsonl"))
    gpu.add_argument("--imdb", default=str(SHARED_DATA / "textfooler" / "imdb.jsonl"))
    gpu.add_argument("--parity-model")
    gpu.add_argument("--parity-data")
    gpu.add_argument("--parity-only", action="store_true")
    gpu.add_argument("--sets", nargs="*", choices=["sst2-train", "imdb-x10"], default=None,
                     help="time only these sets (default: both)")
    gpu.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"], help="textarmor's dtype")
    gpu.add_argument("--repeats", type=int, default=3)
    gpu.add_argument("--compile", action="store_true", help="also time textarmor with compile=True")
    gpu.add_argument("--profile", action="store_true",
                     help="print the GPU kernels of one batch and a host profile of one call")
    gpu.add_argument("--workers-sweep", type=int, nargs="*", default=[],
                     help="also time textarmor with these numbers of tokeniser threads")
    gpu.add_argument("--processes-sweep", type=int, nargs="*", default=[],
                     help="also time textarmor with these numbers of tokeniser processes (0: threads)")
    gpu.add_argument("--chunk-sweep", type=int, nargs="*", default=[],
                     help="also time textarmor with these slice sizes (tokenize_chunk; default 2,048 on a GPU)")
    gpu.add_argument("--chunk-chars-sweep", type=int, nargs="*", default=[],
                     help="also time textarmor with slices capped at these numbers of characters")
    gpu.add_argument("--word-cache-sweep", choices=["on", "off"], nargs="*", default=[],
                     help="the sweep engine again with the word-cache tokenisation path on or off, in this order")
    gpu.add_argument("--idle-flush-sweep", type=float, nargs="*", default=[],
                     help="also time textarmor with these Feeder.IDLE_FLUSH_FRACTION values (default 0.25)")
    gpu.add_argument("--engines", nargs="*", default=None,
                     help="time only these textarmor engines (textarmor, textarmor-padded, textarmor-sdpa, "
                          "textarmor-compiled)")
    gpu.add_argument("--timeline", default=None, metavar="FILE",
                     help="append a timeline of two calls per textarmor engine (device busy/idle, slice waits)")
    gpu.add_argument("--sweep-engine", default="textarmor",
                     help="the engine the --*-sweep options apply to (textarmor, textarmor-padded, ...)")
    gpu.add_argument("--no-baselines", dest="baselines", action="store_false",
                     help="time textarmor only (the baselines' rows in the results file stay)")
    host = sub.add_parser("host", help="tokenisation and padding only: threads against worker processes")
    host.add_argument("--tokenizer", default="minilm-l6", help="a model reference or a tokenizer folder")
    host.add_argument("--sst2", default=str(SHARED_DATA / "sst2" / "train.jsonl"))
    host.add_argument("--chunk", type=int, default=2048, help="tokenize_chunk (the GPU default)")
    host.add_argument("--workers-sweep", type=int, nargs="*", default=[2], help="tokeniser threads to time")
    host.add_argument("--processes-sweep", type=int, nargs="*", default=[1, 2], help="tokeniser processes to time")
    host.add_argument("--feed-ms", type=float, default=0.0,
                      help="pure-Python work per batch in the feeding thread, standing in for kernel launches")
    host.add_argument("--repeats", type=int, default=3)
    host.add_argument("--timeline", default=None, metavar="FILE",
                      help="also trace --repeats calls per setting (slice arrivals, passes) into this JSON-lines file")
    parser.add_argument("--out-name", default="inference")
    args = parser.parse_args()
    rows = {"cpu": run_cpu, "gpu": run_gpu, "host": run_host}[args.mode](args)
    print(write_rows(args.out_name, rows, key=("device", "dataset", "engine", "dtype")))


if __name__ == "__main__":
    main()
