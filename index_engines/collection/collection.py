"""`Collection`: a versioned, durable, filterable set of items over the engines of `index_engines.engines`.

The path of a write (`upsert`, `delete`):
  validate the whole batch (ids, version parity, vectors, metadata types and size, tenants) ─► assign row ids ─►
  append to the write-ahead log (fsync by policy) ─► apply in memory: tombstone old versions, add to the shard's
  growing segment (searched exactly, so a write is visible to the next search), index the payload, call the
  secondary indexes ─► acknowledge. A growing segment that reaches `seal_items` seals the growing segments of all
  shards at that LSN; the background worker persists them, advances the checkpoint (manifest `applied_lsn`,
  WAL files behind it deleted), builds their ANN indexes and swaps them in (`maintenance.py`).

The path of a query (`search`):
  encode text with the pinned model (or check a vector's `model_version`) ─► compile the filter, AND the tenant
  scope at the root ─► estimate selectivity from the inverted index, choose a route (`routing.py`) ─► search every
  segment of every shard (shards in parallel), merge top-k by (score desc, row asc) ─► results with `id`, `score`,
  `model_version`, `tenant` (+ metadata / text on request), and `route`, `degraded`, `coverage`, timings.

Concurrency: a readers-writer lock; searches share it, a write batch or a segment swap holds it alone (briefly:
index builds and compaction run outside it). One open `Collection` per directory (a file lock).

Secondary indexes (the hook for BM25 and any other index that follows the write path): objects with
```
name: str                                      # their directory: <collection>/secondary/<name>/
upsert(rows, ids, texts, metadatas, tenants)   # new rows (ascending int64 row ids) with their external ids;
                                               #   texts may hold None (vector-only items)
delete(rows, ids)                              # rows tombstoned (deleted, or replaced by an upsert: the
                                               #   collection calls delete for the old version before upsert)
save(directory, lsn)                           # on close: persist state reflecting `lsn`
load(directory) -> int | None                  # on attach: restore, return the LSN saved (None: nothing saved)
compact()                                      # after a compaction: drop tombstoned data
```
`attach_secondary(index)` loads the index; unless its saved LSN is the collection's last LSN (a clean close), it is
cleared and rebuilt from the live items (texts are kept in the payload store), so a crash never leaves it stale. Calls happen under the write
lock, in LSN order; replay after a crash may repeat a call the index already saw, so `upsert` of a row it holds
and `delete` of a row it lacks must be no-ops. Searches use `allowed_rows(filter, tenant)` and `describe_rows`.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..engines import engine_class
from ..engines.base import check_k, check_vectors
from . import maintenance
from .errors import CollectionClosedError, CollectionError, CollectionExistsError, TenantError, VersionParityError
from .filters import compile_filter, tenant_scoped
from .ids import IdMap, check_keys, shard_of
from .items import as_items, check_model_version, check_text, item_vectors, unit_rows
from .locks import DirectoryLock, RWLock
from .manifest import METRICS, CollectionConfig, Manifest, read_manifest, write_manifest
from .payload import PayloadStore, check_schema, check_tenant
from .routing import QueryPlan, RoutingPolicy, merge_top_k, search_segment
from .segments import Segment, read_segment
from .wal import FSYNC_POLICIES, WriteAheadLog

log = logging.getLogger(__name__)
WAL_DIR = "wal"


@dataclass(frozen=True)
class WriteResult:
    lsn: int  # the batch's log sequence number (0: nothing written)
    count: int  # items written (upsert) or deleted (delete)


@dataclass
class SearchResponse:
    hits: list[list[dict]]  # per query: {id, score, model_version, tenant[, metadata, text]}, best first
    route: str
    selectivity: float  # estimated fraction of live items the filter allows (1.0 unfiltered)
    allowed_estimate: int
    degraded: bool
    coverage: float
    model_version: str
    timings: dict
    methods: dict = field(default_factory=dict)  # segment searches by method
    fallbacks: int = 0  # segment searches that fell back to an exact scan to fill k
    rows: np.ndarray | None = None  # (n_q, k) internal row ids, -1 padding (benchmarks compare these)
    scores: np.ndarray | None = None

    def ids(self) -> list[list]:
        return [[h["id"] for h in hits] for hits in self.hits]


class Collection(maintenance.Maintenance):
    # ------------------------------------------------------------------------------------------ lifecycle
    @classmethod
    def create(cls, path, *, model: str = "minilm-l6-v2", metric: str = "cosine", shards: int = 1,
               engine: str = "hnsw", engine_params: dict | None = None, query_params: dict | None = None,
               seal_items: int = 20_000, fsync: str = "always", fsync_interval_s: float = 1.0,
               payload_schema: dict | None = None, max_payload_bytes: int = 64 * 1024,
               default_tenant: str = "default", rebuild_tombstone_rate: float | None = 0.10,
               rebuild_recall_drop: float | None = 0.02, max_segments: int = 8, routing: dict | None = None,
               secondary=(), background: bool = True) -> "Collection":
        """A new, empty collection in directory `path`, pinned to `model` (its id and fingerprint)."""
        from ..models import fingerprint, get_spec

        path = Path(path)
        if (path / "manifest.json").exists():
            raise CollectionExistsError(f"a collection already exists at {path}; open it with Collection.open, or "
                                        f"remove the directory to start over")
        spec = get_spec(model)
        fp = fingerprint(spec)
        if metric not in METRICS:
            raise CollectionError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 256:
            raise CollectionError(f"shards must be an integer in 1..256, got {shards!r}")
        if fsync not in FSYNC_POLICIES:
            raise CollectionError(f"unknown fsync policy {fsync!r}; valid policies: {', '.join(FSYNC_POLICIES)}")
        if not isinstance(fsync_interval_s, (int, float)) or not fsync_interval_s > 0:
            raise CollectionError(f"fsync_interval_s must be a positive number of seconds, got {fsync_interval_s!r}")
        for name, value in (("seal_items", seal_items), ("max_segments", max_segments),
                            ("max_payload_bytes", max_payload_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CollectionError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("rebuild_tombstone_rate", rebuild_tombstone_rate),
                            ("rebuild_recall_drop", rebuild_recall_drop)):
            if value is not None and not 0 < value < 1:
                raise CollectionError(f"{name} must be in (0, 1) or None (never), got {value!r}")
        cls_ = engine_class(engine)
        cls_(spec.dim, **(engine_params or {}))  # unknown engine parameters fail now, not in a background build
        cls_.query_spec.resolve(query_params, engine)
        RoutingPolicy.from_dict(routing)
        check_tenant(default_tenant)
        config = CollectionConfig(
            name=path.name, model_id=spec.id, model_fingerprint=fp, model_version=f"{spec.id}@{fp[:12]}",
            dim=spec.dim, metric=metric, shards=shards, engine=engine, engine_params=dict(engine_params or {}),
            query_params=dict(query_params or {}), seal_items=seal_items, fsync=fsync,
            fsync_interval_s=fsync_interval_s, max_payload_bytes=max_payload_bytes, default_tenant=default_tenant,
            rebuild_tombstone_rate=rebuild_tombstone_rate, rebuild_recall_drop=rebuild_recall_drop,
            max_segments=max_segments, routing=dict(routing or {}))
        schema = check_schema(payload_schema)
        path.mkdir(parents=True, exist_ok=True)
        write_manifest(path, Manifest(config=config, schema=schema))
        return cls.open(path, secondary=secondary, background=background)

    @classmethod
    def open(cls, path, *, fsync: str | None = None, secondary=(), background: bool = True) -> "Collection":
        """Open the collection in `path`: load the manifest's segments, replay the log after its checkpoint.
        `background=False`: no worker thread; persistence, builds and compactions run in the caller's thread
        when it calls `flush`, `compact`, `wait_idle` or `close` (tools, tests)."""
        path = Path(path)
        manifest = read_manifest(path)
        col = cls.__new__(cls)
        col._init(path, manifest, fsync, background)
        for index in secondary:
            col.attach_secondary(index)
        return col

    def _init(self, path: Path, manifest: Manifest, fsync: str | None, background: bool) -> None:
        self.path = path
        self._dirlock = DirectoryLock(path)
        try:
            self._load(manifest, fsync, background)
        except BaseException:
            self._dirlock.release()
            raise

    def _load(self, manifest: Manifest, fsync: str | None, background: bool) -> None:
        cfg = manifest.config if fsync is None else replace(manifest.config, fsync=fsync)
        self.config = cfg
        self.policy = RoutingPolicy.from_dict(cfg.routing)
        self.query_params = engine_class(cfg.engine).query_spec.resolve(cfg.query_params, cfg.engine)
        self._rw = RWLock()
        self._closed = False
        self._model_obj = None
        self._secondary: list = []
        self._store = PayloadStore(manifest.schema, cfg.max_payload_bytes)
        self._ids = IdMap()
        self._segments: dict[int, Segment] = {}
        self._seg_of_row = np.full(0, -1, np.int32)
        self._shards: list[list[Segment]] = [[] for _ in range(cfg.shards)]
        self._growing: list[Segment | None] = [None] * cfg.shards
        self._manifest = manifest
        self._applied_lsn = manifest.applied_lsn  # checkpoint: reflected in persisted segments
        self._last_lsn = manifest.applied_lsn  # last record applied in memory
        self._next_row = manifest.next_row
        self._persisted_next_row = manifest.next_row  # rows below it are in persisted segments (or dead)
        self._next_segment = manifest.next_segment
        self._pool = ThreadPoolExecutor(cfg.shards, thread_name_prefix="shard") if cfg.shards > 1 else None
        self._init_maintenance()
        self._remove_orphans(manifest)
        self._load_segments(manifest)
        self._wal, records = WriteAheadLog.open(self.path / WAL_DIR, cfg.fsync, cfg.fsync_interval_s,
                                                after_lsn=manifest.applied_lsn)
        for rec in records:
            self._replay(rec)
        for seg in self._segments.values():
            if seg.persisted and seg.ann is None:
                self._enqueue(("build", seg))
        if any(seg.dead for seg in self._segments.values()):
            self._note_tombstones()  # a rebuild the last session did not get to
        if background:
            self._start_worker()

    def _load_segments(self, manifest: Manifest) -> None:
        loaded = []
        for entry in manifest.segments:
            seg, records = read_segment(self.path, entry.id, entry.shard, self.config.model_version, entry.indexed)
            seg.recall_baseline = entry.recall_baseline
            self._register(seg)
            loaded.append((seg.rows, records))
        if loaded:
            rows = np.concatenate([r for r, _ in loaded])
            recs = [rec for _, records in loaded for rec in records]
            order = np.argsort(rows, kind="stable")
            rows = rows[order]
            recs = [recs[i] for i in order]
            self._store.add(rows, [r[0] for r in recs], [r[1] for r in recs], [r[2] for r in recs],
                            [r[3] for r in recs])
            for row, rec in zip(rows.tolist(), recs):
                self._ids.set(rec[0], row)
        if manifest.tombstones:
            dead = np.load(self.path / manifest.tombstones)
            for row, lsn in dead.tolist():
                self._kill(row, lsn)

    def _register(self, seg: Segment) -> None:
        self._segments[seg.id] = seg
        self._shards[seg.shard].append(seg)
        rows = seg.rows
        if len(rows):
            self._seg_of_row = _grow(self._seg_of_row, int(rows.max()) + 1)
            self._seg_of_row[rows] = seg.id

    def close(self, wait_for_index: bool = False) -> None:
        """Finish pending persistence (and index builds if `wait_for_index`), fsync the log, release the
        directory. Unbuilt indexes are rebuilt at the next open; the growing segments replay from the log."""
        if self._closed:
            return
        self._stop_worker(finish_builds=wait_for_index)
        with self._rw.write():
            self._closed = True
        self._save_secondary()
        self._wal.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._dirlock.release()

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise CollectionClosedError(f"collection {self.config.name!r} is closed; open it again with "
                                        f"Collection.open({str(self.path)!r})")

    @property
    def model_version(self) -> str:
        return self.config.model_version

    @property
    def name(self) -> str:
        return self.config.name

    def __len__(self) -> int:
        return self._store.n_alive

    # ------------------------------------------------------------------------------------------ the model
    def model(self):
        """The pinned embedding model, loaded once; refused if the installed one has another fingerprint."""
        if self._model_obj is None:
            from ..embedding import load_model

            m = load_model(self.config.model_id)
            if m.fingerprint != self.config.model_fingerprint:
                raise VersionParityError(
                    f"the installed {self.config.model_id!r} has fingerprint {m.fingerprint[:12]}, but collection "
                    f"{self.name!r} is pinned to {self.config.model_fingerprint[:12]}; install the pinned model "
                    f"version or migrate the collection to the new one")
            self._model_obj = m
        return self._model_obj

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model().encode(texts, show_progress=len(texts) > 4096)

    # ------------------------------------------------------------------------------------------ writes
    def upsert(self, items) -> WriteResult:
        """Insert or replace items (all or none of the batch); durable per the fsync policy when it returns."""
        self._check_open()
        items = as_items(items)
        if not items:
            return WriteResult(0, 0)
        keys = check_keys([it.id for it in items])
        texts = [check_text(i, it.text) for i, it in enumerate(items)]
        tenants = [check_tenant(self.config.default_tenant if it.tenant is None else it.tenant) for it in items]
        vectors = item_vectors(items, texts, self.config.dim, self.model_version, self._encode,
                               self.config.metric == "cosine")
        with self._rw.write():
            self._check_open()
            new_fields: dict[str, str] = {}
            metas = [self._store.check(it.metadata, new_fields) for it in items]
            self._check_tenants(keys, tenants)
            rows = np.arange(self._next_row, self._next_row + len(items), dtype=np.int64)
            header = {"v": self.model_version, "items": [[k, int(r), t, m, x] for k, r, t, m, x in
                                                         zip(keys, rows.tolist(), tenants, metas, texts)]}
            lsn = self._wal.append("upsert", header, vectors.tobytes())
            self._apply_upsert(lsn, keys, rows, tenants, metas, texts, vectors)
        return WriteResult(lsn, len(items))

    def delete(self, ids, tenant: str | None = None) -> WriteResult:
        """Delete items by id (ids not stored are ignored). With `tenant`, ids of another tenant are refused."""
        self._check_open()
        keys = check_keys(ids)
        if tenant is not None:
            check_tenant(tenant)
        with self._rw.write():
            self._check_open()
            rows = self._ids.rows_of(keys)
            found = [(k, int(r)) for k, r in zip(keys, rows.tolist()) if r >= 0]
            if tenant is not None:
                foreign = [k for k, r in found if self._store.records[r][1] != tenant]
                if foreign:
                    raise TenantError(f"id {foreign[0]!r} does not belong to tenant {tenant!r}; nothing deleted")
            if not found:
                return WriteResult(0, 0)
            lsn = self._wal.append("delete", {"items": [[k, r] for k, r in found]})
            self._apply_delete(lsn, found)
        return WriteResult(lsn, len(found))

    def _check_tenants(self, keys: list, tenants: list[str]) -> None:
        rows = self._ids.rows_of(keys)
        for key, row, tenant in zip(keys, rows.tolist(), tenants):
            if row >= 0 and self._store.records[row][1] != tenant:
                raise TenantError(f"id {key!r} already belongs to another tenant; ids are unique in a collection "
                                  f"and an upsert cannot move an item between tenants (delete it first)")

    def _apply_upsert(self, lsn, keys, rows, tenants, metas, texts, vectors) -> None:
        old = self._ids.rows_of(keys)
        replaced = [(k, int(r)) for k, r in zip(keys, old.tolist()) if r >= 0]
        if replaced:
            self._apply_delete(lsn, replaced, log_position=False)
        shard_ids = np.array([shard_of(k, self.config.shards) for k in keys])
        for s in np.unique(shard_ids).tolist():
            sel = np.flatnonzero(shard_ids == s)
            seg = self._growing[s]
            if seg is None:
                seg = self._growing[s] = self._new_segment(s)
                self._register(seg)
            seg.add(vectors[sel], rows[sel])
            self._seg_of_row = _grow(self._seg_of_row, int(rows[sel].max()) + 1)
            self._seg_of_row[rows[sel]] = seg.id
        self._store.add(rows, keys, tenants, metas, texts)
        for k, r in zip(keys, rows.tolist()):
            self._ids.set(k, r)
        self._next_row = max(self._next_row, int(rows[-1]) + 1)
        self._last_lsn = lsn
        for index in self._secondary:
            index.upsert(rows, keys, texts, metas, tenants)
        if any(g is not None and len(g) >= self.config.seal_items for g in self._growing):
            self._seal_growing()

    def _apply_delete(self, lsn, found: list[tuple], log_position: bool = True) -> None:
        rows = []
        for key, row in found:
            if self._kill(row, lsn):
                rows.append(row)
            if self._ids.get(key) == row:
                self._ids.pop(key)
        if rows:
            killed = set(rows)
            for index in self._secondary:
                index.delete(np.array(rows, np.int64), [k for k, r in found if r in killed])
            self._note_tombstones()
        if log_position:
            self._last_lsn = lsn

    def _kill(self, row: int, lsn: int) -> bool:
        """Tombstone one row; False if it is already dead or unknown."""
        if row >= len(self._seg_of_row) or self._seg_of_row[row] < 0:
            return False
        seg = self._segments[int(self._seg_of_row[row])]
        if row in seg.dead:
            return False
        seg.dead[row] = lsn
        self._store.kill(np.array([row]))
        return True

    def _replay(self, rec) -> None:
        if rec.kind == "upsert":
            if rec.header["v"] != self.model_version:
                raise VersionParityError(f"log record {rec.lsn} holds vectors of {rec.header['v']!r}, but the "
                                         f"collection is pinned to {self.model_version!r}")
            items = rec.header["items"]
            vectors = np.frombuffer(rec.blob, np.float32).reshape(len(items), self.config.dim)
            keys = [it[0] for it in items]
            rows = np.array([it[1] for it in items], np.int64)
            new_fields: dict[str, str] = {}
            metas = [self._store.check(it[3], new_fields) for it in items]
            self._apply_upsert(rec.lsn, keys, rows, [it[2] for it in items], metas, [it[4] for it in items],
                               vectors)
        else:
            self._apply_delete(rec.lsn, [(k, int(r)) for k, r in rec.header["items"]])
        self._last_lsn = rec.lsn

    def _new_segment(self, shard: int) -> Segment:
        seg = Segment(self._next_segment, shard, self.config.dim, self.model_version)
        self._next_segment += 1
        return seg

    # ------------------------------------------------------------------------------------------ reads
    def query_vectors(self, query=None, vectors=None, model_version: str | None = None) -> np.ndarray:
        """Query text(s) encoded with the pinned model, or vectors checked for version parity."""
        if (query is None) == (vectors is None):
            raise CollectionError("give either query text(s) or vectors (with model_version), not both or none")
        if query is not None:
            if model_version is not None:  # a caller that says which model it expects gets it checked
                check_model_version(model_version, self.model_version, "the query")
            texts = [query] if isinstance(query, str) else list(query)
            q = self._encode(texts)
        else:
            if model_version is None:
                raise VersionParityError(f"query vectors need a model_version; this collection is pinned to "
                                         f"{self.model_version!r}")
            check_model_version(model_version, self.model_version, "the query vector")
            q = check_vectors(vectors, self.config.dim, "query vectors")
        return unit_rows(q, "query vectors") if self.config.metric == "cosine" else q

    def search(self, query=None, *, vectors=None, model_version: str | None = None, k: int = 10, filter=None,
               tenant: str | None = None, params: dict | None = None, exact: bool = False, route: str | None = None,
               with_payload: bool = False, timeout_s: float | None = None) -> SearchResponse:
        """Top-k live items per query. `tenant` scopes the search to one tenant; `filter` is the JSON filter
        language (`filters.py`); `exact=True` scans exactly (the oracle); `route` forces a route (benchmarks)."""
        t0 = time.perf_counter()
        self._check_open()
        q = self.query_vectors(query, vectors, model_version)
        k = check_k(k)
        qp = engine_class(self.config.engine).query_spec.resolve({**self.config.query_params, **(params or {})},
                                                                  self.config.engine)
        with self._rw.read():
            self._check_open()
            plan = self._plan(filter, tenant, exact, route)
            t1 = time.perf_counter()
            scores, rows, degraded, coverage, methods, fallbacks = self._scatter(q, k, plan, qp, timeout_s)
            t2 = time.perf_counter()
            hits = self.describe_rows(rows, scores, with_payload)
        t3 = time.perf_counter()
        return SearchResponse(
            hits=hits, route=plan.route, selectivity=plan.selectivity, allowed_estimate=plan.allowed_estimate,
            degraded=degraded, coverage=coverage, model_version=self.model_version,
            timings={"plan_ms": (t1 - t0) * 1e3, "search_ms": (t2 - t1) * 1e3, "fetch_ms": (t3 - t2) * 1e3,
                     "total_ms": (t3 - t0) * 1e3},
            methods=methods, fallbacks=fallbacks, rows=rows, scores=scores)

    def _plan(self, filter, tenant, exact=False, route=None) -> QueryPlan:
        node = compile_filter(filter, self._store)
        if tenant is not None:
            node = tenant_scoped(node, check_tenant(tenant))
        return QueryPlan(self._store, node, self.policy, exact=exact, route=route)

    def _scatter(self, q, k, plan, qp, timeout_s):
        shards = [(s, list(segs)) for s, segs in enumerate(self._shards) if segs]
        methods: dict[str, int] = {}
        fallbacks = 0

        def one_shard(segs):
            return [search_segment(seg, q, k, plan, qp) for seg in segs if len(seg)]

        if self._pool is None or len(shards) <= 1:
            results = [one_shard(segs) for _, segs in shards]
        else:
            futures = [self._pool.submit(one_shard, segs) for _, segs in shards]
            done, _ = wait(futures, timeout=timeout_s)
            results = []
            for f in futures:
                try:
                    results.append(f.result() if f in done else None)
                except Exception:  # a failing shard degrades the answer; it never reaches the caller
                    log.exception("a shard of %s failed; left out of the answer", self.name)
                    results.append(None)
        held = answered = 0
        answers = []
        for (_, segs), res in zip(shards, results):
            live = sum(seg.n_live for seg in segs)
            held += live
            if res is None:
                continue
            answered += live
            for a in res:
                methods[a.method] = methods.get(a.method, 0) + 1
                fallbacks += a.fallback
                answers.append((a.scores, a.rows))
        scores, rows = merge_top_k(answers, len(q), k)
        coverage = answered / held if held else 1.0
        return scores, rows, answered < held, coverage, methods, fallbacks

    def describe_rows(self, rows: np.ndarray, scores: np.ndarray, with_payload: bool = False) -> list[list[dict]]:
        """Result dicts for row ids (as returned by a search)."""
        out = []
        records = self._store.records
        for row_list, score_list in zip(rows.tolist(), scores.tolist()):
            hits = []
            for row, score in zip(row_list, score_list):
                if row < 0:
                    continue
                key, tenant, meta, text = records[row]
                hit = {"id": key, "score": score, "model_version": self.model_version, "tenant": tenant}
                if with_payload:
                    hit["metadata"] = meta
                    hit["text"] = text
                hits.append(hit)
            out.append(hits)
        return out

    def get(self, ids, tenant: str | None = None) -> list[dict | None]:
        """Stored items by id (None where absent, or owned by another tenant when `tenant` is given)."""
        self._check_open()
        keys = check_keys(ids, "request")
        with self._rw.read():
            out = []
            for key, row in zip(keys, self._ids.rows_of(keys).tolist()):
                rec = self._store.record(row) if row >= 0 else None
                if rec is None or (tenant is not None and rec[1] != tenant):
                    out.append(None)
                    continue
                seg = self._segments[int(self._seg_of_row[row])]
                vector = seg.flat.vectors[int(seg.flat.positions_of(np.array([row]))[0])]
                out.append({"id": rec[0], "tenant": rec[1], "metadata": rec[2], "text": rec[3],
                            "model_version": self.model_version, "vector": vector.copy()})
            return out

    def count(self, filter=None, tenant: str | None = None) -> int:
        """Live items matching the filter (exactly)."""
        self._check_open()
        with self._rw.read():
            return len(self._plan(filter, tenant).allowed_rows())

    def allowed_rows(self, filter=None, tenant: str | None = None) -> np.ndarray:
        """Sorted row ids of the live items a filter (and tenant scope) allows: for secondary indexes."""
        self._check_open()
        with self._rw.read():
            return self._plan(filter, tenant).allowed_rows().copy()

    def estimate(self, filter=None, tenant: str | None = None) -> dict:
        """The router's view of a filter: estimated selectivity, allowed items and the route it would take."""
        self._check_open()
        with self._rw.read():
            plan = self._plan(filter, tenant)
            return {"selectivity": plan.selectivity, "allowed_estimate": plan.allowed_estimate, "route": plan.route}

    def segments(self, shard: int | None = None) -> list[Segment]:
        """The segments (of one shard, or all), for diagnostics and benchmarks: treat them as read-only."""
        with self._rw.read():
            shards = self._shards if shard is None else [self._shards[shard]]
            return [seg for segs in shards for seg in segs]

    def schema(self) -> dict[str, str]:
        return dict(self._store.schema)


def _grow(array: np.ndarray, n: int) -> np.ndarray:
    if n <= len(array):
        return array
    out = np.full(max(n, 2 * len(array), 1024), -1, array.dtype)
    out[:len(array)] = array
    return out
