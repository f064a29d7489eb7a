"""One training run for benchmarks/scaling/run.py: launched by it under ``torchrun --nproc_per_node N``.

Trains through textarmor's ``RobustTrainer`` and objective (the code path of ``textarmor train``) on JSONL
rows tokenised in memory, so it needs only torch, transformers (+ accelerate) and tokenizers: no ``datasets``,
no model hub. Times ``--steps`` optimizer steps after ``--warmup`` untimed ones and writes one JSON row
(rank 0) to ``--out``. Under DDP every rank takes ``--per-device-batch`` rows per step, so the global batch
grows with the number of processes (weak scaling, as when adding GPUs).

Models: ``tiny`` (2 layers, hidden 64), ``roberta-base`` (``RobertaConfig()``: 12 layers, hidden 768,
random weights), or a model folder (its own tokenizer). The first two use the BPE tokenizer that run.py
trains on the data (``--tokenizer``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    RobertaConfig,
    RobertaForSequenceClassification,
    TrainerCallback,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `benchmarks.common`
from benchmarks.common import read_jsonl  # noqa: E402

from textarmor.training.objectives import make_objective  # noqa: E402
from textarmor.training.trainer import (  # noqa: E402
    RobustTrainer,
    distributed_defaults,
    end_process_group,
    training_arguments,
)

SHAPES = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128),
    "roberta-base": {},  # RobertaConfig() defaults: the roberta-base architecture
}


class StepTimer(TrainerCallback):
    """Wall time of the optimizer steps after the warm-up (synchronised with the GPU; read-only)."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.started: float | None = None
        self.seconds: float | None = None
        self.timed_steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            _synchronize()
            self.started = time.perf_counter()
        elif state.global_step == args.max_steps and self.started is not None:
            _synchronize()
            self.seconds = time.perf_counter() - self.started
            self.timed_steps = state.global_step - self.warmup


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def build_model(name: str, tokenizer, num_labels: int, seed: int):
    torch.manual_seed(seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    if name in SHAPES:
        config = RobertaConfig(**SHAPES[name], vocab_size=max(len(tokenizer), 50265 if name == "roberta-base" else 0),
                               pad_token_id=tokenizer.pad_token_id, bos_token_id=0, eos_token_id=2,
                               num_labels=num_labels)
        return RobertaForSequenceClassification(config)
    return AutoModelForSequenceClassification.from_pretrained(name, num_labels=num_labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="JSONL with text and label")
    parser.add_argument("--model", default="tiny", help="tiny, roberta-base or a model folder")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer folder for tiny/roberta-base")
    parser.add_argument("--objective", default="roast")
    parser.add_argument("--objective-options", default="{}", help="JSON dict of the objective's hyperparameters")
    parser.add_argument("--per-device-batch", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed optimizer steps first")
    parser.add_argument("--cpu", action="store_true", help="train on CPU even where there are GPUs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    rows = read_jsonl(args.data)
    names = sorted({str(r["label"]) for r in rows})
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer if args.model in SHAPES else args.model)
    encoded = tokenizer([r["text"] for r in rows], truncation=True, max_length=args.max_length)
    examples = [{"input_ids": ids, "attention_mask": mask, "labels": names.index(str(r["label"]))}
                for ids, mask, r in zip(encoded["input_ids"], encoded["attention_mask"], rows)]
    model = build_model(args.model, tokenizer, len(names), args.seed)
    objective = make_objective(args.objective, **json.loads(args.objective_options))

    options = distributed_defaults(objective)
    if args.cpu:
        options["use_cpu"] = True
    on_gpu = torch.cuda.is_available() and not args.cpu
    timer = StepTimer(args.warmup)
    with tempfile.TemporaryDirectory() as scratch:
        training = training_arguments(
            output_dir=scratch, per_device_train_batch_size=args.per_device_batch,
            max_steps=args.warmup + args.steps, learning_rate=2e-5, warmup_steps=0, seed=args.seed,
            bf16=on_gpu and torch.cuda.is_bf16_supported(), logging_strategy="no", save_strategy="no",
            eval_strategy="no", report_to="none", disable_tqdm=True, dataloader_drop_last=True, **options)
        trainer = RobustTrainer(model=model, args=training, train_dataset=examples,
                                data_collator=DataCollatorWithPadding(tokenizer), callbacks=[timer],
                                objective=objective)
        trainer.train()
    if not trainer.is_world_process_zero():
        return
    world = training.world_size
    samples = timer.timed_steps * args.per_device_batch * world
    device = torch.cuda.get_device_name(0) if on_gpu else "cpu"
    row = {
        "task": "train", "engine": "torchrun-ddp" if world > 1 else "torchrun-1", "workers": world,
        "device": device, "samples_per_s": round(samples / timer.seconds, 3) if timer.seconds else None,
        "model": args.model, "objective": args.objective, "per_device_batch": args.per_device_batch,
        "global_batch": args.per_device_batch * world, "max_length": args.max_length,
        "timed_steps": timer.timed_steps, "seconds": round(timer.seconds or 0, 3),
        "threads_per_worker": torch.get_num_threads() if not on_gpu else None,
        "bf16": bool(training.bf16), "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if on_gpu else None,
        "local_world_size": int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
    }
    args.out.write_text(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
    end_process_group()
