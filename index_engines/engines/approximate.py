"""What every approximate engine shares: raw-vector store and rescore, Matryoshka truncation, training, and the
exact path for small allow-lists.

Search, for an approximate engine:
1. an allow-list of at most `exact_below` ids (or an engine not trained yet) is scanned exactly: cheaper than a
   graph or IVF walk at that size, and exact;
2. otherwise the index is searched in its own space (the first `truncate_dim` dimensions, renormalised, when
   truncation is on) for `k x oversample` candidates when raw vectors are kept and `rescore` is on, else `k`;
3. the candidates are rescored on the full-precision raw vectors (all dimensions).
"""
from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import numpy as np

from .base import Engine
from .exact import exact_top_k
from .params import Param, ParamSpec
from .raw_store import DTYPES, RawVectorStore
from .rescore import rescore

RAW_CHOICES = ("none", *DTYPES)

COMMON_BUILD = ParamSpec("build", (
    Param("truncate_dim", 0, "index only the first D' dimensions (renormalised), rescore on all of them; "
          "0 = all dimensions (Matryoshka truncation)", minimum=0),
    Param("raw_dtype", "float32", "precision of the raw vectors kept for rescoring (memory-mapped after load)",
          choices=DTYPES),
    Param("build_threads", 0, "threads used to build (0 = every core)", minimum=0),
))
COMMON_QUERY = ParamSpec("query", (
    Param("oversample", 4, "candidates fetched = k x oversample, then rescored on raw vectors", minimum=1),
    Param("rescore", True, "rescore candidates on the full-precision raw vectors"),
    Param("exact_below", 2048, "allow-lists with at most this many ids are scanned exactly", minimum=0),
    Param("threads", 1, "threads for one search call (a batch is split across them)", minimum=1),
))


class ApproximateEngine(Engine):
    needs_training = False  # quantisers learn codebooks before the first vectors can be indexed

    def __init__(self, dim: int, **build_params):
        super().__init__(dim, **build_params)
        bp = self.build_params
        td = bp["truncate_dim"]
        if td > self.dim:
            raise ValueError(f"truncate_dim={td} exceeds the dimension {self.dim}; valid: 1..{self.dim} or 0 (off)")
        self.index_dim = td or self.dim
        if td and bp["raw_dtype"] == "none":
            raise ValueError("truncate_dim needs raw vectors to rescore on all dimensions; set raw_dtype to "
                             f"one of {', '.join(DTYPES)}")
        self._raw = None if bp["raw_dtype"] == "none" else RawVectorStore(self.dim, bp["raw_dtype"])
        self._trained = not self.needs_training

    # ------------------------------------------------------------------------------------------ for subclasses
    @abstractmethod
    def _index_add(self, vectors: np.ndarray, start: int) -> None:
        """Add vectors already in index space (truncated and renormalised if truncation is on)."""

    @abstractmethod
    def _index_search(self, queries: np.ndarray, k: int, qp: dict, allowed: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray] | None:
        """(scores, positions) from the index for queries in index space; None if it cannot honour the
        allow-list (the caller then scans the allowed vectors exactly)."""

    def _train(self, sample: np.ndarray) -> None:
        """Learn quantiser tables from index-space vectors (engines with `needs_training`)."""

    def _stored_vectors(self, positions: np.ndarray) -> np.ndarray:
        """Full-dimension vectors at `positions` when there is no raw store (engines that keep them inline)."""
        raise NotImplementedError

    @property
    def min_train(self) -> int:
        return int(self.build_params.get("min_train", 0))

    # ------------------------------------------------------------------------------------------ pipeline
    def to_index_space(self, vectors: np.ndarray) -> np.ndarray:
        if self.index_dim == self.dim:
            return vectors
        head = vectors[:, :self.index_dim]
        norms = np.linalg.norm(head, axis=1, keepdims=True)
        return np.ascontiguousarray(head / np.maximum(norms, 1e-12), np.float32)

    def _add(self, vectors: np.ndarray, start: int) -> None:
        if self._raw is not None:
            self._raw.append(vectors)
        if self._trained:
            self._index_add(self.to_index_space(vectors), start)
            return
        held = start + len(vectors)
        if held >= self.min_train:  # enough vectors to learn the quantiser: train on all of them, index them
            everything = np.asarray(self._raw.array, np.float32)
            self._train(self.to_index_space(everything))
            self._trained = True
            self._index_add(self.to_index_space(everything), 0)

    def _check_query(self, qp: dict) -> None:
        if self._raw is None and qp["oversample"] > 1:
            raise ValueError(f"oversample={qp['oversample']} needs raw vectors to rescore; build the engine with "
                             f"raw_dtype set to one of {', '.join(DTYPES)}, or use oversample=1")

    def _search(self, queries, k, qp, allowed):
        if not self._trained or (allowed is not None and len(allowed) <= qp["exact_below"]):
            return self._exact_search(queries, k, allowed)
        use_rescore = self._raw is not None and qp["rescore"]
        fetch = k * qp["oversample"] if use_rescore else k
        found = self._index_search(queries if self.index_dim == self.dim else self.to_index_space(queries), fetch,
                                   qp, allowed)
        if found is None:
            return self._exact_search(queries, k, allowed)
        if not use_rescore:
            return found
        return rescore(queries, found[1], self._raw, k, self._ids)

    def _exact_search(self, queries, k, allowed):
        positions = np.arange(len(self._ids)) if allowed is None else allowed
        vectors = self._raw.rows(positions) if self._raw is not None else self._stored_vectors(positions)
        scores, cols = exact_top_k(queries, np.asarray(vectors, np.float32), k, self._ids[positions])
        return scores, np.where(cols >= 0, positions[np.maximum(cols, 0)], -1)

    def raw_bytes(self) -> int:
        """Bytes of the raw-vector store (on disk and memory-mapped once saved and loaded)."""
        return 0 if self._raw is None else self._raw.nbytes

    def describe(self) -> dict:
        return {**super().describe(), "raw_bytes": self.raw_bytes(), "trained": self._trained,
                "index_dim": self.index_dim}

    # ------------------------------------------------------------------------------------------ persistence
    def _save(self, directory: Path) -> dict:
        if self._raw is not None:
            self._raw.save(directory)
        state = {"trained": self._trained}
        if self._trained:
            state.update(self._save_index(directory) or {})
        return state

    def _load(self, directory: Path, state: dict) -> None:
        if self._raw is not None:
            self._raw = RawVectorStore.load(directory, self.dim, self.build_params["raw_dtype"])
        self._trained = bool(state["trained"])
        if self._trained:
            self._load_index(directory, state)

    @abstractmethod
    def _save_index(self, directory: Path) -> dict | None:
        ...

    @abstractmethod
    def _load_index(self, directory: Path, state: dict) -> None:
        ...
