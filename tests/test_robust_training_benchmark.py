"""benchmarks/robust_training: the epoch-time ratio from step costs measured alone, the target check, and
grid.py's merge of recipes added to a finished grid."""
from __future__ import annotations

import importlib.util
import json
import sys
from argparse import Namespace
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "robust_training"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"robust_training_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def summarize():
    return load("summarize_grid")


def grid_row(name, method, clean, pwws, seconds, device="NVIDIA H200 (4 configs sharing it)", **extra):
    return {"backbone": "minilm-l6", "name": name, "method": method, "hyperparameters": {}, "device": device,
            "epochs": 2, "batch_size": 64, "learning_rate": 5e-5, "max_length": 64, "train_rows": 6400,
            "seconds_per_epoch": seconds, "dev_clean_acc": clean, "dev_ece": 0.05, "dev_attack_n": 872,
            "dev_acc_under": {"deepwordbug": 20.0, "pwws": pwws}, "selection_clean_acc": clean,
            "selection_acc_under": {"pwws": pwws}, "selection_attack_n": 500, "run": 0, **extra}


STEP_COST = {"minilm-l6": {
    "standard": {"seconds_per_step": 0.03, "step_time_ratio": 1.0, "device": "NVIDIA H200, alone"},
    "ascc-k1": {"seconds_per_step": 0.054, "step_time_ratio": 1.8, "device": "NVIDIA H200, alone"}}}


def test_epoch_time_ratio_adds_attack_rounds_to_the_step_cost_measured_alone(summarize):
    standard = grid_row("standard", "standard", 0.89, 12.0, 40.0)
    augmented = grid_row("ascc-k1+augment", "ascc+augment", 0.885, 26.0, 110.0, augment_round_seconds=[6.0])
    timing = summarize.epoch_time(augmented, standard, STEP_COST)
    # 100 steps per epoch x 0.03 s = 3 s per standard epoch; the 6 s round spread over 2 epochs adds 1.0
    assert timing["epoch_time_ratio"] == pytest.approx(2.8)
    assert timing["epoch_time_ratio_shared_gpu"] == pytest.approx(2.75)
    assert timing["epoch_time_basis"].startswith("step cost alone")
    row = summarize.result_rows([standard, augmented], [standard, augmented], {}, {}, STEP_COST)[1]
    assert row["pwws_vs_standard"] == pytest.approx(26 / 12, abs=0.01)
    assert row["clean_change_points"] == pytest.approx(-0.5)
    assert row["meets_target"] is None  # an estimate: full epochs alone came out above such estimates


def test_full_epochs_alone_replace_the_estimate_and_decide_the_target(summarize):
    standard = grid_row("standard", "standard", 0.89, 12.0, 40.0)
    augmented = grid_row("ascc-k1+augment", "ascc+augment", 0.885, 26.0, 110.0, augment_round_seconds=[6.0])
    alone = [grid_row("standard", "standard", 0.89, 12.0, 45.0, device="NVIDIA H200, alone",
                      epoch_seconds=[50.0, 30.0]),
             grid_row("ascc-k1+augment", "ascc+augment", 0.885, 25.0, 90.0, device="NVIDIA H200, alone",
                      epoch_seconds=[70.0, 80.0])]
    rows = summarize.result_rows([standard, augmented], [standard, augmented], {}, {}, STEP_COST, [("a1", alone)])
    assert rows[0]["epoch_time_ratio"] == 1.0
    # the mean epoch (75 s) over standard's faster epoch (30 s), and over its mean (40 s)
    assert rows[1]["epoch_time_ratio"] == pytest.approx(2.5)
    assert rows[1]["epoch_time_ratio_vs_standard_mean"] == pytest.approx(1.88, abs=0.01)
    assert rows[1]["epoch_time_basis"] == "full epochs alone on NVIDIA H200, alone"
    assert rows[1]["meets_target"] is True  # 2.17x pwws, -0.5 clean, 2.5x: on the bound
    # a later file with both configs wins; one without standard is passed over
    later = [grid_row("standard", "standard", 0.89, 12.0, 25.0, device="NVIDIA H200, alone",
                      epoch_seconds=[24.0, 26.0]),
             grid_row("ascc-k1+augment", "ascc+augment", 0.885, 25.0, 70.0, device="NVIDIA H200, alone",
                      epoch_seconds=[66.0, 78.0])]
    orphan = [grid_row("ascc-k1+augment", "ascc+augment", 0.885, 25.0, 10.0, epoch_seconds=[9.0, 9.0])]
    checked = {"minilm-l6/ascc-k1+augment@a2": {"deepwordbug": 20.0, "pwws": 24.0},
               "minilm-l6/standard@a2": {"deepwordbug": 18.0, "pwws": 11.0}}
    rows = summarize.result_rows([standard, augmented], [standard, augmented], {}, checked, STEP_COST,
                                 [("a1", alone), ("a2", later), ("a3", orphan)])
    assert rows[1]["epoch_time_ratio"] == pytest.approx(3.0)  # 72 s over 24 s
    assert rows[1]["meets_target"] is False
    # every alone run of the config is kept, each with its own models' TextAttack numbers where measured
    runs = rows[1]["alone_runs"]
    assert [run["run"] for run in runs] == ["a1", "a2"] and [run["meets_target"] for run in runs] == [True, False]
    assert runs[0]["textattack_acc_under"] is None
    assert runs[1]["textattack_acc_under"]["pwws"] == 24.0 and runs[1]["standard_textattack_acc_under"]["pwws"] == 11.0
    assert rows[1]["textattack_acc_under"]["pwws"] == 24.0 and "a2" in rows[1]["textattack_acc_under"]["model"]
    assert rows[0]["textattack_acc_under"]["pwws"] == 11.0  # standard's own alone run, a2
    table = summarize.markdown(rows)
    assert "| a2 |" in table and "24.0% (11.0%)" in table


def test_shared_gpu_ratio_where_the_step_cost_does_not_apply(summarize):
    standard = grid_row("standard", "standard", 0.89, 12.0, 40.0)
    untimed_rounds = grid_row("ascc-k1+augment", "ascc+augment", 0.89, 26.0, 90.0)  # no round seconds
    other_gpu = grid_row("ascc-k1", "ascc", 0.89, 26.0, 60.0, device="NVIDIA H100 80GB HBM3 (6 configs sharing it)")
    for row, shared in ((untimed_rounds, 2.25), (other_gpu, 1.5)):
        timing = summarize.epoch_time(row, standard, STEP_COST)
        assert timing["epoch_time_ratio"] == timing["epoch_time_ratio_shared_gpu"] == pytest.approx(shared)
        assert timing["epoch_time_basis"].startswith("shared GPU")
    row = summarize.result_rows([standard, other_gpu], [standard, other_gpu], {}, {}, STEP_COST)[1]
    assert row["meets_target"] is True  # 2.17x pwws, no clean loss, 1.5x


def test_added_recipes_merge_into_the_grid_rows(tmp_path):
    grid = load("grid")
    out = tmp_path / "rows.jsonl"
    rows = [{"name": "standard", "dev_acc_under": {"pwws": 12.0}}, {"name": "broken", "error": "diverged"}]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "rows.add0.jsonl").write_text(json.dumps(
        {"name": "standard", "recipe": "textfooler", "accuracy_under_attack": 3.2, "seconds": 9.5}) + "\n")
    grid.merge_added(Namespace(out=out), workers=2)
    merged = [json.loads(line) for line in out.read_text().splitlines()]
    assert merged[0]["dev_acc_under"] == {"pwws": 12.0, "textfooler": 3.2}
    assert merged[0]["dev_attack_seconds_textfooler"] == 9.5
    assert merged[1] == rows[1]
    assert not list(tmp_path.glob("rows.add*.jsonl"))  # parts removed once merged
