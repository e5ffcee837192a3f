"""`workbench eval --collection NAME --beir DIR [--split test] [--json]`.

Searches a collection with every judged query of a BEIR split (text encoded with the collection's pinned model)
and prints the means of nDCG@10, recall@10, recall@100 and MRR@10 (trec_eval semantics, every judged query
counted) under the same keys as `evaluate-run`, plus ANN recall@10 against the collection's exact search.
"""
from __future__ import annotations

import json
import time

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
DEPTH = 100


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a collection on a BEIR split (nDCG@10, recall, MRR, ANN recall)")
    p.add_argument("--collection", required=True, help="collection name")
    p.add_argument("--beir", required=True, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)")
    p.add_argument("--split", default="test", help="qrels split (default test)")
    p.add_argument("--tenant", default=None, help="search within one tenant")
    p.add_argument("--filter", default=None, help="JSON filter applied to every query")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=evaluate_collection)


def evaluate_collection(args) -> int:
    import numpy as np

    from golden_sets.loaders import load_beir
    from golden_sets.metrics import ann_recall_at_k, evaluate, means
    from index_engines.collection import Collection
    from index_engines.collection.catalog import collection_path
    from workbench.tables import format_table

    data = load_beir(args.beir, args.split)
    qids = sorted(q for q in data.qrels if q in data.queries)
    if not qids:
        raise ValueError(f"no judged queries of split {args.split!r} appear in {args.beir}/queries.jsonl")
    with Collection.open(collection_path(args.collection)) as col:
        col.wait_idle()
        queries = col.query_vectors([data.queries[q] for q in qids])
        common = dict(vectors=queries, model_version=col.model_version, k=DEPTH, filter=args.filter,
                      tenant=args.tenant)
        started = time.perf_counter()
        res = col.search(**common)
        seconds = time.perf_counter() - started
        exact = col.search(**common, exact=True)
        run = {q: {h["id"]: h["score"] for h in hits} for q, hits in zip(qids, res.hits)}
        out = dict(means(evaluate(data.qrels, run, METRICS, complete=True)))
        out["ann_recall@10"] = float(np.mean(ann_recall_at_k(res.rows, exact.rows, 10)))
        out.update({"num_queries": len(qids), "collection": col.name, "model_version": col.model_version,
                    "count": len(col), "route": res.route, "ms_per_query": seconds * 1e3 / len(qids)})
    if args.json:
        print(json.dumps(out))
    else:
        print(format_table(["metric", "value"], [[k, v] for k, v in out.items()]))
    return 0
