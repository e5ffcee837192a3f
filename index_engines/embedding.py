"""`EmbeddingModel`: a pinned, versioned encoder that returns L2-normalised float32 vectors.

Encoding runs in micro-batches with a progress bar and goes through the on-disk cache, so a second run over the
same texts costs a cache read. Work is written to the cache chunk by chunk: an interrupted job resumes where it
stopped.
"""
from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .embedding_cache import EmbeddingCache, text_key
from .models import DEFAULT_MODEL_ID, ModelSpec, fingerprint, get_spec, model_path
from .settings import get_settings

log = logging.getLogger(__name__)

# Texts per cache write: small enough that an interrupted job loses little, large enough that
# sentence-transformers' length-sorting inside `encode` still groups similar lengths.
CHUNK = 1024


def validate_texts(texts: Sequence[str]) -> list[str]:
    """Public input check: a list of non-empty strings. Raises ValueError naming the first bad item."""
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, not a single string; wrap it: [text]")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise ValueError(f"text #{i} is {type(t).__name__}, not str; pass text as strings")
        if not t.strip():
            raise ValueError(f"text #{i} is empty or whitespace only; embeddings of empty text are meaningless")
    return out


class EmbeddingModel:
    """A loaded model: `spec` (id, dim, ...), `fingerprint`, and `encode(texts) -> (n, dim) unit vectors`."""

    def __init__(self, spec: ModelSpec, *, use_cache: bool = True):
        self.spec = spec
        self.path: Path = model_path(spec)
        self.fingerprint: str = fingerprint(spec)
        self._st = _load_sentence_transformer(spec, self.path)
        self._cache = (
            EmbeddingCache(get_settings().cache_dir / "embeddings" / f"{spec.id}-{self.fingerprint[:16]}.sqlite",
                           spec.dim)
            if use_cache else None
        )
        self._warned_truncation = False
        self._lock = threading.Lock()

    def with_cache(self, path: Path) -> "EmbeddingModel":
        """The same loaded model writing to another cache file (benchmarks use a cold cache per run)."""
        clone = copy.copy(self)
        clone._cache = EmbeddingCache(path, self.spec.dim)
        return clone

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def version(self) -> str:
        """What every stored vector carries: the model id and a short fingerprint."""
        return f"{self.spec.id}@{self.fingerprint[:12]}"

    @property
    def sentence_transformer(self):
        """The underlying `SentenceTransformer`, for benchmarks that compare against calling it directly."""
        return self._st

    # ------------------------------------------------------------------------------------------------ encode
    def encode(self, texts: Sequence[str], *, batch_size: int | None = None, show_progress: bool | None = None,
               use_cache: bool = True) -> np.ndarray:
        texts = validate_texts(texts)
        batch_size = batch_size or get_settings().encode_batch_size
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        keys = [text_key(t) for t in texts]
        cache = self._cache if use_cache else None
        cached = cache.get_many(list(set(keys))) if cache is not None else {}
        # Encode each distinct missing text once.
        todo: dict[bytes, str] = {}
        for k, t in zip(keys, texts):
            if k not in cached and k not in todo:
                todo[k] = t
        if todo:
            self._warn_if_truncated(list(todo.values()))
            show = len(todo) > CHUNK if show_progress is None else show_progress
            todo_keys = list(todo)
            with tqdm(total=len(todo_keys), desc=f"encode {self.id}", unit="text", disable=not show) as bar:
                for start in range(0, len(todo_keys), CHUNK):
                    chunk_keys = todo_keys[start:start + CHUNK]
                    vecs = self._encode_raw([todo[k] for k in chunk_keys], batch_size)
                    if cache is not None:
                        cache.put_many(chunk_keys, vecs)
                    cached.update(zip(chunk_keys, vecs))
                    bar.update(len(chunk_keys))
        for i, k in enumerate(keys):
            out[i] = cached[k]
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text], show_progress=False)[0]

    def _encode_raw(self, texts: list[str], batch_size: int) -> np.ndarray:
        with self._lock:  # a SentenceTransformer is not safe to call from several threads at once
            vecs = self._st.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False,
                                   normalize_embeddings=False)
        return normalize_rows(np.asarray(vecs, dtype=np.float32)) if self.spec.normalize else vecs

    def count_truncated(self, texts: Sequence[str]) -> int:
        """How many texts exceed the model's token limit (and so lose their tail when encoded)."""
        if self.spec.loader == "model2vec":
            return 0  # a static model averages token vectors: no position limit, nothing is cut
        limit = self.spec.max_seq_length
        # A wordpiece token covers at least one character, so short texts cannot exceed the limit: skip them.
        long_texts = [t for t in texts if len(t) > limit - 2]
        if not long_texts:
            return 0
        tok = self._st.tokenizer
        if hasattr(tok, "encode_batch"):  # a `tokenizers.Tokenizer` (static models)
            lengths = [len(e.ids) for e in tok.encode_batch(long_texts)]
        else:
            lengths = [len(ids) for ids in tok(long_texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]]
        return sum(n > limit for n in lengths)

    def _warn_if_truncated(self, texts: list[str]) -> None:
        if self._warned_truncation:
            return
        n = self.count_truncated(texts)
        if n:
            self._warned_truncation = True
            log.warning("%d of %d texts are longer than %s's limit of %d tokens and were truncated "
                        "(said once per model load)", n, len(texts), self.id, self.spec.max_seq_length)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Unit-length rows (a zero row stays zero rather than becoming NaN)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _load_sentence_transformer(spec: ModelSpec, path: Path):
    from sentence_transformers import SentenceTransformer

    if spec.loader == "model2vec":
        from sentence_transformers.models import StaticEmbedding

        # A static model has no position embeddings; its module fixes its own token limit.
        return SentenceTransformer(modules=[StaticEmbedding.from_model2vec(str(path))], device="cpu")
    st = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    st.max_seq_length = spec.max_seq_length
    return st


_loaded: dict[str, EmbeddingModel] = {}
_loaded_lock = threading.Lock()


def load_model(model_id: str = DEFAULT_MODEL_ID) -> EmbeddingModel:
    """The process-wide instance of a model (loading weights once)."""
    spec = get_spec(model_id)
    with _loaded_lock:
        if model_id not in _loaded:
            _loaded[model_id] = EmbeddingModel(spec)
        return _loaded[model_id]
