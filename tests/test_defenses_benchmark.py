"""benchmarks/defenses/run.py on the tiny model: robust-model rows, the mix detector fitted on tuning data only,
and parallel report processes giving the same rows as one process."""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "defenses" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("defenses_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def robust_dir(tiny_trained, tmp_path_factory) -> Path:
    return Path(shutil.copytree(tiny_trained, tmp_path_factory.mktemp("robust") / "tiny-robust"))


def common(tiny_trained, synthetic_files, out: Path) -> list[str]:
    return ["--model", str(tiny_trained), "--data", str(synthetic_files[1]), "--tune-size", "30",
            "--recipes", "deepwordbug", "--families", "smooth-mask", "tta", "--mix-weights", "0.5", "1.0",
            "--detector-n", "12", "--out", str(out), "--tuning", str(out), "--device", "cpu"]


@pytest.fixture(scope="module")
def tuned(bench, tiny_trained, synthetic_files, robust_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "defenses.json"
    return out, tune_recording_attacks(bench, [*common(tiny_trained, synthetic_files, out), "--robust-model",
                                               str(robust_dir)])


def tune_recording_attacks(bench, args: list[str]) -> list[str]:
    """Run ``tune`` with ``args`` and return the texts every attack it made was given."""
    attacked: list[str] = []
    original = bench.attack

    def recording_attack(clf, rows, **kwargs):
        attacked.extend(r["text"] for r in rows[:kwargs["n"]])
        return original(clf, rows, **kwargs)

    bench.attack = recording_attack
    try:
        bench.main(["tune", *args])
    finally:
        bench.attack = original
    return attacked


def test_tune_fits_detector_on_tuning_texts_only(bench, tuned, tiny_trained, synthetic_files, robust_dir):
    out, attacked = tuned
    rows = json.loads(out.read_text())["rows"]
    from textarmor import Classifier

    (tune_texts, _), (report_texts, _) = bench.split(Classifier.from_pretrained(tiny_trained, device="cpu"),
                                                     str(synthetic_files[1]), 30)
    assert attacked and set(attacked) <= set(tune_texts[:12]) and not set(attacked) & set(report_texts)
    chosen = next(r for r in rows if r["setting"] == "chosen")
    assert chosen["robust_model"] == str(robust_dir) and chosen["detector"]["data"] == "tuning split only"
    assert chosen["detector"]["clean_texts"] == 30 and chosen["detector"]["attacked"] == 12
    assert len(chosen["detector"]["coef"]) == 4 and chosen["detector"]["adversarial_texts"] > 0
    mix_rows = [r for r in rows if r.get("family") == "mix"]
    assert [r["options"]["weight"] for r in mix_rows] == [0.5, 1.0]
    assert all(r["robust_model"] == str(robust_dir) and r["model"] == str(tiny_trained) for r in mix_rows)
    # the rule picks the largest robust share within the clean cost; an identical robust copy costs nothing
    assert chosen["chosen"]["mix"]["options"] == {"weight": 1.0}
    plain = [r for r in rows if r.get("family") in ("smooth-mask", "tta")]
    assert plain and all(r["robust_model"] is None for r in plain)


def test_report_rows_name_their_models(bench, tuned, tiny_trained, synthetic_files, robust_dir):
    out, _ = tuned
    rows = bench.main(["report", *common(tiny_trained, synthetic_files, out), "--robust-model", str(robust_dir),
                       "--attack-n", "3", "--only", "none", "robust/none", "mix(weight=1.0)",
                       "mix(detector=tuning-fit)"])
    by = {r["setting"]: r for r in rows}
    assert list(by) == ["none", "robust/none", "mix(weight=1.0)", "mix(detector=tuning-fit)"]
    assert by["none"]["model"] == str(tiny_trained) and by["none"]["robust_model"] is None
    assert by["robust/none"]["model"] == by["robust/none"]["robust_model"] == str(robust_dir)
    assert by["mix(detector=tuning-fit)"]["robust_model"] == str(robust_dir)
    assert by["mix(weight=1.0)"]["passes_per_input"] == 2  # standard + robust
    assert by["robust/none"]["clean_acc"] == by["none"]["clean_acc"]  # the robust dir is a copy
    saved = {r["setting"] for r in json.loads(out.read_text())["rows"] if r["phase"] == "report"}
    assert set(by) <= saved


def test_report_without_robust_model_labels_the_standin(bench, tuned, tiny_trained, synthetic_files, tmp_path):
    out = tmp_path / "plain.json"
    shutil.copy(tuned[0], out)
    rows = bench.main(["report", *common(tiny_trained, synthetic_files, out), "--attack-n", "2",
                       "--only", "mix-standin"])
    assert [r["setting"] for r in rows] == ["mix-standin(robust=standard+typo-repair, weight=0.5)"]
    assert rows[0]["robust_model"] is None and not any(r["setting"].startswith("robust/") for r in rows)


def test_parallel_report_matches_one_process(bench, tuned, tiny_trained, synthetic_files, tmp_path):
    args = [*common(tiny_trained, synthetic_files, tmp_path / "x.json"), "--tuning", str(tuned[0]),
            "--attack-n", "3", "--only", "none", "tta(augmentations=repair)"]
    one = bench.main(["report", *args, "--out", str(tmp_path / "one.json")])
    two = bench.main(["report", *args, "--out", str(tmp_path / "two.json"), "--jobs", "2"])
    drop = ("attack_seconds", "device")
    assert [{k: v for k, v in r.items() if k not in drop} for r in two] == [
        {k: v for k, v in r.items() if k not in drop} for r in one]
    assert [r["setting"] for r in json.loads((tmp_path / "two.json").read_text())["rows"]] == [
        "none", "tta(augmentations=repair)"]


def tuned_row(setting, cost, dwb, pwws, passes=1.0, family="gated"):
    return {"phase": "tune", "setting": setting, "family": family, "defense": "tta", "options": {"s": setting},
            "clean_cost_points": cost, "passes_per_input": passes, "acc_under": {"deepwordbug": dwb, "pwws": pwws}}


def test_attack_aware_rule_maximises_the_smaller_gain_within_the_cost(bench):
    rows = [tuned_row("none", 0.0, 20.0, 15.0, family="none"),
            tuned_row("a", 0.0, 50.0, 25.0),    # gains +30 / +10: min 10
            tuned_row("b", 0.74, 38.0, 33.0),   # +18 / +18: min 18, the pick
            tuned_row("c", 1.10, 60.0, 45.0),   # +40 / +30, but over the 1.0-point cost
            tuned_row("d", 1.0, 36.0, 40.0),    # +16 / +25: min 16 (cost exactly at the bound is kept)
            {"phase": "tune", "setting": "e", "family": "clean-only", "clean_cost_points": 0.0,
             "passes_per_input": 1.0}]  # not attacked: not a candidate of this rule
    picked = bench.pick_attack_aware(rows)
    assert picked["setting"] == "b" and picked["gains"] == {"deepwordbug": 18.0, "pwws": 18.0}
    assert picked["min_gain"] == 18.0 and picked["clean_cost_points"] == 0.74 and picked["options"] == {"s": "b"}
    assert bench.pick_attack_aware(rows, max_cost=1.5)["setting"] == "c"
    assert bench.pick_attack_aware(rows, recipes=("deepwordbug",))["setting"] == "a"
    assert bench.pick_attack_aware(rows[:1] + rows[3:4]) is None  # nothing within the cost


def test_attack_aware_rule_breaks_ties_by_passes_then_order(bench):
    none = tuned_row("none", 0.0, 20.0, 15.0, family="none")
    rows = [none, tuned_row("slow", 0.0, 40.0, 35.0, passes=1.3), tuned_row("fast", 0.5, 45.0, 35.0, passes=1.2),
            tuned_row("fast-later", 0.0, 40.0, 35.0, passes=1.2)]
    assert bench.pick_attack_aware(rows)["setting"] == "fast"  # min gain +20 for all three: fewest passes, first
    with pytest.raises(ValueError, match="none"):
        bench.pick_attack_aware(rows[1:])


def test_tune_with_attacks_attacks_tuning_sentences_only(bench, tiny_trained, synthetic_files, tmp_path):
    out = tmp_path / "tune.json"
    attacked = tune_recording_attacks(bench, [*common(tiny_trained, synthetic_files, out), "--families", "tta",
                                              "--attack-n", "4"])
    from textarmor import Classifier

    (tune_texts, _), (report_texts, _) = bench.split(Classifier.from_pretrained(tiny_trained, device="cpu"),
                                                     str(synthetic_files[1]), 30)
    assert attacked and set(attacked) <= set(tune_texts[:4]) and not set(attacked) & set(report_texts)
    rows = json.loads(out.read_text())["rows"]
    summary = next(r for r in rows if r["setting"] == "chosen")
    attacked_rows = [r for r in rows if "acc_under" in r]
    assert attacked_rows[0]["setting"] == "none" and len(attacked_rows) == 1 + len(bench.CANDIDATES["tta"])
    assert all(r["attack_n"] == 4 for r in attacked_rows)
    assert summary["attack_chosen"] == bench.pick_attack_aware(rows, recipes=("deepwordbug",))
    assert "min(gain under deepwordbug)" in summary["attack_rule"]
