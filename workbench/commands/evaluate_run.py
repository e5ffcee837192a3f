"""`workbench evaluate-run --qrels FILE --run FILE [--metrics ...] [--per-query] [--complete] --json`.

A trec_eval-like evaluator: TREC or BEIR qrels, a TREC run file, means of the requested metrics as one JSON object
(keys such as `ndcg@10`), and with `--per-query` the per-query values too.
"""
from __future__ import annotations

import json

DEFAULT_METRICS = "ndcg@10,recall@100,precision@10,mrr@10,map@10"


def register(sub) -> None:
    p = sub.add_parser("evaluate-run", help="evaluate a TREC run file against qrels (trec_eval semantics)")
    p.add_argument("--qrels", required=True, help="TREC qrels (qid 0 docid rel) or BEIR tsv (query-id corpus-id score)")
    p.add_argument("--run", required=True, help="TREC run file (qid Q0 docid rank score tag)")
    p.add_argument("--metrics", default=DEFAULT_METRICS, help=f"comma-separated, default {DEFAULT_METRICS}")
    p.add_argument("--per-query", action="store_true", help="also print per-query values")
    p.add_argument("--complete", action="store_true",
                   help="average over every judged query, unanswered ones scoring 0 (trec_eval -c)")
    p.add_argument("--json", action="store_true", help="print JSON (the default output is JSON too)")
    p.set_defaults(handler=evaluate_run)


def evaluate_run(args) -> int:
    from golden_sets.loaders import load_qrels, load_trec_run
    from golden_sets.metrics import evaluate, means

    qrels = load_qrels(args.qrels)
    run = load_trec_run(args.run)
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    results = evaluate(qrels, run, names, complete=args.complete)
    out: dict = dict(means(results))
    out["num_queries"] = len(next(iter(results.values())).per_query)
    if args.per_query:
        out["per_query"] = {name: r.per_query for name, r in results.items()}
    print(json.dumps(out, indent=2 if args.per_query else None))
    return 0
