"""`workbench compare --baseline SPEC --candidate SPEC [--consumers ...] [--json]`: the per-consumer A/B gate.

A SPEC is a model id, optionally with an engine and its settings: `minilm-l6-v2` (exact search),
`minilm-l6-v2:hnsw:ef=64`, `mpnet-base-v2:hnsw:M=32,ef=128`. Every consumer's golden set is evaluated with both
systems; the report (terminal table, or JSON keyed by consumer name with each test's p-value) is written to the
reports folder with its plots and logged to MLflow. Exit code 0 when every consumer passes its gate, 1 when the
change must not ship, 2 on bad input.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("compare", help="A/B-compare two systems on every consumer's golden set (significance + gate)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--baseline", required=True, help="SPEC of the system in production, e.g. minilm-l6-v2")
    p.add_argument("--candidate", required=True, help="SPEC of the proposed system, e.g. mpnet-base-v2")
    p.add_argument("--consumers", default=None, help="comma-separated consumer names (default: all)")
    p.add_argument("--margin", type=float, default=None, help="non-inferiority margin (default 0.01 = 1 point)")
    p.add_argument("--resamples", type=int, default=None, help="bootstrap and randomisation resamples (10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    add_output_arguments(p)
    p.set_defaults(handler=compare)


def add_output_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    p.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def open_tracker(args):
    """The MLflow tracker, opened (and the store checked) before any slow work; None with --no-track."""
    if getattr(args, "no_track", False):
        return None
    from experiments.tracking import Tracker

    return Tracker()


def report_dir(name: str) -> Path:
    from index_engines.settings import get_settings

    path = get_settings().reports_dir / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_consumers(text: str | None):
    from golden_sets.consumers import load_consumers

    names = [n.strip() for n in text.split(",") if n.strip()] if text else None
    return load_consumers(names)


def save_then_track(path: Path, data: dict, tracker, log) -> dict:
    """Write the report to `path`, then `log(tracker) -> run id` it to MLflow. If logging fails the saved report
    stays and the error says where it is."""
    data = dict(data)
    path.write_text(json.dumps(data, indent=2))
    if tracker is not None:
        from experiments.tracking import TrackingError, redact

        uri = redact(tracker.tracking_uri)
        try:
            data["mlflow_run_id"] = log(tracker)
        except Exception as exc:
            raise TrackingError(f"the report was saved to {path}, but logging it to MLflow ({uri}) failed: "
                                f"{exc}") from exc
        data["mlflow_tracking_uri"] = uri
        path.write_text(json.dumps(data, indent=2))
    data["report_path"] = str(path)
    return data


def run_comparison(baseline: str, candidate: str, consumers, tracker, *, margin=None, resamples=None, seed=0,
                   progress=say) -> dict:
    """Compare, save the report, per-query values and plots, log to MLflow; returns the report and its dict."""
    from experiments.plots import consumer_bars, difference_histograms, save_figure
    from experiments.tracking import log_comparison
    from golden_sets.compare import DEFAULT_MARGIN, compare_specs
    from golden_sets.stats import DEFAULT_RESAMPLES

    report = compare_specs(baseline, candidate, consumers, progress=progress,
                           margin=DEFAULT_MARGIN if margin is None else margin,
                           n_resamples=resamples or DEFAULT_RESAMPLES, seed=seed)
    out = report_dir(f"compare-{slug(candidate)}-vs-{slug(baseline)}")
    figures = {"differences": save_figure(difference_histograms(report), out / "differences.png"),
               "consumers": save_figure(consumer_bars(report), out / "consumers.png")}
    report.per_query_frame().to_csv(out / "per_query.csv", index=False)
    data = report.to_dict() | {"plots": {k: str(v) for k, v in figures.items()}}
    data = save_then_track(out / "report.json", data, tracker, lambda t: log_comparison(t, report, figures))
    return {"report": report, "data": data}


def compare(args) -> int:
    from golden_sets.systems import parse_system

    parse_system(args.baseline)  # bad SPECs fail before anything loads
    parse_system(args.candidate)
    consumers = parse_consumers(args.consumers)
    tracker = open_tracker(args)
    result = run_comparison(args.baseline, args.candidate, consumers, tracker, margin=args.margin,
                            resamples=args.resamples, seed=args.seed)
    report, data = result["report"], result["data"]
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(report.to_table())
        print(f"\nReport: {data['report_path']}; plots: {', '.join(data['plots'].values())}")
        if "mlflow_run_id" in data:
            print(f"MLflow run {data['mlflow_run_id']} in {data['mlflow_tracking_uri']}")
    return 0 if report.passed else 1
