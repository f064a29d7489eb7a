"""Batch prediction and attacks on a Ray cluster (``pip install 'textarmor[ray]'``).

``ray_predict`` reads a file or a folder of shards (JSONL, CSV/TSV, TXT, Parquet) with Ray Data, classifies
it with a pool of actors that each hold one :class:`~textarmor.Classifier` (one GPU per actor where the
cluster has GPUs) and writes a folder of JSONL shards whose rows are the local engine's rows
(:func:`textarmor.prediction.prediction_rows`): ``line``, ``label``, ``score``, ... plus ``file`` (the
shard's path inside the input folder) when the input is a folder. Shards are written as blocks finish, so
rows are grouped by input block, not globally ordered; ``line`` (and ``file``) say where each came from.

``ray_attack`` runs :func:`textarmor.attacks.attack` with the examples spread over an actor pool; every
example's random choices depend only on ``(seed, index)``, so the results are the local engine's.

The model folder must be readable at the same path on every node (a shared file system), as must the
input and output paths (or use URIs Ray Data reads, such as ``s3://``).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textarmor.errors import DataError, OutputExistsError, ParameterError
from textarmor.prediction import INPUT_FORMATS, PredictSummary, RowOptions, iter_stream_inputs, prediction_rows
from textarmor.textcheck import text_stream

FORMATS = INPUT_FORMATS + ("parquet",)
SUFFIXES = {"json": "jsonl", "ndjson": "jsonl", "text": "txt", "pq": "parquet"}
ROWS_PER_BLOCK = 4096
#: CPUs reserved by the read and write tasks: none, so that they run beside an actor pool that holds every
#: CPU of the cluster (parsing and writing JSON lines is light next to the model).
IO_CPUS = 0


def _ray():
    try:
        import ray
    except ImportError:
        raise ParameterError("--engine ray needs Ray Data: pip install 'textarmor[ray]'.") from None
    return ray


def _file_format(path: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(path).suffix.lower().lstrip(".")
    suffix = SUFFIXES.get(suffix, suffix)
    if suffix not in FORMATS:
        raise DataError(f"Cannot tell the format of '{path}' from its suffix; pass --format "
                        f"({', '.join(FORMATS)}).")
    return suffix


def text_rows_datasource(paths: str | list[str], *, fmt: str | None, text_column: str,
                         text_pair_column: str | None, root: str | None):
    """A Ray Data datasource yielding ``file``, ``line``, ``text`` (and ``text_pair``) rows, with the line
    numbers of the local engine (:func:`textarmor.prediction.iter_inputs`); Parquet rows count from 1."""
    from ray.data.datasource import FileBasedDatasource

    class TextRows(FileBasedDatasource):
        def _read_stream(self, f, path: str) -> Iterator[Any]:
            import pyarrow as pa

            name = os.path.relpath(path, root) if root else path
            columns: dict[str, list] = {"file": [], "line": [], "text": [], "text_pair": []}

            def block():
                table = pa.table({k: pa.array(v, pa.int64() if k == "line" else pa.string())
                                  for k, v in columns.items() if k != "text_pair" or text_pair_column})
                for values in columns.values():
                    values.clear()
                return table

            for number, text, pair in _read_file(f, path, _file_format(path, fmt), text_column, text_pair_column):
                columns["file"].append(name)
                columns["line"].append(number)
                columns["text"].append(_text_or_none(text))
                columns["text_pair"].append(_text_or_none(pair))
                if len(columns["line"]) == ROWS_PER_BLOCK:
                    yield block()
            if columns["line"]:
                yield block()

    extensions = sorted({*FORMATS, *SUFFIXES}) if fmt is None else None
    return TextRows(paths, file_extensions=extensions)


def _read_file(f, path: str, fmt: str, text_column: str, text_pair_column: str | None):
    """``(line, text, text_pair)`` of one input file; text formats stream, a Parquet file is read whole."""
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = [c for c in (text_column, text_pair_column) if c]
        parquet = pq.ParquetFile(pa.BufferReader(f.readall()))  # Ray hands over a stream; Parquet needs seeking
        missing = [c for c in columns if c not in parquet.schema_arrow.names]
        if missing:
            raise DataError(f"{path}: column '{missing[0]}' not found; the columns are "
                            f"{parquet.schema_arrow.names}. Choose it with --text-column / --text-pair-column.")
        number = 0
        for batch in parquet.iter_batches(columns=columns):
            texts = batch.column(text_column).to_pylist()
            pairs = batch.column(text_pair_column).to_pylist() if text_pair_column else [None] * len(texts)
            for text, pair in zip(texts, pairs):
                number += 1
                yield number, text, pair
        return
    handle = text_stream(f)  # invalid bytes reach the checks, which name their line
    yield from iter_stream_inputs(handle, fmt, name=path, text_column=text_column, text_pair_column=text_pair_column)


def _text_or_none(value: Any) -> str | None:
    from textarmor.data import _is_missing

    return None if _is_missing(value) else str(value)


class _PredictActor:
    """One Classifier per actor; turns a batch of input rows into output rows (JSON text, '' if skipped)."""

    def __init__(self, model: str, options: RowOptions, classifier_kwargs: dict[str, Any], with_file: bool,
                 threads: int | None):
        import torch

        from textarmor.classifier import Classifier

        if threads:
            torch.set_num_threads(threads)  # one actor per CPU slot; torch would take every core
        self.classifier = Classifier.from_pretrained(model, **classifier_kwargs)
        self.options, self.with_file = options, with_file

    def __call__(self, batch):
        import pyarrow as pa

        files, lines = batch.column("file").to_pylist(), batch.column("line").to_pylist()
        texts = batch.column("text").to_pylist()
        pairs = batch.column("text_pair").to_pylist() if "text_pair" in batch.column_names else None
        keep = [i for i, t in enumerate(texts) if t is not None and (pairs is None or pairs[i] is not None)]
        rows = prediction_rows(self.classifier, [lines[i] for i in keep], [texts[i] for i in keep],
                               [pairs[i] for i in keep] if pairs is not None else None, self.options)
        # Skipped rows keep where they came from: Ray does not carry an actor's exception type back to the
        # driver, so --strict fails there, naming the first empty text.
        out, uncertain = [f"{files[i]}, line {lines[i]}" for i in range(len(texts))], [False] * len(texts)
        for i, row in zip(keep, rows):
            if self.with_file:
                row = {"file": files[i], **row}
            out[i] = json.dumps(row, ensure_ascii=False)
            uncertain[i] = bool(row.get("uncertain"))
        return pa.table({"row": pa.array(out, pa.string()), "uncertain": pa.array(uncertain, pa.bool_()),
                         "skipped": pa.array([i not in set(keep) for i in range(len(texts))], pa.bool_())})


def _jsonl_datasink(path: str):
    """Writes the predicted rows of each write task as one JSONL shard; returns its counts (and where the
    first skipped text was) to the driver."""
    from ray.data.datasource import BlockBasedFileDatasink

    class PredictionShards(BlockBasedFileDatasink):
        def __init__(self):
            super().__init__(path, file_format="jsonl")
            self.summary = PredictSummary(output=path)
            self.empty: list[str] = []  # where the first skipped text of each write task was

        def write(self, blocks, ctx):
            import pyarrow as pa
            import pyarrow.compute as pc
            from ray.data.block import BlockAccessor

            # One file per write task (as Ray's own file sinks do): the task's blocks joined, skipped rows dropped.
            tables = [BlockAccessor.for_block(block).to_arrow() for block in blocks]
            table = pa.concat_tables(tables) if tables else None
            if table is None or table.num_rows == 0:
                return {"rows": 0, "uncertain": 0, "skipped": 0, "empty": []}
            written = table.filter(pc.invert(table["skipped"]))
            if written.num_rows:
                self.write_block(BlockAccessor.for_block(written), 0, ctx)
            empty = table.filter(table["skipped"]).column("row").to_pylist()
            return {"rows": written.num_rows, "skipped": len(empty), "empty": empty[:1],
                    "uncertain": int(pc.sum(table["uncertain"]).as_py() or 0)}

        def write_block_to_file(self, block, file) -> None:
            file.write(("\n".join(block.to_arrow().column("row").to_pylist()) + "\n").encode("utf-8"))

        def on_write_complete(self, write_result) -> None:
            for counts in write_result.write_returns:
                counts = dict(counts or {})
                self.empty += counts.pop("empty", [])
                for key, value in counts.items():
                    setattr(self.summary, key, getattr(self.summary, key) + value)

    return PredictionShards()


def ray_predict(model: str | os.PathLike, source: str | os.PathLike, *, out: str | os.PathLike,
                address: str | None = None, num_actors: int | None = None, gpus_per_actor: float | None = None,
                cpus_per_actor: float = 1, batch_size: int = 1024, fmt: str | None = None,
                threshold: float | None = None, top_k: int = 1, function_to_apply: str | None = None,
                all_scores: bool = False, abstain_label: str | None = None, coverage: float | None = None,
                conformal_method: str = "lac", text_column: str = "text", text_pair_column: str | None = None,
                strict: bool = False, overwrite: bool = False, **classifier_kwargs) -> PredictSummary:
    """Classify every text of ``source`` (a file or a folder of shards) on a Ray cluster; write JSONL shards
    to the folder ``out`` (via ``OUT.partial``, renamed when complete).

    ``address``: the cluster (``auto``, ``ray://host:10001``; default: the running one, else a local one).
    ``num_actors``: Classifier actors (default: one per GPU, else one per ``cpus_per_actor`` CPUs).
    ``gpus_per_actor``: default 1 where the cluster has GPUs, else 0. ``batch_size``: rows per actor call.
    The other options are :func:`textarmor.prediction.predict_file`'s.
    """
    from textarmor.classifier import check_threshold

    check_threshold(threshold)
    if top_k < 1:
        raise ParameterError(f"--top-k must be at least 1, got {top_k}.")
    source, out_path = str(source), Path(out)
    if out_path.exists() and not overwrite:
        raise OutputExistsError(f"Output folder '{out_path}' already exists. Pass --overwrite, or choose "
                                "another --out.")
    if "://" not in source and not Path(source).exists():
        raise DataError(f"Input '{source}' does not exist. Pass a file or a folder of JSONL/CSV/Parquet shards.")
    if fmt is not None and fmt not in FORMATS:
        raise ParameterError(f"--format must be one of {FORMATS}, got {fmt!r}.")
    ray = _ray()
    with _cluster(ray, address):
        gpus, threads, actors = _actor_resources(ray, num_actors, gpus_per_actor, cpus_per_actor)
        folder = "://" not in source and Path(source).is_dir()
        datasource = text_rows_datasource(source, fmt=fmt, text_column=text_column, text_pair_column=text_pair_column,
                                          root=source if folder else None)
        options = RowOptions(threshold=threshold, top_k=top_k, function_to_apply=function_to_apply,
                             all_scores=all_scores, abstain_label=abstain_label, coverage=coverage,
                             conformal_method=conformal_method)
        predictions = ray.data.read_datasource(datasource, num_cpus=IO_CPUS).map_batches(
            _PredictActor, batch_size=batch_size, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(
                size=actors), num_gpus=gpus, num_cpus=cpus_per_actor,
            fn_constructor_kwargs={"model": str(model), "options": options, "classifier_kwargs": classifier_kwargs,
                                   "with_file": folder, "threads": threads})
        partial = out_path.with_name(out_path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        sink = _jsonl_datasink(str(partial.resolve()))
        predictions.write_datasink(sink, ray_remote_args={"num_cpus": IO_CPUS})
    if strict and sink.empty:
        shutil.rmtree(partial, ignore_errors=True)
        raise DataError(f"{sorted(sink.empty)[0]}: empty text ({sink.summary.skipped} in all). Remove them, or drop "
                        "--strict to skip them.")
    if out_path.exists():
        shutil.rmtree(out_path)
    partial.mkdir(parents=True, exist_ok=True)  # Ray leaves no folder when there was nothing to write
    partial.rename(out_path)
    sink.summary.output = str(out_path)
    return sink.summary


def ray_attack(model: str | os.PathLike, data: str | os.PathLike | list[dict], *, recipe: str,
               address: str | None = None, num_actors: int | None = None, gpus_per_actor: float | None = None,
               cpus_per_actor: float = 1, **attack_options):
    """:func:`textarmor.attacks.attack` with the examples attacked by a pool of Ray actors (each with its own
    Classifier and recipe) instead of this process; same options, same output folder and report.
    ``address``, ``num_actors``, ``gpus_per_actor``: as in :func:`ray_predict`."""
    from textarmor.attacks import attack

    ray = _ray()
    classifier_kwargs = {k: attack_options.pop(k) for k in list(attack_options)
                         if k in ("max_tokens_per_batch", "device", "dtype", "backend", "max_length")}
    runner = RayAttackRunner(str(model), recipe=recipe, num_actors=num_actors, gpus_per_actor=gpus_per_actor,
                             cpus_per_actor=cpus_per_actor, query_budget=attack_options.get("query_budget"),
                             # Per actor call; below the local default so examples spread evenly over actors.
                             concurrency=attack_options.get("concurrency") or 64, seed=attack_options.get("seed", 0),
                             recipe_args={"max_modify_rate": attack_options.get("max_modify_rate"),
                                          **(attack_options.get("recipe_options") or {})},
                             target=attack_options.get("target"), classifier_kwargs=classifier_kwargs)
    with _cluster(ray, address):
        # Bad options and labels fail here, in attack(), before any actor starts.
        return attack(str(model), data, recipe=recipe, runner=runner, **attack_options, **classifier_kwargs)


class RayAttackRunner:
    """Attacks examples on an actor pool; a ``runner`` for :func:`textarmor.attacks.attack`.

    Examples go to the actors in batches of ``concurrency`` (each actor's engine attacks a batch at once);
    results stream back to the driver as batches finish, in completion order."""

    def __init__(self, model: str, *, recipe: str, recipe_args: dict[str, Any], target: str | None,
                 query_budget: int | None, concurrency: int, seed: int, classifier_kwargs: dict[str, Any],
                 num_actors: int | None = None, gpus_per_actor: float | None = None, cpus_per_actor: float = 1):
        self.model, self.recipe, self.recipe_args, self.target = model, recipe, recipe_args, target
        self.query_budget, self.concurrency, self.seed = query_budget, concurrency, seed
        self.classifier_kwargs = classifier_kwargs
        self.num_actors, self.gpus_per_actor, self.cpus_per_actor = num_actors, gpus_per_actor, cpus_per_actor
        self.model_calls = 0

    def run(self, examples, on_result=None) -> list:
        from textarmor.attacks.report import AttackResult

        examples = list(examples)
        if not examples:
            return []
        ray = _ray()
        gpus, threads, actors = _actor_resources(ray, self.num_actors, self.gpus_per_actor, self.cpus_per_actor)
        items = [{"index": e.index, "text": e.text, "label": e.label} for e in examples]
        attacked = ray.data.from_items(items).map_batches(
            _AttackActor, batch_size=self.concurrency, batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=min(actors, len(items))), num_gpus=gpus,
            num_cpus=self.cpus_per_actor, fn_constructor_kwargs={
                "model": self.model, "recipe": self.recipe, "recipe_args": self.recipe_args, "target": self.target,
                "query_budget": self.query_budget, "concurrency": self.concurrency, "seed": self.seed,
                "classifier_kwargs": self.classifier_kwargs, "threads": threads})
        results = []
        for row in attacked.iter_rows():
            self.model_calls += int(row["model_calls"])
            result = AttackResult.from_dict(json.loads(row["result"]))
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results


class _AttackActor:
    """One Classifier and one attack engine per actor; attacks a batch of examples."""

    def __init__(self, model: str, recipe: str, recipe_args: dict[str, Any], target: str | None,
                 query_budget: int | None, concurrency: int, seed: int, classifier_kwargs: dict[str, Any],
                 threads: int | None):
        import torch

        from textarmor.attacks.engine import AttackEngine
        from textarmor.attacks.recipes import build_recipe
        from textarmor.classifier import Classifier

        if threads:
            torch.set_num_threads(threads)
        classifier = Classifier.from_pretrained(model, cache_size=200_000, **classifier_kwargs)
        target_id = classifier.labels.index(target) if target is not None else None
        self.engine = AttackEngine(build_recipe(recipe, defense=getattr(classifier, "defense", None),
                                                target=target_id, **recipe_args), classifier,
                                   query_budget=query_budget, concurrency=concurrency, seed=seed)

    def __call__(self, batch):
        import pyarrow as pa

        from textarmor.attacks.engine import Example

        examples = [Example(int(i), str(t), int(y)) for i, t, y in zip(
            batch.column("index").to_pylist(), batch.column("text").to_pylist(), batch.column("label").to_pylist())]
        before = self.engine.model_calls
        results = self.engine.run(examples)
        calls = [0] * len(results)
        if calls:
            calls[0] = self.engine.model_calls - before  # the batch's forward passes, counted once
        return pa.table({"result": pa.array([json.dumps(r.to_dict()) for r in results], pa.string()),
                         "model_calls": pa.array(calls, pa.int64())})


class _cluster:
    """Connects to ``address`` (or starts a local Ray) unless Ray is already up; shuts down what it started."""

    def __init__(self, ray, address: str | None):
        self.ray, self.address, self.started = ray, address, False

    def __enter__(self):
        if not self.ray.is_initialized():
            self.ray.init(address=self.address, log_to_driver=False)
            self.started = True
        return self

    def __exit__(self, *exc):
        if self.started:
            self.ray.shutdown()


def _actor_resources(ray, num_actors: int | None, gpus_per_actor: float | None,
                     cpus_per_actor: float) -> tuple[float, int | None, int]:
    """(GPUs per actor, torch threads per actor on CPU, actors) from the cluster's resources."""
    resources = ray.cluster_resources()
    cluster_gpus, cluster_cpus = resources.get("GPU", 0), resources.get("CPU", 1)
    gpus = float(gpus_per_actor) if gpus_per_actor is not None else (1.0 if cluster_gpus else 0.0)
    if num_actors is None:
        num_actors = int(cluster_gpus // gpus) if gpus else int(cluster_cpus // cpus_per_actor)
    if num_actors < 1:
        raise ParameterError(f"num_actors must be at least 1, got {num_actors} (cluster: {cluster_cpus:g} CPUs, "
                             f"{cluster_gpus:g} GPUs).")
    threads = None if gpus else max(1, int(cpus_per_actor))
    return gpus, threads, num_actors


__all__ = ["FORMATS", "RayAttackRunner", "ray_attack", "ray_predict"]
