"""Hash-sharded scatter-gather: exactly the unsharded answer, ties included; failures degrade, never raise."""
from __future__ import annotations

import time

import numpy as np
import pytest

from index_engines.ann_recall import ann_recall
from index_engines.engines import SearchResult, make_engine
from index_engines.sharding import ShardedEngine, merge_top_k, shard_of, splitmix64

MASK = (1 << 64) - 1


def splitmix64_reference(x: int) -> int:
    """The published splitmix64 finaliser in plain Python integers."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_hash_is_splitmix64_and_stable():
    ids = np.array([0, 1, 2, 12345, 2**40 + 7, 2**63 - 1], np.int64)
    assert splitmix64(ids).tolist() == [splitmix64_reference(int(i)) for i in ids]
    assert splitmix64_reference(0) == 0xE220A8397B1DCDAF  # the first output of the reference generator, seed 0
    assert shard_of(ids, 7).tolist() == [splitmix64_reference(int(i)) % 7 for i in ids]


def test_sequential_ids_spread_evenly():
    counts = np.bincount(shard_of(np.arange(70_000), 7), minlength=7)
    assert counts.min() > 0.95 * 10_000 and counts.max() < 1.05 * 10_000


@pytest.fixture(scope="module")
def tied(minilm, base_ids):
    """The test vectors plus a second and third copy of 300 of them under new ids: many exact ties."""
    base = np.concatenate([minilm[0], minilm[0][:300], minilm[0][:300]])
    ids = np.concatenate([base_ids, base_ids[:300] + 1, base_ids[:300] + 3])
    flat = make_engine("flat", 384)
    flat.add(base, ids)
    # Queries: held-out ones plus base vectors that have copies, so top results tie.
    queries = np.concatenate([minilm[1][:100], minilm[0][:100]])
    return base, ids, flat, queries


@pytest.mark.parametrize("n_shards", [1, 2, 4, 7])
def test_sharded_flat_equals_unsharded_flat_ties_included(tied, n_shards):
    base, ids, flat, queries = tied
    with ShardedEngine("flat", 384, n_shards) as sharded:
        sharded.add(base, ids)
        assert len(sharded) == len(flat)
        expected, got = flat.search(queries, 10), sharded.search(queries, 10)
        np.testing.assert_array_equal(got.ids, expected.ids)
        np.testing.assert_array_equal(got.scores, expected.scores)
        assert not got.degraded and got.coverage == 1.0
        allow = ids[::3]
        np.testing.assert_array_equal(sharded.search(queries, 10, allow=allow).ids,
                                      flat.search(queries, 10, allow=allow).ids)
        single = sharded.search(queries[150], 25)  # one query, a k that spans all the copies
        np.testing.assert_array_equal(single.ids, flat.search(queries[150], 25).ids)
    # The copies really tie, and the tie is broken by id.
    top = expected.ids[100]
    assert expected.scores[100, 0] == expected.scores[100, 1] == expected.scores[100, 2]
    assert top[:3].tolist() == sorted(top[:3].tolist())


def test_sequential_fan_out_equals_thread_pool(tied):
    base, ids, flat, queries = tied
    with ShardedEngine("flat", 384, 4, workers=0) as sharded:
        sharded.add(base, ids)
        np.testing.assert_array_equal(sharded.search(queries, 10).ids, flat.search(queries, 10).ids)


class FailingShard:
    def __init__(self, inner, error: Exception | None = None, delay: float = 0.0):
        self.inner, self.error, self.delay = inner, error, delay
        self.query_spec = inner.query_spec

    def __len__(self):
        return len(self.inner)

    def search_checked(self, *args, **kwargs):
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.inner.search_checked(*args, **kwargs)


def _without_shard(sharded: ShardedEngine, flat, queries, broken: int):
    """What the healthy shards together answer: flat restricted to their ids."""
    kept = np.concatenate([s.ids for i, s in enumerate(sharded.shards) if i != broken])
    return flat.search(queries, 10, allow=kept), len(kept) / len(flat)


@pytest.mark.parametrize("workers", [None, 0])
def test_failing_shard_degrades_the_answer(tied, workers):
    base, ids, flat, queries = tied
    with ShardedEngine("flat", 384, 4, workers=workers) as sharded:
        sharded.add(base, ids)
        expected, coverage = _without_shard(sharded, flat, queries, broken=2)
        sharded.shards[2] = FailingShard(sharded.shards[2], RuntimeError("disk gone"))
        got = sharded.search(queries, 10)
    assert got.degraded and got.coverage == pytest.approx(coverage)
    assert 0.6 < got.coverage < 0.9
    np.testing.assert_array_equal(got.ids, expected.ids)


@pytest.mark.parametrize("workers", [None, 0])
def test_slow_shard_is_left_out_after_the_timeout(tied, workers):
    base, ids, flat, queries = tied
    with ShardedEngine("flat", 384, 4, workers=workers, timeout=0.02) as sharded:
        sharded.add(base, ids)
        expected, coverage = _without_shard(sharded, flat, queries[:10], broken=1)
        sharded.shards[1] = FailingShard(sharded.shards[1], delay=1.0)
        start = time.perf_counter()
        got = sharded.search(queries[:10], 10)
        elapsed = time.perf_counter() - start
    assert got.degraded and got.coverage == pytest.approx(coverage)
    np.testing.assert_array_equal(got.ids, expected.ids)
    if workers is None:  # with a pool the caller does not wait for the slow shard
        assert elapsed < 0.8


def test_every_shard_failing_gives_an_empty_degraded_answer(tied):
    base, ids, _, queries = tied
    with ShardedEngine("flat", 384, 3) as sharded:
        sharded.add(base, ids)
        sharded.shards = [FailingShard(s, ValueError("boom")) for s in sharded.shards]
        got = sharded.search(queries[:4], 5)
    assert got.degraded and got.coverage == 0.0 and (got.ids == -1).all()


def test_bad_input_still_raises_before_the_fan_out(tied):
    with ShardedEngine("flat", 384, 2) as sharded:
        sharded.add(tied[0][:10], tied[1][:10])
        with pytest.raises(ValueError, match="dimension 5"):
            sharded.search(np.ones((1, 5), np.float32), 3)
        with pytest.raises(ValueError, match="k must be a positive integer"):
            sharded.search(tied[3][:1], 0)
        with pytest.raises(ValueError, match="unknown query parameter 'ef'"):
            sharded.search(tied[3][:1], 3, {"ef": 3})
        with pytest.raises(ValueError, match="duplicate id"):
            sharded.add(tied[0][:2], [5, 5])
    with pytest.raises(ValueError, match="n_shards must be a positive integer"):
        ShardedEngine("flat", 384, 0)


def test_sharded_save_load_round_trip(tied, tmp_path):
    base, ids, _, queries = tied
    with ShardedEngine("hnsw", 384, 3, build_threads=1) as sharded:
        sharded.add(base, ids)
        sharded.save(tmp_path / "s")
        before = sharded.search(queries, 10)
    with ShardedEngine.load(tmp_path / "s") as loaded:
        after = loaded.search(queries, 10)
        assert loaded.n_shards == 3 and len(loaded) == len(ids)
    np.testing.assert_array_equal(after.ids, before.ids)


def test_sharded_hnsw_recall(minilm, base_ids, oracle):
    with ShardedEngine("hnsw", 384, 4, build_threads=1) as sharded:
        sharded.add(minilm[0], base_ids)
        assert ann_recall(sharded, oracle, minilm[1], 10).mean >= 0.95


def test_merge_is_bounded_and_ordered():
    r1 = SearchResult(np.array([[4, 9, -1]]), np.array([[0.9, 0.5, -np.inf]], np.float32))
    r2 = SearchResult(np.array([[2, 3, 1]]), np.array([[0.9, 0.5, 0.4]], np.float32))
    merged = merge_top_k([r1, r2], 4)
    assert merged.ids.tolist() == [[2, 4, 3, 9]]
    assert merged.scores.tolist() == [[np.float32(0.9), np.float32(0.9), 0.5, 0.5]]


def test_heap_and_vectorised_merges_agree():
    rng = np.random.default_rng(5)
    parts = []
    for _ in range(3):  # scores from a small set of values: many ties; some padding
        scores = -np.sort(-rng.integers(0, 4, (30, 6)).astype(np.float32), axis=1)
        ids = rng.permutation(1000)[:180].reshape(30, 6).astype(np.int64)
        ids[:, 5][rng.random(30) < 0.3] = -1
        scores[ids < 0] = -np.inf
        parts.append(SearchResult(ids, scores))
    batch = merge_top_k(parts, 7)  # 30 queries: the vectorised path
    for q in range(30):
        one = merge_top_k([SearchResult(p.ids[q:q + 1], p.scores[q:q + 1]) for p in parts], 7)  # the heap path
        np.testing.assert_array_equal(one.ids[0], batch.ids[q])
        np.testing.assert_array_equal(one.scores[0], batch.scores[q])
