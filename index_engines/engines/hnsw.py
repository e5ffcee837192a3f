"""`hnsw`: a navigable small-world graph over float32 vectors, with hnswlib (default) or faiss `IndexHNSWFlat`
behind the same interface (build parameter `backend`).

Graph labels are the engine's internal positions, so no id map sits between the library and us. Without raw
vectors (`raw_dtype="none"`, the default) the index is the only copy of the vectors; with `truncate_dim` the graph
is built on the first D' dimensions and raw vectors rescore the candidates on all of them.
"""
from __future__ import annotations

import math
from pathlib import Path

import faiss
import hnswlib
import numpy as np

from .approximate import COMMON_BUILD, COMMON_QUERY, RAW_CHOICES, ApproximateEngine
from .base import _F32, SearchResult
from .faiss_util import ParamsCache, build_threads, index_bytes, omp_threads
from .params import Param

BACKENDS = ("hnswlib", "faiss")
INDEX_FILE = "hnsw.bin"
GROWTH = 1.25  # hnswlib capacity grows by this factor when an add overflows it


def hnsw_params(ef: int) -> faiss.SearchParametersHNSW:
    params = faiss.SearchParametersHNSW()
    params.efSearch = ef
    return params


class HnswEngine(ApproximateEngine):
    name = "hnsw"
    build_spec = COMMON_BUILD + (
        Param("backend", "hnswlib", "graph library", choices=BACKENDS),
        Param("M", 16, "graph links per node (2M on the bottom layer): recall and memory grow with it", minimum=2),
        Param("ef_construction", 200, "candidate list while inserting: build time buys graph quality", minimum=1),
        Param("seed", 100, "seed of the level generator (hnswlib)", minimum=0),
        Param("raw_dtype", "none", "raw vectors for rescoring: 'none' (the graph holds float32 vectors) or a dtype",
              choices=RAW_CHOICES),
    )
    query_spec = COMMON_QUERY + (
        Param("ef", 96, "candidate list while searching (at least k): recall and latency grow with it",
              minimum=1),
        Param("oversample", 1, "candidates fetched = k x oversample, rescored on raw vectors (needs raw_dtype)",
              minimum=1),
    )

    def __init__(self, dim: int, **build_params):
        super().__init__(dim, **build_params)
        self._index = None
        self._faiss = self.build_params["backend"] == "faiss"
        self._params = ParamsCache(hnsw_params)
        self._ef = None  # the ef last set on the hnswlib index
        # The plain case (no raw store, so no truncation or rescore) searches the graph and nothing else; `search`
        # takes a short path for it. True once the index exists.
        self._plain = False

    # ------------------------------------------------------------------------------------------ build
    def _new_index(self, capacity: int):
        bp = self.build_params
        if self._faiss:
            index = faiss.IndexHNSWFlat(self.index_dim, bp["M"], faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = bp["ef_construction"]
            return index
        index = hnswlib.Index(space="ip", dim=self.index_dim)
        index.init_index(max_elements=max(capacity, 1), M=bp["M"], ef_construction=bp["ef_construction"],
                         random_seed=bp["seed"])
        return index

    def _index_add(self, vectors: np.ndarray, start: int) -> None:
        if self._index is None:
            self._index = self._new_index(start + len(vectors))
            self._plain = self._is_plain()
        threads = build_threads(self.build_params["build_threads"])
        if self._faiss:
            with omp_threads(threads):
                self._index.add(vectors)
            return
        need = start + len(vectors)
        if need > self._index.get_max_elements():
            self._index.resize_index(max(need, int(self._index.get_max_elements() * GROWTH)))
        self._index.add_items(vectors, np.arange(start, need), num_threads=threads)

    def _is_plain(self) -> bool:
        return self._raw is None and self.index_dim == self.dim and self._index is not None

    # ------------------------------------------------------------------------------------------ search
    def search(self, queries, k: int, params=None, allow=None) -> SearchResult:
        """`Engine.search`, with a short path for one query without an allow-list in the plain case (no raw store):
        the same answer and the same errors (tests compare the two) in fewer interpreted steps. At 100k vectors a
        graph walk takes ~200 us and leaves the CPU caches cold, so each Python call after it costs ~2 us and each
        numpy call ~5 us (measured): the general path's layers cost ~35 us per single query, this one ~12 us."""
        if (allow is None and self._plain and type(k) is int and 0 < k <= len(self._ids)
                and type(queries) is np.ndarray and queries.shape == (1, self.dim) and queries.dtype is _F32):
            try:  # the parameter cache's key, built inline (ParamSpec._cache_key)
                qp = self.query_spec.cached(tuple(params.items()) if params else ())
            except (TypeError, AttributeError):  # unhashable or not a mapping: the general path explains
                qp = None
            if qp is not None and qp["oversample"] == 1:
                answer = self._search_one(queries, k, qp)
                if answer is not None:
                    return answer
        return super().search(queries, k, params, allow)

    def search_checked(self, queries, k, qp, allow_ids) -> SearchResult:
        """The sharded fan-out's entry (input validated once for all shards): one query takes the short path too."""
        if allow_ids is None and self._plain and len(queries) == 1 and qp["oversample"] == 1 and \
                k <= len(self._ids):
            answer = self._search_one(queries, k, qp)
            if answer is not None:
                return answer
        return super().search_checked(queries, k, qp, allow_ids)

    def _search_one(self, query: np.ndarray, k: int, qp: dict) -> SearchResult | None:
        """One float32 (1, dim) query on the graph; None when the general path must answer (fewer than k found,
        or the query is not finite)."""
        if self._faiss:
            params = self._params.get((qp["ef"],), None, len(self._ids))
            with omp_threads(qp["threads"]):
                scores, positions = self._index.search(query, k, params=params)
            if -1 in positions.tolist()[0]:  # padding: fewer than k reachable
                return None
        else:
            if self._ef != qp["ef"]:
                self._index.set_ef(qp["ef"])
                self._ef = qp["ef"]
            try:
                labels, distances = self._index.knn_query(query, k, qp["threads"])
            except RuntimeError:  # fewer than k reachable
                return None
            scores, positions = np.subtract(1.0, distances, out=distances), labels.view(np.int64)
        row = scores.tolist()[0]
        # The query's finiteness is checked on its scores, which are all NaN or infinite if it has a NaN or
        # infinite value (IEEE arithmetic; a graph walk on such a query ends, it just finds nothing useful); the
        # general path then raises the usual error. Both libraries return rows by decreasing score, so the row is
        # in final order unless two scores tie (then `_finish` orders the tie by id).
        if not math.isfinite(sum(row)):
            return None
        if len(set(row)) < k:
            return self._finish(scores, positions, k)
        return SearchResult(positions if self._ids_are_positions else self._ids[positions], scores)

    def _index_search(self, queries, k, qp, allowed):
        n = len(self._ids) if allowed is None else len(allowed)
        k = min(k, n)
        if self._faiss:
            params = self._params.get((qp["ef"],), allowed, len(self._ids))
            with omp_threads(qp["threads"]):
                scores, positions = self._index.search(queries, k, params=params)
            return scores, positions
        index = self._index
        if self._ef != qp["ef"]:  # ef is a property of the hnswlib index: concurrent callers should agree
            index.set_ef(qp["ef"])
            self._ef = qp["ef"]
        filter_fn = None if allowed is None else set(allowed.tolist()).__contains__
        try:
            labels, distances = index.knn_query(queries, k, qp["threads"], filter_fn)
        except RuntimeError:  # hnswlib found fewer than k allowed neighbours: scan the allowed vectors exactly
            return None
        # Inner-product "distance" is 1 - score; converted in place (no new array on the per-query path).
        return np.subtract(1.0, distances, out=distances), labels.view(np.int64)  # positions < 2**63: same bits

    def _stored_vectors(self, positions: np.ndarray) -> np.ndarray:
        if len(positions) == 0:
            return np.empty((0, self.index_dim), np.float32)
        if self._faiss:
            return self._index.reconstruct_batch(positions)
        return np.asarray(self._index.get_items(positions, return_type="numpy"), np.float32)

    # ------------------------------------------------------------------------------------------ persistence
    def _save_index(self, directory: Path) -> dict | None:
        if self._index is None:
            return None
        if self._faiss:
            faiss.write_index(self._index, str(directory / INDEX_FILE))
        else:
            self._index.save_index(str(directory / INDEX_FILE))
        return None

    def _load_index(self, directory: Path, state: dict) -> None:
        path = directory / INDEX_FILE
        if not path.exists():  # saved empty
            return
        if self._faiss:
            self._index = faiss.read_index(str(path))
            return
        self._index = hnswlib.Index(space="ip", dim=self.index_dim)
        self._index.load_index(str(path), max_elements=max(len(self._ids), 1))
        self._ef = None
        self._plain = self._is_plain()

    def _memory_bytes(self) -> int:
        if self._index is None:
            return 0
        return index_bytes(self._index) if self._faiss else int(self._index.index_file_size())

    @property
    def library_index(self):
        """The underlying hnswlib.Index or faiss.IndexHNSWFlat (for benchmarks against the raw library)."""
        return self._index
