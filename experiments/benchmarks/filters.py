"""The filter cliff: filtered search at 50%, 10%, 1% and 0.1% selectivity on real MiniLM vectors, three ways in
one run over the same index:
- `routed`: the collection's selectivity-aware routing (exact scan of small allowed sets, in-graph filtering for
  mid selectivities, post-filtering with adaptive oversampling for broad filters, exact fallback to fill k);
- `post_filter`: pure post-filtering: the ANN top `k x post_factor` unfiltered, then the filter (no retry);
- `in_graph`: pure in-graph filtering on the collection's graph (hnswlib's `filter=` callable), `ef` as
  configured, no fallback;
- `in_graph_faiss`: pure in-graph filtering with faiss (`IDSelectorBitmap` in `SearchParametersHNSW`) on a faiss
  HNSW graph built offline over the same vectors with the same M and efConstruction (skip with --no-faiss).
Filters are keyword buckets assigned at random (independent of the vectors: the hard case for a graph walk).
Recall@10 is against the exact top-10 of the allowed items (the flat oracle); latency is per query (one query
per call), p50 and p95. The collection is built through its write path and compacted into one segment.
"""
from __future__ import annotations

import tempfile
import time

import numpy as np

from ._collections import latencies_ms, load_vectors, percentiles, recall_at_k, upsert_all

DESCRIPTION = ("filtered search at 50/10/1/0.1% selectivity: selectivity-aware routing vs pure post-filtering "
               "and pure in-graph filtering (recall@10, p95)")
SELECTIVITIES = (0.5, 0.1, 0.01, 0.001)
K = 10


def add_arguments(parser) -> None:
    parser.add_argument("--n", type=int, default=100_000, help="base vectors (default 100,000)")
    parser.add_argument("--queries", type=int, default=300, help="queries, timed one per call (default 300)")
    parser.add_argument("--backend", default="hnswlib", choices=("hnswlib", "faiss"),
                        help="HNSW library of the collection (default hnswlib)")
    parser.add_argument("--no-faiss", action="store_true", help="skip the faiss in-graph baseline (its build)")
    parser.add_argument("--M", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", type=int, default=128,
                        help="search ef for every strategy (default 128: ef=64 stays below 0.95 unfiltered recall "
                             "at 100k)")
    parser.add_argument("--post-factor", type=int, default=10,
                        help="pure post-filtering fetches k x this many candidates (default 10)")


def bucket_metadata(n: int, seed: int = 5):
    """Field `s<p>` holds a value in 0..round(1/p)-1, uniformly at random: `s<p> == 0` has selectivity p."""
    rng = np.random.default_rng(seed)
    fields = {_field(s): rng.integers(0, round(1 / s), n) for s in SELECTIVITIES}
    return lambda i: {name: int(values[i]) for name, values in fields.items()}


def _field(s: float) -> str:
    return "s" + f"{s * 100:g}".replace(".", "_")


def run(args) -> dict:
    from threadpoolctl import threadpool_limits

    from index_engines.collection import Collection
    from index_engines.engines import make_engine

    base, queries, _ = load_vectors(args.n, args.queries)
    engine_params = {"backend": args.backend, "M": args.M, "ef_construction": args.ef_construction}
    qp = {"ef": args.ef}
    with tempfile.TemporaryDirectory(prefix="bench-filters-") as tmp:
        col = Collection.create(f"{tmp}/c", model="minilm-l6-v2", engine_params=engine_params, query_params=qp,
                                fsync="never", seal_items=max(args.n, 1), rebuild_tombstone_rate=None)
        try:
            t0 = time.perf_counter()
            upsert_all(col, base, bucket_metadata(args.n), batch=5000)
            col.compact()  # one segment, indexed
            build_s = time.perf_counter() - t0
            faiss_graph = None
            if not args.no_faiss:
                faiss_graph = make_engine("hnsw", base.shape[1], **{**engine_params, "backend": "faiss"})
                faiss_graph.add(base, np.arange(args.n))  # ids = the collection's row ids (written in order)
            with threadpool_limits(1):  # single-query timings on one BLAS thread (as in `bench engines`)
                result = measure(col, queries, args, faiss_graph)
        finally:
            col.close()
    result.update({"n": args.n, "queries": args.queries, "k": K, "engine": "hnsw", "engine_params": engine_params,
                   "ef": args.ef, "post_factor": args.post_factor, "build_seconds": build_s,
                   "routing": col.policy.__dict__})
    return result


def measure(col, queries: np.ndarray, args, faiss_graph=None) -> dict:
    version = col.model_version
    (segment,) = [s for s in col.segments() if len(s)]
    ann = segment.ann
    search = lambda q, **kw: col.search(vectors=q, model_version=version, k=K, **kw)  # noqa: E731
    search(queries[:5])  # warm-up
    ms, res = latencies_ms(search, queries)
    truth = search(queries, exact=True).rows
    unfiltered = {**percentiles(ms), "recall_at_10": recall_at_k(np.vstack([r.rows for r in res]), truth, K)[0]}
    rows = []
    for s in SELECTIVITIES:
        flt = {"must": [{"key": _field(s), "match": {"value": 0}}]}
        allowed = col.allowed_rows(flt)
        allowed_mask = np.zeros(col.segments()[0].rows.max() + 1, bool)
        allowed_mask[allowed] = True
        truth = search(queries, filter=flt, exact=True).rows
        strategies = {
            "routed": lambda q: search(q, filter=flt),
            "post_filter": lambda q: pure_post_filter(ann, q, allowed_mask, args.post_factor, {"ef": args.ef}),
            "in_graph": lambda q: pure_in_graph(ann, q, allowed, args.ef),
        }
        if faiss_graph is not None:
            strategies["in_graph_faiss"] = lambda q: pure_in_graph(faiss_graph, q, allowed, args.ef)
        for name, fn in strategies.items():
            ms, res = latencies_ms(fn, queries)
            found = np.vstack([r.rows for r in res]) if name == "routed" else np.vstack(res)
            recall, fewest = recall_at_k(found, truth, K)
            row = {"selectivity": s, "strategy": name, "allowed": int(len(allowed)), "recall_at_10": recall,
                   "min_results": fewest, **percentiles(ms)}
            if name == "routed":
                row["route"] = res[0].route
                row["fallback_queries"] = int(sum(r.fallbacks > 0 for r in res))
            rows.append(row)
    routed = [r for r in rows if r["strategy"] == "routed"]
    return {"unfiltered": unfiltered, "selectivity": rows,
            "worst_p95_vs_unfiltered": max(r["p95_ms"] for r in routed) / unfiltered["p95_ms"],
            "min_routed_recall_at_10": min(r["recall_at_10"] for r in routed)}


def pure_post_filter(ann, q, allowed_mask: np.ndarray, factor: int, qp: dict) -> np.ndarray:
    """ANN top k x factor without the filter, then keep allowed ids: what a filter-unaware index does."""
    ids = ann.search(q, K * factor, qp).ids[0]
    ids = ids[ids >= 0]
    keep = ids[allowed_mask[ids]][:K]
    return np.pad(keep, (0, K - len(keep)), constant_values=-1)[None, :]


def pure_in_graph(ann, q, allowed: np.ndarray, ef: int) -> np.ndarray:
    """The library's own filtered graph walk over the allowed ids, no exact fallback. The engine labels graph
    nodes by position, so ids are mapped to positions and back."""
    import faiss

    index = ann.library_index
    positions = np.sort(ann.positions_of(allowed))
    if ann.build_params["backend"] == "faiss":
        from index_engines.engines.faiss_util import selector

        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        params.sel = selector(positions, len(ann))
        _, labels = index.search(q, K, params=params)
    else:
        index.set_ef(ef)
        allowed_set = set(positions.tolist())
        try:
            labels, _ = index.knn_query(q, k=K, filter=allowed_set.__contains__)
        except RuntimeError:  # hnswlib gives up when it cannot find k allowed neighbours
            labels = np.full((1, K), -1)
    labels = np.asarray(labels, np.int64)
    return np.where(labels >= 0, ann.ids[np.maximum(labels, 0)], -1)


def render(result: dict) -> str:
    from workbench.tables import format_table

    u = result["unfiltered"]
    head = (f"{result['n']:,} MiniLM vectors, hnsw {result['engine_params']}, ef={result['ef']}, "
            f"{result['queries']} queries one per call; unfiltered p95 {u['p95_ms']:.2f} ms, "
            f"recall@10 {u['recall_at_10']:.3f}")
    rows = [[f"{r['selectivity']:.1%}", r["strategy"], r.get("route", ""), r["allowed"], round(r["recall_at_10"], 3),
             r["min_results"], round(r["p50_ms"], 2), round(r["p95_ms"], 2),
             round(r["p95_ms"] / u["p95_ms"], 2)] for r in result["selectivity"]]
    table = format_table(["selectivity", "strategy", "route", "allowed", "recall@10", "min results", "p50 ms",
                          "p95 ms", "p95 / unfiltered"], rows)
    return (f"{head}\n{table}\nrouted: worst p95 / unfiltered p95 = {result['worst_p95_vs_unfiltered']:.2f}, "
            f"lowest recall@10 = {result['min_routed_recall_at_10']:.3f}")
