"""The robustness benchmark's bookkeeping: its task plan, the selection rule, and the summary's rows, misses and
transfer share, on result files written here (no model is trained)."""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module(name: str):
    path = ROOT / "benchmarks" / "robustness" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"robustness_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


run, summarize = _module("run"), _module("summarize")


def _write(folder: Path, name: str, row: dict) -> None:
    (folder / f"{name}.json").write_text(json.dumps(row))


def _train(folder, name, backbone="minilm-l6", epoch_seconds=(10.0, 10.0), preset=None):
    _write(folder, f"train__{name}", {
        "kind": "train", "name": name, "backbone": backbone, "settings": {"epochs": 2}, "train_data": "x/train.jsonl",
        "train_rows": 100, "method": "ascc+augment" if preset else "standard", "preset": preset, "objective": {},
        "defense": {}, "epoch_seconds": list(epoch_seconds), "seconds_per_epoch": 10.0})


def _scores(folder, name, split, clean, attacks):
    _write(folder, f"clean__{name}__{split}", {"kind": "clean", "name": name, "split": split, "clean_acc": clean,
                                               "n": 50, "passes_per_input": 1.0,
                                               "defense": {"name": "rewrite", "options": {}}})
    for recipe, value in attacks.items():
        _write(folder, f"attack__{name}__{split}__{recipe}", {"kind": "attack", "name": name, "split": split,
                                                               "recipe": recipe, "acc_under": value, "n": 40})


def test_selection_takes_the_best_mean_among_variants_that_keep_clean_accuracy_and_time(tmp_path):
    _train(tmp_path, "sst2-minilm-standard")
    _scores(tmp_path, "sst2-minilm-standard", "selection", 90.0, dict.fromkeys(run.RECIPES, 10.0))
    # a: allowed; b: more robust but loses 2 clean points; c: most robust but 4x the epoch time
    for key, clean, value, seconds in (("a", 89.0, 30.0, 20.0), ("b", 88.0, 40.0, 20.0), ("c", 90.0, 50.0, 40.0)):
        _train(tmp_path, f"sst2-minilm-robust-{key}", epoch_seconds=(seconds, seconds), preset="robust")
        _scores(tmp_path, f"sst2-minilm-robust-{key}", "selection", clean, dict.fromkeys(run.RECIPES, value))
    picked = run.select(tmp_path, ["a", "b", "c"])
    assert picked["winner"] == "a" and picked["eligible"] == ["a"]
    assert picked["variants"]["c"]["epoch_time_ratio"] == 4.0 and picked["variants"]["b"]["mean"] == 40.0


def test_plan_runs_selection_first_and_waits_for_mpnet(tmp_path):
    args = argparse.Namespace(data=str(tmp_path), runs=str(tmp_path / "runs"), minilm="M", mpnet=str(tmp_path / "P"),
                              select_attack_n=200, agnews_attack_n=500, mpnet_sst2_rows=16000, smoke=False)
    tasks = {t.id: t for t in run.tasks(args)}
    assert tasks["train:sst2-minilm-robust-a"].priority == 0
    assert "wait:mpnet-base" in tasks["train:sst2-mpnet-standard"].after
    assert "select" in tasks["train:sst2-mpnet-robust"].after and "select" in tasks["train:mr-minilm-robust"].after
    assert tasks["train:agnews-minilm-robust-transfer"].args["settings"]["model"] == "@winner-model"
    recipes = {t.args["recipe"] for t in tasks.values() if t.kind == "attack"}
    assert recipes == set(run.RECIPES)
    assert all(t.args["n"] is None for t in tasks.values()
               if t.kind == "attack" and t.args["dataset"] in ("sst2", "mr") and t.args["split"] == "report")


def test_summary_rows_misses_and_transfer(tmp_path):
    _write(tmp_path, "select", {"kind": "select", "winner": "a"})
    _train(tmp_path, "sst2-minilm-standard")
    _train(tmp_path, "sst2-minilm-robust-a", epoch_seconds=(20.0, 40.0), preset="robust")
    _scores(tmp_path, "sst2-minilm-standard", "report", 90.0, dict.fromkeys(run.RECIPES, 10.0))
    _scores(tmp_path, "sst2-minilm-robust", "report", 88.0,
            {"pwws": 60.0, "textfooler": 20.0, "deepwordbug": 55.0, "adaptive": 15.0})
    for name, attacks in (("agnews-minilm-standard", 20.0), ("agnews-minilm-robust", 60.0),
                          ("agnews-minilm-robust-transfer", 50.0)):
        _train(tmp_path, name, preset=None if name.endswith("standard") else "robust")
        _scores(tmp_path, name, "report", 90.0, dict.fromkeys(run.RECIPES, attacks))
    table = summarize.rows(summarize.load(tmp_path), {"device": "test"}, [
        {"name": "sst2-minilm-robust", "recipe": "pwws", "n": 20, "acc_under": 55.0, "tool": "textattack 0.3.11"},
        {"name": "sst2-minilm-robust", "recipe": "pwws", "n": 20, "acc_under": 54.0, "tool": "textarmor"}])
    robust = next(r for r in table if r["dataset"] == "sst2" and r["role"] == "robust")
    assert robust["robust_acc"] == 15.0 and robust["epoch_time_ratio"] == 3.0
    assert robust["textattack_acc_under"] == {"pwws": 55.0, "deepwordbug": None}
    assert robust["textarmor_cpu_acc_under"]["pwws"] == 54.0
    misses = {(m["cell"], m["what"]): m["short_by"] for m in summarize.goal(table)}
    assert misses[("sst2/minilm-l6", "acc_under.adaptive")] == 35.0
    assert misses[("sst2/minilm-l6", "clean_acc")] == pytest.approx(0.5)
    assert ("sst2/minilm-l6", "acc_under.pwws") not in misses and ("sst2/minilm-l6", "epoch_time_ratio") not in misses
    kept = summarize.transfer(table)["per_attack"]["pwws"]
    assert kept == {"gain_from_plain": 40.0, "gain_transferred": 30.0, "kept": 0.75}
