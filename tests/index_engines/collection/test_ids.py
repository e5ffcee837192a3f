"""External ids: what is accepted, and a shard hash that is stable across processes and runs."""
from __future__ import annotations

import numpy as np
import pytest

from index_engines.collection.errors import InvalidIdError
from index_engines.collection.ids import IdMap, check_key, check_keys, shard_of


def test_valid_ids_and_their_types():
    assert check_key("a") == "a" and check_key(5) == 5 and check_key(np.int64(-3)) == -3
    assert type(check_key(np.int32(7))) is int
    with pytest.raises(InvalidIdError, match="boolean"):
        check_key(np.bool_(True))
    with pytest.raises(InvalidIdError, match="a list of ids, not a single string"):
        check_keys("abc")


def test_shard_hash_is_stable_and_distinguishes_types():
    # Fixed values: a change of hash would move existing items to other shards.
    assert [shard_of(k, 8) for k in ("a", "doc-1", 1, "1")] == [shard_of(k, 8) for k in ("a", "doc-1", 1, "1")]
    assert shard_of("a", 1) == 0
    counts = np.bincount([shard_of(f"doc-{i}", 4) for i in range(4000)], minlength=4)
    assert counts.min() > 900  # balanced
    assert {shard_of(i, 1 << 20) for i in range(50)} != {shard_of(str(i), 1 << 20) for i in range(50)}


def test_id_map():
    m = IdMap()
    m.set("a", 3)
    m.set(7, 9)
    assert m.rows_of(["a", 7, "7", "x"]).tolist() == [3, 9, -1, -1]
    assert m.pop("a") == 3 and "a" not in m and len(m) == 1
