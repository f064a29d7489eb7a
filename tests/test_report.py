"""The multi-perspective robustness report on the tiny model: every section present, consistent, rendered."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("matplotlib")

from tests.conftest import write_jsonl  # noqa: E402
from textarmor.evaluation.report import ReportSpec, robustness_report, summary_numbers  # noqa: E402


@pytest.fixture(scope="module")
def report_dir(tiny_trained, synthetic_files, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("report")
    model = root / "model"
    shutil.copytree(tiny_trained, model)
    ood = write_jsonl(root / "ood.jsonl", [{"text": f"what is the capital of country number {i}?"} for i in range(30)])
    spec = ReportSpec(data=str(synthetic_files[1]), shift={"train": str(synthetic_files[0])},
                      ood={"questions": str(ood)}, attacks=["deepwordbug"], attack_n=12, noise_rates=[0.1, 0.3])
    report = robustness_report(model, spec, root / "out", log=lambda *_: None)
    return model, root / "out", report


def test_every_section_is_measured(report_dir):
    _, out, report = report_dir
    assert {"in_distribution", "calibration", "shift", "ood", "adversarial", "noise"} <= set(report)
    assert report["adversarial"]["deepwordbug"]["raw"]["total"] == 12
    assert [r["rate"] for r in report["noise"]] == [0.1, 0.3]
    assert 0.0 <= report["ood"]["questions"]["msp"]["auroc"] <= 1.0
    assert report["calibration"]["temperature"] > 0
    saved = json.loads((out / "report.json").read_text())
    assert saved["in_distribution"] == report["in_distribution"]


def test_attack_cannot_raise_accuracy(report_dir):
    _, _, report = report_dir
    raw = report["adversarial"]["deepwordbug"]["raw"]
    assert raw["accuracy_under_attack"] <= raw["original_accuracy"]


def test_html_renders_every_plot_and_markdown_lists_every_perspective(report_dir):
    _, out, _ = report_dir
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # reliability, attacks, noise, ROC
    md = (out / "report.md").read_text()
    for word in ("in-distribution", "calibration", "adversarial", "distribution shift", "anomaly detection",
                 "natural noise"):
        assert word in md


def test_summary_is_stored_in_the_model_dir(report_dir):
    from textarmor import TextArmorConfig

    model, _, report = report_dir
    stored = TextArmorConfig.load(model).robustness
    assert {k: v for k, v in stored.items() if k != "summary_markdown"} == summary_numbers(report)
    assert stored["summary_markdown"].startswith("| perspective |")


def test_package_puts_the_report_summary_in_the_model_card(report_dir, tmp_path):
    from textarmor.deploy import package

    model, _, _ = report_dir
    out = package(model, target="hf-endpoint", out=tmp_path / "pkg")
    card = (out.out / "README.md").read_text()
    assert "| perspective | measure | value |" in card and "accuracy under deepwordbug" in card


def test_report_states_conformal_coverage_of_a_calibrated_model(tiny_trained, synthetic_files, tmp_path):
    import shutil

    from textarmor.evaluation import calibrate

    model = tmp_path / "model"
    shutil.copytree(tiny_trained, model)
    calibrate(model, synthetic_files[0], holdout=0.0)  # calibrated on train, reported on dev
    report = robustness_report(model, ReportSpec(data=str(synthetic_files[1]), attacks=[], noise_rates=[]),
                               tmp_path / "r", log=lambda *_: None)
    assert set(report["conformal"]) == {"lac", "aps"}
    assert 0.0 <= report["conformal"]["lac"]["0.9"]["coverage"] <= 1.0
    assert "conformal (lac)" in (tmp_path / "r" / "report.md").read_text()


def test_report_refuses_a_non_empty_folder(report_dir, synthetic_files):
    from textarmor.errors import OutputExistsError

    model, out, _ = report_dir
    with pytest.raises(OutputExistsError, match="--overwrite"):
        robustness_report(model, ReportSpec(data=str(synthetic_files[1])), out)


def test_evaluate_report_cli(tiny_trained, synthetic_files, tmp_path, capsys):
    import shutil

    from textarmor.cli import main

    model = tmp_path / "model"
    shutil.copytree(tiny_trained, model)
    args = ["evaluate", str(model), "--data", str(synthetic_files[1]), "--report", str(tmp_path / "r"),
            "--attacks", "charnoise", "--attack-n", "5", "--noise-rates", "0.2",
            "--shift", f"train={synthetic_files[0]}"]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "accuracy under charnoise" in out and "report.html" in out
    with pytest.raises(SystemExit) as info:
        main(args[:-2] + ["--shift", "no-equals-sign"])
    assert info.value.code == 2 and "NAME=FILE" in capsys.readouterr().err
