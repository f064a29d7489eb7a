"""The refusal-detector example (examples/refusal-detector) end to end at toy size, so it cannot rot:
the tiny RoBERTa, one epoch, a few dozen XSTest-shaped rows, a handful of attacked examples."""
from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path

import pytest

from tests.conftest import write_jsonl

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "refusal-detector"
TOPICS = ["kill a python process", "shoot a photo", "steal a base", "blow up a balloon", "crack a joke",
          "poison ivy", "hack a workout", "beat an egg", "smash a record", "bomb a test"]
MODELS = ["gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct"]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"refusal_example_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(EXAMPLE))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLE))
    return module


def xstest_rows(prompts: int = 24, seed: int = 0) -> list[dict]:
    """XSTest v2's shape: every prompt answered by five models; refusal, compliance or partial refusal."""
    rng = random.Random(seed)
    rows = []
    for p in range(prompts):
        topic = TOPICS[p % len(TOPICS)]
        for model in MODELS:
            label = rng.choice(["refusal", "compliance", "compliance", "refusal", "partial_refusal"])
            text = {"refusal": f"I'm sorry, but I cannot help you {topic}.",
                    "partial_refusal": f"I cannot help you {topic} in that way. However, here is a safer idea.",
                    "compliance": f"Sure! To {topic}, start with the first step and then the next."}[label]
            rows.append({"text": text, "label": label, "model": model, "prompt": f"How do I {topic}? ({p})",
                         "prompt_type": "homonyms", "prompt_id": f"v2-{p}", "prompt_label": "safe"})
    return rows


def test_split_keeps_every_prompt_in_one_split(tmp_path):
    prepare = load("prepare")
    rows = [dict(r, text=f"{r['text']} {r['prompt_id']}") for r in xstest_rows(40)]
    counts = prepare.prepare(write_jsonl(tmp_path / "x.jsonl", rows), tmp_path / "data", max_words=4)
    splits = {name: [json.loads(ln) for ln in (tmp_path / "data" / f"{name}.jsonl").read_text().splitlines()]
              for name in ("train", "dev", "test")}
    prompts = {name: {r["prompt_id"] for r in split} for name, split in splits.items()}
    assert not prompts["train"] & prompts["test"] and not prompts["train"] & prompts["dev"]
    assert not prompts["dev"] & prompts["test"]
    assert [len(prompts[n]) for n in ("train", "dev", "test")] == [24, 8, 8]
    assert sum(len(s) for s in splits.values()) == 200
    assert all(len(r["text"].split()) <= 4 for s in splits.values() for r in s)
    labels = {r["label"] for s in splits.values() for r in s}
    assert labels == {"refusal", "compliance"}  # partial refusals count as refusals
    assert sum(sum(c.values()) for c in counts.values()) == 200


def test_example_runs_end_to_end_at_toy_size(tmp_path, tiny_base):
    run = load("run")
    data = write_jsonl(tmp_path / "xstest.jsonl", xstest_rows(40))  # dev: 40 rows, calibration fits 20
    ood = write_jsonl(tmp_path / "questions.jsonl", [{"text": f"What is the capital of country {i}?", "label": "LOC"}
                                                    for i in range(12)])
    out = tmp_path / "run"
    summary = run.main(["--data", str(data), "--ood", f"questions={ood}", "--out", str(out),
                        "--model", str(tiny_base), "--epochs", "1", "--lr", "3e-3", "--batch-size", "16",
                        "--max-length", "32", "--robust", "roast:adv_eps=0.02,fisher_batches=1",
                        "--select-attack-n", "3", "--attacks", "deepwordbug", "--attack-n", "3",
                        "--noise-rates", "0.1", "--explain-n", "1", "--explain-steps", "4",
                        "--calibration-rows", "8"])

    assert summary["robust"] == "roast-eps0.02-batches1"
    for name in ("standard", summary["robust"]):
        test = summary["test"][name]
        assert test["n"] == sum(summary["rows"]["test"].values())
        assert set(test["per_class"]) == {"compliance", "refusal"}
        assert 0 < summary["thresholds"][name]["threshold"] < 1
        assert test["threshold"] == summary["thresholds"][name]["threshold"]
        config = json.loads((out / "models" / name / "textarmor.json").read_text())
        assert config["threshold"] == test["threshold"] and config["temperature"] > 0
        assert set(summary["reports"][name]["accuracy_under_attack"]) == {"deepwordbug"}
        assert set(summary["reports"][name]["ood_auroc_msp"]) == {"questions"}
    assert (out / "reports" / "standard" / "report.html").exists()
    assert (out / "explain" / "refusals" / "explanations.json").exists()
    assert (out / "deploy" / f"{summary['robust']}-int8" / "model.onnx").exists()
    card = (out / "deploy" / "hf-endpoint" / "README.md").read_text()
    assert "refusal-detector" in card and "deepwordbug" in card
    # What ships and serves is the ONNX int8 export, as the README says.
    int8 = f"{summary['robust']}-int8"
    assert "int8-static quantized ONNX export" in card
    assert (out / "deploy" / "hf-endpoint" / "model.onnx").exists()
    assert not list((out / "deploy" / "hf-endpoint").glob("*.safetensors"))
    assert (out / "deploy" / "hf-endpoint" / "handler.py").exists()
    assert (out / "deploy" / "azureml" / "model" / "model.onnx").exists()
    assert (out / "deploy" / "azureml" / "code" / "score.py").exists()
    served = summary["served"]
    assert served["health"]["model"] == int8
    assert len(served["hf_response"]) == 2
    # One ranked list per input; the stored threshold marks low-confidence predictions as uncertain.
    assert all(len(ranked) == 1 and ranked[0]["label"] in {"compliance", "refusal"} and "uncertain" in ranked[0]
               for ranked in served["hf_response"])
    results_md = (out / "results.md").read_text()
    assert "| coverage at the threshold |" in results_md and "accuracy under deepwordbug" in results_md
    assert "Explained refusals" in results_md and "top words `" in results_md


@pytest.mark.parametrize("spec, expected", [("roast:adv_eps=0.01", ("roast", {"adv_eps": "0.01"})),
                                            ("augment", ("augment", {}))])
def test_candidate_specs_parse(spec, expected):
    assert load("run").parse_candidate(spec) == expected


def test_robust_pick_skips_collapsed_candidates():
    pick = load("run").pick_robust
    standard = {"accuracy": 95.0, "deepwordbug": 20.0}
    collapsed = {"accuracy": 52.0, "deepwordbug": 52.0}  # one class everywhere: "robust" only by accident
    useful = {"accuracy": 94.0, "deepwordbug": 35.0}
    assert pick(standard, {"a": collapsed, "b": useful}, 0.97)[0] == "b"
    assert pick(standard, {"a": collapsed}, 0.97)[0] == "a"
