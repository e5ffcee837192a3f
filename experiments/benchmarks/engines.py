"""Index engines on real vectors: recall vs QPS for every engine, our `hnsw` vs raw hnswlib, quantised memory,
sharding overhead and speed-up, and flat's scan bandwidth against numpy's memory-read bandwidth.

Protocol: `flat` over the base vectors is the oracle (ground truth computed once). Each configuration is built
once (on `--build-threads` threads) and swept over its query parameters; recall comes from one batched pass per
setting, QPS from single queries on one thread (BLAS and OpenMP limited to 1). The reported point per engine is
the fastest setting whose ANN recall@k reaches `--target`. Ratios (ours / raw library, S=4 / S=1) are timed side
by side: interleaved blocks of 50 queries, order alternating, so load from other processes hits both sides alike.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DESCRIPTION = "index engines vs exact search and raw hnswlib/faiss: recall, QPS, build time, memory, sharding"

HNSW_BUILD = {"M": 16, "ef_construction": 200}
EF_GRID = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
NPROBE_GRID = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
# Sharded S=4 configurations: (engine, knob searched for equal recall, its grid, the other settings tried): each
# shard returns k x oversample candidates, so S=4 may want a smaller oversample than S=1.
SHARDED = [("hnsw", "ef", EF_GRID, [{}]),
           ("ivfpq", "nprobe", NPROBE_GRID, [{"oversample": o} for o in (4, 8, 16)])]
# (label, engine, build parameters, query grid, the knob refined down to the target recall)
CONFIGS = [
    ("hnsw", "hnsw", dict(HNSW_BUILD), [{"ef": ef} for ef in EF_GRID], "ef"),
    ("hnsw-faiss", "hnsw", {**HNSW_BUILD, "backend": "faiss"}, [{"ef": ef} for ef in EF_GRID], "ef"),
    # On MiniLM the coarse quantiser, not PQ, limits recall (oversample 8 -> 16 adds ~0.01 at a fixed nprobe):
    # the grid goes deep in nprobe.
    ("ivfpq", "ivfpq", {"pq_m": 48},
     [{"nprobe": p, "oversample": o} for p in (16, 32, 64, 128, 256) for o in (4, 8, 16)], "nprobe"),
    ("sq8", "sq8", {}, [{"oversample": o} for o in (1, 2, 4)], None),
    ("sq8-hnsw", "sq8", {"M": 16, "ef_construction": 200},
     [{"ef": ef, "oversample": o} for ef in (32, 64, 128) for o in (2, 4)], "ef"),
]
QUANTIZED = ("ivfpq", "sq8")
TRUNCATIONS = (192, 128, 64)
SHARDS = 4
TIME_BUDGET = 1.5  # seconds of single-query timing per sweep point (the reported point is timed on every query)


def add_arguments(parser) -> None:
    parser.add_argument("--n", type=int, default=100_000, help="base vectors (default 100000)")
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries (default 1000)")
    parser.add_argument("--vectors", type=Path, help="a float32 .npy matrix to use instead of MiniLM sentence "
                                                     "vectors; queries are held out from its rows")
    parser.add_argument("--model", default="minilm-l6-v2", help="model for the sentence vectors")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--target", type=float, default=0.95, help="ANN recall@k each engine must reach")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--no-plot", action="store_true", help="skip the recall-vs-QPS plot")


# ------------------------------------------------------------------------------------------------ data
def load_vectors(args) -> tuple[np.ndarray, np.ndarray, str]:
    """(base, queries, source): unit float32 rows; queries never occur in the base."""
    if args.n <= 0 or args.queries <= 0 or args.k <= 0:
        raise ValueError("--n, --queries and --k must be positive")
    if args.vectors is None:
        from experiments.corpus_vectors import benchmark_vectors

        base, queries = benchmark_vectors(args.n, args.queries, model_id=args.model, show_progress=False)
        return base, queries, f"{args.model} sentence vectors"
    if not args.vectors.is_file():
        raise FileNotFoundError(f"--vectors {args.vectors}: no such file")
    matrix = np.load(args.vectors, mmap_mode="r")
    if matrix.ndim != 2 or matrix.dtype != np.float32:
        raise ValueError(f"--vectors must hold a 2-D float32 matrix, got {matrix.dtype} of shape {matrix.shape}")
    if len(matrix) < args.queries + 1:
        raise ValueError(f"--vectors has {len(matrix)} rows, fewer than --queries {args.queries} + 1")
    rows = np.random.default_rng(0).permutation(len(matrix))
    n = min(args.n, len(matrix) - args.queries)
    base = _unit(np.asarray(matrix[np.sort(rows[:n])]))
    queries = _unit(np.asarray(matrix[np.sort(rows[len(rows) - args.queries:])]))
    if not (np.isfinite(base).all() and np.isfinite(queries).all()):
        raise ValueError(f"--vectors {args.vectors} contains NaN or infinite values")
    return base, queries, str(args.vectors)


def _unit(x: np.ndarray) -> np.ndarray:
    """Cosine similarity is inner product on unit rows: normalise a foreign matrix (zero rows stay zero)."""
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


# ------------------------------------------------------------------------------------------------ timing
def single_query_qps(search, queries: np.ndarray, budget: float | None = None) -> float:
    """Queries per second, one query per call on the calling thread; stops after `budget` seconds if given."""
    search(queries[:1])  # warm-up
    start = time.perf_counter()
    done = 0
    for done, q in enumerate(queries, 1):
        search(q[None])
        if budget is not None and time.perf_counter() - start > budget:
            break
    return done / (time.perf_counter() - start)


def paired_qps(fns: dict, queries: np.ndarray, block: int = 50, passes: int = 3, batch: int | None = None) -> dict:
    """QPS of several search functions timed side by side: the queries go in blocks of `block`, each block runs
    through every function in turn (order reversed every other block), so a burst of load from other processes
    on this shared machine hits all of them alike. `batch`: each call takes that many queries (default one).

    Returns, per function, QPS = queries / summed time; and per pair the ratio of their summed times."""
    step = batch or 1
    totals = {name: 0.0 for name in fns}
    for fn in fns.values():  # warm-up
        fn(queries[:step])
    names = list(fns)
    for p in range(passes):
        for b, start in enumerate(range(0, len(queries), block * step)):
            chunk = queries[start:start + block * step]
            for name in (names if (b + p) % 2 == 0 else names[::-1]):
                fn = fns[name]
                t0 = time.perf_counter()
                for i in range(0, len(chunk), step):
                    fn(chunk[i:i + step])
                totals[name] += time.perf_counter() - t0
    return {name: passes * len(queries) / seconds for name, seconds in totals.items()}


def memory_read_gbps(matrix: np.ndarray) -> float:
    """Plain numpy read bandwidth over the same matrix (one thread): the best of a few streaming reductions."""
    flat = matrix.reshape(-1)
    as_int = flat.view(np.int32)
    best = 0.0
    for op in (lambda: np.add.reduce(matrix, axis=0), lambda: as_int.max(), lambda: flat.max()):
        op()
        for _ in range(3):
            start = time.perf_counter()
            op()
            best = max(best, matrix.nbytes / (time.perf_counter() - start) / 1e9)
    return best


# ------------------------------------------------------------------------------------------------ sweeps
def sweep(engine, truth, queries, k, grid, target, knob=None) -> tuple[list[dict], dict | None]:
    """Every setting's recall (batched, two threads) and single-query QPS; and the fastest setting reaching
    `target`, re-timed on every query. With `knob` (ef, nprobe), the chosen setting's knob is then lowered to the
    smallest value that still reaches `target` (bisection down to the grid value below it), so an engine is not
    reported at a grid point that overshoots the target."""
    def point(params, budget):
        recall = truth.report(engine.search(queries, k, {**params, "threads": 2}).ids)
        qps = single_query_qps(lambda q: engine.search(q, k, params), queries, budget)
        return {"params": params, "recall": recall.mean, "ci_low": recall.ci_low, "ci_high": recall.ci_high,
                "qps": qps}

    points = [point(params, TIME_BUDGET) for params in grid]
    ok = [p for p in points if p["recall"] >= target]
    if not ok:
        return points, None
    best = dict(max(ok, key=lambda p: p["qps"]))
    best["qps"] = single_query_qps(lambda q: engine.search(q, k, best["params"]), queries)
    if knob is not None:
        value, rest = best["params"][knob], {n: v for n, v in best["params"].items() if n != knob}
        below = max((p["params"][knob] for p in points if p["params"][knob] < value
                     and {n: v for n, v in p["params"].items() if n != knob} == rest), default=0)
        lowest, _ = lowest_reaching(
            lambda v: truth.report(engine.search(queries, k, {**rest, knob: v, "threads": 2}).ids).mean,
            [value], target, start=below)
        if lowest is not None and lowest < value:
            refined = point({**rest, knob: lowest}, None)
            points.append({**refined, "refined": True})
            if refined["qps"] > best["qps"]:
                best = refined
    return points, best


def build(name, engine_name, dim, base, ids, build_params, threads):
    from index_engines.engines import make_engine

    engine = make_engine(engine_name, dim, build_threads=threads, **build_params)
    start = time.perf_counter()
    engine.add(base, ids)
    return engine, time.perf_counter() - start


def engine_row(engine, build_seconds, best, points, n) -> dict:
    return {"recall_at_10": None if best is None else best["recall"],
            "recall_ci": None if best is None else [best["ci_low"], best["ci_high"]],
            "qps": None if best is None else best["qps"],
            "query_params": None if best is None else best["params"],
            "bytes_per_vector": engine.memory_bytes() / n,
            "raw_bytes_per_vector": (engine.raw_bytes() if hasattr(engine, "raw_bytes") else 0) / n,
            "build_seconds": build_seconds, "build_params": engine.build_params, "sweep": points}


def hnsw_vs_hnswlib(ours, base, queries, k, ef, threads) -> dict:
    """Our hnsw against a raw hnswlib index built separately with the same M, efConstruction, seed and ef."""
    import hnswlib

    bp = ours.build_params
    raw = hnswlib.Index(space="ip", dim=base.shape[1])
    raw.init_index(max_elements=len(base), M=bp["M"], ef_construction=bp["ef_construction"], random_seed=bp["seed"])
    start = time.perf_counter()
    raw.add_items(base, np.arange(len(base)), num_threads=threads)
    raw_build = time.perf_counter() - start
    raw.set_ef(ef)
    labels, _ = raw.knn_query(queries, k=k, num_threads=threads)
    qps = paired_qps({"ours": lambda q: ours.search(q, k, {"ef": ef}),
                      "hnswlib": lambda q: raw.knn_query(q, k=k, num_threads=1)}, queries)
    return {"ef": ef, "ours_qps": qps["ours"], "hnswlib_qps": qps["hnswlib"], "ratio": qps["ours"] / qps["hnswlib"],
            "hnswlib_build_seconds": raw_build, "hnswlib_labels": labels.astype(np.int64)}


def faiss_wrapper_overhead(ours, queries, k, ef) -> dict:
    """Our faiss-backed hnsw against calling the same faiss index directly (the wrapper's own cost)."""
    import faiss

    index = ours.library_index
    params = faiss.SearchParametersHNSW()
    params.efSearch = ef
    faiss.omp_set_num_threads(1)
    qps = paired_qps({"ours": lambda q: ours.search(q, k, {"ef": ef}),
                      "faiss": lambda q: index.search(q, k, params=params)}, queries)
    return {"ef": ef, "ours_qps": qps["ours"], "faiss_qps": qps["faiss"], "ratio": qps["ours"] / qps["faiss"]}


def lowest_reaching(recall_at, grid: list[int], target: float, start: int = 0) -> tuple[int | None, float | None]:
    """The smallest knob value (ef, nprobe) whose recall reaches `target`: the first grid value that does, then
    a bisection over the integers down to the grid value before it (or `start`; recall grows with the knob)."""
    below = start
    for value in grid:
        recall = recall_at(value)
        if recall >= target:
            lo, hi, best = below + 1, value - 1, (value, recall)
            while lo <= hi:
                mid = (lo + hi) // 2
                r = recall_at(mid)
                if r >= target:
                    best, hi = (mid, r), mid - 1
                else:
                    lo = mid + 1
            return best
        below = value
    return None, None


def shard_ratios(single, single_params, sharded, pooled, sharded_params, queries, k, batch) -> dict:
    """S=4 vs S=1 timed side by side: single queries on one thread (the fan-out in the calling thread), and
    batches of `batch` queries with S=4 fanned out on two threads vs S=1 on one (and on two, for scale)."""
    one = paired_qps({"s1": lambda q: single.search(q, k, single_params),
                      "s4": lambda q: sharded.search(q, k, sharded_params)}, queries)
    two = {**single_params, "threads": 2}
    many = paired_qps({"s1_1thread": lambda q: single.search(q, k, single_params),
                       "s1_2threads": lambda q: single.search(q, k, two),
                       "s4_2threads": lambda q: pooled.search(q, k, sharded_params)}, queries, block=1, batch=batch)
    return {"qps_single": one, "qps_batch": many, "single_thread_ratio": one["s4"] / one["s1"],
            "two_thread_speedup": many["s4_2threads"] / many["s1_1thread"],
            "s1_two_thread_speedup": many["s1_2threads"] / many["s1_1thread"]}


def raw_fanout(sharded, ef, queries, k) -> dict:
    """Our S=4 hnsw against the same four hnswlib indexes queried in a plain loop and merged with numpy: what our
    sharding layer (validation, fan-out, heap merge, tie order, id mapping) costs over the libraries' own work."""
    indexes = [shard.library_index for shard in sharded.shards]
    for index in indexes:
        index.set_ef(ef)  # the value our engine sets too: the comparison runs at one ef

    def loop(q):
        labels, distances = zip(*(index.knn_query(q, k, 1) for index in indexes))
        order = np.argsort(np.concatenate(distances, 1), 1, kind="stable")[:, :k]
        return np.take_along_axis(np.concatenate(labels, 1), order, 1)

    qps = paired_qps({"ours": lambda q: sharded.search(q, k, {"ef": ef}), "loop": loop}, queries)
    return {"ours_qps": qps["ours"], "loop_qps": qps["loop"], "ratio": qps["ours"] / qps["loop"]}


def sharding(base, ids, queries, truth, k, built: dict, threads, flat1) -> dict:
    """S=4 vs S=1 at equal recall for `hnsw` (a graph: every shard is walked in full) and `ivfpq` (a scan: the
    work splits), and for `flat` (exact, so equal recall by construction: the fan-out and merge overhead alone).
    S=4 gets the lowest knob (ef, nprobe) whose recall reaches S=1's at its reported operating point."""
    from index_engines.sharding import ShardedEngine

    dim = base.shape[1]
    out = {"shards": SHARDS}
    for label, knob, grid, variants in SHARDED:
        single, best = built[label]
        if best is None:
            out[label] = {"error": f"S=1 {label} never reached the target recall"}
            continue
        single_params = best["params"]
        build_params = {key: v for key, v in single.build_params.items() if key != "build_threads"}
        if label == "ivfpq":
            # The lists are divided among the shards (S=1's nlist / S each), so S=4 ranks as many centroids per
            # query as S=1; each shard's own default (4 sqrt(n/S)) would double that work.
            build_params["nlist"] = max(1, single.nlist // SHARDS)
        with ShardedEngine(label, dim, SHARDS, workers=0, build_threads=threads, **build_params) as seq, \
                ShardedEngine(label, dim, SHARDS, workers=2, **build_params) as pooled:
            start = time.perf_counter()
            seq.add(base, ids)
            row = {"build_seconds": time.perf_counter() - start, "s1_params": single_params,
                   "s1_recall": best["recall"], "s4_build_params": build_params}
            pooled.shards = seq.shards  # the same four indexes behind a two-thread fan-out
            reaching = []  # (params, recall) of each variant's lowest knob reaching S=1's recall
            for variant in variants:
                fixed = {**single_params, **variant}
                value, recall4 = lowest_reaching(
                    lambda v: truth.report(seq.search(queries, k, {**fixed, knob: v, "threads": 2}).ids).mean,
                    grid, best["recall"])
                if value is not None:
                    reaching.append(({**fixed, knob: value}, recall4))
            if not reaching:
                out[label] = {**row, "error": f"S={SHARDS} never reached recall {best['recall']:.4f} on the grid"}
                continue
            # As for S=1's operating point: the fastest setting at the recall, timed on single queries.
            params4, recall4 = max(reaching, key=lambda pr: single_query_qps(
                lambda q: seq.search(q, k, pr[0]), queries, TIME_BUDGET))
            row.update({"s4_params": params4, "s4_recall": recall4})
            row.update(shard_ratios(single, single_params, seq, pooled, params4, queries, k, batch=100))
            if label == "hnsw":
                row["vs_raw_fanout"] = raw_fanout(seq, params4["ef"], queries, k)
        out[label] = row
    # Flat: the scan splits evenly, which isolates fan-out overhead.
    sample = queries[:200]
    with ShardedEngine("flat", dim, SHARDS, workers=0) as fseq, ShardedEngine("flat", dim, SHARDS, workers=2) as fpool:
        fseq.add(base, ids)
        fpool.shards = fseq.shards
        f_single = paired_qps({"s1": lambda q: flat1.search(q, k), "s4": lambda q: fseq.search(q, k)}, sample,
                              block=10, passes=1)
        f_batch = paired_qps({"s1_1thread": lambda q: flat1.search(q, k), "s4_2threads": lambda q: fpool.search(q, k)},
                             sample, block=1, batch=20, passes=1)
    out["flat"] = {"single_thread_ratio": f_single["s4"] / f_single["s1"],
                   "two_thread_speedup": f_batch["s4_2threads"] / f_batch["s1_1thread"],
                   "qps_single": f_single, "qps_batch": f_batch}
    return out


def truncation(base, ids, queries, truth, k, oracle, threads) -> dict:
    """Matryoshka truncation cost: exact search on the first D' dims (renormalised), without and with a rescore
    of k x oversample candidates on all dims; and the hnsw engine with truncate_dim=128 end to end."""
    from index_engines.engines import make_engine

    rows = {}
    for dim in TRUNCATIONS:
        flat = make_engine("flat", dim)
        head = base[:, :dim] / np.maximum(np.linalg.norm(base[:, :dim], axis=1, keepdims=True), 1e-12)
        flat.add(head, ids)
        qh = queries[:, :dim] / np.maximum(np.linalg.norm(queries[:, :dim], axis=1, keepdims=True), 1e-12)
        row = {"exact_truncated": truth.report(flat.search(qh, k).ids).mean}
        for oversample in (4, 10):
            cand = flat.search(qh, k * oversample).ids
            scores = oracle.score(queries, cand)
            order = np.lexsort((np.where(cand < 0, np.iinfo(np.int64).max, cand), -scores), axis=1)[:, :k]
            row[f"rescored_x{oversample}"] = truth.report(np.take_along_axis(cand, order, 1)).mean
        rows[str(dim)] = row
    engine, seconds = build("hnsw-t128", "hnsw", base.shape[1], base, ids,
                            {**HNSW_BUILD, "truncate_dim": 128, "raw_dtype": "float32"}, threads)
    hnsw128 = {"build_seconds": seconds, "bytes_per_vector": engine.memory_bytes() / len(base)}
    for oversample in (1, 4, 10):
        hnsw128[f"recall_ef128_x{oversample}"] = truth.report(
            engine.search(queries, k, {"ef": 128, "oversample": oversample, "threads": 2}).ids).mean
    return {"exact": rows, "hnsw_truncate_128": hnsw128}


# ------------------------------------------------------------------------------------------------ run
def passive_openmp() -> None:
    """Ask OpenMP (faiss) to sleep rather than spin while waiting. On this shared 2-core machine a spinning
    thread steals the core its partner needs: a 3,000-vector IVF-PQ build took 32 s on 2 threads with the default
    policy and 4.5 s with PASSIVE. It only takes effect before the OpenMP runtime loads."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    maps = Path("/proc/self/maps")
    if os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and maps.exists() and "libgomp" in maps.read_text() and \
            "faiss" in sys.modules:
        log.warning("OpenMP was loaded before OMP_WAIT_POLICY=PASSIVE could apply; faiss builds on 2 threads may be "
                    "slow on a busy machine (export OMP_WAIT_POLICY=PASSIVE)")


def run(args) -> dict:
    passive_openmp()
    import faiss
    from threadpoolctl import threadpool_limits

    from index_engines.ann_recall import GroundTruth
    from index_engines.engines import make_engine

    base, queries, source = load_vectors(args)
    n, dim = base.shape
    k, threads = args.k, args.build_threads
    ids = np.arange(n, dtype=np.int64)
    oracle = make_engine("flat", dim)
    oracle.add(base, ids)
    truth = GroundTruth(oracle, queries, k)
    log.info("%d x %d base vectors, %d queries; ground truth computed", n, dim, len(queries))
    result = {"n_vectors": n, "n_queries": len(queries), "dim": dim, "k": k, "target_recall": args.target,
              "source": source, "engines": {}}
    with threadpool_limits(1):  # single-query timings on one BLAS thread; faiss/hnswlib threads are per call
        faiss.omp_set_num_threads(1)
        flat_qps = single_query_qps(lambda q: oracle.search(q, k), queries, budget=20.0)
        scan_gbps = flat_qps * base.nbytes / 1e9
        read_gbps = memory_read_gbps(base)
        result["engines"]["flat"] = {"recall_at_10": 1.0, "qps": flat_qps,
                                     "bytes_per_vector": oracle.memory_bytes() / n,
                                     "raw_bytes_per_vector": 0.0, "build_seconds": 0.0, "query_params": {}}
        result["flat_bandwidth"] = {"scan_gbps": scan_gbps, "numpy_read_gbps": read_gbps}
        result["flat_bandwidth_ratio"] = scan_gbps / read_gbps
        built = {}
        for label, engine_name, build_params, grid, knob in CONFIGS:
            log.info("building %s on %d vectors", label, n)
            engine, seconds = build(label, engine_name, dim, base, ids, build_params, threads)
            log.info("built %s in %.1f s; sweeping %d query settings", label, seconds, len(grid))
            points, best = sweep(engine, truth, queries, k, grid, args.target, knob)
            result["engines"][label] = engine_row(engine, seconds, best, points, n)
            built[label] = (engine, best)
        hnsw, hnsw_best = built["hnsw"]
        ef = hnsw_best["params"]["ef"] if hnsw_best else EF_GRID[-1]
        log.info("hnsw vs raw hnswlib at ef=%d", ef)
        versus = hnsw_vs_hnswlib(hnsw, base, queries, k, ef, threads)
        versus["ours_recall"] = truth.report(hnsw.search(queries, k, {"ef": ef, "threads": 2}).ids).mean
        versus["hnswlib_recall"] = truth.report(versus.pop("hnswlib_labels")).mean
        result["hnsw_vs_hnswlib"] = versus
        result["hnsw_vs_hnswlib_qps_ratio"] = versus["ratio"]
        faiss_engine, faiss_best = built["hnsw-faiss"]
        result["hnsw_faiss_vs_faiss"] = faiss_wrapper_overhead(
            faiss_engine, queries, k, faiss_best["params"]["ef"] if faiss_best else EF_GRID[-1])
        hnsw_bytes = hnsw.memory_bytes()
        quantized = [(label, built[label][1], built[label][0].memory_bytes()) for label in QUANTIZED]
        reaching = [q for q in quantized if q[1] is not None] or quantized
        label, best, qbytes = min(reaching, key=lambda q: q[2])
        result["quantized_engine"] = label
        result["quantized_recall_at_10"] = None if best is None else best["recall"]
        result["quantized_memory_ratio"] = qbytes / hnsw_bytes
        log.info("sharding: S=%d vs S=1", SHARDS)
        shard = sharding(base, ids, queries, truth, k, built, threads, oracle)
        result["sharding"] = shard
        # The headline is hnsw, the default engine (ivfpq and flat are reported beside it).
        result["shard4_single_thread_ratio"] = shard["hnsw"].get("single_thread_ratio")
        result["shard4_two_thread_speedup"] = shard["hnsw"].get("two_thread_speedup")
        log.info("Matryoshka truncation")
        result["truncation"] = truncation(base, ids, queries, truth, k, oracle, threads)
    result["report_files"] = write_reports(result, plot=not args.no_plot)
    return result


def write_reports(result: dict, plot: bool) -> dict:
    """The full result as JSON and the recall-vs-QPS frontier as PNG, in the reports directory."""
    from index_engines.settings import get_settings

    out_dir = get_settings().reports_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    files = {"json": str(out_dir / f"engines-{result['n_vectors']}-{stamp}.json")}
    tmp = Path(files["json"] + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=_jsonable))
    tmp.replace(files["json"])
    if plot:
        files["plot"] = str(out_dir / f"engines-frontier-{result['n_vectors']}-{stamp}.png")
        plot_frontier(result, Path(files["plot"]))
    return files


def pareto_front(points: list[dict]) -> list[dict]:
    """The settings no other setting beats on both recall and QPS, by increasing recall."""
    front, best_qps = [], -1.0
    for p in sorted(points, key=lambda p: (-p["recall"], -p["qps"])):
        if p["qps"] > best_qps:
            front.append(p)
            best_qps = p["qps"]
    return front[::-1]


def plot_frontier(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for label, row in result["engines"].items():
        points = row.get("sweep") or [{"recall": row["recall_at_10"], "qps": row["qps"]}]
        front = pareto_front(points)
        line, = ax.plot([p["recall"] for p in front], [p["qps"] for p in front], marker="o", label=label)
        ax.scatter([p["recall"] for p in points], [p["qps"] for p in points], color=line.get_color(), alpha=0.3,
                   s=12)
    ax.axvline(result["target_recall"], color="grey", linestyle=":")
    ax.set_yscale("log")
    ax.set_xlabel(f"ANN recall@{result['k']}")
    ax.set_ylabel("queries per second (1 thread, 1 query per call)")
    ax.set_title(f"{result['n_vectors']:,} x {result['dim']} ({result['source']})")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


# ------------------------------------------------------------------------------------------------ render
def render(result: dict) -> str:
    def fmt(x, spec=".3f"):
        return "-" if x is None else format(x, spec)

    lines = [f"Engines on {result['n_vectors']:,} x {result['dim']} vectors ({result['source']}), "
             f"{result['n_queries']} held-out queries, k={result['k']}, target ANN recall {result['target_recall']}",
             "", f"{'engine':<12}{'recall@k':>10}{'QPS':>10}{'bytes/vec':>11}{'raw B/vec':>11}{'build s':>9}  "
                 "query params"]
    for label, row in result["engines"].items():
        lines.append(f"{label:<12}{fmt(row['recall_at_10'], '.4f'):>10}{fmt(row['qps'], '.0f'):>10}"
                     f"{row['bytes_per_vector']:>11.0f}{row['raw_bytes_per_vector']:>11.0f}"
                     f"{row['build_seconds']:>9.1f}  {row['query_params']}")
    v, f, s = result["hnsw_vs_hnswlib"], result["hnsw_faiss_vs_faiss"], result["sharding"]
    lines += ["",
              f"hnsw vs raw hnswlib (ef={v['ef']}): {v['ours_qps']:.0f} vs {v['hnswlib_qps']:.0f} QPS, ratio "
              f"{v['ratio']:.3f} (recall {v['ours_recall']:.4f} vs {v['hnswlib_recall']:.4f})",
              f"hnsw-faiss vs the same faiss index called directly (ef={f['ef']}): ratio {f['ratio']:.3f}",
              f"quantized ({result['quantized_engine']}): recall {fmt(result['quantized_recall_at_10'], '.4f')}, "
              f"memory {result['quantized_memory_ratio']:.3f} of hnsw float32"]
    for label in ("hnsw", "ivfpq"):
        row = s[label]
        if "error" in row:
            lines.append(f"sharding {label}: {row['error']}")
            continue
        lines.append(f"sharding {label} S={s['shards']} ({row['s4_params']}, recall {row['s4_recall']:.4f}) vs S=1 "
                     f"({row['s1_params']}, recall {row['s1_recall']:.4f}): single query 1 thread "
                     f"{row['single_thread_ratio']:.2f}x, batches of 100 on 2 threads {row['two_thread_speedup']:.2f}x "
                     f"(S=1 on 2 threads: {row['s1_two_thread_speedup']:.2f}x)")
        if "vs_raw_fanout" in row:
            lines.append(f"  {label} S={s['shards']} vs the same {s['shards']} library indexes in a plain loop (our "
                         f"sharding layer's own cost): {row['vs_raw_fanout']['ratio']:.2f}x")
    lines.append(f"sharding flat S={s['shards']} vs S=1: single query 1 thread {s['flat']['single_thread_ratio']:.2f}x,"
                 f" batches of 20 on 2 threads {s['flat']['two_thread_speedup']:.2f}x")
    b = result["flat_bandwidth"]
    lines.append(f"flat scan {b['scan_gbps']:.2f} GB/s vs numpy read {b['numpy_read_gbps']:.2f} GB/s: ratio "
                 f"{result['flat_bandwidth_ratio']:.2f}")
    t = result["truncation"]
    lines += ["", "Matryoshka truncation (exact search on D' dims; rescored on all dims):"]
    for dim, row in t["exact"].items():
        lines.append(f"  D'={dim:>4}: {row['exact_truncated']:.4f}  x4 {row['rescored_x4']:.4f}  "
                     f"x10 {row['rescored_x10']:.4f}")
    h = t["hnsw_truncate_128"]
    lines.append(f"  hnsw truncate_dim=128, ef=128: x1 {h['recall_ef128_x1']:.4f}, x4 {h['recall_ef128_x4']:.4f}, "
                 f"x10 {h['recall_ef128_x10']:.4f}; {h['bytes_per_vector']:.0f} B/vec")
    lines += ["", "files: " + ", ".join(result["report_files"].values())]
    return "\n".join(lines)
