"""The payload store: field types fixed on first sight, live counts that follow tombstones, and compaction
purging postings."""
from __future__ import annotations

import numpy as np
import pytest

from index_engines.collection.errors import PayloadError
from index_engines.collection.payload import PayloadStore


def add(store, metas, start=0, tenant="t"):
    new = {}
    metas = [store.check(m, new) for m in metas]
    rows = np.arange(start, start + len(metas), dtype=np.int64)
    store.add(rows, [f"k{r}" for r in rows], [tenant] * len(metas), metas, [None] * len(metas))
    return rows


def test_types_are_fixed_by_the_first_value_even_within_a_batch():
    store = PayloadStore({"year": "number"})
    with pytest.raises(PayloadError, match="'year' is a number field"):
        store.check({"year": "2020"}, {})
    new = {}
    store.check({"lang": "en"}, new)
    with pytest.raises(PayloadError, match="'lang' is a keyword field"):
        store.check({"lang": 3}, new)
    assert store.check({"n": np.float32(1.5), "ok": np.bool_(True), "none": None}, {}) == {"n": 1.5, "ok": True}


def test_live_counts_follow_tombstones_and_drops():
    store = PayloadStore()
    add(store, [{"c": "red", "tags": ["a", "a", "b"]}, {"c": "red"}, {"c": "blue", "n": 2}])
    assert store.live_count("c", "red") == 2 and store.live_count("tags", "a") == 1
    store.kill(np.array([0, 0]))  # twice: counted once
    assert store.live_count("c", "red") == 1 and store.live_count("tags", "a") == 0 and store.n_alive == 2
    assert store.record(0) is None and store.records[0][0] == "k0"  # kept until compaction drops it
    store.drop_rows(np.array([0]))
    assert store.postings("c", "red").tolist() == [1] and 0 not in store.records
    assert store.values("tags") == [] and store.live_fraction() == 1.0


def test_number_ranges_use_sorted_values():
    store = PayloadStore()
    add(store, [{"n": v} for v in (5, 1, 3, 9)])
    values, rows = store.sorted_numbers("n")
    assert values.tolist() == [1, 3, 5, 9] and rows.tolist() == [1, 2, 0, 3]
    add(store, [{"n": 0}], start=4)  # a write invalidates the sorted copy
    assert store.sorted_numbers("n")[1].tolist() == [4, 1, 2, 0, 3]
