"""Runs under ``torchrun --nproc_per_node N`` (gloo, CPU) from tests/test_ddp_scaling.py.

Usage: ddp_loss.py MODEL_DIR TRAIN_JSONL DEV_JSONL OUT_DIR BATCH_PER_RANK JSON_OUT
Trains the standard objective with a loss logged at every step; rank 0 writes the loss trajectory and
every rank's view of the run (world size, whether OUT existed when ``train`` returned) to JSON_OUT."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist

from textarmor import train
from textarmor.training.trainer import end_process_group

#: No length grouping: its megabatches are per process, so the data order would differ from one process's.
SAME_ORDER = {"group_by_length": False, "logging_steps": 1}


def main(model: str, train_file: str, dev_file: str, out_dir: str, batch: str, json_out: str) -> None:
    result = train(train_file, eval_data=dev_file, out_dir=out_dir, model=model, epochs=2, learning_rate=3e-3,
                   batch_size=int(batch), max_length=32, seed=0, progress=False, **SAME_ORDER)
    # `train` returns on every rank only once rank 0 has published the model directory.
    published = (Path(out_dir) / "textarmor.json").exists()
    views = [None] * dist.get_world_size()
    dist.all_gather_object(views, {"rank": dist.get_rank(), "published": published,
                                   "losses": [h["loss"] for h in result.history if "loss" in h]})
    if dist.get_rank() == 0:
        Path(json_out).write_text(json.dumps({"world_size": dist.get_world_size(), "ranks": views}))


if __name__ == "__main__":
    main(*sys.argv[1:])
    end_process_group()
