"""`workbench drift --from MODEL --to MODEL [--json]`: how far a model change moves vectors, on the canary set.

`--sanity-check MODEL` instead runs the deploy-time check: re-embed the canaries with MODEL (cache bypassed) and
compare with its saved reference vectors (made on first use); exit code 1 on an alert.
"""
from __future__ import annotations

import json


def register(sub) -> None:
    from .compare import add_output_arguments

    p = sub.add_parser("drift", help="semantic drift between two models on the canary set, or a deploy sanity check",
                       description=__doc__)
    p.add_argument("--from", dest="from_model", default=None, help="the model in production, e.g. minilm-l6-v2")
    p.add_argument("--to", dest="to_model", default=None, help="the new model, e.g. mpnet-base-v2")
    p.add_argument("--k", type=int, default=10, help="neighbours compared per canary (default 10)")
    p.add_argument("--sanity-check", default=None, metavar="MODEL",
                   help="re-embed the canaries with MODEL and compare with its saved references")
    add_output_arguments(p)
    p.set_defaults(handler=drift)


def _table(headers, rows) -> str:
    from workbench.tables import format_table

    return format_table(headers, rows)


def _cross_model(args, tracker) -> int:
    from experiments.plots import drift_histogram, save_figure
    from experiments.tracking import log_drift
    from golden_sets.drift import cross_model_drift
    from index_engines.embedding import load_model

    from .compare import report_dir, save_then_track, say, slug

    say(f"embedding the canaries with {args.from_model} and {args.to_model}")
    drift = cross_model_drift(load_model(args.from_model), load_model(args.to_model), k=args.k)
    out = report_dir(f"drift-{slug(args.from_model)}-to-{slug(args.to_model)}")
    figure = save_figure(drift_histogram(drift), out / "drift.png")
    data = save_then_track(out / "drift.json", drift.to_dict() | {"plot": str(figure)}, tracker,
                           lambda t: log_drift(t, drift, figure))
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    rows = [[name, *(round(s[k], 4) for k in ("mean", "p01", "p05", "median", "p95"))]
            for name, s in ((m, data[m]) for m in ("cosine", f"jaccard@{drift.k}")) if s]
    f, t = drift.from_model, drift.to_model
    print(f"\nDrift {f['model']} ({f['dim']}-d) -> {t['model']} ({t['dim']}-d) on {drift.n} canaries\n")
    print(_table(["measure", "mean", "p01", "p05", "median", "p95"], rows))
    note = "" if drift.cosine is not None else " (dimensions differ: cosine is undefined, neighbourhoods compared)"
    print(f"\nClassification by mean {drift.measure}{note}: {drift.score:.4f} -> {drift.classification.upper()} "
          f"(incremental > 0.95, full backfill < 0.80)")
    print(f"Report: {data['report_path']}; plot: {figure}")
    if "mlflow_run_id" in data:
        print(f"MLflow run {data['mlflow_run_id']} in {data['mlflow_tracking_uri']}")
    return 0


def _sanity(args, tracker) -> int:
    from experiments.tracking import log_sanity
    from golden_sets.drift import deploy_sanity_check, ensure_reference
    from index_engines.embedding import load_model

    from .compare import report_dir, save_then_track, say, slug

    model = load_model(args.sanity_check)
    reference, created = ensure_reference(model)
    if created:
        say(f"canary references for {model.version} did not exist: created them in {reference.path}")
    report = deploy_sanity_check(model, reference)
    data = save_then_track(report_dir("sanity") / f"{slug(model.id)}.json",
                           report.to_dict() | {"reference_path": str(reference.path), "reference_created": created},
                           tracker, lambda t: log_sanity(t, report))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(_table(["model", "canaries", "mean cosine", "min cosine", "mean norm", "max norm drift", "result"],
                     [[report.model_id, report.n, report.mean_cosine, report.min_cosine, report.norm_mean,
                       report.max_norm_drift, "pass" if report.passed else "ALERT"]]))
        for alert in report.alerts:
            print(f"ALERT: {alert}")
    return 0 if report.passed else 1


def drift(args) -> int:
    from index_engines.models import get_spec

    from .compare import open_tracker

    if args.sanity_check:
        if args.from_model or args.to_model:
            raise ValueError("use either --sanity-check MODEL or --from MODEL --to MODEL, not both")
        get_spec(args.sanity_check)
        return _sanity(args, open_tracker(args))
    if not (args.from_model and args.to_model):
        raise ValueError("give --from MODEL and --to MODEL (or --sanity-check MODEL)")
    get_spec(args.from_model), get_spec(args.to_model)  # unknown ids fail before the store or a model loads
    return _cross_model(args, open_tracker(args))
