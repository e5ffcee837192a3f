"""Production ANN-recall monitor: sample live queries, recompute their exact top-k in the background, keep a rolling
recall@k per consumer, and flag a drop below the post-build baseline.

The serving path calls `observe(consumer, query_vectors, served_ids)`, which only draws the sample and enqueues it
(it never blocks: when the queue is full the sample is dropped and counted). A worker thread runs
`exact_search(query_vectors, k) -> ids` (exact search over the raw vector store, e.g. the flat twin of the served
index) and records each sampled query's ANN recall@k = |served top-k ∩ exact top-k| / |exact top-k|.

Per consumer, `status()` reports the mean over the last `window` sampled queries with a Wilson score interval
(treating the mean of per-query recalls, each in [0, 1], as a proportion over the queries: per-query variance is at
most p(1-p), so the interval is conservative and never collapses to a point at recall 1.0).

A drop is flagged when, with at least `min_samples` queries in the window, the rolling recall is more than
`max_drop` (2 points) below the baseline AND the interval's upper bound is below the baseline (the drop is not
sampling noise). The baseline is the recall measured right after the index was built (`calibrate`) or given.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from .evaluate import top_k_exact
from .metrics import ann_recall_at_k

log = logging.getLogger(__name__)

ExactSearch = Callable[[np.ndarray, int], np.ndarray]
MAX_DROP = 0.02
_STOP = object()


def wilson_interval(p: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 1.0
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def exact_search_over(vectors: np.ndarray, ids: np.ndarray | None = None) -> ExactSearch:
    """An `exact_search` over raw vectors held in memory (ids default to row numbers)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.arange(len(vectors), dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")

    def search(query_vectors: np.ndarray, k: int) -> np.ndarray:
        idx, _ = top_k_exact(vectors, np.asarray(query_vectors, dtype=np.float32), k)
        return ids[idx]

    return search


@dataclass(frozen=True)
class RecallStatus:
    consumer: str
    k: int
    n: int  # sampled queries in the window
    recall: float
    ci_low: float
    ci_high: float
    baseline: float | None
    drop_detected: bool
    sampled_total: int
    dropped_total: int  # samples lost because the queue was full
    errors_total: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class _ConsumerWindow:
    def __init__(self, k: int, window: int, baseline: float | None):
        self.k, self.baseline = k, baseline
        self.values: deque[float] = deque(maxlen=window)
        self.sampled = self.dropped = self.errors = 0


class RecallMonitor:
    """Thread-safe; use as a context manager or call `close()` to stop the worker."""

    def __init__(self, exact_search: ExactSearch, *, sample_fraction: float = 0.01, window: int = 1000,
                 max_drop: float = MAX_DROP, confidence: float = 0.95, min_samples: int = 50,
                 queue_size: int = 1000, seed: int | None = None):
        if not 0.0 < sample_fraction <= 1.0:
            raise ValueError(f"sample_fraction must be in (0, 1], got {sample_fraction}")
        if window <= 0 or min_samples <= 0 or queue_size <= 0:
            raise ValueError("window, min_samples and queue_size must be positive")
        if not 0.0 <= max_drop < 1.0 or not 0.0 < confidence < 1.0:
            raise ValueError("max_drop must be in [0, 1) and confidence in (0, 1)")
        self._exact_search = exact_search
        self.sample_fraction, self.window, self.max_drop = sample_fraction, window, max_drop
        self.confidence, self.min_samples = confidence, min_samples
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._consumers: dict[str, _ConsumerWindow] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._worker = threading.Thread(target=self._run, name="recall-monitor", daemon=True)
        self._closed = False
        self._worker.start()

    # ------------------------------------------------------------------------------------------ set-up
    def add_consumer(self, name: str, k: int, baseline: float | None = None) -> None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        with self._lock:
            self._consumers[name] = _ConsumerWindow(k, self.window, baseline)

    def _get(self, name: str) -> _ConsumerWindow:
        try:
            return self._consumers[name]
        except KeyError:
            raise ValueError(f"consumer {name!r} is not monitored; monitored: "
                             f"{', '.join(sorted(self._consumers)) or 'none'} (call add_consumer first)") from None

    def set_baseline(self, name: str, recall: float) -> None:
        if not 0.0 <= recall <= 1.0:
            raise ValueError(f"baseline recall must be in [0, 1], got {recall}")
        with self._lock:
            self._get(name).baseline = float(recall)

    def calibrate(self, name: str, query_vectors: np.ndarray, served_ids: np.ndarray) -> float:
        """Measure recall on a set of queries right after the index is built and make it the baseline."""
        c = self._get(name)
        recall = float(self._recalls(query_vectors, served_ids, c.k).mean())
        self.set_baseline(name, recall)
        return recall

    # ------------------------------------------------------------------------------------------ serving path
    def observe(self, name: str, query_vectors: np.ndarray, served_ids: np.ndarray) -> int:
        """Offer served results (one row per query); returns how many queries were sampled. Never blocks."""
        if self._closed:
            raise ValueError("the recall monitor is closed")
        q = np.atleast_2d(np.asarray(query_vectors, dtype=np.float32))
        served = np.atleast_2d(np.asarray(served_ids))
        if len(q) != len(served):
            raise ValueError(f"{len(q)} query vectors but {len(served)} rows of served ids")
        with self._lock:
            c = self._get(name)
            keep = np.flatnonzero(self._rng.random(len(q)) < self.sample_fraction)
            if len(keep) == 0:
                return 0
            try:
                self._queue.put_nowait((name, q[keep], served[keep]))
                c.sampled += len(keep)
            except queue.Full:
                c.dropped += len(keep)
                return 0
        return len(keep)

    # ------------------------------------------------------------------------------------------ background
    def _recalls(self, query_vectors: np.ndarray, served_ids: np.ndarray, k: int) -> np.ndarray:
        exact = np.asarray(self._exact_search(np.asarray(query_vectors, dtype=np.float32), k))
        return ann_recall_at_k(np.asarray(served_ids), exact, k)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                name, q, served = item
                c = self._consumers[name]
                try:
                    values = self._recalls(q, served, c.k)
                except Exception:  # a failed exact search must not stop monitoring
                    log.exception("recall monitor: exact search failed for consumer %s", name)
                    with self._lock:
                        c.errors += len(q)
                    continue
                with self._lock:
                    c.values.extend(values.tolist())
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every queued sample has been scored."""
        self._queue.join()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._worker.join()

    def __enter__(self) -> "RecallMonitor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ reading
    def status(self, name: str) -> RecallStatus:
        with self._lock:
            c = self._get(name)
            values = np.array(c.values, dtype=np.float64)
            counts = (c.sampled, c.dropped, c.errors)
            baseline = c.baseline
        n = len(values)
        recall = float(values.mean()) if n else float("nan")
        low, high = wilson_interval(recall, n, self.confidence) if n else (0.0, 1.0)
        drop = (baseline is not None and n >= self.min_samples and recall < baseline - self.max_drop
                and high < baseline)
        return RecallStatus(name, c.k, n, recall, low, high, baseline, bool(drop), *counts)

    def statuses(self) -> list[RecallStatus]:
        return [self.status(name) for name in sorted(self._consumers)]
