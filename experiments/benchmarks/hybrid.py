"""Hybrid retrieval and rerank on SciFact test: BM25, dense, hybrid (RRF), hybrid + cross-encoder rerank.

Everything goes through the real stack: a collection (flat engine, exact search) holding the SciFact corpus with
the BM25 secondary index attached, queried through `QueryPipeline`. For each variant: nDCG@10 and recall@100 over
the test queries, each with a paired comparison against dense (helper-2's `golden_sets.stats.compare_paired`:
sign-flip randomisation, t and Wilcoxon p-values, bootstrap CI of the mean difference). Runs are evaluated in the
order the pipeline returns (rank-based scores), so ties are scored as the user sees them.

Speed, measured in the same run on the same corpus and the same pre-tokenized queries (tokenization excluded from
all three): our BM25 index vs rank-bm25's BM25Okapi (the reference it equals) vs a static bm25s index with the same
formula, top-100 per query, median of interleaved repeats. Rerank latency: scoring 100 (query, passage) pairs with
the cross-encoder, median over a sample of queries (with the untrained MiniLM head if no reranker is registered:
latency depends on the architecture, not the weights).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

DESCRIPTION = "BM25 / dense / hybrid RRF / hybrid+rerank on SciFact test, with paired tests vs dense; BM25 QPS"
VARIANTS = ("bm25", "dense", "hybrid", "hybrid_rerank")
METRICS = ("ndcg@10", "recall@100")


def add_arguments(parser) -> None:
    parser.add_argument("--golden", default="scifact-test", help="golden set (default scifact-test)")
    parser.add_argument("--model", default="minilm-l6-v2", help="dense model (default minilm-l6-v2)")
    parser.add_argument("--consumer", default="search", help="consumer whose fusion default is used (search)")
    parser.add_argument("--fusion", default=None, help="override the consumer's fusion method (rrf | weighted)")
    parser.add_argument("--candidates", type=int, default=100, help="hits per source before fusion (100)")
    parser.add_argument("--reranker", default="scifact-minilm", help="registered reranker name or name-vN")
    parser.add_argument("--rerank-depth", type=int, default=100, help="fused candidates the reranker reorders")
    parser.add_argument("--no-rerank", action="store_true", help="skip the reranked variant")
    parser.add_argument("--train-if-missing", action="store_true",
                        help="train the reranker first (`workbench train-reranker` defaults) if none is registered")
    parser.add_argument("--max-queries", type=int, default=None, help="evaluate only the first N queries")
    parser.add_argument("--qps-repeats", type=int, default=3, help="interleaved repeats of the QPS timing")
    parser.add_argument("--latency-samples", type=int, default=10,
                        help="queries timed for rerank latency (0 skips it)")


def run(args) -> dict:
    from experiments.benchmarks.engines import passive_openmp

    passive_openmp()  # before torch loads: sleeping OpenMP waits keep cross-encoder scoring fast on a busy machine
    from golden_sets.consumers import load_consumer
    from golden_sets.golden import load_golden_set

    for name in ("candidates", "rerank_depth", "qps_repeats"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive")
    if args.latency_samples < 0:
        raise ValueError("--latency-samples must be >= 0 (0 skips the rerank latency measurement)")
    golden = load_golden_set(args.golden)
    qids = sorted(golden.queries)[:args.max_queries]
    fusion = args.fusion or load_consumer(args.consumer).fusion
    reranker, reranker_note = _reranker(args)
    with tempfile.TemporaryDirectory(prefix="bench-hybrid-") as tmp:
        col, lexical, pipe, build_s = _build(golden, args.model, Path(tmp))
        try:
            runs, stage_ms = _runs(pipe, golden, qids, args, fusion, reranker)
            speed = _bm25_speed(lexical, golden, qids, args.qps_repeats)
            latency = _rerank_latency(pipe, golden, qids, reranker, args.latency_samples)
        finally:
            col.close()
    quality, significance = _quality(golden, qids, runs)
    return {
        "golden_set": golden.name, "golden_set_hash": golden.content_hash, "n_queries": len(qids),
        "corpus_size": len(golden.corpus), "model": pipe.collection.model_version, "fusion": fusion,
        "candidates": args.candidates, "rerank_depth": args.rerank_depth if reranker else None,
        "reranker": reranker_note,
        "ndcg_at_10": quality["ndcg@10"], "recall_at_100": quality["recall@100"],
        "significance_vs_dense": significance,
        "bm25_params": lexical.index.stats()["params"], **speed, **latency,
        "stage_ms_median": stage_ms, "build_seconds": round(build_s, 1),
    }


# ---------------------------------------------------------------------------------------------- stages
def _reranker(args):
    from index_engines.rerank import RerankerNotFoundError, load_reranker

    if args.no_rerank:
        return None, {"skipped": "--no-rerank"}
    try:
        r = load_reranker(args.reranker)
    except RerankerNotFoundError as exc:
        if not args.train_if_missing:
            return None, {"missing": f"{exc}; or rerun with --train-if-missing"}
        from experiments.train_reranker import TrainConfig, train_reranker

        train_reranker(TrainConfig(name=args.reranker))
        r = load_reranker(args.reranker)
    return r, {"ref": r.name, "fingerprint": r.fingerprint[:16], "trained_on": r.card.get("data", {}),
               "steps": r.card.get("training", {}).get("steps"), "dev": r.card.get("dev"),
               "max_length": r.max_length}


def _build(golden, model_id, tmp: Path):
    from index_engines.collection import Collection
    from index_engines.lexical import BM25Secondary
    from index_engines.pipeline import QueryPipeline

    t0 = time.perf_counter()
    lexical = BM25Secondary()
    col = Collection.create(tmp / "scifact", model=model_id, engine="flat", fsync="never", seal_items=1_000_000,
                            secondary=[lexical])
    col.upsert([{"id": d, "text": t} for d, t in golden.corpus.items()])
    return col, lexical, QueryPipeline(col, lexical), time.perf_counter() - t0


def _runs(pipe, golden, qids, args, fusion, reranker):
    """Per variant: query id -> doc id -> rank-based score (the pipeline's order), and median stage timings."""
    settings = {"bm25": dict(mode="bm25"), "dense": dict(mode="dense"), "hybrid": dict(mode="hybrid")}
    if reranker is not None:
        settings["hybrid_rerank"] = dict(mode="hybrid", rerank=reranker, rerank_depth=args.rerank_depth)
    runs: dict[str, dict] = {v: {} for v in settings}
    timings: dict[str, list[dict]] = {v: [] for v in settings}
    for q in qids:
        for variant, kw in settings.items():
            k = args.rerank_depth if "rerank" in kw else 100  # the pipeline refuses k > rerank_depth
            res = pipe.search(golden.queries[q], k=k, candidates=args.candidates, fusion=fusion, exact=True, **kw)
            order = [h.id for h in res.hits]
            if "rerank" in kw:  # below the reranked head, the rest of the hybrid list in fused order
                head = set(order)
                order += [d for d in runs["hybrid"][q] if d not in head][:100 - len(order)]
            runs[variant][q] = {d: float(100 - i) for i, d in enumerate(order)}
            timings[variant].append(res.timings)
    stage_ms = {v: {stage: round(statistics.median(t[stage] for t in ts), 3) for stage in ts[0]}
                for v, ts in timings.items() if ts}
    return runs, stage_ms


def _quality(golden, qids, runs):
    from golden_sets.metrics import evaluate
    from golden_sets.stats import compare_paired, paired_values

    qrels = {q: golden.qrels[q] for q in qids}
    per_query = {v: evaluate(qrels, run, list(METRICS), complete=True) for v, run in runs.items()}
    quality = {m: {v: (per_query[v][m].mean if v in per_query else None) for v in VARIANTS} for m in METRICS}
    significance = {}
    for v in VARIANTS:
        if v == "dense" or v not in per_query:
            continue
        significance[v] = {}
        for m in METRICS:
            c = compare_paired(paired_values(per_query["dense"][m].per_query, per_query[v][m].per_query, m))
            significance[v][m] = {"mean_diff": c.mean_diff, "ci95": [c.ci_low, c.ci_high],
                                  "p_randomisation": c.randomisation.pvalue, "p_t": c.t_test.pvalue,
                                  "p_wilcoxon": c.wilcoxon.pvalue}
    return quality, significance


def _bm25_speed(lexical, golden, qids, repeats: int) -> dict:
    import bm25s
    from rank_bm25 import BM25Okapi

    index = lexical.index
    tok = index.tokenizer
    doc_ids = list(golden.corpus)
    docs = [tok.tokenize(golden.corpus[d]) for d in doc_ids]
    queries = [tok.tokenize(golden.queries[q]) for q in qids]
    p = index.params
    ref = BM25Okapi(docs, k1=p.k1, b=p.b, epsilon=p.epsilon)
    static = bm25s.BM25(k1=p.k1, b=p.b, method="atire", idf_method="robertson", dtype="float64")
    static.index(docs, show_progress=False)

    def ours():
        for qt in queries:
            index.search(qt, 100)

    def rank_bm25():
        for qt in queries:
            s = ref.get_scores(qt)
            top = np.argpartition(-s, 100)[:100]
            top[np.argsort(-s[top], kind="stable")]

    def bm25s_static():
        for qt in queries:
            s = static.get_scores(qt)
            top = np.argpartition(-s, 100)[:100]
            top[np.argsort(-s[top], kind="stable")]

    seconds: dict[str, list[float]] = {"ours": [], "rank_bm25": [], "bm25s": []}
    for _ in range(repeats):  # interleaved, so machine noise hits all three alike
        for name, fn in (("ours", ours), ("rank_bm25", rank_bm25), ("bm25s", bm25s_static)):
            t0 = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - t0)
    qps = {name: len(queries) / statistics.median(v) for name, v in seconds.items()}
    # Same run, same tokens: our scores against the reference, keyed back from row ids to document ids.
    row_of = {d: r for r, d in zip(lexical.index.ids, doc_ids)} if len(doc_ids) == len(lexical.index) else {}
    diff = 0.0
    for qt in queries[:20]:
        ours_s = index.scores(qt)
        ref_s = ref.get_scores(qt)
        diff = max(diff, max(abs(ours_s[row_of[d]] - ref_s[i]) for i, d in enumerate(doc_ids)))
    return {"bm25_qps": qps["ours"], "rank_bm25_qps": qps["rank_bm25"], "bm25s_static_qps": qps["bm25s"],
            "bm25_qps_vs_rank_bm25": qps["ours"] / qps["rank_bm25"], "bm25_qps_vs_bm25s": qps["ours"] / qps["bm25s"],
            "bm25_max_abs_diff_vs_rank_bm25": diff, "qps_repeats": repeats}


def _rerank_latency(pipe, golden, qids, reranker, samples: int) -> dict:
    """Median and p95 ms to score 100 hybrid candidates of a query."""
    if samples == 0:
        return {"rerank_ms_per_100": None, "rerank_ms_per_100_p95": None, "rerank_latency_model": None,
                "rerank_latency_samples": 0, "rerank_batch_size": None}
    if reranker is None:
        from index_engines.embedding import load_model
        from index_engines.rerank import Reranker

        reranker, what = Reranker(load_model("minilm-l6-v2").path), "untrained MiniLM head (latency only)"
    else:
        what = reranker.name
    col = pipe.collection
    ms = []
    for q in qids[:samples]:
        hits = pipe.search(golden.queries[q], k=100, candidates=100).hits
        texts = [r["text"] for r in col.get([h.id for h in hits])]
        reranker.score(golden.queries[q], texts[:5])  # warm-up outside the timing
        t0 = time.perf_counter()
        reranker.score(golden.queries[q], texts)
        ms.append((time.perf_counter() - t0) * 1e3 * 100 / len(texts))
    return {"rerank_ms_per_100": statistics.median(ms), "rerank_ms_per_100_p95": float(np.percentile(ms, 95)),
            "rerank_latency_model": what, "rerank_latency_samples": len(ms), "rerank_batch_size": reranker.batch_size}


# ---------------------------------------------------------------------------------------------- render
def render(result: dict) -> str:
    from workbench.tables import format_table

    rows = []
    for v in VARIANTS:
        n, r = result["ndcg_at_10"][v], result["recall_at_100"][v]
        if n is None:
            rows.append([v, "-", "-", "-", "-"])
            continue
        sig = result["significance_vs_dense"].get(v)
        p = (lambda m: f"{sig[m]['mean_diff']:+.4f} (p={sig[m]['p_randomisation']:.3g})") if sig else (lambda m: "-")
        rows.append([v, round(n, 4), p("ndcg@10"), round(r, 4), p("recall@100")])
    head = (f"{result['golden_set']}: {result['n_queries']} queries over {result['corpus_size']} documents; dense = "
            f"{result['model']} exact; fusion {result['fusion']}, {result['candidates']} candidates per source")
    rr = result["reranker"]
    note = (f"reranker {rr['ref']} over the top {result['rerank_depth']} fused candidates" if "ref" in rr
            else f"no rerank: {rr.get('missing') or rr.get('skipped')}")
    speed = (f"BM25 top-100: ours {result['bm25_qps']:.0f} q/s, rank-bm25 {result['rank_bm25_qps']:.1f} q/s "
             f"(x{result['bm25_qps_vs_rank_bm25']:.1f}), static bm25s {result['bm25s_static_qps']:.0f} q/s; "
             f"max |score diff| vs rank-bm25 {result['bm25_max_abs_diff_vs_rank_bm25']:.1e}")
    lat = ("rerank latency not measured (--latency-samples 0)" if result["rerank_ms_per_100"] is None else
           f"rerank 100 candidates: median {result['rerank_ms_per_100']:.0f} ms, p95 "
           f"{result['rerank_ms_per_100_p95']:.0f} ms ({result['rerank_latency_model']}, "
           f"{result['rerank_latency_samples']} queries)")
    table = format_table(["variant", "nDCG@10", "vs dense (sign-flip p)", "recall@100", "vs dense (sign-flip p)"],
                         rows)
    return "\n".join([head, note, table, speed, lat])
