"""Distributed training is the same training: two gloo CPU processes under torchrun follow the loss
trajectory of one process with the same global batch, and RoAST draws the same masks on every rank."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import synthetic_rows, write_jsonl
from tests.ddp_loss import SAME_ORDER
from textarmor import train

ROOT = Path(__file__).resolve().parents[1]


def torchrun(nproc: int, script: str, *args: str, timeout: int = 300) -> str:
    """Run a test worker under torchrun (CPU, gloo); its own session, so a timeout ends the workers too."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               str(ROOT / "tests" / script), *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, stderr[-3000:]
    return stdout


@pytest.fixture(scope="module")
def no_dropout_base(tiny_base, tmp_path_factory) -> Path:
    """The tiny RoBERTa without dropout, so one process and two draw no different random masks."""
    import shutil

    root = tmp_path_factory.mktemp("tiny-no-dropout") / "model"
    shutil.copytree(tiny_base, root)
    config = json.loads((root / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (root / "config.json").write_text(json.dumps(config))
    return root


def test_two_processes_follow_the_loss_trajectory_of_one(no_dropout_base, tmp_path):
    # 96 rows, global batch 16: 6 full steps per epoch, each split 8 + 8 across the two ranks.
    train_file = write_jsonl(tmp_path / "train.jsonl", synthetic_rows(96, seed=21))
    dev_file = write_jsonl(tmp_path / "dev.jsonl", synthetic_rows(16, seed=22))
    single = train(train_file, eval_data=dev_file, out_dir=tmp_path / "one", model=str(no_dropout_base), epochs=2,
                   learning_rate=3e-3, batch_size=16, max_length=32, seed=0, progress=False, **SAME_ORDER)
    reference = [h["loss"] for h in single.history if "loss" in h]

    report = tmp_path / "ddp.json"
    torchrun(2, "ddp_loss.py", str(no_dropout_base), str(train_file), str(dev_file), str(tmp_path / "two"), "8",
             str(report))
    run = json.loads(report.read_text())
    assert run["world_size"] == 2
    assert all(view["published"] for view in run["ranks"])  # every rank returned after OUT was in place
    losses = run["ranks"][0]["losses"]
    assert run["ranks"][1]["losses"] == losses  # the logged loss is the mean over ranks
    assert len(losses) == len(reference) == 12
    # Same examples in every global batch, same weights: equal up to float summation order (here ~1e-7).
    # Another data order or learning-rate schedule moves single steps by 1e-3 or more.
    assert losses == pytest.approx(reference, abs=1e-4)
    assert max(reference) - min(reference) > 1e-2  # the batches differ: a flat trajectory would match trivially
    config = json.loads((tmp_path / "two" / "textarmor.json").read_text())
    assert config["training"]["cost"]["world_size"] == 2
    assert config["training"]["cost"]["global_batch_size"] == 16
