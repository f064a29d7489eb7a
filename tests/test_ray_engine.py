"""``--engine ray``: Ray Data over a local two-CPU Ray cluster writes the local engine's rows."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import synthetic_rows, write_jsonl
from textarmor.cli import main
from textarmor.distributed import ray_predict
from textarmor.errors import DataError, OutputExistsError
from textarmor.prediction import predict_file

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def read_shards(folder: Path) -> list[dict]:
    return [json.loads(line) for shard in sorted(folder.glob("*.jsonl")) for line in shard.read_text().splitlines()]


def assert_same_rows(got: list[dict], expected: list[dict]) -> None:
    """Equal rows; scores may differ in the last float32 bit (batches are cut differently)."""
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected):
        assert mine.keys() == theirs.keys()
        assert {k: v for k, v in mine.items() if k not in ("score", "scores")} == \
               {k: v for k, v in theirs.items() if k not in ("score", "scores")}
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-6)
        if "scores" in theirs:
            assert mine["scores"] == pytest.approx(theirs["scores"], abs=1e-6)


def test_ten_thousand_rows_equal_the_local_engine(local_ray, tiny_trained, tmp_path):
    rows = synthetic_rows(10_000, seed=7)
    rows[17]["text"] = "   "  # skipped and counted by both engines
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    # A threshold at the median score leaves about half the rows uncertain, whatever the trained model's
    # confidence (it varies with the threads the fixture trained with).
    predict_file(tiny_trained, str(source), out=tmp_path / "probe.jsonl")
    scores = sorted(json.loads(line)["score"] for line in (tmp_path / "probe.jsonl").read_text().splitlines())
    options = dict(threshold=scores[len(scores) // 2], all_scores=True)
    local = predict_file(tiny_trained, str(source), out=tmp_path / "local.jsonl", **options)
    summary = ray_predict(tiny_trained, source, out=tmp_path / "ray", num_actors=2, batch_size=2000, **options)

    assert (summary.rows, summary.skipped, summary.uncertain) == (local.rows, local.skipped, local.uncertain)
    assert summary.rows == 9_999 and summary.output == str(tmp_path / "ray")
    shards = list((tmp_path / "ray").glob("*.jsonl"))
    assert len(shards) > 1  # sharded output
    expected = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text().splitlines()]
    assert_same_rows(sorted(read_shards(tmp_path / "ray"), key=lambda r: r["line"]), expected)
    assert any("top_label" in r for r in expected)  # the threshold made some rows uncertain
    with pytest.raises(OutputExistsError):
        ray_predict(tiny_trained, source, out=tmp_path / "ray")


def test_a_folder_of_jsonl_csv_and_parquet_shards(local_ray, tiny_trained, tmp_path):
    import pandas as pd

    folder = tmp_path / "shards"
    folder.mkdir()
    parts = [synthetic_rows(30, seed=s) for s in (1, 2, 3)]
    write_jsonl(folder / "a.jsonl", parts[0])
    pd.DataFrame(parts[1]).to_csv(folder / "b.csv", index=False)
    pd.DataFrame(parts[2]).to_parquet(folder / "c.parquet")
    (folder / "notes.md").write_text("not an input shard")
    ray_predict(tiny_trained, folder, out=tmp_path / "out", num_actors=1)

    got = read_shards(tmp_path / "out")
    for name, part, first_line in (("a.jsonl", parts[0], 1), ("b.csv", parts[1], 2), ("c.parquet", parts[2], 1)):
        mine = sorted((r for r in got if r["file"] == name), key=lambda r: r["line"])
        reference = write_jsonl(tmp_path / f"{name}.jsonl", part)
        predict_file(tiny_trained, str(reference), out=tmp_path / f"{name}.out.jsonl")
        expected = [json.loads(line) for line in (tmp_path / f"{name}.out.jsonl").read_text().splitlines()]
        for row in expected:  # CSV lines count the header; Parquet rows count from 1
            row["line"] += first_line - 1
        assert_same_rows([{k: v for k, v in r.items() if k != "file"} for r in mine], expected)


def test_strict_names_the_first_empty_text_and_publishes_nothing(local_ray, tiny_trained, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": "a great film"}, {"text": ""}, {"text": "dull"}])
    with pytest.raises(DataError, match=r"in\.jsonl, line 2: empty text"):
        ray_predict(tiny_trained, source, out=tmp_path / "out", num_actors=1, strict=True)
    assert not (tmp_path / "out").exists()


def test_cli_engine_ray(local_ray, tiny_trained, tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", synthetic_rows(50, seed=3))
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(tiny_trained), str(source), "--engine", "ray", "--num-actors", "1",
              "--out", str(tmp_path / "out")])
    assert exit_info.value.code in (0, None)
    assert "50 predicted" in capsys.readouterr().err
    assert len(read_shards(tmp_path / "out")) == 50
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(tiny_trained), str(source), "--engine", "ray"])
    assert exit_info.value.code == 2
    assert "--out FOLDER" in capsys.readouterr().err


def test_attack_on_actors_gives_the_local_results(local_ray, tiny_trained, synthetic_files, tmp_path):
    from textarmor.attacks import attack
    from textarmor.distributed import ray_attack

    options = dict(recipe="deepwordbug", n=12, seed=3, concurrency=4)
    local = attack(str(tiny_trained), str(synthetic_files[1]), **options)
    remote = ray_attack(tiny_trained, synthetic_files[1], num_actors=2, out_dir=tmp_path / "run", **options)

    # Equal decisions and texts; scores equal up to float noise (actors batch other examples together, and a
    # batch's shape moves the last digits of a forward pass).
    assert [_rounded(r.to_dict()) for r in remote.results] == [_rounded(r.to_dict()) for r in local.results]
    assert remote.summary()["attack_success_rate"] == local.summary()["attack_success_rate"]
    assert remote.settings["model_calls"] > 0
    written = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in written) == list(range(12))
    assert (tmp_path / "run" / "summary.json").exists()


def _rounded(value):
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
