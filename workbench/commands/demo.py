"""`workbench demo`: the main job (`make run`).

Embeds every consumer's golden set with the default model (cached: the second run takes seconds), searches it
exactly, evaluates every consumer against its targets, prints the table and writes a JSON report into the data
directory.
"""
from __future__ import annotations

import json
import time


def register(sub) -> None:
    p = sub.add_parser("demo", help="evaluate every consumer with the default model (what `make run` runs)")
    p.add_argument("--model", default=None, help="embedding model id (default: the default model)")
    p.add_argument("--consumers", default=None, help="comma-separated consumer names (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.set_defaults(handler=demo)


def consumer_rows(evaluations) -> list[list]:
    rows = []
    for ev in evaluations:
        for c in ev.checks:
            rows.append([ev.consumer.name, c.what, round(c.value, 4), c.target, "pass" if c.passed else "FAIL"])
    return rows


def demo(args) -> int:
    from golden_sets.consumers import load_consumers
    from golden_sets.evaluate import ExactRetriever, evaluate_consumer
    from index_engines.embedding import load_model
    from index_engines.models import DEFAULT_MODEL_ID
    from index_engines.settings import get_settings
    from workbench.tables import format_table

    started = time.perf_counter()
    model = load_model(args.model or DEFAULT_MODEL_ID)
    names = [n.strip() for n in args.consumers.split(",")] if args.consumers else None
    consumers = load_consumers(names)
    retriever = ExactRetriever(model)
    evaluations = [evaluate_consumer(c, retriever) for c in consumers]
    report = {
        "model": model.id, "model_version": model.version, "fingerprint": model.fingerprint,
        "search": "exact (flat inner product on unit vectors)",
        "seconds": round(time.perf_counter() - started, 2),
        "consumers": [ev.to_dict() for ev in evaluations],
        "all_passed": all(ev.passed for ev in evaluations),
    }
    out_dir = get_settings().reports_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"demo-{model.id}.json"
    path.write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"\nModel {model.version} ({model.dim}-d), exact search; golden sets from real judgments\n")
        print(format_table(["consumer", "metric", "value", "target", "result"], consumer_rows(evaluations)))
        print(f"\nReport: {path}  ({report['seconds']} s)")
    return 0
