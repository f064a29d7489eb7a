"""Scaling benchmark: throughput with 1 vs N workers, written to ``benchmarks/results/scaling.json``.

(a) ``predict``: Ray Data batch prediction (``textarmor.distributed.ray_predict``) with 1 vs N actors on a
    local Ray cluster, from a JSONL file of SST-2 sentences repeated to ``--rows`` rows.
(b) ``train``: DDP training under ``torchrun --nproc_per_node N`` with textarmor's ``RobustTrainer`` and an
    objective (default ``roast``) on SST-2 train, ``--steps`` timed optimizer steps; the global batch grows
    with N (``--per-device-batch`` per worker).

Each row: task, engine, workers, device, samples_per_s, scaling_efficiency (samples_per_s / (N x the
1-worker samples_per_s of the same run)) and the settings. On CPU every worker gets
``--threads-per-worker`` threads (1 by default: a worker is one core); on GPUs every worker gets one GPU.

Runbook:

    # this 2-core CPU (both parts, minutes):
    PYTHONPATH=src nice -n 10 python benchmarks/scaling/run.py --part predict train --predict-model runs/demo-sst2

    # 2 GPUs, roberta-base shape with random weights, roast, SST-2 train (training only: needs torch,
    # transformers, accelerate, tokenizers, numpy; no datasets, no ray, no network):
    PYTHONPATH=src python benchmarks/scaling/run.py --part train --model roberta-base --workers 1 2 \\
        --per-device-batch 32 --max-length 128 --steps 50
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import ROOT, cpu_name, read_jsonl, write_rows  # noqa: E402

HERE = Path(__file__).resolve().parent
SST2_TRAIN = ROOT / "src" / "textarmor" / "data" / "sst2_train.jsonl"
KEY = ("task", "engine", "workers", "device", "model")


def train_tokenizer(texts: list[str], folder: Path, vocab_size: int = 8000) -> Path:
    """A byte-level BPE tokenizer (RoBERTa's special tokens and ids) learnt from the data: no hub needed."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe._tokenizer.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
    RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                         unk_token="<unk>", mask_token="<mask>", model_max_length=512).save_pretrained(folder)
    return folder


def with_efficiency(rows: list[dict]) -> list[dict]:
    """scaling_efficiency = samples_per_s / (workers x samples_per_s of the 1-worker row)."""
    base = next((r["samples_per_s"] for r in rows if r["workers"] == 1 and r["samples_per_s"]), None)
    for row in rows:
        row["scaling_efficiency"] = (round(row["samples_per_s"] / (row["workers"] * base), 3)
                                     if base and row["samples_per_s"] else None)
    return rows


def bench_train(args, scratch: Path) -> list[dict]:
    tokenizer = None
    if args.model in ("tiny", "roberta-base"):
        tokenizer = train_tokenizer([r["text"] for r in read_jsonl(args.data)], scratch / "tokenizer")
    # Keep the caller's PYTHONPATH: packages carried to a GPU machine may live there.
    paths = [str(ROOT / "src"), str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    if args.cpu or not _has_gpu():
        env["OMP_NUM_THREADS"] = str(args.threads_per_worker)
    rows = []
    for workers in args.workers:
        out = scratch / f"train-{workers}.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(workers),
                   str(HERE / "train_worker.py"), "--data", str(args.data), "--model", args.model,
                   "--objective", args.objective, "--objective-options", json.dumps(args.objective_options),
                   "--per-device-batch", str(args.per_device_batch), "--max-length", str(args.max_length),
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--out", str(out)]
        if tokenizer is not None:
            command += ["--tokenizer", str(tokenizer)]
        if args.cpu:
            command.append("--cpu")
        print(f"[train] {workers} worker(s): {' '.join(command[3:6])} ...", flush=True)
        subprocess.run(command, check=True, env=env, cwd=ROOT)
        row = json.loads(out.read_text())
        row["load_average"] = round(os.getloadavg()[0], 2)  # other jobs on the machine, right after the run
        if row["device"] == "cpu":
            row["device"] = cpu_name()
        rows.append(row)
        print(f"[train] {workers} worker(s): {row['samples_per_s']} samples/s", flush=True)
    return with_efficiency(rows)


def write_shards(texts: list[str], rows: int, shards: int, folder: Path) -> Path:
    """``rows`` texts (the data repeated) as ``shards`` JSONL files."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"text": texts[i % len(texts)]}) + "\n" for i in range(rows)]
    per = -(-rows // shards)
    for k in range(shards):
        (folder / f"part-{k:03d}.jsonl").write_text("".join(lines[k * per:(k + 1) * per]))
    return folder


def bench_predict(args, scratch: Path) -> list[dict]:
    """Ray Data prediction with 1..N actors on a local Ray cluster; wall time of the whole call (actor start
    and model load included), so short runs understate the steady-state rate."""
    import time

    import ray

    from textarmor.distributed import ray_predict

    if args.predict_model is None:
        raise SystemExit("--part predict needs --predict-model (a textarmor model folder, e.g. runs/demo-sst2)")
    shards = write_shards([r["text"] for r in read_jsonl(args.data)], args.rows, args.shards, scratch / "shards")
    gpu = _has_gpu() and not args.cpu
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        for workers in args.workers:
            started = time.perf_counter()
            summary = ray_predict(args.predict_model, shards, out=scratch / f"predict-{workers}", num_actors=workers,
                                  gpus_per_actor=1 if gpu else 0, cpus_per_actor=args.threads_per_worker,
                                  batch_size=args.predict_batch)
            seconds = time.perf_counter() - started
            rows.append({"task": "predict", "engine": "ray-data", "workers": workers,
                         "device": _gpu_name() if gpu else cpu_name(),
                         "samples_per_s": round(summary.rows / seconds, 2),
                         "model": Path(args.predict_model).name, "rows": summary.rows, "shards": args.shards,
                         "seconds": round(seconds, 2), "batch_size": args.predict_batch,
                         "threads_per_worker": None if gpu else args.threads_per_worker,
                         "ray": ray.__version__, "includes_startup": True,
                         "load_average": round(os.getloadavg()[0], 2)})
            print(f"[predict] {workers} actor(s): {rows[-1]['samples_per_s']} rows/s", flush=True)
    finally:
        ray.shutdown()
    return with_efficiency(rows)


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--part", nargs="+", choices=["train", "predict"], default=["train", "predict"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpu", action="store_true", help="CPU even where there are GPUs")
    parser.add_argument("--threads-per-worker", type=int, default=1, help="CPU threads per worker")
    train = parser.add_argument_group("train")
    train.add_argument("--data", type=Path, default=SST2_TRAIN, help="JSONL with text and label (SST-2 train)")
    train.add_argument("--model", default="tiny", help="tiny, roberta-base (random weights) or a model folder")
    train.add_argument("--objective", default="roast")
    train.add_argument("--objective-options", type=json.loads, default={"fisher_batches": 4},
                       help="JSON dict of the objective's hyperparameters")
    train.add_argument("--per-device-batch", type=int, default=16)
    train.add_argument("--max-length", type=int, default=64)
    train.add_argument("--steps", type=int, default=20, help="timed optimizer steps per run")
    train.add_argument("--warmup", type=int, default=3, help="untimed optimizer steps before them")
    predict = parser.add_argument_group("predict")
    predict.add_argument("--predict-model", help="textarmor model folder for the Ray prediction runs")
    predict.add_argument("--rows", type=int, default=8000, help="rows predicted per run (SST-2 texts repeated)")
    predict.add_argument("--shards", type=int, default=8, help="JSONL files the rows are split into")
    predict.add_argument("--predict-batch", type=int, default=256, help="rows per actor call")
    parser.add_argument("--results", default="scaling", help="name of the JSON file in benchmarks/results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        rows = []
        if "predict" in args.part:
            rows += bench_predict(args, Path(scratch))
        if "train" in args.part:
            rows += bench_train(args, Path(scratch))
    path = write_rows(args.results, rows, KEY)
    print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
