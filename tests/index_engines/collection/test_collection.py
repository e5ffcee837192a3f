"""The collection's write and read API: read-your-writes, updates and deletes, version parity, tenants, and bad
input that fails clearly without losing anything already acknowledged."""
from __future__ import annotations

import json

import numpy as np
import pytest

from index_engines.collection import (Collection, CollectionClosedError, CollectionExistsError,
                                      CollectionNotFoundError, FilterError, InvalidIdError, PayloadError, TenantError,
                                      VersionParityError)
from index_engines.collection.errors import CollectionError

from .conftest import unit_vectors, vector_items


def test_writes_are_searchable_at_once_and_results_carry_the_contract(make_collection):
    col = make_collection()
    x = unit_vectors(30, 0)
    col.upsert(vector_items(col, x, metadata=lambda i: {"n": i}, tenant=lambda i: "a"))
    res = col.search(vectors=x[:2], model_version=col.model_version, k=3, with_payload=True)
    assert [h["id"] for h in res.hits[0]][0] == "d0" and res.hits[1][0]["id"] == "d1"
    top = res.hits[0][0]
    assert top.keys() == {"id", "score", "model_version", "tenant", "metadata", "text"}
    assert top["model_version"] == col.model_version and top["tenant"] == "a" and top["metadata"] == {"n": 0}
    assert top["score"] == pytest.approx(1.0, abs=1e-5)
    assert res.route == "unfiltered" and not res.degraded and res.coverage == 1.0
    assert set(res.timings) == {"plan_ms", "search_ms", "fetch_ms", "total_ms"}


def test_update_replaces_the_old_version_and_delete_removes(make_collection):
    col = make_collection()
    x = unit_vectors(3, 1)
    col.upsert(vector_items(col, x))
    col.upsert([{"id": "d0", "vector": x[1], "model_version": col.model_version, "metadata": {"v": 2}}])
    assert len(col) == 3
    hits = col.search(vectors=x[0], model_version=col.model_version, k=3).ids()[0]
    assert hits.count("d0") == 1  # the old version is a tombstone, never returned
    assert col.get(["d0"])[0]["metadata"] == {"v": 2}
    assert col.delete(["d0", "nope"]).count == 1
    assert "d0" not in col.search(vectors=x[0], model_version=col.model_version, k=3).ids()[0]
    assert col.get(["d0"]) == [None] and len(col) == 2


def test_text_is_encoded_with_the_pinned_model(make_collection, static_model):
    col = make_collection()
    col.upsert([{"id": 1, "text": "the cat sat on the mat"}, {"id": 2, "text": "stock markets fell sharply"}])
    res = col.search("a cat on a mat", k=1)
    assert res.ids() == [[1]]
    stored = col.get([1])[0]["vector"]
    np.testing.assert_allclose(stored, static_model.encode(["the cat sat on the mat"])[0], atol=1e-6)


def test_vectors_from_another_model_version_are_refused(make_collection):
    col = make_collection()
    x = unit_vectors(2, 2)
    with pytest.raises(VersionParityError, match="pinned to 'static-64@"):
        col.upsert([{"id": "a", "vector": x[0], "model_version": "minilm-l6-v2@0123456789ab"}])
    with pytest.raises(VersionParityError, match="no model_version"):
        col.upsert([{"id": "a", "vector": x[0]}])
    col.upsert(vector_items(col, x))
    with pytest.raises(VersionParityError, match="not comparable"):
        col.search(vectors=x[0], model_version="mpnet-base-v2@0123456789ab")
    with pytest.raises(VersionParityError, match="need a model_version"):
        col.search(vectors=x[0])
    with pytest.raises(VersionParityError):
        col.search("text", model_version="minilm-l6-v2@0123456789ab")
    with pytest.raises(ValueError, match="dimension 384"):
        col.search(vectors=np.ones(384, np.float32), model_version=col.model_version)
    assert len(col) == 2


def test_a_changed_installed_model_is_refused(tmp_path):
    path = tmp_path / "c"
    Collection.create(path, model="static-64").close()
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["config"]["model_fingerprint"] = "0" * 64
    (path / "manifest.json").write_text(json.dumps(manifest))
    with Collection.open(path) as col:
        with pytest.raises(VersionParityError, match="install the pinned model version or migrate"):
            col.search("anything")


def test_tenant_scope_and_tenant_boundaries(make_collection):
    col = make_collection()
    x = unit_vectors(40, 3)
    col.upsert(vector_items(col, x, tenant=lambda i: f"t{i % 2}"))
    res = col.search(vectors=x[:5], model_version=col.model_version, k=10, tenant="t1",
                     filter={"should": [{"key": "tenant", "match": {"value": "t0"}}]})
    assert res.ids() == [[]] * 5  # a filter cannot widen the tenant scope
    res = col.search(vectors=x[:5], model_version=col.model_version, k=10, tenant="t1")
    assert all(h["tenant"] == "t1" for hits in res.hits for h in hits) and all(len(h) == 10 for h in res.hits)
    with pytest.raises(TenantError, match="cannot move an item between tenants"):
        col.upsert([{"id": "d0", "vector": x[0], "model_version": col.model_version, "tenant": "t1"}])
    with pytest.raises(TenantError, match="nothing deleted"):
        col.delete(["d0", "d1"], tenant="t1")
    assert col.get(["d0"], tenant="t1") == [None] and col.get(["d0"], tenant="t0")[0]["id"] == "d0"
    assert col.count(tenant="t0") == 20


@pytest.mark.parametrize("item, error, message", [
    ({"id": 1.5, "text": "x"}, InvalidIdError, "ids must be strings or integers"),
    ({"id": True, "text": "x"}, InvalidIdError, "boolean"),
    ({"id": None, "text": "x"}, InvalidIdError, "NoneType"),
    ({"id": ("a",), "text": "x"}, InvalidIdError, "tuple"),
    ({"id": "", "text": "x"}, InvalidIdError, "1..512 characters"),
    ({"id": 2 ** 70, "text": "x"}, InvalidIdError, "64 bits"),
    ({"id": "a"}, CollectionError, "neither text nor vector"),
    ({"id": "a", "text": "x", "metadata": {"n": "one"}}, PayloadError, "'n' is a number field"),
    ({"id": "a", "text": "x", "metadata": {"n": {"deep": 1}}}, PayloadError, "valid values"),
    ({"id": "a", "text": "x", "metadata": {"tenant": "t9"}}, PayloadError, "reserved"),
    ({"id": "a", "text": "x", "metadata": {"n": float("nan")}}, PayloadError, "finite"),
    ({"id": "a", "text": "x", "metadata": {"blob": ["x" * 1000] * 70}}, PayloadError, "exceeds the limit"),
    ({"id": "a", "text": "x", "metadata": {"n": 2 ** 60}}, PayloadError, "2\\*\\*53"),
    ({"id": "a", "text": "x", "tenant": ""}, PayloadError, "tenant must be a non-empty string"),
    ({"id": "a", "text": ""}, PayloadError, "non-empty string"),
    ({"id": "a", "text": "x", "colour": "red"}, CollectionError, "unknown key 'colour'"),
])
def test_bad_items_fail_clearly_and_lose_nothing(make_collection, item, error, message):
    col = make_collection()
    col.upsert([{"id": "keep", "text": "kept item", "metadata": {"n": 1}}])
    lsn = col.stats()["last_lsn"]
    with pytest.raises(error, match=message):
        col.upsert([{"id": "other", "text": "fine"}, item])  # the whole batch is refused
    assert col.stats()["last_lsn"] == lsn and len(col) == 1 and col.get(["keep", "other"])[1] is None


def test_duplicate_ids_in_a_batch_are_refused(make_collection):
    col = make_collection()
    with pytest.raises(InvalidIdError, match="appears twice"):
        col.upsert([{"id": 1, "text": "a"}, {"id": 1, "text": "b"}])
    assert col.upsert([{"id": 1, "text": "a"}, {"id": "1", "text": "b"}]).count == 2  # 1 and "1" differ


def test_bad_filters_fail_clearly(make_collection):
    col = make_collection()
    col.upsert([{"id": 1, "text": "a", "metadata": {"color": "red"}}])
    with pytest.raises(FilterError, match="valid fields: color, tenant"):
        col.search("a", filter={"must": [{"key": "colour", "match": {"value": "red"}}]})
    with pytest.raises(FilterError, match="valid keys: must, should, must_not"):
        col.search("a", filter={"and": []})
    assert len(col) == 1


def test_closed_and_missing_collections(tmp_path, make_collection):
    col = make_collection()
    col.upsert([{"id": 1, "text": "a"}])
    col.close()
    for call in (lambda: col.search("a"), lambda: col.upsert([{"id": 2, "text": "b"}]), lambda: col.delete([1])):
        with pytest.raises(CollectionClosedError, match="open it again"):
            call()
    with pytest.raises(CollectionNotFoundError, match="no collection at"):
        Collection.open(tmp_path / "missing")
    with pytest.raises(CollectionExistsError):
        Collection.create(col.path, model="static-64")
    with Collection.open(col.path) as again:
        assert again.get([1])[0]["text"] == "a"
        with pytest.raises(CollectionError, match="already open"):
            Collection.open(col.path)


@pytest.mark.parametrize("kwargs, message", [
    ({"metric": "l2"}, "valid metrics: cosine, ip"),
    ({"engine": "annoy"}, "valid engines"),
    ({"engine_params": {"MM": 3}}, "valid build parameters"),
    ({"shards": 0}, "shards must be an integer"),
    ({"fsync": "sometimes"}, "valid policies"),
    ({"routing": {"exact": 1}}, "valid options"),
    ({"payload_schema": {"n": "float"}}, "valid types: keyword, number, bool"),
    ({"model": "gpt"}, "valid model ids"),
])
def test_bad_configuration(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Collection.create(tmp_path / "c", **{"model": "static-64", **kwargs})
    assert not (tmp_path / "c" / "manifest.json").exists()  # nothing half-created


def test_shards_split_items_and_answer_together(make_collection):
    col = make_collection(shards=3)
    x = unit_vectors(300, 4)
    col.upsert(vector_items(col, x))
    col.flush()
    live = [s["live"] for s in col.stats()["shards"]]
    assert sum(live) == 300 and min(live) > 50
    exact = col.search(vectors=x[:20], model_version=col.model_version, k=5, exact=True)
    assert [ids[0] for ids in exact.ids()] == [f"d{i}" for i in range(20)]
    assert exact.coverage == 1.0 and not exact.degraded


def test_a_failing_shard_degrades_the_answer_instead_of_failing_it(make_collection, monkeypatch):
    from index_engines.collection import collection as collection_module

    col = make_collection(shards=2)
    x = unit_vectors(100, 5)
    col.upsert(vector_items(col, x))
    real = collection_module.search_segment
    broken = col.segments(shard=1)[0]

    def flaky(seg, *args, **kwargs):
        if seg is broken:
            raise RuntimeError("disk on fire")
        return real(seg, *args, **kwargs)

    monkeypatch.setattr(collection_module, "search_segment", flaky)
    res = col.search(vectors=x[:10], model_version=col.model_version, k=5)
    live = [s["live"] for s in col.stats()["shards"]]
    assert res.degraded and res.coverage == pytest.approx(live[0] / sum(live))
    assert all(len(ids) == 5 for ids in res.ids())  # the healthy shard still answers k


def test_stored_records_carry_the_model_version(make_collection):
    col = make_collection()
    col.upsert(vector_items(col, unit_vectors(210, 6)))
    col.flush()
    lines = [json.loads(line) for p in sorted(col.path.glob("segments/seg-*/records.jsonl"))
             for line in p.read_text().splitlines()]
    assert len(lines) == 210 and {r["model_version"] for r in lines} == {col.model_version}
