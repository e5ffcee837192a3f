"""Ingest through the write path vs building the same index offline, and ANN recall under deletes.

- write path: real MiniLM vectors upserted in 1,000-item batches, each appended to the write-ahead log and
  fsync'd before it is acknowledged (`fsync="always"`), sealed into segments and indexed by the background
  worker; timed until every segment is indexed (and, separately, until they are compacted into one segment);
- offline: the same engine with the same parameters built in one `add` call over the same vectors;
- deletes: ANN recall@10 (against the exact top-10 of the live items) as the tombstone rate grows from 0 to 30%,
  before and after compaction (automatic rebuilds are off here, so the tombstones stay until compacted).
"""
from __future__ import annotations

import tempfile
import time

import numpy as np

from ._collections import load_vectors, recall_at_k, upsert_all

DESCRIPTION = ("items/s through the write path (WAL fsync per 1,000-item batch, background indexing) vs an "
               "offline build, and recall@10 vs tombstone rate before/after compaction")
K = 10
RATES = (0.0, 0.05, 0.10, 0.20, 0.30)


def add_arguments(parser) -> None:
    parser.add_argument("--n", type=int, default=100_000, help="vectors (default 100,000)")
    parser.add_argument("--queries", type=int, default=500, help="queries for recall (default 500)")
    parser.add_argument("--batch", type=int, default=1000, help="items per upsert (default 1,000)")
    parser.add_argument("--seal-items", type=int, default=20_000, help="growing segment size (default 20,000)")
    parser.add_argument("--M", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", type=int, default=128, help="search ef for the recall figures (default 128)")
    parser.add_argument("--no-deletes", action="store_true", help="skip the tombstone part")


def run(args) -> dict:
    from threadpoolctl import threadpool_limits

    from index_engines.collection import Collection
    from index_engines.engines import make_engine

    if args.batch <= 0 or args.seal_items <= 0:
        raise ValueError("--batch and --seal-items must be positive")
    base, queries, _ = load_vectors(args.n, args.queries)
    engine_params = {"M": args.M, "ef_construction": args.ef_construction}
    out = {"n": args.n, "batch": args.batch, "seal_items": args.seal_items, "engine": "hnsw",
           "engine_params": engine_params, "fsync": "always"}
    # Offline first, then the write path, back to back. Wall seconds are what a user waits; CPU seconds (all
    # threads of this process) are immune to other processes on a shared machine, so both ratios are reported.
    offline = make_engine("hnsw", base.shape[1], **engine_params)
    t0, c0 = time.perf_counter(), time.process_time()
    offline.add(base, np.arange(args.n))
    out["offline_build_seconds"] = time.perf_counter() - t0
    out["offline_build_cpu_seconds"] = time.process_time() - c0
    del offline
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        col = Collection.create(f"{tmp}/c", model="minilm-l6-v2", engine_params=engine_params,
                                query_params={"ef": args.ef}, seal_items=args.seal_items, fsync="always",
                                rebuild_tombstone_rate=None, rebuild_recall_drop=None)
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            ack_s = upsert_all(col, base, lambda i: {"g": i % 10}, batch=args.batch)
            col.flush()
            indexed_s = time.perf_counter() - t0
            out["write_path_cpu_seconds"] = time.process_time() - c0
            segments = len(col.segments())
            t1 = time.perf_counter()
            col.compact()
            compact_s = time.perf_counter() - t1
            builds = [e for e in col.events if e["event"] == "built"]
            out.update({"seconds_acknowledged": ack_s, "seconds_indexed": indexed_s, "segments": segments,
                        "seconds_compact_to_one_segment": compact_s,
                        "seconds_building_indexes": sum(e["seconds"] for e in builds),
                        "wal_fsyncs": -(-args.n // args.batch)})
            if not args.no_deletes:
                with threadpool_limits(1):
                    out["deletes"] = deletes(col, queries, args)
        finally:
            col.close()
    offline_s = out["offline_build_seconds"]
    out["vs_offline_build_cpu_ratio"] = out["offline_build_cpu_seconds"] / out["write_path_cpu_seconds"]
    out["items_per_second"] = args.n / out["seconds_indexed"]
    out["acknowledged_items_per_second"] = args.n / out["seconds_acknowledged"]
    out["offline_items_per_second"] = args.n / offline_s
    out["vs_offline_build_ratio"] = out["items_per_second"] / out["offline_items_per_second"]
    out["vs_offline_build_ratio_with_compaction"] = (args.n / (out["seconds_indexed"] + compact_s)) / (
        args.n / offline_s)
    return out


def deletes(col, queries: np.ndarray, args) -> list[dict]:
    """Recall@10 vs exact at each tombstone rate (of the items indexed in the segment), before and after a
    compaction; the collection is compacted between rates, so each rate starts from a clean segment."""
    version = col.model_version
    rng = np.random.default_rng(11)
    rows = []
    for rate in RATES:
        live = col.allowed_rows()  # = the live ids: items 0..n-1 were written in order into a new collection
        n_delete = int(round(rate * len(live)))
        if n_delete:
            col.delete(rng.choice(live, n_delete, replace=False).tolist())
        row = {"tombstone_rate": rate, "live": len(col)}
        for phase in ("before_compaction", "after_compaction"):
            if phase == "after_compaction":
                if not n_delete:
                    row[phase] = row["before_compaction"]
                    continue
                col.compact()
            approx = col.search(vectors=queries, model_version=version, k=K).rows
            exact = col.search(vectors=queries, model_version=version, k=K, exact=True).rows
            t0 = time.perf_counter()
            for q in queries[:100]:
                col.search(vectors=q[None, :], model_version=version, k=K)
            row[phase] = {"recall_at_10": recall_at_k(approx, exact, K)[0],
                          "ms_per_query": (time.perf_counter() - t0) * 10}
        rows.append(row)
    return rows


def render(result: dict) -> str:
    from workbench.tables import format_table

    table = format_table(["path", "seconds", "items/s", "ratio vs offline"], [
        ["write path, acknowledged (WAL fsync per batch)", round(result["seconds_acknowledged"], 1),
         round(result["acknowledged_items_per_second"], 0), ""],
        [f"write path, indexed ({result['segments']} segments)", round(result["seconds_indexed"], 1),
         round(result["items_per_second"], 0), round(result["vs_offline_build_ratio"], 3)],
        ["write path, indexed + compacted to one segment",
         round(result["seconds_indexed"] + result["seconds_compact_to_one_segment"], 1), "",
         round(result["vs_offline_build_ratio_with_compaction"], 3)],
        ["offline build (one add call)", round(result["offline_build_seconds"], 1),
         round(result["offline_items_per_second"], 0), 1.0],
    ])
    table += (f"\nCPU seconds (all threads): write path {result['write_path_cpu_seconds']:.1f}, offline "
              f"{result['offline_build_cpu_seconds']:.1f}, ratio {result['vs_offline_build_cpu_ratio']:.3f}")
    head = (f"{result['n']:,} MiniLM vectors, batches of {result['batch']}, hnsw {result['engine_params']}, "
            f"seal at {result['seal_items']:,}")
    parts = [head, table]
    if "deletes" in result:
        parts.append(format_table(
            ["tombstone rate", "live items", "recall@10 before", "ms/query before", "recall@10 after",
             "ms/query after"],
            [[f"{r['tombstone_rate']:.0%}", r["live"], round(r["before_compaction"]["recall_at_10"], 4),
              round(r["before_compaction"]["ms_per_query"], 2), round(r["after_compaction"]["recall_at_10"], 4),
              round(r["after_compaction"]["ms_per_query"], 2)] for r in result["deletes"]]))
    return "\n\n".join(parts)
