"""`workbench demo`: the main job (`make run`).

Embeds every consumer's golden set with the default model (cached: the second run takes seconds), searches it
exactly, evaluates every consumer against its targets, prints the table and writes a JSON report into the data
directory. With the default model it then compares v1 (MiniLM) with v2 (mpnet) on every consumer: the per-consumer
A/B gate of `workbench compare` (mpnet embeds SciFact once, about an hour on 2 cores; cached and resumable).
Evaluations and the comparison are logged to MLflow unless `--no-track`.
"""
from __future__ import annotations

import json
import time


def register(sub) -> None:
    p = sub.add_parser("demo", help="evaluate every consumer with the default model (what `make run` runs)")
    p.add_argument("--model", default=None, help="embedding model id (default: the default model)")
    p.add_argument("--consumers", default=None, help="comma-separated consumer names (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--candidate", default=None,
                   help="SPEC compared against the model (default: mpnet-base-v2 when the model is the default)")
    p.add_argument("--no-compare", action="store_true", help="skip the v1-vs-v2 comparison")
    p.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    p.set_defaults(handler=demo)


V2_MODEL = "mpnet-base-v2"


def _candidate(args) -> str | None:
    if args.no_compare:
        return None
    return args.candidate or (V2_MODEL if args.model is None else None)


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

    from .compare import open_tracker, run_comparison, say

    started = time.perf_counter()
    names = [n.strip() for n in args.consumers.split(",")] if args.consumers else None
    consumers = load_consumers(names)
    candidate = _candidate(args)
    if candidate:
        from golden_sets.systems import parse_system

        parse_system(candidate)  # a bad SPEC fails before the long work
    tracker = open_tracker(args)
    model = load_model(args.model or DEFAULT_MODEL_ID)
    retriever = ExactRetriever(model)
    evaluations = [evaluate_consumer(c, retriever) for c in consumers]
    if tracker is not None:
        from experiments.tracking import log_evaluation

        for ev in evaluations:
            log_evaluation(tracker, ev, {"spec": model.id, "model_version": model.version,
                                         "fingerprint": model.fingerprint, "engine": "flat"})
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
    if not args.json:
        # The v1 table first: the comparison may have to embed the golden sets with v2, which takes long.
        print(f"\nModel {model.version} ({model.dim}-d), exact search; golden sets from real judgments\n")
        print(format_table(["consumer", "metric", "value", "target", "result"], consumer_rows(evaluations)),
              flush=True)
    if candidate:
        say(f"comparing {model.id} (v1) with {candidate} on {len(consumers)} consumers; the first run embeds the "
            f"golden sets with {candidate} (about an hour for mpnet on 2 cores; resumable, cached afterwards)")
        comparison = run_comparison(model.id, candidate, consumers, tracker)
        report["comparison"] = comparison["data"]
        report["seconds"] = round(time.perf_counter() - started, 2)
        path.write_text(json.dumps(report, indent=2))
        if not args.json:
            print(f"\n{model.id} (v1) vs {candidate} (v2): per-consumer A/B gate\n")
            print(comparison["report"].to_table())
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"\nReport: {path}  ({report['seconds']} s)")
    return 0
