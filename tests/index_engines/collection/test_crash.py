"""Crash safety: a writer process is killed with SIGKILL at random moments (mid-append, mid-seal, mid-build,
mid-compaction, mid-manifest-swap), then the collection is reopened and checked:
- every acknowledged write is there (upserts present with their exact vectors, acknowledged deletes gone);
- the batch in flight when the process died is all there or not at all (never half-written);
- reopening again gives the same state (the log replays idempotently).
The same directory carries over from trial to trial, so recovery also runs on top of earlier recoveries.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index_engines.collection import Collection
from index_engines.settings import PROJECT_ROOT

from . import crash_writer as w

WRITER = Path(w.__file__)
FRESH_EVERY = 5


def run_writer(path: Path, start: int, delay: float) -> list[int]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen([sys.executable, str(WRITER), str(path), str(start)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline().strip()
        assert first == "ready", f"writer did not start: {first!r} {proc.stderr.read() if proc.poll() else ''}"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, f"writer died on its own (rc={proc.returncode}):\n{err}"
    return [int(line.split()[1]) for line in out.splitlines() if line.startswith("ack ")]


def check_trial(col: Collection, start: int, acked: list[int], expected: dict) -> None:
    """Check this trial's batches and update `expected` (id -> vector of every item that must exist)."""
    last = acked[-1] if acked else start - 1
    assert acked == list(range(start, last + 1))
    in_flight = last + 1
    for b in range(start, in_flight + 1):
        if w.is_delete(b, start):
            if b == in_flight:
                gone = [g is None for g in col.get(w.batch_ids(b - 3))]
                assert all(gone) or not any(gone), f"delete batch {b} half applied"
                if not any(gone):  # the delete never happened: batch b - 3 must be intact
                    expected.update(zip(w.batch_ids(b - 3), w.batch_vectors(b - 3)))
            else:
                for key in w.batch_ids(b - 3):
                    expected.pop(key, None)
            continue
        got = col.get(w.batch_ids(b))
        present = [g is not None for g in got]
        if b == in_flight:
            assert all(present) or not any(present), f"batch {b} half written: {present}"
            if not any(present):
                continue
        deleted = w.is_delete(b + 3, start) and b + 3 < in_flight
        if deleted:
            assert not any(present), f"acknowledged delete of batch {b} lost"
            continue
        if b + 3 == in_flight and w.is_delete(b + 3, start):
            continue  # decided above by the in-flight delete
        assert all(present), f"acknowledged batch {b} lost items: {present}"
        for key, vector in zip(w.batch_ids(b), w.batch_vectors(b)):
            expected[key] = vector
    for key, item in zip(list(expected), col.get(list(expected))):
        assert item is not None, f"{key} lost"
        np.testing.assert_allclose(item["vector"], expected[key], atol=1e-6)
    assert len(col) == len(expected)


def state(col: Collection, queries: np.ndarray) -> tuple:
    res = col.search(vectors=queries, model_version=col.model_version, k=10, exact=True)
    return len(col), res.ids()


def crash_trials(tmp_path: Path, trials: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    expected: dict = {}
    queries = w.batch_vectors(123456)[:4]
    for t in range(trials):
        if t % FRESH_EVERY == 0:  # recovery on top of recovery, but a collection small enough to check fast
            path = tmp_path / f"crash-{t}"
            expected = {}
        start = (t + 1) * 1000
        t0 = time.perf_counter()
        acked = run_writer(path, start, float(rng.uniform(0.05, 0.9)))
        t1 = time.perf_counter()
        with Collection.open(path, background=False) as col:
            check_trial(col, start, acked, expected)
            first = state(col, queries)
        with Collection.open(path, background=False) as col:  # replay again: same state
            assert state(col, queries) == first
        print(f"trial {t}: writer {t1 - t0:.2f}s, {len(acked)} acked, checks {time.perf_counter() - t1:.2f}s")
    assert len(expected) > 0


@pytest.mark.timeout(120)
def test_sigkill_at_random_points_loses_no_acknowledged_write(tmp_path):
    crash_trials(tmp_path, trials=20, seed=1)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_many_trials(tmp_path):
    crash_trials(tmp_path, trials=100, seed=2)
