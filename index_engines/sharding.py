"""Hash sharding with scatter-gather: S engines of one kind behind the engine interface.

- Routing: shard = splitmix64(id) mod S, on the id's unsigned 64-bit value. A stable function of the id alone
  (not Python's salted `hash()`), vectorised over numpy arrays, with well-mixed low bits so shards stay balanced
  even for sequential ids.
- Scatter: a query batch goes to every non-empty shard at once on a thread pool (faiss and hnswlib release the
  GIL while they search), or one after another in the calling thread with `workers=0`.
- Gather: each shard answers its top-k; the S x k candidates of each query are cut to the k best by (score desc,
  id asc) with a bounded heap (a vectorised sort for large batches, see `merge_top_k`), so ties break by id
  exactly as in one unsharded index.
- Failure: a shard that raises or misses the deadline (`timeout` seconds per query, times the batch size) is left
  out; the answer comes from the others with `degraded=True` and `coverage = vectors in the shards that answered /
  vectors held`. No shard failure reaches the caller; bad input (wrong dimension, k <= 0, unknown parameter) still
  raises ValueError, before any shard is asked.
"""
from __future__ import annotations

import heapq
import json
import logging
import time
from concurrent.futures import ALL_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np

from .engines.base import SearchResult, as_id_array, check_ids, check_k, check_vectors
from .engines.exact import top_k_grouped
from .engines.registry import engine_class, load_engine, make_engine

log = logging.getLogger(__name__)

META_FILE = "sharded.json"
HEAP_MAX_QUERIES = 8
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(ids: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser of each id (as uint64): a bijection on 64-bit integers (Steele et al., 2014)."""
    z = np.asarray(ids, np.int64).astype(np.uint64) + _GOLDEN  # numpy uint64 arithmetic wraps mod 2**64
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def shard_of(ids: np.ndarray, n_shards: int) -> np.ndarray:
    """The shard of each id: splitmix64(id) mod n_shards (int64)."""
    return (splitmix64(ids) % np.uint64(n_shards)).astype(np.int64)


def merge_top_k(results: list[SearchResult], k: int) -> SearchResult:
    """The k best of each query over several results, ordered by (score desc, id asc).

    Each shard contributes at most k candidates, so the work per query is bounded by S x k whatever the shard
    sizes. A few queries go through a bounded heap (`heapq.nsmallest` keeps k items); larger batches through one
    vectorised sort, which is cheaper per query than a Python loop from a few dozen queries on (same answer).
    """
    if not results:
        return SearchResult.empty(0, k)
    n_q = len(results[0])
    ids = np.concatenate([r.ids for r in results], axis=1)
    scores = np.concatenate([r.scores for r in results], axis=1)
    if n_q <= HEAP_MAX_QUERIES:
        out_ids, out_scores = [], []
        for row_scores, row_ids in zip(scores.tolist(), ids.tolist()):
            best = heapq.nsmallest(k, [(-s, i) for s, i in zip(row_scores, row_ids) if i >= 0])
            pad = k - len(best)
            out_ids.append([i for _, i in best] + [-1] * pad)
            out_scores.append([-s for s, _ in best] + [-np.inf] * pad)
        return SearchResult(np.array(out_ids, np.int64), np.array(out_scores, np.float32))
    valid = ids >= 0
    rows = np.nonzero(valid)[0]
    top_scores, top_ids = top_k_grouped(rows, scores[valid], ids[valid], ids[valid], n_q, k)
    return SearchResult(top_ids, top_scores)


class ShardedEngine:
    """S engines of one kind, routed by id hash; the same add/search/save/load/memory surface as an `Engine`.

    `workers`: threads for the fan-out (default: one per shard, at most the shard count; 0 = search the shards
    in the calling thread). `timeout`: seconds allowed per query (None = wait for every shard).
    """

    def __init__(self, engine: str, dim: int, n_shards: int, *, workers: int | None = None,
                 timeout: float | None = None, **build_params):
        if isinstance(n_shards, bool) or not isinstance(n_shards, (int, np.integer)) or n_shards < 1:
            raise ValueError(f"n_shards must be a positive integer, got {n_shards!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds per query or None, got {timeout!r}")
        if workers is not None and (not isinstance(workers, int) or workers < 0):
            raise ValueError(f"workers must be an integer >= 0 (0 = no thread pool) or None, got {workers!r}")
        self.engine_name = engine
        self.dim = int(dim)
        self.timeout = timeout
        self.shards = [make_engine(engine, dim, **build_params) for _ in range(int(n_shards))]
        self.build_params = dict(self.shards[0].build_params)
        self.workers = len(self.shards) if workers is None else workers
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="shard") if self.workers else None

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    def __len__(self) -> int:
        return sum(len(s) for s in self.shards)

    def __enter__(self) -> "ShardedEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the fan-out threads (a search still running in a timed-out shard is not waited for)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # ------------------------------------------------------------------------------------------ writes
    def add(self, vectors, ids) -> None:
        x = check_vectors(vectors, self.dim)
        new_ids = check_ids(ids, len(x))
        shard = shard_of(new_ids, self.n_shards)
        for s, engine in enumerate(self.shards):
            rows = np.flatnonzero(shard == s)
            if len(rows):
                engine.add(x[rows], new_ids[rows])

    # ------------------------------------------------------------------------------------------ reads
    def search(self, queries, k: int, params=None, allow=None, timeout: float | None = None) -> SearchResult:
        # Bad input is the caller's error, raised here once rather than turned into failed shards.
        q = check_vectors(queries, self.dim, "queries")
        k = check_k(k)
        qp = self.shards[0].query_spec.resolve_shared(params, self.engine_name)
        allow = None if allow is None else as_id_array(allow)
        timeout = self.timeout if timeout is None else timeout
        budget = None if timeout is None else timeout * max(len(q), 1)
        live = [(i, s) for i, s in enumerate(self.shards) if len(s)]
        answers = self._fan_out(live, q, k, qp, allow, budget)
        held = sum(len(s) for _, s in live)
        searched = sum(len(s) for (_, s), r in zip(live, answers) if r is not None)
        merged = merge_top_k([r for r in answers if r is not None], k) if searched else SearchResult.empty(len(q), k)
        degraded = searched < held
        return SearchResult(merged.ids, merged.scores, degraded=degraded, coverage=searched / held if held else 1.0)

    def _fan_out(self, shards, q, k, qp, allow, budget) -> list[SearchResult | None]:
        """Each shard's answer, or None where it failed or took longer than `budget` seconds. In the pool the
        shards run at once and share one deadline; in the calling thread each gets the budget in turn (so one
        slow shard does not push the others out)."""
        if self._pool is None:
            answers = []
            for i, shard in shards:
                start = time.perf_counter()
                answer = _search_one(i, shard, q, k, qp, allow)
                if answer is not None and budget is not None and time.perf_counter() - start > budget:
                    log.warning("shard %d answered after its time budget; left out", i)
                    answer = None
                answers.append(answer)
            return answers
        futures = [self._pool.submit(_search_one, i, s, q, k, qp, allow) for i, s in shards]
        done, _ = wait(futures, timeout=budget, return_when=ALL_COMPLETED)
        answers = []
        for (i, _), f in zip(shards, futures):
            if f in done:
                answers.append(f.result())
            else:
                f.cancel()
                log.warning("shard %d missed the deadline; left out", i)
                answers.append(None)
        return answers

    def memory_bytes(self) -> int:
        return sum(s.memory_bytes() for s in self.shards)

    # ------------------------------------------------------------------------------------------ persistence
    def save(self, directory) -> None:
        """One sub-directory per shard (each saved atomically), then the shard list, written last."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for i, shard in enumerate(self.shards):
            shard.save(directory / f"shard-{i:03d}")
        meta = {"engine": self.engine_name, "dim": self.dim, "n_shards": self.n_shards,
                "build_params": self.build_params, "hash": "splitmix64"}
        tmp = directory / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(directory / META_FILE)

    @classmethod
    def load(cls, directory, *, workers: int | None = None, timeout: float | None = None) -> "ShardedEngine":
        directory = Path(directory)
        path = directory / META_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{directory} is not a saved sharded engine (no {META_FILE})")
        meta = json.loads(path.read_text())
        engine_class(meta["engine"])  # a clear error for an unknown kind
        sharded = cls(meta["engine"], meta["dim"], meta["n_shards"], workers=workers, timeout=timeout,
                      **meta["build_params"])
        sharded.shards = [load_engine(directory / f"shard-{i:03d}") for i in range(meta["n_shards"])]
        return sharded


def _search_one(i: int, shard, q, k, qp, allow) -> SearchResult | None:
    try:
        return shard.search_checked(q, k, qp, allow)
    except Exception:  # a failing shard degrades the answer; it never reaches the caller
        log.exception("shard %d failed; left out of the answer", i)
        return None
