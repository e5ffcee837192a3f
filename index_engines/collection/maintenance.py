"""Background work of a collection, on one worker thread, in order: persist sealed segments (a checkpoint), build
their ANN indexes, compact shards, and monitor tombstones and recall.

- persist: write the sealed segments' directories, then the manifest with `applied_lsn` = the seal's LSN, then
  let the log drop the files behind it. Segments persist in seal order, so the checkpoint only moves forward.
- build: build the ANN engine of a persisted segment outside every lock, save it, then swap it in under the write
  lock and write the manifest. Until then queries scan the segment exactly.
- compact (per shard): merge the shard's indexed segments, drop rows whose tombstone is durable in the log,
  rebuild the ANN index, write the new segment, swap it in and write the manifest; tombstones that arrived during
  the build are carried over (row ids do not change). The old directories are deleted after the swap.
- monitor: after deletes, per shard: tombstone rate (dead / rows in indexed segments) above
  `rebuild_tombstone_rate` (default 10%), or probe recall@10 more than `rebuild_recall_drop` (2 points) below the
  post-build baseline, schedules a compaction (which rebuilds the index).
The manifest's tombstone list holds only tombstones at or below `applied_lsn`, so the files on disk are always
the state as of exactly that LSN; the log replays the rest.
"""
from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time

import numpy as np

from .filters import MatchAll
from .manifest import Manifest, SegmentEntry, write_manifest
from .routing import QueryPlan, search_segment
from .segments import (SEGMENTS_DIR, Segment, build_ann, probe_recall, remove_segment, segment_dir, write_ann,
                       write_segment)
from .wal import fsync_directory

log = logging.getLogger(__name__)
SECONDARY_DIR = "secondary"
RECALL_RECHECK = 0.01  # re-measure probe recall after tombstones grow by this fraction of a segment
TASK_PRIORITY = {"persist": 0, "build": 1, "monitor": 2, "compact": 3}
LAST = 99  # the stop sentinel runs after everything queued


class Maintenance:
    """Mixed into `Collection`: the worker thread and its tasks, checkpoints, secondary indexes, stats."""

    def _init_maintenance(self) -> None:
        self._tasks: queue.PriorityQueue = queue.PriorityQueue()
        self._task_seq = 0
        self._worker: threading.Thread | None = None
        self._cancel = False
        self._pending_compact: set[int] = set()
        self._monitor_pending = False
        self._worker_error: BaseException | None = None
        self.events: list[dict] = []  # seals, builds, compactions and their reasons, for stats and tests
        self._tombstone_file = self._manifest.tombstones
        self._generation = self._manifest.generation

    # ------------------------------------------------------------------------------------------ the worker
    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._work, name=f"collection-{self.config.name}", daemon=True)
        self._worker.start()

    def _enqueue(self, task: tuple) -> None:
        # Checkpoints first (cheap, and they let the log shrink), then index builds, then the rest; FIFO within
        # a kind, so segments persist in seal order.
        self._task_seq += 1
        self._tasks.put((TASK_PRIORITY[task[0]], self._task_seq, task))

    def _work(self) -> None:
        while True:
            _, _, task = self._tasks.get()
            try:
                if task is None:
                    return
                self._run_task(task)
            finally:
                self._tasks.task_done()

    def _run_task(self, task: tuple) -> None:
        if self._cancel and task[0] != "persist":
            return
        try:
            getattr(self, f"_task_{task[0]}")(*task[1:])
        except BaseException as exc:  # keep the worker alive; surface the error on wait_idle / stats
            log.exception("background task %s of collection %s failed", task[0], self.config.name)
            self._worker_error = exc

    def _run_inline(self) -> None:
        """Without a worker thread (`background=False`): run the queued tasks in the calling thread."""
        while True:
            try:
                _, _, task = self._tasks.get_nowait()
            except queue.Empty:
                return
            try:
                if task is not None:
                    self._run_task(task)
            finally:
                self._tasks.task_done()

    def _stop_worker(self, finish_builds: bool) -> None:
        if self._worker is None:
            self._cancel = not finish_builds
            self._run_inline()  # persist what is sealed; builds too if asked
            return
        if finish_builds:
            self._tasks.join()
        self._cancel = not finish_builds
        self._tasks.put((LAST, 0, None))
        self._worker.join()
        self._worker = None

    def wait_idle(self) -> None:
        """Block until every queued background task (persist, build, compact, monitor) is done."""
        self._check_open()
        if self._worker is None:
            self._run_inline()
        self._tasks.join()
        if self._worker_error is not None:
            exc, self._worker_error = self._worker_error, None
            raise RuntimeError(f"a background task of collection {self.config.name!r} failed: {exc}") from exc

    def flush(self, wait: bool = True) -> None:
        """Seal the growing segments now and checkpoint; with `wait`, also wait for their ANN indexes."""
        self._check_open()
        with self._rw.write():
            self._seal_growing()
        if wait:
            self.wait_idle()

    def compact(self, shard: int | None = None, wait: bool = True) -> None:
        """Seal the growing segments, then merge each shard's segments into one, dropping tombstones and
        rebuilding the index (all shards by default)."""
        self._check_open()
        with self._rw.write():
            self._seal_growing()
        for s in range(self.config.shards) if shard is None else [shard]:
            self._schedule_compaction(s, "requested")
        if wait:
            self.wait_idle()

    def _schedule_compaction(self, shard: int, reason: str) -> None:
        if shard in self._pending_compact:
            return
        self._pending_compact.add(shard)
        self.events.append({"event": "compaction_scheduled", "shard": shard, "reason": reason, "time": time.time()})
        self._enqueue(("compact", shard))

    # ------------------------------------------------------------------------------------------ sealing
    def _seal_growing(self) -> None:
        """(Under the write lock.) Seal every shard's growing segment at the current LSN; persist in background."""
        sealed = []
        for s, seg in enumerate(self._growing):
            if seg is not None and len(seg):
                seg.flat.vectors  # consolidate appended chunks while no one else touches the segment
                seg.sealed = True
                sealed.append(seg)
            self._growing[s] = None
        self.events.append({"event": "seal", "segments": [s.id for s in sealed], "lsn": self._last_lsn,
                            "time": time.time()})
        self._enqueue(("persist", sealed, self._last_lsn, self._next_row))

    def _note_tombstones(self) -> None:
        if not self._monitor_pending and (self.config.rebuild_tombstone_rate or self.config.rebuild_recall_drop):
            self._monitor_pending = True
            self._enqueue(("monitor",))

    # ------------------------------------------------------------------------------------------ tasks
    def _task_persist(self, segments: list[Segment], lsn: int, next_row: int) -> None:
        durable = self.config.fsync != "never"
        records = self._store.records
        for seg in segments:
            write_segment(self.path, seg, [records[r] for r in seg.rows.tolist()], durable)
        with self._rw.write():
            for seg in segments:
                seg.persisted = True
            self._applied_lsn = max(self._applied_lsn, lsn)
            self._persisted_next_row = next_row
            snapshot = self._snapshot()
        self._write_snapshot(snapshot)
        self._wal.checkpoint(self._applied_lsn)
        for seg in segments:
            self._enqueue(("build", seg))

    def _task_build(self, seg: Segment) -> None:
        if seg.id not in self._segments or seg.ann is not None:
            return
        t0 = time.perf_counter()
        ann = build_ann(self.config.engine, self.config.dim, self.config.engine_params, seg.flat.vectors, seg.rows)
        write_ann(self.path, seg, ann, self.config.fsync != "never")
        with self._rw.write():
            if seg.id not in self._segments:  # compacted away meanwhile
                return
            seg.ann = ann
        self._measure_baseline(seg)
        with self._rw.write():
            snapshot = self._snapshot()
        self._write_snapshot(snapshot)
        self.events.append({"event": "built", "segment": seg.id, "shard": seg.shard, "count": len(seg),
                            "seconds": time.perf_counter() - t0, "time": time.time()})
        indexed = sum(1 for s in self._shards[seg.shard] if s.ann is not None)
        if indexed > self.config.max_segments:
            self._schedule_compaction(seg.shard, f"{indexed} indexed segments > max_segments {self.config.max_segments}")

    def _task_compact(self, shard: int) -> None:
        self._pending_compact.discard(shard)
        self._wal.sync()  # tombstones up to here are durable: their rows may be dropped
        durable_lsn = self._wal.durable_lsn
        t0 = time.perf_counter()
        with self._rw.read():
            inputs = [s for s in self._shards[shard] if s.persisted and s.ann is not None]
            if not inputs or (len(inputs) == 1 and not inputs[0].dead):
                return
            rows = np.concatenate([s.rows for s in inputs])
            vectors = np.concatenate([s.flat.vectors for s in inputs])
            dropped = np.array(sorted(r for s in inputs for r, lsn in s.dead.items() if lsn <= durable_lsn),
                               np.int64)
            keep = ~np.isin(rows, dropped)
            order = np.argsort(rows[keep], kind="stable")
            rows, vectors = rows[keep][order], vectors[keep][order]
            records = [self._store.records[r] for r in rows.tolist()]
            new = Segment(self._next_segment, shard, self.config.dim, self.model_version)
            self._next_segment += 1
        durable = self.config.fsync != "never"
        if len(rows):
            new.flat.add(vectors, rows)
            new.sealed = True
            new.ann = build_ann(self.config.engine, self.config.dim, self.config.engine_params, vectors, rows)
            write_segment(self.path, new, records, durable)
            write_ann(self.path, new, new.ann, durable)
            self._measure_baseline(new)
        with self._rw.write():
            gone = set(dropped.tolist())
            for s in inputs:
                new.dead.update((r, lsn) for r, lsn in s.dead.items() if r not in gone)
                del self._segments[s.id]
            self._shards[shard] = [s for s in self._shards[shard] if s not in inputs]
            if len(rows):
                new.persisted = True
                self._register(new)
            self._store.drop_rows(dropped)
            snapshot = self._snapshot()
        self._write_snapshot(snapshot)
        for s in inputs:
            remove_segment(self.path, s.id)
        for index in self._secondary:
            with self._rw.write():
                index.compact()
        self.events.append({"event": "compacted", "shard": shard, "inputs": [s.id for s in inputs],
                            "output": new.id if len(rows) else None, "dropped": len(dropped), "kept": len(rows),
                            "seconds": time.perf_counter() - t0, "time": time.time()})

    def _task_monitor(self) -> None:
        self._monitor_pending = False
        rate_limit, drop_limit = self.config.rebuild_tombstone_rate, self.config.rebuild_recall_drop
        with self._rw.read():
            plans = []
            for shard, segs in enumerate(self._shards):
                indexed = [s for s in segs if s.persisted and s.ann is not None]
                total = sum(len(s) for s in indexed)
                dead = sum(len(s.dead) for s in indexed)
                if rate_limit and total and dead / total > rate_limit:
                    plans.append((shard, f"tombstone rate {dead / total:.3f} > {rate_limit}"))
                    continue
                if not drop_limit:
                    continue
                for seg in indexed:
                    if seg.recall_baseline is None or len(seg.dead) - seg.recall_checked_dead < max(
                            1, RECALL_RECHECK * len(seg)):
                        continue
                    recall = self._probe(seg)
                    seg.recall_checked_dead = len(seg.dead)
                    seg.last_recall = recall
                    if recall is not None and seg.recall_baseline - recall > drop_limit:
                        plans.append((shard, f"probe recall {recall:.3f} < baseline {seg.recall_baseline:.3f} - "
                                             f"{drop_limit}"))
                        break
        for shard, reason in plans:
            self._schedule_compaction(shard, reason)

    def _probe(self, seg: Segment) -> float | None:
        """(Under a lock.) Probe recall@10 of the segment's live rows through the normal search path."""
        plan = QueryPlan(self._store, MatchAll(), self.policy)
        return probe_recall(seg, lambda q, k: search_segment(seg, q, k, plan, self.query_params).rows,
                            self._store.alive)

    def _measure_baseline(self, seg: Segment) -> None:
        with self._rw.read():
            seg.recall_baseline = self._probe(seg)
            seg.recall_checked_dead = len(seg.dead)

    # ------------------------------------------------------------------------------------------ manifest
    def _snapshot(self) -> tuple[Manifest, np.ndarray]:
        """(Under the write lock.) The manifest of the persisted state, and its tombstones (row, LSN)."""
        persisted = [s for shard in self._shards for s in shard if s.persisted]
        tombs = [(r, lsn) for s in persisted for r, lsn in s.dead.items() if lsn <= self._applied_lsn]
        self._generation += 1
        m = Manifest(config=self._manifest.config, applied_lsn=self._applied_lsn,
                     next_row=self._persisted_next_row,
                     next_segment=self._next_segment, generation=self._generation,
                     segments=[SegmentEntry(s.id, s.shard, len(s), s.ann is not None, s.recall_baseline)
                               for s in persisted],
                     tombstones=f"tombstones-{self._generation:08d}.npy" if tombs else None,
                     schema={k: v for k, v in self._store.schema.items() if k != "tenant"})
        return m, np.array(sorted(tombs), np.int64).reshape(-1, 2)

    def _write_snapshot(self, snapshot: tuple[Manifest, np.ndarray]) -> None:
        """(Worker thread only.) Tombstone file first, then the manifest that names it (both atomic)."""
        manifest, tombs = snapshot
        durable = self.config.fsync != "never"
        if manifest.tombstones:
            path = self.path / manifest.tombstones
            tmp = path.with_name(f".{path.name}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, tombs)
                f.flush()
                if durable:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        write_manifest(self.path, manifest)
        old = self._tombstone_file
        self._tombstone_file = manifest.tombstones
        self._manifest = manifest
        if old and old != manifest.tombstones:
            (self.path / old).unlink(missing_ok=True)

    def _remove_orphans(self, manifest: Manifest) -> None:
        """Files the manifest does not name: written just before a crash, or replaced and not yet removed."""
        names = {segment_dir(self.path, e.id).name for e in manifest.segments}
        root = self.path / SEGMENTS_DIR
        if root.exists():
            for d in root.iterdir():
                if d.name not in names:
                    shutil.rmtree(d, ignore_errors=True)
        for f in self.path.glob("*tombstones-*.npy*"):
            if f.name != manifest.tombstones:
                f.unlink(missing_ok=True)
        for f in self.path.glob(".manifest.json.tmp"):
            f.unlink(missing_ok=True)
        fsync_directory(self.path)

    # ------------------------------------------------------------------------------------------ secondary
    def attach_secondary(self, index) -> None:
        """Plug in an index that follows the write path (see the protocol in `collection.py`). Its saved state
        is used if it reflects exactly the collection's last LSN; otherwise it is cleared and rebuilt from the
        live items."""
        self._check_open()
        directory = self.path / SECONDARY_DIR / index.name
        with self._rw.write():
            lsn = index.load(directory) if directory.exists() else None
            if lsn != self._last_lsn:
                index.clear()
                rows = np.flatnonzero(self._store.alive[:self._store.n_rows])
                for start in range(0, len(rows), 10_000):
                    chunk = rows[start:start + 10_000]
                    recs = [self._store.records[r] for r in chunk.tolist()]
                    index.upsert(chunk, [r[0] for r in recs], [r[3] for r in recs], [r[2] for r in recs],
                                 [r[1] for r in recs])
            self._secondary.append(index)

    def _save_secondary(self) -> None:
        for index in self._secondary:
            index.save(self.path / SECONDARY_DIR / index.name, self._last_lsn)

    # ------------------------------------------------------------------------------------------ stats
    def stats(self) -> dict:
        """Counts, segments, tombstone rates per shard, log positions, background state."""
        self._check_open()
        with self._rw.read():
            shards = []
            for shard, segs in enumerate(self._shards):
                indexed = [s for s in segs if s.ann is not None]
                total = sum(len(s) for s in indexed)
                shards.append({"shard": shard, "live": sum(s.n_live for s in segs),
                               "tombstones": sum(len(s.dead) for s in segs),
                               "tombstone_rate": (sum(len(s.dead) for s in indexed) / total) if total else 0.0,
                               "segments": [s.describe() for s in segs]})
            return {"name": self.config.name, "model_version": self.model_version, "metric": self.config.metric,
                    "dim": self.config.dim, "engine": self.config.engine, "count": self._store.n_alive,
                    "shards": shards, "applied_lsn": self._applied_lsn, "last_lsn": self._last_lsn,
                    "durable_lsn": self._wal.durable_lsn, "wal_bytes": self._wal.size_bytes(),
                    "pending_tasks": self._tasks.unfinished_tasks,
                    "worker_error": None if self._worker_error is None else str(self._worker_error),
                    "schema": dict(self._store.schema), "events": list(self.events[-50:])}

