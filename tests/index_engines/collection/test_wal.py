"""The write-ahead log: records round-trip, torn tails are truncated, damage elsewhere is an error, checkpoints
delete what they cover, and replay starts right after the checkpoint."""
from __future__ import annotations

import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index_engines.collection.errors import CollectionError, CorruptLogError
from index_engines.collection.wal import SUFFIX, WriteAheadLog, encode_record, read_records


def write(directory, n, fsync="always", start_after=0):
    log, _ = WriteAheadLog.open(directory, fsync, after_lsn=start_after)
    lsns = [log.append("upsert", {"i": i, "text": "é" * i}, bytes([i % 256]) * i) for i in range(n)]
    log.close()
    return lsns


def files(directory):
    return sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX))


def test_records_round_trip_in_order(tmp_path):
    assert write(tmp_path, 5) == [1, 2, 3, 4, 5]
    log, records = WriteAheadLog.open(tmp_path)
    assert [r.lsn for r in records] == [1, 2, 3, 4, 5]
    assert [r.header["i"] for r in records] == [0, 1, 2, 3, 4]
    assert records[3].blob == bytes([3]) * 3 and records[3].header["text"] == "ééé"
    assert log.append("delete", {"x": 1}) == 6  # appends continue the sequence
    log.close()
    assert [r.lsn for r in read_records(tmp_path, after_lsn=4)] == [5, 6]


def test_torn_tail_is_truncated_and_appends_continue(tmp_path):
    write(tmp_path, 3)
    path = files(tmp_path)[-1]
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 2)  # the process died in the middle of the third append
    log, records = WriteAheadLog.open(tmp_path)
    assert [r.lsn for r in records] == [1, 2]
    assert path.stat().st_size == len(encode_record(1, "upsert", {"i": 0, "text": ""}, b"")) + len(
        encode_record(2, "upsert", {"i": 1, "text": "é"}, b"\x01"))
    assert log.append("upsert", {"again": True}) == 3
    log.close()
    _, records = WriteAheadLog.open(tmp_path)
    assert [r.header for r in records][-1] == {"again": True}


def test_crc_mismatch_in_last_record_drops_it(tmp_path):
    write(tmp_path, 3)
    path = files(tmp_path)[-1]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    _, records = WriteAheadLog.open(tmp_path)
    assert [r.lsn for r in records] == [1, 2]


def test_damage_in_an_earlier_file_is_an_error(tmp_path):
    log, _ = WriteAheadLog.open(tmp_path)
    for i in range(3):
        log.append("upsert", {"i": i})
    log.checkpoint(0)  # rotate: records 1-3 in the first file, nothing deleted
    log.append("upsert", {"i": 3})
    log.close()
    first = files(tmp_path)[0]
    data = bytearray(first.read_bytes())
    data[20] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError, match="not the last file"):
        WriteAheadLog.open(tmp_path)


def test_checkpoint_deletes_covered_files_and_replay_starts_after_it(tmp_path):
    log, _ = WriteAheadLog.open(tmp_path)
    for i in range(4):
        log.append("upsert", {"i": i})
    log.checkpoint(2)  # records 3 and 4 share the first file with 1 and 2: it stays
    assert len(files(tmp_path)) == 2
    log.append("upsert", {"i": 4})
    log.checkpoint(4)  # now the first file holds nothing after the checkpoint
    assert [int(p.name[:-len(SUFFIX)]) for p in files(tmp_path)] == [5, 6]
    log.close()
    _, records = WriteAheadLog.open(tmp_path, after_lsn=4)
    assert [r.lsn for r in records] == [5]


def test_missing_records_after_the_checkpoint_are_an_error(tmp_path):
    log, _ = WriteAheadLog.open(tmp_path)
    for i in range(3):
        log.append("upsert", {"i": i})
    log.checkpoint(3)
    log.append("upsert", {"i": 3})
    log.close()
    with pytest.raises(CorruptLogError, match="missing"):
        WriteAheadLog.open(tmp_path, after_lsn=1)


def test_fsync_policies(tmp_path):
    with pytest.raises(CollectionError, match="valid policies: always, interval, never"):
        WriteAheadLog.open(tmp_path / "a", "sometimes")
    log, _ = WriteAheadLog.open(tmp_path / "b", "never")
    log.append("upsert", {})
    assert log.durable_lsn == 0  # not fsync'd
    log.sync()
    assert log.durable_lsn == 1
    log.close()
    log, _ = WriteAheadLog.open(tmp_path / "c", "always")
    log.append("upsert", {})
    assert log.durable_lsn == 1
    log.close()


def test_interval_policy_syncs_in_the_background(tmp_path):
    log, _ = WriteAheadLog.open(tmp_path, "interval", interval_s=0.05)
    log.append("upsert", {})
    deadline = time.monotonic() + 5
    while log.durable_lsn < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log.durable_lsn == 1  # no further append was needed
    log.close()


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 300), min_size=1, max_size=12), cut=st.floats(0, 1))
def test_any_truncation_recovers_exactly_the_complete_records(tmp_path_factory, sizes, cut):
    directory = tmp_path_factory.mktemp("wal")
    log, _ = WriteAheadLog.open(directory, "never")
    ends = []
    for i, n in enumerate(sizes):
        log.append("upsert", {"i": i}, os.urandom(n))
        ends.append(log._bytes)
    log.close()
    path = files(directory)[-1]
    keep = int(cut * ends[-1])
    with open(path, "r+b") as f:
        f.truncate(keep)
    _, records = WriteAheadLog.open(directory)
    complete = sum(1 for e in ends if e <= keep)
    assert [r.header["i"] for r in records] == list(range(complete))
