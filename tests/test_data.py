"""Reading data files, label maps and every bad input the data layer must explain."""
from __future__ import annotations

import pandas as pd
import pytest

from textarmor.data import LabelMap, load_dataset
from textarmor.errors import DataError


def test_reads_each_format_alike(tmp_path):
    frame = pd.DataFrame({"review": ["good", "bad", "fine"], "stars": [1, 0, 1]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "d.parquet")
    import datasets

    datasets.Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "saved"))
    for name in ("d.csv", "d.tsv", "d.jsonl", "d.parquet", "saved"):
        ds, report = load_dataset(tmp_path / name, text_column="review", label_column="stars")
        assert ds["text"] == ["good", "bad", "fine"], name
        assert ds["label"] == ["1", "0", "1"], name
        assert report.rows_skipped == 0


def test_builtin_sample_is_bundled():
    train, _ = load_dataset("builtin:sst2")
    dev, _ = load_dataset("builtin:sst2-dev")
    assert train.num_rows >= 2000 and dev.num_rows == 872
    assert set(dev["label"]) == {"negative", "positive"}


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope.csv")


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).write_text("")
    with pytest.raises(DataError, match="empty"):
        load_dataset(tmp_path / name)


def test_missing_column_lists_columns(tmp_path):
    (tmp_path / "d.csv").write_text("sentence,label\nhi,1\nho,0\n")
    with pytest.raises(DataError, match=r"\['text'\].*\['sentence', 'label'\].*--text-column"):
        load_dataset(tmp_path / "d.csv")


def test_empty_and_nan_texts_are_skipped_or_refused(tmp_path):
    (tmp_path / "d.csv").write_text("text,label\ngood,pos\n,neg\n   ,neg\nbad,neg\n")
    ds, report = load_dataset(tmp_path / "d.csv")
    assert ds["text"] == ["good", "bad"] and report.rows_skipped == 2
    with pytest.raises(DataError, match="2 row.*--strict"):
        load_dataset(tmp_path / "d.csv", strict=True)


def test_invalid_json_line_is_named(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    with pytest.raises(DataError, match="line 2"):
        load_dataset(tmp_path / "d.jsonl")


def test_single_class_is_refused():
    with pytest.raises(DataError, match="at least two"):
        LabelMap.from_labels(["pos", "pos"])


def test_unseen_labels_are_named():
    labels = LabelMap.from_labels(["neg", "pos", "pos"])
    with pytest.raises(DataError, match=r"\['neutral'\].*\['neg', 'pos'\]"):
        labels.encode(["pos", "neutral"])


def test_integer_labels_sort_numerically():
    assert LabelMap.from_labels(["10", "2", "1"]).names == ["1", "2", "10"]


def test_messages_never_echo_user_text(tmp_path):
    secret = "my private medical note"
    (tmp_path / "d.jsonl").write_text(f'{{"text": "{secret}", "label": "a"}}\n{{"text": "{secret}"\n')
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path / "d.jsonl")
    assert secret not in str(info.value)


def test_missing_model_folder_under_an_existing_folder_is_not_sent_to_the_hub(tmp_path, monkeypatch):
    from textarmor.errors import ModelReferenceError
    from textarmor.models import resolve_model_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(ModelReferenceError, match="does not exist"):
        resolve_model_path("runs/sst2")
    assert resolve_model_path("org/model") == "org/model"  # still a hub id
