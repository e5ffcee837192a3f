"""Production recall monitor: a flat (exact) engine shows no drop, a deliberately degraded one is flagged."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from golden_sets.recall_monitor import RecallMonitor, exact_search_over, wilson_interval
from index_engines.embedding import normalize_rows

K = 10


@pytest.fixture(scope="module")
def store():
    rng = np.random.default_rng(0)
    base = normalize_rows(rng.normal(size=(3000, 32)).astype(np.float32))
    queries = normalize_rows(rng.normal(size=(1500, 32)).astype(np.float32))
    return base, queries


def degraded(search, drop: float, n_items: int, seed: int = 1):
    """A served search that loses each true neighbour with probability `drop` (replaced by a random item)."""
    rng = np.random.default_rng(seed)

    def served(q, k):
        ids = search(q, k).copy()
        lost = rng.random(ids.shape) < drop
        ids[lost] = rng.integers(n_items, n_items * 2, lost.sum())  # ids no exact answer contains
        return ids

    return served


def _serve(monitor, name, search, queries, batch=50):
    for start in range(0, len(queries), batch):
        q = queries[start:start + batch]
        monitor.observe(name, q, search(q, K))
    monitor.flush()


def test_exact_engine_keeps_recall_at_one_and_no_drop(store):
    base, queries = store
    exact = exact_search_over(base)
    with RecallMonitor(exact, sample_fraction=0.5, seed=0) as mon:
        mon.add_consumer("search", K)
        baseline = mon.calibrate("search", queries[:100], exact(queries[:100], K))
        _serve(mon, "search", exact, queries[100:])
        st = mon.status("search")
    assert baseline == 1.0 and st.recall == 1.0 and not st.drop_detected
    assert st.ci_high == 1.0 and st.ci_low < 1.0  # Wilson never collapses to a point
    assert st.n == st.sampled_total and 600 < st.n < 800  # about half of 1,400 queries sampled


def test_degraded_engine_is_flagged_against_the_post_build_baseline(store):
    base, queries = store
    exact = exact_search_over(base)
    healthy = degraded(exact, 0.02, len(base))
    with RecallMonitor(exact, sample_fraction=0.3, window=150, seed=0) as mon:
        mon.add_consumer("recsys", K)
        baseline = mon.calibrate("recsys", queries[:200], healthy(queries[:200], K))
        _serve(mon, "recsys", healthy, queries[200:800])
        ok = mon.status("recsys")
        _serve(mon, "recsys", degraded(exact, 0.10, len(base), seed=2), queries[800:])
        bad = mon.status("recsys")  # the window (150) now holds only queries served after the change
    assert baseline == pytest.approx(0.98, abs=0.01)
    assert not ok.drop_detected and ok.recall == pytest.approx(0.98, abs=0.01)
    assert bad.drop_detected and bad.recall == pytest.approx(0.90, abs=0.02)
    assert bad.ci_high < baseline and bad.baseline == baseline


def test_small_samples_do_not_raise_alarms(store):
    base, queries = store
    exact = exact_search_over(base)
    with RecallMonitor(exact, sample_fraction=1.0, min_samples=50, seed=0) as mon:
        mon.add_consumer("ads", K, baseline=1.0)
        _serve(mon, "ads", degraded(exact, 0.5, len(base)), queries[:20])
        st = mon.status("ads")
    assert st.n == 20 and st.recall < 0.7 and not st.drop_detected


def test_serving_path_never_blocks_and_counts_what_it_drops(store):
    base, queries = store
    gate = threading.Event()

    def slow_exact(q, k):
        gate.wait()
        return exact_search_over(base)(q, k)

    mon = RecallMonitor(slow_exact, sample_fraction=1.0, queue_size=2, seed=0)
    try:
        mon.add_consumer("dedup", K)
        exact = exact_search_over(base)
        taken = [mon.observe("dedup", queries[i:i + 1], exact(queries[i:i + 1], K)) for i in range(10)]
        gate.set()
        mon.flush()
        st = mon.status("dedup")
    finally:
        mon.close()
    assert sum(taken) == st.sampled_total == st.n and st.dropped_total == 10 - st.sampled_total > 0


def test_a_failing_exact_search_is_counted_not_fatal(store):
    base, queries = store
    calls = []

    def flaky(q, k):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("raw store unavailable")
        return exact_search_over(base)(q, k)

    exact = exact_search_over(base)
    with RecallMonitor(flaky, sample_fraction=1.0) as mon:
        mon.add_consumer("search", K)
        for i in range(3):
            mon.observe("search", queries[i:i + 1], exact(queries[i:i + 1], K))
        mon.flush()
        st = mon.status("search")
    assert st.errors_total == 1 and st.n == 2 and st.recall == 1.0


def test_wilson_interval_formula():
    low, high = wilson_interval(0.9, 100)
    z = 1.959963984540054
    centre = (0.9 + z * z / 200) / (1 + z * z / 100)
    half = z * np.sqrt(0.9 * 0.1 / 100 + z * z / 40000) / (1 + z * z / 100)
    assert (low, high) == pytest.approx((centre - half, centre + half))


def test_bad_use_is_a_clear_error(store):
    base, _ = store
    with pytest.raises(ValueError, match="sample_fraction"):
        RecallMonitor(exact_search_over(base), sample_fraction=0)
    with RecallMonitor(exact_search_over(base)) as mon:
        with pytest.raises(ValueError, match="consumer 'x' is not monitored"):
            mon.status("x")
        mon.add_consumer("a", 5)
        with pytest.raises(ValueError, match="2 query vectors but 1 rows"):
            mon.observe("a", base[:2], np.zeros((1, 5), np.int64))
    with pytest.raises(ValueError, match="closed"):
        mon.observe("a", base[:1], np.zeros((1, 5), np.int64))


def test_real_engines_a_lowered_ef_is_caught(store):
    """Served by an HNSW graph, checked against the flat engine: a query setting lowered by mistake shows up."""
    from index_engines.engines import make_engine

    base, queries = store
    flat, hnsw = make_engine("flat", base.shape[1]), make_engine("hnsw", base.shape[1], M=8, ef_construction=64)
    for engine in (flat, hnsw):
        engine.add(base, np.arange(len(base)))

    def exact(q, k):
        return flat.search(q, k).ids

    def served(ef):
        return lambda q, k: hnsw.search(q, k, params={"ef": ef}).ids

    with RecallMonitor(exact, sample_fraction=1.0, window=400, seed=0) as mon:
        mon.add_consumer("search", K)
        baseline = mon.calibrate("search", queries[:300], served(200)(queries[:300], K))
        _serve(mon, "search", served(200), queries[300:700])
        ok = mon.status("search")
        _serve(mon, "search", served(K), queries[700:1100])
        bad = mon.status("search")
    assert baseline > 0.95 and not ok.drop_detected
    assert bad.drop_detected and bad.recall < baseline - 0.02
