"""Robust objectives through ``train`` and the Trainer: records in textarmor.json, adversarial augmentation,
checkpoint and resume for every method, and DDP with two CPU processes under torchrun."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import synthetic_rows, write_jsonl
from tests.test_robust_objectives import TINY_OPTIONS
from tests.word_attacker import word_drop_attacker
from textarmor import TextArmorConfig, train
from textarmor.training.trainer import EpochTimer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust-data")
    return (write_jsonl(root / "train.jsonl", synthetic_rows(96, seed=11)),
            write_jsonl(root / "dev.jsonl", synthetic_rows(24, seed=12)))


def run(method, files, out, model, **kwargs):
    options = dict(TINY_OPTIONS.get(method.split("+")[0], {}))
    if method.endswith("+augment"):
        options.update(augment_attacker=word_drop_attacker, clean_epochs=1, augment_sample=32)
    kwargs.setdefault("epochs", 2)
    return train(files[0], eval_data=files[1], out_dir=out, model=str(model), learning_rate=3e-3, batch_size=16,
                 max_length=32, seed=0, progress=False, method=method, method_options=options, **kwargs)


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("method", ["standard", "pgd", "freelb", "roast", "rift", "ascc", "roast+augment"])
def test_checkpoint_and_resume(method, tiny_base, small_files, tmp_path, monkeypatch):
    out = tmp_path / method
    original = EpochTimer.on_epoch_begin

    def stop_at_second_epoch(self, args, state, control, **kwargs):
        if state.epoch and state.epoch >= 1:
            raise Interrupted  # after epoch 1's checkpoint was written
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(EpochTimer, "on_epoch_begin", stop_at_second_epoch)
    with pytest.raises(Interrupted):
        run(method, small_files, out, tiny_base)
    staging = out.with_name(out.name + ".partial")
    assert [p.name for p in (staging / "checkpoints").glob("checkpoint-*")] == ["checkpoint-6"]
    assert not out.exists()

    first_epoch = json.loads((staging / "checkpoints/checkpoint-6" / EpochTimer.FILE).read_text())["epoch_seconds"]
    monkeypatch.setattr(EpochTimer, "on_epoch_begin", original)
    result = run(method, small_files, out, tiny_base, resume=True)
    # The metrics and the measured cost cover both epochs; epoch 1's time is the one measured before the
    # interruption, so the resumed run continued from epoch 1 and did not restart.
    assert [(round(e["epoch"]), e["step"]) for e in result.epochs] == [(1, 6), (2, 12)]
    config = TextArmorConfig.load(out)
    assert config.training["method"] == method
    assert config.training["cost"]["epoch_seconds"][:1] == first_epoch
    assert len(config.training["cost"]["epoch_seconds"]) == 2
    assert json.loads((out / "metrics.json").read_text())["epochs"] == result.epochs
    assert config.metrics["eval"] == result.metrics and result.metrics in result.epochs
    files = {p.name for p in out.iterdir()}
    assert "model.safetensors" in files and not staging.exists()
    from safetensors import safe_open

    with safe_open(out / "model.safetensors", "pt") as weights:
        assert not [k for k in weights.keys() if "rift" in k]  # noqa: SIM118 (safe_open is not iterable)


def test_textarmor_json_records_hyperparameters_and_cost(tiny_base, small_files, tmp_path):
    result = run("freelb", small_files, tmp_path / "freelb", tiny_base, epochs=1)
    training = TextArmorConfig.load(result.model_dir).training
    assert training["objective"] == {"adv_steps": 2, "adv_lr": 0.01, "adv_init_mag": 0.02, "adv_max_norm": 0.02,
                                     "adv_norm": "l2"}
    cost = training["cost"]
    assert cost["train_seconds_per_epoch"] > 0 and len(cost["epoch_seconds"]) == 1 and cost["world_size"] == 1

    roast = run("roast", small_files, tmp_path / "roast", tiny_base, epochs=1)
    training = TextArmorConfig.load(roast.model_dir).training
    assert training["objective"]["roast_alpha"] == 0.9 and training["objective"]["roast_beta"] == 10.0
    (density,) = training["objective_report"]["mask_density_per_epoch"]
    assert 0.05 < density < 0.2  # about 0.106 for alpha 0.9, beta 10


def test_augment_adds_successful_adversarial_examples_and_records_them(tiny_trained, synthetic_files, tmp_path):
    out = tmp_path / "augmented"
    result = train(synthetic_files[0], eval_data=synthetic_files[1], out_dir=out, model=str(tiny_trained), epochs=2,
                   learning_rate=1e-3, batch_size=16, max_length=32, seed=0, progress=False, method="augment",
                   method_options={"augment_attacker": word_drop_attacker, "clean_epochs": 0, "augment_every": 1,
                                   "augment_sample": 64, "augment_weight": 0.5})
    training = TextArmorConfig.load(result.model_dir).training
    assert training["method"] == "augment"
    assert training["objective"]["augment"] == {"recipe": "word_drop_attacker", "every": 1, "clean_epochs": 0,
                                                "sample": 64, "weight": 0.5}
    rounds = training["objective_report"]["augment"]["rounds"]
    assert [r["epoch"] for r in rounds] == [0, 1] and all(r["attacked"] == 64 for r in rounds)
    assert rounds[0]["added"] > 0  # the trained model falls for keyword deletions
    records = [json.loads(line) for line in (out / "augmented_examples.jsonl").read_text().splitlines()]
    assert len(records) == sum(r["added"] for r in rounds)
    assert {r["epoch"] for r in records} <= {0, 1}
    rows = synthetic_rows(320, seed=1)
    for record in records:
        assert record["text"] != record["original"]
        assert rows[record["index"]]["text"] == record["original"]
        assert rows[record["index"]]["label"] == record["label"]


def test_augment_needs_an_attacker_it_can_resolve(tiny_base, small_files, tmp_path):
    from textarmor.errors import ParameterError

    with pytest.raises(ParameterError, match="attack"):
        train(small_files[0], eval_data=small_files[1], out_dir=tmp_path / "x", model=str(tiny_base), epochs=1,
              progress=False, method="roast+augment", method_options={"augment_recipe": "no-such-recipe"})
    with pytest.raises(ParameterError, match="augment"):
        train(small_files[0], out_dir=tmp_path / "y", model=str(tiny_base), epochs=1, progress=False,
              method="roast", method_options={"augment_sample": 10})


def test_ddp_with_two_cpu_processes(tiny_trained, small_files, tmp_path):
    """torchrun --nproc_per_node 2 (gloo): both ranks end with the same weights for each method. Starting from
    the trained tiny model lets the augmentation round find adversarial examples to share across ranks."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    methods = ["freelb", "roast", "rift+augment"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(ROOT / "tests" / "ddp_train.py"), str(tiny_trained), str(small_files[0]), str(small_files[1]),
               str(tmp_path), *methods]
    # Own session, so a timeout ends torchrun's workers too, not only torchrun.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, stderr[-3000:]
    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"method"')]
    assert [r["method"] for r in rows] == methods
    for row in rows:
        assert row["world_size"] == 2
        assert row["checksums"][0] == row["checksums"][1]  # gradients were synchronised, masks identical
        assert "model.safetensors" in row["files"]
    roast = rows[methods.index("roast")]
    digests = [report["mask_digest_per_epoch"] for report in roast["rank_reports"]]
    assert len(digests[0]) == 1 and digests[0] == digests[1]  # the same gradient masks on both ranks
    assert "augmented_examples.jsonl" in rows[-1]["files"]
    assert rows[-1]["report"]["augment"]["added_total"] > 0


def test_cli_trains_with_a_method_and_its_options(tiny_base, small_files, tmp_path, capsys):
    from textarmor.cli import main

    out = tmp_path / "cli-freelb"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(small_files[0]), "--eval-data", str(small_files[1]), "--out", str(out),
              "--model", str(tiny_base), "--epochs", "1", "--batch-size", "16", "--max-length", "32",
              "--method", "freelb", "--adv-steps", "3", "--adv-norm", "linf", "-o", "adv_max_norm=0.05"])
    assert exit_info.value.code in (0, None)
    objective = TextArmorConfig.load(out).training["objective"]
    assert objective["adv_steps"] == 3 and objective["adv_norm"] == "linf" and objective["adv_max_norm"] == 0.05


@pytest.mark.parametrize("args, pattern", [
    (["--method", "nope"], "Unknown training method 'nope'"),
    (["--method", "freelb", "--roast-alpha", "0.5"], "roast_alpha"),
    (["--method", "pgd", "--adv-norm", "l1"], "adv_norm must be one of l2, linf"),
    (["--method", "roast", "-o", "fisher_batches"], "KEY=VALUE"),
])
def test_cli_rejects_bad_method_options(args, pattern, tiny_base, small_files, tmp_path, capsys):
    from textarmor.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(small_files[0]), "--out", str(tmp_path / "x"), "--model", str(tiny_base),
              *args])
    assert exit_info.value.code == 2
    assert pattern in capsys.readouterr().err


def test_train_help_lists_every_method_with_its_paper(capsys):
    from textarmor.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for fragment in ("pgd:", "Madry et al. 2018", "freelb:", "Zhu et al. 2020", "roast:", "Kim et al. 2023",
                     "rift:", "Dong et al. 2021", "ascc:", "Towards Robustness Against Natural Language Word",
                     "augment:", "roast+augment"):
        assert fragment in text


def test_augment_with_an_attack_recipe(tiny_trained, synthetic_files, tmp_path):
    """The attack engine plugs in by recipe name: deepwordbug attacks the live model during training."""
    result = train(synthetic_files[0], eval_data=synthetic_files[1], out_dir=tmp_path / "dwb", model=str(tiny_trained),
                   epochs=1, learning_rate=1e-3, batch_size=16, max_length=32, seed=0, progress=False,
                   method="augment", method_options={"augment_recipe": "deepwordbug", "clean_epochs": 0,
                                                     "augment_every": 1, "augment_sample": 16})
    rounds = TextArmorConfig.load(result.model_dir).training["objective_report"]["augment"]["rounds"]
    assert rounds[0]["attacked"] == 16 and rounds[0]["added"] > 0  # character edits of the keyword flip it
    records = [json.loads(line) for line in (tmp_path / "dwb" / "augmented_examples.jsonl").read_text().splitlines()]
    assert len(records) == rounds[0]["added"] and all(r["text"] != r["original"] for r in records)
