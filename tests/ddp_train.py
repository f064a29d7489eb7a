"""Runs under ``torchrun --nproc_per_node 2`` (gloo, CPU) from tests/test_robust_training.py.

Usage: ddp_train.py MODEL_DIR TRAIN_JSONL DEV_JSONL OUT_ROOT METHOD [METHOD ...]
Each rank trains every METHOD for one epoch; rank 0 prints one JSON line per method with what the
test checks (world size seen by the Trainer, each rank's parameter checksum at the end of training,
the objective's report as saved and as each rank saw it, the saved model files)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from tests.word_attacker import word_drop_attacker
from textarmor import train
from textarmor.training import api
from textarmor.training.trainer import end_process_group

_trained_checksum: dict[str, float] = {}
_save_model = api.RobustTrainer.save_model


def _save_model_recording_checksum(self, *args, **kwargs):
    # Weights as this rank holds them at the end of training: under DDP they must agree across ranks.
    _trained_checksum["sum"] = sum(float(p.detach().double().sum()) for p in self.model.parameters())
    return _save_model(self, *args, **kwargs)


api.RobustTrainer.save_model = _save_model_recording_checksum


def main(model: str, train_file: str, dev_file: str, out_root: str, *methods: str) -> None:
    options = {"pgd": {"adv_max_norm": 0.05, "adv_init_mag": 0.05},
               "freelb": {"adv_max_norm": 0.05, "adv_init_mag": 0.05},
               "rift": {"adv_max_norm": 0.05, "adv_init_mag": 0.05}, "roast": {"adv_eps": 0.01, "fisher_batches": 2}}
    augment = {"augment_attacker": word_drop_attacker, "clean_epochs": 0, "augment_sample": 32}
    for method in methods:
        result = train(train_file, eval_data=dev_file, out_dir=Path(out_root) / method, model=model, epochs=1,
                       learning_rate=3e-3, batch_size=8, max_length=32, seed=0, progress=False, method=method,
                       method_options={**options.get(method.split("+")[0], {}),
                                       **(augment if method.endswith("+augment") else {})})
        checksum = torch.tensor([_trained_checksum["sum"]], dtype=torch.float64)
        sums = [torch.zeros(1, dtype=torch.float64) for _ in range(dist.get_world_size())]
        dist.all_gather(sums, checksum)
        reports = [None] * dist.get_world_size()
        dist.all_gather_object(reports, result.objective_report)
        if dist.get_rank() == 0:
            config = json.loads((result.model_dir / "textarmor.json").read_text())
            print(json.dumps({"method": method, "world_size": config["training"]["cost"]["world_size"],
                              "checksums": [float(s) for s in sums], "report": config["training"]["objective_report"],
                              "rank_reports": reports,
                              "files": sorted(
                                  p.name for p in result.model_dir.iterdir())}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
    end_process_group()
