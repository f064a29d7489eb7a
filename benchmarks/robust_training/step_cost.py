"""Cost of one training step per method, relative to ``standard``: forward + backward(s) + AdamW step of
each objective on the same fixed SST-2 batches (methods interleaved step by step, median step time), no data
loading, no evaluation. A quick stand-in for
``epoch_time_ratio`` on a machine where full training runs do not fit; run.py measures the real thing.

    PYTHONPATH=src python benchmarks/robust_training/step_cost.py --steps 6 --batch-size 16 --max-length 48
    PYTHONPATH=src python benchmarks/robust_training/step_cost.py --device cuda --grid GRID.json --steps 40 \
        --batch-size 64 --max-length 64       # a GPU, bf16 autocast as the Trainer uses; configs from a grid file
    ... --profile 5    # then 5 more steps of each config under torch.profiler: where a step's time goes
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from textarmor.data import iter_jsonl, resolve_source
from textarmor.models import load_model, load_tokenizer
from textarmor.training import TrainingContext, make_objective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--methods", nargs="+", default=["standard", "pgd", "freelb", "roast", "rift"])
    parser.add_argument("--grid", type=Path, default=None, help="JSON list of {name, method, options} (grid.py's "
                        "format; augment options are ignored: an attack round is not a step) instead of --methods")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per method (after one warm-up step)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--device-name", default=f"{platform.machine()} CPU, 2 cores (shared)")
    parser.add_argument("--profile", type=int, default=0, metavar="STEPS",
                        help="after the timing, profile this many more steps of each config (operators by CPU and "
                        "by GPU time, printed)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/robust_training_step_cost.json"))
    args = parser.parse_args()

    tokenizer = load_tokenizer(args.model)
    rows = [row for _, row in iter_jsonl(resolve_source("builtin:sst2"))][: args.batch_size * 4]
    labels = sorted({r["label"] for r in rows})
    batches = []
    for start in range(0, len(rows), args.batch_size):
        chunk = rows[start:start + args.batch_size]
        enc = tokenizer([r["text"] for r in chunk], truncation=True, max_length=args.max_length, padding=True,
                        return_tensors="pt")
        enc["labels"] = torch.tensor([labels.index(r["label"]) for r in chunk])
        batches.append(dict(enc))
    # Methods take turns step by step and the median is kept, so load from other processes on a shared
    # machine hits every method alike.
    device = torch.device(args.device)
    batches = [{k: v.to(device) for k, v in batch.items()} for batch in batches]
    cuda = device.type == "cuda"
    # The Trainer trains in bf16 autocast on GPUs that support it (training/api.py); so does this timing.
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    configs = (json.loads(args.grid.read_text()) if args.grid else [{"name": m, "method": m} for m in args.methods])
    runs = {}
    for config in configs:
        torch.manual_seed(0)
        method = config["method"].replace("+augment", "")
        options = {k: v for k, v in config.get("options", {}).items()
                   if not k.startswith("augment_") and k != "clean_epochs"}
        model = load_model(args.model, num_labels=len(labels), id2label=dict(enumerate(labels))).float()
        model = model.to(device).train()
        objective = make_objective(method, **options)
        objective.setup(TrainingContext(model=model, tokenizer=tokenizer, label_names=labels, seed=0))
        runs[config["name"]] = (config, model, objective, torch.optim.AdamW(model.parameters(), lr=1e-5), [])

    def train_step(model, objective, optimizer, batch) -> float:
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        with autocast():
            loss, _ = objective.loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - started

    for step in range(args.steps + 1):
        for _, model, objective, optimizer, seconds in runs.values():
            elapsed = train_step(model, objective, optimizer, batches[step % len(batches)])
            if step:  # the first step warms up allocations
                seconds.append(elapsed)
    for name, (_, model, objective, optimizer, _) in runs.items() if args.profile else ():
        print_profile(name, args.profile, cuda,
                      lambda i, m=model, o=objective, opt=optimizer: train_step(m, o, opt, batches[i % len(batches)]))
    results = [{"backbone": args.model, "name": name, "method": config["method"], "options": config.get("options", {}),
                "seconds_per_step": round(statistics.median(seconds), 5), "device": args.device_name,
                "batch_size": args.batch_size, "max_length": args.max_length, "steps": args.steps}
               for name, (config, _, _, _, seconds) in runs.items()]
    standard = next(r["seconds_per_step"] for r in results if r["method"] == "standard")
    for row in results:
        row["step_time_ratio"] = round(row["seconds_per_step"] / standard, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "robust_training_step_cost", "rows": results}, indent=2) + "\n")
    for row in results:
        print(f"{row['name']:<28} {row['seconds_per_step']:.5f} s/step  x{row['step_time_ratio']}")
    print(f"wrote {args.out}")


def print_profile(name: str, steps: int, cuda: bool, step_fn) -> None:
    """Operators of ``steps`` training steps by self CPU time and by GPU time, and how much of the wall time
    the GPU was busy: a step whose GPU time is a small share of its wall time is bound by the host."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        wall = sum(step_fn(i) for i in range(steps))
    events = prof.key_averages()
    gpu_us = sum(e.self_device_time_total for e in events) if cuda else 0.0
    cpu_ops = sum(e.count for e in events if e.device_type.name == "CPU")
    print(f"== {name}: {steps} steps, wall {wall / steps * 1e3:.2f} ms/step, GPU busy "
          f"{gpu_us / steps / 1e3:.2f} ms/step, {cpu_ops / steps:.0f} CPU ops/step", flush=True)
    print(events.table(sort_by="self_cpu_time_total", row_limit=25), flush=True)
    if cuda:
        print(events.table(sort_by="self_device_time_total", row_limit=15), flush=True)


if __name__ == "__main__":
    main()
