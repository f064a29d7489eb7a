"""The command line: verbs, streaming prediction, and clear exit-2 errors for bad input."""
from __future__ import annotations

import json

import pytest

from textarmor.cli import main


def run(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.mark.parametrize("verb", ["train", "predict", "evaluate", "models"])
def test_every_verb_has_help_with_examples(verb, capsys):
    code, out, _ = run([verb, "--help"], capsys)
    assert code == 0
    assert "Usage" in out
    if verb != "models":
        assert "textarmor " + verb in out  # an example


def test_models_lists_aliases(capsys):
    code, out, _ = run(["models"], capsys)
    assert code == 0 and "minilm-l6" in out and "mpnet-base" in out


def test_predict_streams_jsonl_in_input_order(tiny_trained, tmp_path, capsys):
    texts = ["the film was great", "", "dull and tedious plot", "a " * 60 + "superb", "boring"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    code, _, err = run(["predict", tiny_trained, tmp_path / "in.txt", "--threshold", "0.6", "--all-scores",
                        "--out", tmp_path / "out.jsonl"], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 3, 4, 5]
    assert "4 predicted" in err and "1 empty skipped" in err
    from textarmor import Classifier

    expected = Classifier.from_pretrained(tiny_trained, device="cpu").predict([t for t in texts if t])
    got = [r["scores"][name] for r in rows for name in ("negative", "positive")]
    assert got == pytest.approx([p.scores[name] for p in expected for name in ("negative", "positive")], abs=1e-5)
    for row in rows:
        assert row["uncertain"] == (row["score"] < 0.6)
        assert row["label"] is None if row["uncertain"] else row["label"] in ("negative", "positive")


def test_predict_csv_in_csv_out_with_top_k(tiny_trained, tmp_path, capsys):
    (tmp_path / "in.csv").write_text('id,review\n1,"great, really"\n2,dull\n')
    code, _, err = run(["predict", tiny_trained, tmp_path / "in.csv", "--text-column", "review", "--top-k", "2",
                        "--out", tmp_path / "out.csv"], capsys)
    assert code == 0, err
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0].startswith("line,label,score") and "label_2" in lines[0] and len(lines) == 3


def test_evaluate_writes_metrics(tiny_trained, synthetic_files, tmp_path, capsys):
    code, out, _ = run(["evaluate", tiny_trained, "--data", synthetic_files[1], "--threshold", "0.7",
                        "--out", tmp_path / "m.json"], capsys)
    assert code == 0 and "accuracy" in out and "coverage" in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix", "ece", "coverage"} <= set(metrics)


@pytest.mark.parametrize("case,pattern", [
    ("missing_file", "does not exist"),
    ("bad_json", "line 2"),
    ("bad_threshold", r"\[0, 1\]"),
    ("missing_column", "found"),
    ("unknown_model", "minilm-l6"),
    ("existing_out", "--overwrite"),
    ("one_class", "at least two"),
    ("unseen_eval_label", "not trained on"),
])
def test_bad_input_exits_2_with_a_clear_message(case, pattern, tiny_trained, tmp_path, capsys):
    good = tmp_path / "in.jsonl"
    good.write_text('{"text": "great"}\n{"text": "dull"}\n')
    (tmp_path / "exists.jsonl").write_text("keep me\n")
    labelled = tmp_path / "lab.jsonl"
    labelled.write_text('{"text": "great", "label": "positive"}\n{"text": "meh", "label": "neutral"}\n')
    one = tmp_path / "one.jsonl"
    one.write_text('{"text": "great", "label": "positive"}\n{"text": "fine", "label": "positive"}\n')
    args = {
        "missing_file": ["predict", tiny_trained, tmp_path / "nope.txt"],
        "bad_json": ["predict", tiny_trained, tmp_path / "bad.jsonl"],
        "bad_threshold": ["predict", tiny_trained, good, "--threshold", "1.5"],
        "missing_column": ["predict", tiny_trained, good, "--text-column", "review"],
        "unknown_model": ["predict", tmp_path / "nowhere-model", good],
        "existing_out": ["predict", tiny_trained, good, "--out", tmp_path / "exists.jsonl"],
        "one_class": ["train", "--data", one, "--out", tmp_path / "o"],
        "unseen_eval_label": ["evaluate", tiny_trained, "--data", labelled],
    }[case]
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\nnot json\n')
    code, out, err = run(args, capsys)
    assert code == 2
    assert "error:" in err and "Traceback" not in err
    import re

    assert re.search(pattern, err), err
    assert (tmp_path / "exists.jsonl").read_text() == "keep me\n"
