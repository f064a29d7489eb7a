"""``Classifier``: the one path by which anything in textarmor asks a model for scores.

Prediction, evaluation, attacks, explanations' predicted labels and the server all call it, so the
things that make inference fast and right live here once: batches cut by a token budget over
length-sorted inputs (results come back in input order), truncation to what the model can read, the
device and dtype, temperature scaling, the decision threshold and an optional score cache.

    >>> clf = Classifier.from_pretrained("runs/sst2")
    >>> clf(["a gripping, funny film"])
    [{'label': 'positive', 'score': 0.98}]
"""
from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textarmor.backends import BACKENDS, ONNX_FILE, detect_backend, tokenize_pool
from textarmor.backends.feeder import Feeder, results_as_ready
from textarmor.backends.torch_backend import TorchBackend
from textarmor.errors import ParameterError
from textarmor.model_dir import TextArmorConfig
from textarmor.textcheck import check_texts

FUNCTIONS = ("softmax", "sigmoid", "none")
# Models whose position ids start after the padding index, so they read fewer tokens than
# max_position_embeddings says (roberta-base: 514 positions, 512 tokens).
_OFFSET_POSITION_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "data2vec-text",
                           "xmod", "roberta-prelayernorm", "luke"}


def check_threshold(threshold: float | None, name: str = "threshold") -> float | None:
    if threshold is None:
        return None
    if not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
        raise ParameterError(f"{name} must be a number in [0, 1], got {threshold!r}. "
                             "It is the lowest top score accepted as a confident prediction, e.g. 0.8.")
    return float(threshold)


def apply_function(logits: np.ndarray, function: str) -> np.ndarray:
    """Turn logits into scores the way the Hugging Face text-classification pipeline does."""
    if function == "softmax":
        shifted = logits - logits.max(axis=-1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=-1, keepdims=True)
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    if function == "none":
        return logits
    raise ParameterError(f"function_to_apply must be one of {FUNCTIONS}, got {function!r}.")


@dataclass
class Prediction:
    """One classified input. ``label`` is the abstain label when ``uncertain``; ``top_label`` never is."""

    label: str | None
    score: float
    top_label: str
    uncertain: bool = False
    scores: dict[str, float] = field(default_factory=dict)
    prediction_set: list[str] | None = None

    def to_dict(self, *, with_scores: bool = False, with_uncertain: bool = True) -> dict[str, Any]:
        row: dict[str, Any] = {"label": self.label, "score": self.score}
        if with_uncertain:
            row["uncertain"] = self.uncertain
            if self.uncertain:
                row["top_label"] = self.top_label
        if self.prediction_set is not None:
            row["prediction_set"] = self.prediction_set
        if with_scores:
            row["scores"] = self.scores
        return row


class Classifier:
    """Batched, calibrated text classification over a Hugging Face sequence classifier.

    Parameters
    ----------
    model, tokenizer:
        A ``transformers`` sequence-classification model and its (fast) tokenizer.
    config:
        The model directory's :class:`TextArmorConfig`; supplies temperature, threshold and labels.
    device, dtype:
        Default: cuda, then mps, then cpu; float16 on a GPU (bfloat16 on request), else float32.
    max_tokens_per_batch:
        Token budget of one forward pass (padded length × rows); bounds memory whatever the lengths.
        Default 131,072 on a GPU; on a CPU 1,024 (or ``max_length`` if longer): passes whose activations
        fit the cores' caches are faster there (docs/benchmarks.md, the CPU section).
    max_batch_size:
        Upper bound on rows per forward pass, for very short inputs. Default 8,192 on a GPU, 256 elsewhere.
    max_length:
        Truncation length in tokens; default is what the model can read (and ``config.max_length``).
    cache_size:
        Keep the logits of up to this many distinct inputs; repeated queries (attacks) skip the model.
    tokenize_chunk, tokenize_workers:
        Inputs are tokenised in slices of ``tokenize_chunk`` by ``tokenize_workers`` threads while the model
        runs earlier slices. Default 2 workers and slices of 2,048 on a GPU (the first three smaller, so the
        GPU starts sooner), 4,096 elsewhere.
    tokenize_chunk_chars:
        Also cap each slice at about this many characters, so a call of long texts is cut into more, smaller
        slices and the model starts sooner. Default 100,000 on a GPU, no cap elsewhere.
    tokenize_processes:
        Tokenise the slices in this many worker processes instead of threads, so that turning the
        tokenizer's output into arrays no longer holds the GIL of the thread that feeds the GPU; this
        process pools their rows into forward passes and copies those to the device. ``0``: threads. ``None`` or
        ``"auto"`` (default): processes only where they pay, i.e. a CUDA backend, a fast tokenizer, at least
        8 CPU cores and a call of more than 4 slices (then ``min(12, max(cores - 4, 3 * cores // 4))``
        processes: 12 on 16 cores, 6 on 8); threads
        otherwise. Slow (Python) tokenizers always use threads. The pool starts on first use, serves later
        calls and stops on :meth:`close`
        (or when the classifier is collected, or at exit). Workers are spawned, so a script must keep its
        work under ``if __name__ == "__main__":`` (``"auto"`` checks for that block and uses threads
        without it). If a worker dies, the call finishes with threads, a ``RuntimeWarning`` says so, and
        the classifier keeps to threads from then on.
    word_cache:
        Tokenise single printable-ASCII texts of BERT-family WordPiece tokenizers (BertNormalizer,
        BertPreTokenizer, WordPiece) through a word cache: the Rust tokenizer's ids exactly, about 7x faster
        on one core (``benchmarks/inference/tokenize_speed.py``). Other texts, pairs and other tokenizers
        always go through the Rust tokenizer. ``False`` sends everything there.
    compile:
        Run the model through ``torch.compile`` (dynamic shapes, so one compilation serves every batch
        shape). Fuses the elementwise work between matmuls; the first call pays the compilation.
    """

    #: The model folder :meth:`from_pretrained` loaded (``None`` for a classifier built from objects).
    source: str | None = None

    def __init__(self, model, tokenizer, *, config: TextArmorConfig | None = None, device: str | None = None,
                 dtype: str | None = None, max_tokens_per_batch: int | None = None,
                 max_batch_size: int | None = None, max_length: int | None = None, cache_size: int = 0,
                 backend=None, model_config=None, tokenize_chunk: int | None = None,
                 tokenize_workers: int | None = None, tokenize_processes: int | str | None = None,
                 tokenize_chunk_chars: int | None = None, word_cache: bool = True, compile: bool = False):
        self.tokenizer = tokenizer
        self.word_cache = bool(word_cache)
        self.model_config = model_config if model_config is not None else getattr(model, "config", None)
        id2label = getattr(self.model_config, "id2label", None) or {}
        self.labels = list(config.labels) if config else [id2label[i] for i in sorted(id2label)]
        self.config = config or TextArmorConfig(labels=self.labels)
        if compile and backend is not None:
            raise ParameterError("compile=True applies to the torch backend only; drop it for this backend "
                                 "(an exported ONNX model is already a compiled graph).")
        self.backend = backend if backend is not None else TorchBackend(model, device=device, dtype=dtype,
                                                                        compile=compile)
        self.max_length = max_length or self._model_max_length()
        # A GPU needs large batches to be busy; a CPU is fastest when a pass's activations stay in cache.
        on_gpu = str(getattr(self.backend, "device", "cpu")).startswith("cuda")
        max_tokens_per_batch = max_tokens_per_batch or (131072 if on_gpu else max(1024, self.max_length))
        max_batch_size = max_batch_size or (8192 if on_gpu else 256)
        if max_tokens_per_batch < self.max_length:
            raise ParameterError(f"max_tokens_per_batch ({max_tokens_per_batch}) must be at least the "
                                 f"maximum sequence length ({self.max_length}).")
        self.max_tokens_per_batch = max_tokens_per_batch
        self.max_batch_size = max_batch_size
        # Smaller slices start a GPU sooner. Two workers: the Rust tokenizer releases the GIL, but turning its
        # output into arrays does not, and more threads starve the one that launches the GPU's kernels
        # (on an H100, 66.8k short texts/s with 2 workers, 64.1k with 4, 38.3k with 8: inference.json).
        self.tokenize_chunk = tokenize_chunk or (2048 if on_gpu else 4096)
        # On a GPU the first three slices are 1/8, 1/4 and 1/2 of the others: the model starts after an
        # eighth of a slice's tokenisation instead of a whole one, a tenth of a second on short texts.
        self._slice_ramp = 3 if on_gpu else 0
        if tokenize_chunk_chars is not None and tokenize_chunk_chars < 1:
            raise ParameterError(f"tokenize_chunk_chars must be a positive number of characters or None, "
                                 f"got {tokenize_chunk_chars!r}.")
        # Long texts: 2,048 reviews are a slice of ~1.6 s to tokenise, so a call of 10,000 made 5 slices and
        # the GPU waited; 100k characters (~75 reviews, ~2,000 short sentences) gave 6.1k vs 4.0k reviews/s
        # and 85k vs 74k short texts/s on an H200 (inference.json, chunkchars rows).
        self.tokenize_chunk_chars = tokenize_chunk_chars if tokenize_chunk_chars is not None else (
            100_000 if on_gpu else None)
        self.tokenize_workers = tokenize_workers or 2
        if not (tokenize_processes in (None, "auto") or (isinstance(tokenize_processes, int)
                                                         and not isinstance(tokenize_processes, bool)
                                                         and tokenize_processes >= 0)):
            raise ParameterError(f"tokenize_processes must be None/'auto' or an integer >= 0 (0: threads), "
                                 f"got {tokenize_processes!r}.")
        self.tokenize_processes = tokenize_processes
        self._pool: tokenize_pool.TokenizePool | None = None
        self._pool_broken = False
        self.cache_size = cache_size
        self._cache: OrderedDict[str | tuple[str, str], np.ndarray] = OrderedDict()
        self.num_queries = 0  # inputs actually sent to the model (cache hits excluded)

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, *, backend: str = "auto", device: str | None = None,
                        dtype: str | None = None, threads: int | None = None, trust_remote_code: bool = False,
                        defense=None, defense_options: dict[str, Any] | None = None, **kwargs) -> Classifier:
        """Load a model directory (or any reference :func:`textarmor.models.load_model` accepts).

        ``backend``: ``torch``, ``onnx`` (a folder from ``textarmor export``; ``threads`` sets ONNX Runtime's
        intra-op threads) or ``auto`` (onnx for exported folders, else torch). ``defense``: ``None`` (default)
        applies the defence stored in the folder's ``textarmor.json`` (``textarmor train --preset robust``
        stores one), if any; ``"none"`` loads the model alone; a name in :data:`textarmor.defenses.DEFENSES`
        (with ``defense_options``) or a ``Defense`` puts the model behind that defence instead. A defended
        model is a :class:`~textarmor.defenses.DefendedClassifier`.
        """
        if defense is None and not defense_options:
            base = cls._load(model_dir, backend=backend, device=device, dtype=dtype, threads=threads,
                             trust_remote_code=trust_remote_code, **kwargs)
            if not base.config.defense:
                return base
            from textarmor.defenses import load_stored_defense

            return load_stored_defense(base, cache_size=kwargs.get("cache_size", 0))
        if defense in ("none", False):
            if defense_options:
                raise ParameterError("defense_options were given with defense='none'; drop one of them.")
            return cls._load(model_dir, backend=backend, device=device, dtype=dtype, threads=threads,
                             trust_remote_code=trust_remote_code, **kwargs)
        if defense is not None:
            from textarmor.defenses import defend

            base = cls._load(model_dir, backend=backend, device=device, dtype=dtype, threads=threads,
                             trust_remote_code=trust_remote_code, **kwargs)
            return defend(base, defense, cache_size=kwargs.get("cache_size", 0), **(defense_options or {}))
        raise ParameterError("defense_options were given without a defense; pass defense=NAME as well.")

    @classmethod
    def _load(cls, model_dir: str | os.PathLike, *, backend: str = "auto", device: str | None = None,
              dtype: str | None = None, threads: int | None = None, trust_remote_code: bool = False,
              **kwargs) -> Classifier:
        """The model of a folder (or reference) alone, without any defence."""
        from textarmor.models import load_model, load_tokenizer, resolve_model_dir

        if backend not in BACKENDS:
            raise ParameterError(f"backend must be one of {BACKENDS}, got {backend!r}.")
        path = resolve_model_dir(model_dir)  # a textarmor model on the Hub: its snapshot, textarmor.json included
        config = TextArmorConfig.load(path) if Path(path).is_dir() else None
        tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
        if backend == "auto":
            backend = detect_backend(path)
        if backend == "onnx":
            from transformers import AutoConfig

            from textarmor.backends.onnx_backend import OnnxBackend

            clf = cls(None, tokenizer, config=config, model_config=AutoConfig.from_pretrained(path),
                      backend=OnnxBackend(Path(path) / ONNX_FILE, threads=threads), **kwargs)
        else:
            model = load_model(path, trust_remote_code=trust_remote_code)
            clf = cls(model, tokenizer, config=config, device=device, dtype=dtype, **kwargs)
        clf.source = str(path)
        return clf

    # ----------------------------------------------------------------- scores
    def _model_max_length(self) -> int:
        cfg = self.model_config
        positions = getattr(cfg, "max_position_embeddings", 512) if cfg is not None else 512
        if cfg is not None and getattr(cfg, "model_type", "") in _OFFSET_POSITION_MODELS:
            positions -= (getattr(cfg, "pad_token_id", 1) or 0) + 1
        limits = [positions]
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        if tok_max and tok_max < 1_000_000:
            limits.append(tok_max)
        if self.config.max_length:
            limits.append(self.config.max_length)
        return int(min(limits))

    @property
    def temperature(self) -> float:
        return float(self.config.temperature or 1.0)

    @property
    def default_function(self) -> str:
        problem = getattr(self.model_config, "problem_type", None)
        return "sigmoid" if problem == "multi_label_classification" or len(self.labels) == 1 else "softmax"

    def logits(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> np.ndarray:
        """Raw (uncalibrated) logits, shape ``(len(texts), num_labels)``, in input order."""
        texts = _as_list(texts, "texts")
        if text_pairs is not None:
            text_pairs = _as_list(text_pairs, "text_pairs")
            if len(text_pairs) != len(texts):
                raise ParameterError(f"text_pairs has {len(text_pairs)} items but texts has {len(texts)}; "
                                     "pass one pair per text.")
        keys = texts if text_pairs is None else list(zip(texts, text_pairs))
        # Each distinct input runs once per call (attacks and real traffic repeat texts)
        distinct, inverse = _distinct(keys)
        if not self.cache_size:
            return self._forward_keys(distinct, text_pairs is not None)[inverse]
        rows = np.empty((len(distinct), len(self.labels)), dtype=np.float32)
        missing = []
        for j, key in enumerate(distinct):
            cached = self._cache.get(key)
            if cached is None:
                missing.append(j)
            else:
                rows[j] = cached
                self._cache.move_to_end(key)
        if missing:
            rows[missing] = self._forward_keys([distinct[j] for j in missing], text_pairs is not None)
            for j in missing:
                self._cache[distinct[j]] = rows[j]
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return rows[inverse]

    def _forward_keys(self, keys: list, pairs: bool) -> np.ndarray:
        """Logits of distinct inputs: texts, or ``(text, pair)`` tuples when ``pairs``."""
        if not pairs:
            return self._forward(keys, None)
        return self._forward([k[0] for k in keys], [k[1] for k in keys])

    def _forward(self, texts: list[str], text_pairs: list[str] | None) -> np.ndarray:
        self.num_queries += len(texts)
        # Workers tokenise the next slices (threads: the Rust tokenizer releases the GIL; or processes) while
        # this thread feeds the model, so on a GPU the two overlap.
        slices = self._plan_slices(texts, text_pairs)
        processes = self._processes_for(len(slices))
        feeder = Feeder(self.backend, self.max_tokens_per_batch, self.max_batch_size, self._pad_id)
        # only a device that can sit idle while this thread waits needs the slices as they come
        before_wait = feeder.before_wait if feeder.watches_device else None
        if len(slices) == 1:
            prepared = iter([(slices[0], self._tokenize(texts, text_pairs, slices[0]))])
        elif processes:
            prepared = self._prepared_in_processes(texts, text_pairs, slices, processes, before_wait)
        else:
            prepared = self._prepared_in_threads(texts, text_pairs, slices, before_wait)
        try:
            for indices, encoded in prepared:
                feeder.add(indices, encoded)
            feeder.flush()
        finally:
            if hasattr(prepared, "close"):
                prepared.close()  # stops the workers' pending slices if the model raised
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        for indices, logits in zip(feeder.targets, self.backend.collect(feeder.handles)):
            out[indices] = logits
        return out

    def _plan_slices(self, texts: list[str], text_pairs: list[str] | None) -> list[np.ndarray]:
        """The slices a call tokenises, as input indices, longest texts first. Ordered by character length,
        each slice holds rows of similar length; the feeder pools rows across slices and cuts each pass from
        the longest."""
        chars = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        if text_pairs is not None:
            chars += np.fromiter(map(len, text_pairs), dtype=np.int64, count=len(texts))
        # int16 keys sort by radix, 6x faster than int64 (0.4 vs 2.8 ms for 67k texts); texts of 32,767
        # characters and more are truncated alike, so their order among themselves does not matter
        order = np.argsort(-np.minimum(chars, 32767).astype(np.int16), kind="stable")
        return tokenize_pool.plan_slices(order, chars[order], self.tokenize_chunk, self.tokenize_chunk_chars,
                                         ramp=self._slice_ramp)

    def _prepared_in_threads(self, texts: list[str], text_pairs: list[str] | None, slices: list[np.ndarray],
                             before_wait=None):
        pool = ThreadPoolExecutor(max_workers=self.tokenize_workers)
        try:
            futures = [pool.submit(self._tokenize, texts, text_pairs, indices) for indices in slices]
            for position, encoded in results_as_ready(futures, before_wait):
                yield slices[position], encoded
        finally:
            pool.shutdown(cancel_futures=True)

    def _prepared_in_processes(self, texts: list[str], text_pairs: list[str] | None, slices: list[np.ndarray],
                               processes: int, before_wait=None):
        """``(indices, encoded slice)`` from the worker processes, in slice order as they arrive."""
        pool = self._process_pool(processes)
        futures, remaining = [], list(slices)  # remaining: slices not yet handed to the caller
        try:
            try:
                # Every later slice is queued in this call, so the workers run ahead of the model (a window of
                # a few slices per worker made the call slower, workers idling behind a slow slice); texts
                # are gathered through an object array (1.9 ms against 2.8 ms of list comprehensions for 67k).
                text_array = np.asarray(texts, dtype=object)
                pair_array = None if text_pairs is None else np.asarray(text_pairs, dtype=object)

                def submit(parts):
                    return [pool.submit(text_array[part].tolist(), None if pair_array is None else
                                        pair_array[part].tolist()) for part in parts]

                # One slice per worker first; the first (smallest) slice is tokenised here meanwhile, so the
                # model starts without a worker's round trip, and the rest are queued while the model runs it
                # (2-core CPU: the first slice reached the feeder at 50.0 ms instead of 55.2 ms, medians;
                # benchmarks/results/raw/host_first_slice_cpu.json).
                head = 1 + processes
                futures = submit(slices[1:head])
                yield slices[0], self._tokenize(texts, text_pairs, slices[0])
                remaining[0] = None
                futures += submit(slices[head:])
                for position, encoded in results_as_ready(futures, before_wait):
                    yield slices[1 + position], encoded
                    remaining[1 + position] = None
                return
            except BrokenProcessPool:
                pass
            # A worker died (killed for memory, a crash, a main module it could not import). Threads give the
            # same ids, so this call finishes with them; later calls keep to them rather than respawn.
            remaining = [indices for indices in remaining if indices is not None]
            warnings.warn(f"A tokeniser worker process died with {len(remaining)} of {len(slices)} slices left; "
                          "tokenising with threads from now on. Pass tokenize_processes=0 to use threads from the "
                          "start.", RuntimeWarning, stacklevel=2)
            self._pool_broken = True
            self.close()
            yield from self._prepared_in_threads(texts, text_pairs, remaining, before_wait)
        finally:
            for future in futures:
                future.cancel()

    def _processes_for(self, num_slices: int) -> int:
        """How many tokeniser processes a call of ``num_slices`` slices uses; 0 means threads."""
        setting = getattr(self, "tokenize_processes", 0)
        if setting == 0 or getattr(self, "_pool_broken", False) or num_slices < 2 or self._fast_tokenizer() is None:
            return 0
        if isinstance(setting, int):
            return setting
        cores = os.cpu_count() or 1
        on_cuda = str(getattr(self.backend, "device", "cpu")).startswith("cuda")
        # Below 8 cores the workers compete with the feeding thread for the CPU; a call of a few slices
        # would finish before the workers have started.
        # On a 16-core H200 host 4 processes starved the GPU (74.0k short texts/s against 86.6k with 8); once
        # the GPU's passes got faster, 12 beat 8 in every alternation of three runs (by 6-12%) and 16 lost to
        # 12: the feeding thread and the host need their cores (inference.json, runs 7-9).
        if on_cuda and cores >= 8 and num_slices > 4 and tokenize_pool.main_module_is_importable():
            return min(12, max(cores - 4, cores * 3 // 4))
        return 0

    def _process_pool(self, processes: int) -> tokenize_pool.TokenizePool:
        pool = self._pool
        if (pool is None or pool.processes != processes or pool.max_length != self.max_length
                or pool.word_cache != self.word_cache):
            self.close()
            pool = self._pool = tokenize_pool.TokenizePool(self._fast_tokenizer().to_str(), self.max_length,
                                                           self._uses_token_types, processes, self.word_cache)
        return pool

    def close(self) -> None:
        """Stop the tokeniser worker processes, if any. The classifier stays usable; a later call that
        uses processes starts new ones."""
        pool, self._pool = getattr(self, "_pool", None), None
        if pool is not None:
            pool.close()

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def _pad_id(self) -> int:
        return self.tokenizer.pad_token_id or 0

    def _tokenize(self, texts: list[str], text_pairs: list[str] | None, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The ids of ``texts[indices]`` (with their pairs), flat as :class:`tokenize_pool.SliceEncoder` gives
        them: ``input_ids``, ``lengths`` and, for models with token types, ``token_type_ids``."""
        chosen = [texts[i] for i in indices.tolist()]
        pairs = [text_pairs[i] for i in indices.tolist()] if text_pairs is not None else None
        encoder = self._slice_encoder()
        if encoder is None:
            encoded = self.tokenizer(chosen, pairs, truncation=True, max_length=self.max_length,
                                     return_attention_mask=False, return_token_type_ids=self._uses_token_types)
            return tokenize_pool.pack(encoded["input_ids"], encoded.get("token_type_ids"))
        # The Rust tokenizer directly, without offsets (the same ids as the Python wrapper at about twice the
        # speed), or its word-cache fast path; worker processes encode with an encoder built the same way.
        return encoder.encode(chosen, pairs)

    def _slice_encoder(self) -> tokenize_pool.SliceEncoder | None:
        fast = self._fast_tokenizer()
        if fast is None:
            return None
        encoder = getattr(self, "_encoder", None)
        if encoder is None or encoder.tokenizer is not fast or encoder.word_cache_requested != self.word_cache:
            encoder = self._encoder = tokenize_pool.SliceEncoder(fast, self._uses_token_types, self.word_cache)
        return encoder

    def _fast_tokenizer(self):
        """A private copy of the Rust tokenizer set to truncate like ``tokenizer(..., truncation=True)``,
        or ``None`` for slow tokenizers and tokenizers releases without ``encode_batch_fast``."""
        if not hasattr(self, "_fast"):
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            self._fast = None
            if backend is not None and hasattr(backend, "encode_batch_fast"):
                # From its JSON, as the worker processes build theirs (tokenize_pool.configured_tokenizer).
                self._fast = tokenize_pool.configured_tokenizer(backend.to_str(), self.max_length)
        return self._fast

    def plan_batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Group indices, longest first, so that rows × padded length stays within the token budget."""
        return tokenize_pool.plan_batches(lengths, self.max_tokens_per_batch, self.max_batch_size)

    @property
    def _uses_token_types(self) -> bool:
        return "token_type_ids" in self.tokenizer.model_input_names

    def _pad(self, encoded: dict[str, np.ndarray], batch: list[int]) -> dict[str, np.ndarray]:
        """Rows ``batch`` of a flat encoded slice as padded int64 arrays."""
        return tokenize_pool.pad_rows(encoded, batch, self._pad_id)

    def predict_proba(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, *,
                      function_to_apply: str | None = None, calibrated: bool = True) -> np.ndarray:
        """Scores per class, shape ``(n, num_labels)``; temperature-scaled unless ``calibrated=False``."""
        logits = self.logits(texts, text_pairs)
        if calibrated:
            logits = logits / self.temperature
        return apply_function(logits, function_to_apply or self.default_function).astype(np.float32)

    # ------------------------------------------------------------ predictions
    def predict(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, *,
                threshold: float | None = None, function_to_apply: str | None = None,
                abstain_label: str | None = None, coverage: float | None = None,
                conformal_method: str = "lac") -> list[Prediction]:
        """Top label per text. Under ``threshold`` (default: the model dir's) a prediction is uncertain; with
        ``coverage`` (needs ``textarmor calibrate``), each text gets a conformal prediction set and is
        uncertain unless that set is a single label. Uncertain predictions carry the abstain label."""
        threshold = check_threshold(self.config.threshold if threshold is None else threshold)
        abstain = abstain_label if abstain_label is not None else self.config.abstain_label
        scores = self.predict_proba(texts, text_pairs, function_to_apply=function_to_apply)
        members = self._conformal_sets(scores, coverage, conformal_method) if coverage is not None else None
        top = scores.argmax(axis=-1)
        predictions = []
        for i, (row, best) in enumerate(zip(scores, top.tolist())):
            score = float(row[best])
            uncertain = threshold is not None and score < threshold
            chosen = None
            if members is not None:
                chosen = [name for name, keep in zip(self.labels, members[i]) if keep]
                uncertain = uncertain or len(chosen) != 1
            predictions.append(Prediction(label=abstain if uncertain else self.labels[best], score=score,
                                          top_label=self.labels[best], uncertain=uncertain,
                                          scores={name: float(s) for name, s in zip(self.labels, row)},
                                          prediction_set=chosen))
        return predictions

    def _conformal_sets(self, scores: np.ndarray, coverage: float, method: str) -> np.ndarray:
        from textarmor.evaluation.conformal import check_conformal_method, prediction_sets

        record = self.config.conformal or {}
        check_conformal_method(method)
        if method not in record.get("scores", {}):
            raise ParameterError("This model has no conformal calibration; run `textarmor calibrate MODEL_DIR "
                                 "--data DEV_FILE` first, or use --threshold for a fixed cut.")
        return prediction_sets(scores, np.asarray(record["scores"][method]), coverage, method)

    def iter_predict(self, texts: Iterable[str], text_pairs: Iterable[str] | None = None, *,
                     chunk_size: int = 4096, **kwargs) -> Iterator[Prediction]:
        """Stream predictions for an iterable of any length, holding one chunk in memory at a time."""
        pairs = iter(text_pairs) if text_pairs is not None else None
        chunk: list[str] = []
        chunk_pairs: list[str] = []
        for text in texts:
            chunk.append(text)
            if pairs is not None:
                chunk_pairs.append(next(pairs))
            if len(chunk) == chunk_size:
                yield from self.predict(chunk, chunk_pairs if pairs is not None else None, **kwargs)
                chunk, chunk_pairs = [], []
        if chunk:
            yield from self.predict(chunk, chunk_pairs if pairs is not None else None, **kwargs)

    def __call__(self, inputs: str | Sequence[str], *, top_k: int | None = 1, function_to_apply: str | None = None,
                 threshold: float | None = None, text_pairs: Sequence[str] | None = None):
        """Hugging Face pipeline format: a list of ``{"label", "score"}`` per input (a list of lists for
        ``top_k`` > 1 or ``None`` = all labels). With a threshold each dict also says ``uncertain``."""
        single = isinstance(inputs, str)
        texts = [inputs] if single else _as_list(inputs, "inputs")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ParameterError(f"top_k must be a positive integer or None (all labels), got {top_k!r}.")
        scores = self.predict_proba(texts, text_pairs, function_to_apply=function_to_apply)
        ranked_lists = top_k is None or top_k > 1
        results = [ranked if ranked_lists else ranked[0] for ranked in self.rank(scores, top_k=top_k,
                                                                                 threshold=threshold)]
        # As the pipeline: one string with top_k=1 gives [dict]; with several labels, the list of dicts.
        return results[0] if single and ranked_lists else results

    def rank(self, scores: np.ndarray, *, top_k: int | None = 1,
             threshold: float | None = None) -> list[list[dict[str, Any]]]:
        """The ``top_k`` best ``{"label", "score"}`` of each row of ``scores`` (``None``: all labels), best
        first; with a threshold (default: the model dir's) each dict also says ``uncertain``. The server
        formats scores computed in merged batches with this, so both paths answer alike."""
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ParameterError(f"top_k must be a positive integer or None (all labels), got {top_k!r}.")
        threshold = check_threshold(self.config.threshold if threshold is None else threshold)
        k = len(self.labels) if top_k is None else min(top_k, len(self.labels))
        results = []
        for row in np.asarray(scores):
            order = np.argsort(-row, kind="stable")[:k]
            ranked = [{"label": self.labels[j], "score": float(row[j])} for j in order]
            if threshold is not None:
                for item in ranked:
                    item["uncertain"] = bool(item["score"] < threshold)
            results.append(ranked)
        return results


def _distinct(keys: list) -> tuple[list, np.ndarray]:
    """(the distinct keys in order of first appearance, each key's row among them).

    Sorting the keys' hashes finds the candidates in C; only keys that share a hash are compared in Python
    (17 ms against 40 ms for a dict over the 67,349 SST-2 train texts, 0.55% of them repeats, on a 2-core
    CPU: benchmarks/inference/input_prep.py)."""
    n = len(keys)
    hashes = np.fromiter(map(hash, keys), dtype=np.int64, count=n)
    order = np.argsort(hashes)
    shared = hashes[order][1:] == hashes[order][:-1]
    if not shared.any():
        return keys, np.arange(n)
    in_run = np.zeros(n, dtype=bool)
    in_run[1:] |= shared
    in_run[:-1] |= shared
    first = np.arange(n)  # each key's first occurrence
    seen: dict = {}
    for i in np.sort(order[in_run]).tolist():
        first[i] = seen.setdefault(keys[i], i)
    kept = np.flatnonzero(first == np.arange(n))
    row = np.empty(n, dtype=np.int64)
    row[kept] = np.arange(len(kept))
    return [keys[i] for i in kept.tolist()], row[first]


def _as_list(values: Any, name: str) -> list[str]:
    values = [values] if isinstance(values, str) else list(values)
    # the types' set is a C-level pass (1.3 ms for 67k texts, 7 ms as a comprehension:
    # benchmarks/inference/input_prep.py); every call pays it before its first slice is tokenised
    if not set(map(type, values)) <= {str}:
        bad = next(i for i, v in enumerate(values) if not isinstance(v, str))
        raise ParameterError(f"{name} must be strings; item {bad} is {type(values[bad]).__name__}.")
    check_texts(values, name)  # no lone surrogates (no tokenizer takes them) nor NUL: textcheck's rule
    return values
