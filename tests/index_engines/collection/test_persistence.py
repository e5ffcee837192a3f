"""Durability and maintenance: reopen, checkpoints, background builds, compaction, automatic rebuilds,
secondary indexes. Results are compared with exact search (the flat oracle) and with themselves across reopens."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from index_engines.collection import Collection
from index_engines.collection import maintenance as maintenance_module
from index_engines.collection.segments import SEGMENTS_DIR

from .conftest import SMALL, unit_vectors, vector_items


def exact_ids(col, queries, k=10, **kw):
    return col.search(vectors=queries, model_version=col.model_version, k=k, exact=True, **kw).ids()


def test_reopen_restores_sealed_growing_and_deleted_items(make_collection):
    col = make_collection(rebuild_tombstone_rate=None, rebuild_recall_drop=None)
    x = unit_vectors(500, 10)
    items = vector_items(col, x[:450], metadata=lambda i: {"g": i % 5})
    for start in range(0, 450, 100):
        col.upsert(items[start:start + 100])
    col.wait_idle()  # sealed at 200 and 400 items, indexed; 50 still growing (only in the log)
    assert [s["state"] for s in col.stats()["shards"][0]["segments"]] == ["indexed", "indexed", "growing"]
    col.delete([f"d{i}" for i in range(0, 450, 7)])
    col.upsert(vector_items(col, x[450:], 450))
    q = unit_vectors(8, 11)
    before_exact = exact_ids(col, q, filter={"must": [{"key": "g", "match": {"any": [1, 2]}}]})
    before_ann = col.search(vectors=q, model_version=col.model_version, k=10).ids()
    count = len(col)
    path = col.path
    col.close()
    with Collection.open(path) as again:
        assert len(again) == count == 500 - len(range(0, 450, 7))
        assert exact_ids(again, q, filter={"must": [{"key": "g", "match": {"any": [1, 2]}}]}) == before_exact
        again.wait_idle()
        assert again.search(vectors=q, model_version=again.model_version, k=10).ids() == before_ann
        assert again.get(["d7"]) == [None] and again.get(["d499"])[0] is not None


def test_checkpoints_let_the_log_shrink(make_collection):
    col = make_collection()
    col.upsert(vector_items(col, unit_vectors(190, 12)))
    big = col.stats()["wal_bytes"]
    col.flush()
    stats = col.stats()
    assert stats["applied_lsn"] == stats["last_lsn"] == 1 and stats["wal_bytes"] < big / 10


def test_queries_use_the_exact_path_until_the_background_build_lands(make_collection, monkeypatch):
    release, started = threading.Event(), threading.Event()
    real = maintenance_module.build_ann

    def slow_build(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(maintenance_module, "build_ann", slow_build)
    col = make_collection()
    x = unit_vectors(250, 13)
    items = vector_items(col, x)
    try:
        col.upsert(items[:200])  # seals
        col.upsert(items[200:])  # growing
        assert started.wait(30)
        res = col.search(vectors=x[:5], model_version=col.model_version, k=5)
        assert res.methods == {"exact": 2}  # the sealed segment (building) and the growing one, both exact
        assert [ids[0] for ids in res.ids()] == [f"d{i}" for i in range(5)]
    finally:
        release.set()
    col.wait_idle()
    res = col.search(vectors=x[:5], model_version=col.model_version, k=5)
    assert res.methods == {"ann": 1, "exact": 1}


def test_compaction_preserves_results_and_drops_tombstones(make_collection):
    col = make_collection(rebuild_tombstone_rate=None, rebuild_recall_drop=None)
    x = unit_vectors(800, 14)
    col.upsert(vector_items(col, x, metadata=lambda i: {"g": i % 4}))
    col.flush()
    deleted = {f"d{i}" for i in range(0, 800, 3)}
    col.delete(sorted(deleted))
    q = unit_vectors(20, 15)
    flt = {"must_not": [{"key": "g", "match": {"value": 0}}]}
    before = exact_ids(col, q, filter=flt)
    before_all = exact_ids(col, q)
    col.compact()
    stats = col.stats()
    segments = stats["shards"][0]["segments"]
    assert len(segments) == 1 and segments[0]["dead"] == 0 and segments[0]["count"] == 800 - len(deleted)
    assert exact_ids(col, q, filter=flt) == before and exact_ids(col, q) == before_all
    ann = col.search(vectors=q, model_version=col.model_version, k=10).ids()
    assert not deleted & {i for ids in ann for i in ids}
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ann, before_all)])
    assert recall >= 0.9
    path = col.path
    col.close()
    with Collection.open(path) as again:
        assert exact_ids(again, q, filter=flt) == before
        assert not list(path.joinpath(SEGMENTS_DIR).glob(".*"))  # no temporary directories left behind
        assert len(list(path.joinpath(SEGMENTS_DIR).iterdir())) == 1


def test_tombstones_are_never_returned_by_any_route(make_collection):
    col = make_collection(rebuild_tombstone_rate=None, rebuild_recall_drop=None)
    x = unit_vectors(600, 16)
    col.upsert(vector_items(col, x, metadata=lambda i: {"g": i % 10}))
    col.flush()
    col.delete([f"d{i}" for i in range(300)])
    q = x[:40]  # queries sit right on deleted items
    for flt in (None, {"must": [{"key": "g", "match": {"value": 3}}]},
                {"must": [{"key": "g", "range": {"lte": 6}}]}):
        for route in (None, "post_filter", "filtered_graph", "exact_allowed"):
            res = col.search(vectors=q, model_version=col.model_version, k=10, filter=flt, route=route)
            ids = {i for hits in res.ids() for i in hits}
            assert all(int(i[1:]) >= 300 for i in ids)
            assert all(len(hits) == 10 for hits in res.ids())


def test_tombstone_rate_above_threshold_triggers_a_rebuild(make_collection):
    col = make_collection(rebuild_tombstone_rate=0.10, rebuild_recall_drop=None)
    x = unit_vectors(400, 17)
    col.upsert(vector_items(col, x))
    col.flush()
    col.delete([f"d{i}" for i in range(30)])  # 7.5%: no rebuild
    col.wait_idle()
    assert not [e for e in col.events if e["event"] == "compacted"]
    col.delete([f"d{i}" for i in range(30, 50)])  # 12.5%
    col.wait_idle()
    done = [e for e in col.events if e["event"] == "compacted"]
    assert len(done) == 1 and done[0]["dropped"] == 50
    reasons = [e["reason"] for e in col.events if e["event"] == "compaction_scheduled"]
    assert reasons and reasons[0].startswith("tombstone rate 0.125")
    assert col.stats()["shards"][0]["tombstone_rate"] == 0.0


def test_a_recall_drop_below_the_baseline_triggers_a_rebuild(make_collection):
    col = make_collection(rebuild_tombstone_rate=None, rebuild_recall_drop=0.02)
    col.upsert(vector_items(col, unit_vectors(400, 18)))
    col.flush()
    seg = [s for s in col._shards[0] if s.ann is not None][0]
    assert seg.recall_baseline is not None
    seg.recall_baseline = 1.03  # as if the index had been much better after its build
    col.delete([f"d{i}" for i in range(10)])
    col.wait_idle()
    reasons = [e["reason"] for e in col.events if e["event"] == "compaction_scheduled"]
    assert reasons and reasons[0].startswith("probe recall")


def test_orphaned_files_from_a_crash_are_removed_on_open(make_collection):
    col = make_collection()
    col.upsert(vector_items(col, unit_vectors(50, 19)))
    path = col.path
    col.close()
    orphan = path / SEGMENTS_DIR / "seg-999999"
    orphan.mkdir(parents=True)
    (path / "tombstones-00009999.npy").write_bytes(b"junk")
    with Collection.open(path) as again:
        assert not orphan.exists() and not (path / "tombstones-00009999.npy").exists()
        assert len(again) == 50


class RecordingIndex:
    """A secondary index that records what the collection tells it (the BM25 hook's contract)."""

    name = "recording"

    def __init__(self):
        self.docs: dict[int, str | None] = {}
        self.saved_lsn = None
        self.compactions = 0

    def upsert(self, rows, ids, texts, metadatas, tenants):
        assert len(rows) == len(ids) == len(texts) == len(metadatas) == len(tenants)
        self.docs.update(zip(rows.tolist(), texts))

    def delete(self, rows, ids):
        for r in rows.tolist():
            self.docs.pop(r, None)

    def save(self, directory, lsn):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "state.txt").write_text(f"{lsn}\n" + "\n".join(f"{r}\t{t}" for r, t in self.docs.items()))

    def load(self, directory):
        lines = (directory / "state.txt").read_text().splitlines()
        self.docs = {int(r): t for r, t in (line.split("\t") for line in lines[1:])}
        return int(lines[0])

    def clear(self):
        self.docs = {}

    def compact(self):
        self.compactions += 1


def test_secondary_indexes_follow_the_write_path(make_collection):
    col = make_collection()
    index = RecordingIndex()
    col.upsert([{"id": "a", "text": "first"}])
    col.attach_secondary(index)  # built from the live items
    assert list(index.docs.values()) == ["first"]
    col.upsert([{"id": "a", "text": "second"}, {"id": "b", "text": "other"}])
    col.delete(["b"])
    assert sorted(index.docs.values()) == ["second"]
    assert list(index.docs) == col.allowed_rows().tolist()
    col.compact()
    path = col.path
    col.close()
    assert index.compactions == 1
    reopened = RecordingIndex()
    with Collection.open(path, secondary=[reopened]) as again:
        assert reopened.docs == index.docs  # loaded: its saved LSN is the collection's
    stale = RecordingIndex()
    with Collection.open(path) as again:
        again.upsert([{"id": "c", "text": "third"}])
        again.close()
    with Collection.open(path, secondary=[stale]) as again:  # saved state is behind: rebuilt from live items
        assert sorted(stale.docs.values()) == ["second", "third"]
