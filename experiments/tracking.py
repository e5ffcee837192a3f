"""MLflow tracking for evaluations, comparisons and drift runs.

The tracking URI is `settings.mlflow_tracking_uri` (default `sqlite:///<home>/mlflow.db`; `WORKBENCH_MLFLOW_
TRACKING_URI` takes any MLflow URI: `postgresql+psycopg://user@host/db`, `http://tracking-server:5000`, ...).
Artifacts go to an explicit location (`<home>/mlartifacts` unless the experiment already exists elsewhere), never
to the current directory. The store is checked once, quickly, before any work: an unreachable database or server
is a `TrackingError` naming the URI (MLflow itself would retry for about 100 s before failing).

What is logged:
- a comparison: a parent run (both systems' specs, model fingerprints and engine settings, the gate settings; one
  metric group per consumer and metric; the report as JSON, the summary and per-query values as CSV, the plots)
  and one child run per consumer (its golden-set hash, its metrics, its per-query values);
- an evaluation: the system, golden-set hash, metric means and per-query values;
- a drift or deploy sanity run: both models' fingerprints, the canary hash, the summary figures, per-canary values
  and the histogram.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from index_engines.settings import get_settings

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

EXPERIMENT = "embedding-workbench"
MAX_PARAM_LENGTH = 6000
_KEY_BAD = re.compile(r"[^\w\-./ :]")


class TrackingError(ValueError):
    """The tracking store cannot be used; the message names the URI and what to do."""


def redact(uri: str) -> str:
    """The URI with any password replaced by ***."""
    return re.sub(r"(//[^/:@]+):[^/@]*@", r"\1:***@", uri)


def mlflow_key(name: str) -> str:
    """A metric/param name MLflow accepts: `ndcg@10` -> `ndcg_at_10`."""
    return _KEY_BAD.sub("_", name.replace("@", "_at_"))


def flatten(d: Mapping, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            out[mlflow_key(name)] = text[:MAX_PARAM_LENGTH]
    return out


def _hint(uri: str) -> str:
    return (f"MLflow tracking store {redact(uri)} cannot be used: {{reason}}. Point WORKBENCH_MLFLOW_TRACKING_URI at "
            f"a reachable store (default sqlite:///{get_settings().home / 'mlflow.db'}) or run without tracking "
            f"(--no-track)")


def check_store(uri: str, timeout_s: int = 5) -> None:
    """Fail fast, naming the URI, when the store is unreachable."""
    scheme = uri.split(":", 1)[0].lower()
    try:
        if scheme.split("+")[0] in ("sqlite", "postgresql", "mysql", "mssql"):
            import sqlalchemy

            if scheme == "sqlite":
                path = uri.split(":///", 1)[-1]
                if path and path != ":memory:" and not Path(path).parent.is_dir():
                    raise TrackingError(_hint(uri).format(reason=f"folder {Path(path).parent} does not exist"))
                args = {}
            else:
                args = {"connect_timeout": timeout_s}
            engine = sqlalchemy.create_engine(uri, connect_args=args)
            try:
                with engine.connect():
                    pass
            finally:
                engine.dispose()
        elif scheme in ("http", "https"):
            import urllib.request

            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s):
                pass
    except TrackingError:
        raise
    except ModuleNotFoundError as exc:
        raise TrackingError(_hint(uri).format(reason=f"its database driver is not installed ({exc.name}); for "
                                                     f"PostgreSQL use postgresql+psycopg://")) from None
    except Exception as exc:  # driver and network errors of every kind
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TrackingError(_hint(uri).format(reason=reason)) from None


class TrackedRun:
    def __init__(self, tracker: "Tracker", run_id: str):
        self.tracker, self.run_id = tracker, run_id
        self._client = tracker.client

    def log_params(self, params: Mapping) -> None:
        from mlflow.entities import Param

        items = list(flatten(params).items())
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self._client.log_batch(self.run_id, params=[Param(k, v) for k, v in items[i:i + 100]])

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(mlflow_key(k), float(v), now, 0) for k, v in metrics.items() if v is not None]
        for i in range(0, len(items), 1000):
            self._client.log_batch(self.run_id, metrics=items[i:i + 1000])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            self._client.set_tag(self.run_id, k, str(v))

    def log_json(self, obj, artifact_file: str) -> None:
        self._client.log_dict(self.run_id, obj, artifact_file)

    def log_frame(self, frame, artifact_file: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            frame.to_csv(path, index=False)
            self.log_file(path, str(Path(artifact_file).parent) if "/" in artifact_file else None)

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        self._client.log_artifact(self.run_id, str(path), artifact_path)


class Tracker:
    """One experiment in one tracking store. `with tracker.run(name, params=...) as run: run.log_metrics(...)`."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = EXPERIMENT,
                 artifact_root: Path | None = None):
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        settings = get_settings()
        self.tracking_uri = tracking_uri or settings.mlflow_tracking_uri
        if self.tracking_uri.startswith("sqlite:///"):
            settings.home.mkdir(parents=True, exist_ok=True)
        check_store(self.tracking_uri)
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        root = Path(artifact_root or settings.home / "mlartifacts").resolve()
        try:
            found = self.client.get_experiment_by_name(experiment)
            if found is None:
                root.mkdir(parents=True, exist_ok=True)
                self.experiment_id = self.client.create_experiment(experiment, artifact_location=root.as_uri())
            else:
                if found.lifecycle_stage == "deleted":
                    self.client.restore_experiment(found.experiment_id)
                self.experiment_id = found.experiment_id
        except MlflowException as exc:
            raise TrackingError(_hint(self.tracking_uri).format(reason=exc.message)) from None

    @contextmanager
    def run(self, name: str, *, params: Mapping | None = None, tags: Mapping | None = None,
            parent: TrackedRun | None = None) -> Iterator[TrackedRun]:
        """A run that ends FINISHED, or FAILED if the block raises (the error propagates)."""
        all_tags = dict(tags or {})
        if parent is not None:
            all_tags["mlflow.parentRunId"] = parent.run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        tracked = TrackedRun(self, run.info.run_id)
        try:
            if params:
                tracked.log_params(params)
            yield tracked
        except BaseException:
            self.client.set_terminated(tracked.run_id, "FAILED")
            raise
        self.client.set_terminated(tracked.run_id, "FINISHED")


# --------------------------------------------------------------------------------------------- what we log
def log_evaluation(tracker: Tracker, evaluation, system: Mapping | None = None,
                   parent: TrackedRun | None = None) -> str:
    """A `golden_sets.evaluate.ConsumerEvaluation`: params, metric means, per-query values."""
    import pandas as pd

    ev = evaluation
    params = {"kind": "evaluation", "consumer": ev.consumer.name, "golden_set": ev.consumer.golden_set,
              "golden_set_hash": ev.golden_set_hash, "k": ev.consumer.k, "system": dict(system or {"spec": ev.system})}
    with tracker.run(f"evaluate {ev.consumer.name} {ev.system}", params=params, parent=parent,
                     tags={"workbench.kind": "evaluation"}) as run:
        run.log_metrics({n: m.mean for n, m in ev.metrics.items()})
        run.log_metrics({f"check.{c.what}": c.value for c in ev.checks})
        run.log_metrics({"passed": float(ev.passed)})
        frame = pd.DataFrame({n: pd.Series(m.per_query) for n, m in ev.metrics.items()})
        run.log_frame(frame.rename_axis("query_id").reset_index(), "per_query.csv")
        return run.run_id


def _metric_fields(m) -> dict[str, float]:
    s = m.stats
    return {"baseline": s.baseline_mean, "candidate": s.candidate_mean, "diff": s.mean_diff, "ci_low": s.ci_low,
            "ci_high": s.ci_high, "p_randomisation": s.randomisation.pvalue, "p_t": s.t_test.pvalue,
            "p_wilcoxon": s.wilcoxon.pvalue, "p_holm": m.p_holm, "mde": m.power.mde, "passed": float(m.passed)}


def log_comparison(tracker: Tracker, report, figures: Mapping[str, Path] | None = None) -> str:
    """A `golden_sets.compare.ComparisonReport`: a parent run and a child run per consumer. Returns the parent id."""
    params = {"kind": "comparison", "baseline": report.baseline, "candidate": report.candidate,
              "margin": report.margin, "confidence": report.confidence, "n_resamples": report.n_resamples,
              "seed": report.seed, "consumers": ",".join(report.names),
              "golden_set_hashes": {c.consumer: c.golden_set_hash for c in report.consumers}}
    name = f"compare {report.candidate.get('spec')} vs {report.baseline.get('spec')}"
    with tracker.run(name, params=params, tags={"workbench.kind": "comparison"}) as parent:
        metrics = {"passed": float(report.passed), "aggregate.pooled_mean_diff": report.aggregate["pooled_mean_diff"]}
        for c in report.consumers:
            metrics[f"{c.consumer}.passed"] = float(c.passed)
            for m in c.metrics:
                metrics.update({f"{c.consumer}.{m.metric}.{k}": v for k, v in _metric_fields(m).items()})
        parent.log_metrics(metrics)
        parent.set_tags({"verdict": "ship" if report.passed else "do not ship"})
        parent.log_json(report.to_dict(), "report.json")
        parent.log_frame(report.to_frame(), "summary.csv")
        parent.log_frame(report.per_query_frame(), "per_query.csv")
        for path in (figures or {}).values():
            parent.log_file(Path(path), "plots")
        per_query = report.per_query_frame()
        for c in report.consumers:
            child_params = {"consumer": c.consumer, "golden_set": c.golden_set, "golden_set_hash": c.golden_set_hash,
                            "n_queries": c.n_queries, "baseline": report.baseline.get("spec"),
                            "candidate": report.candidate.get("spec")}
            with tracker.run(f"{c.consumer}", params=child_params, parent=parent,
                             tags={"workbench.kind": "comparison.consumer"}) as child:
                child.log_metrics({"passed": float(c.passed)} | {
                    f"{m.metric}.{k}": v for m in c.metrics for k, v in _metric_fields(m).items()})
                child.log_json(c.to_dict(), "consumer.json")
                child.log_frame(per_query[per_query["consumer"] == c.consumer], "per_query.csv")
        return parent.run_id


def log_drift(tracker: Tracker, drift, figure: Path | None = None) -> str:
    """A `golden_sets.drift.DriftReport`."""
    import pandas as pd

    params = {"kind": "drift", "from": drift.from_model, "to": drift.to_model, "canaries_hash": drift.canaries_hash,
              "n_canaries": drift.n, "k": drift.k, "measure": drift.measure}
    summary = drift.to_dict()
    with tracker.run(f"drift {drift.from_model['model']} -> {drift.to_model['model']}", params=params,
                     tags={"workbench.kind": "drift", "classification": drift.classification}) as run:
        metrics = {"score": drift.score}
        for measure in ("cosine", f"jaccard@{drift.k}"):
            metrics.update({f"{measure}.{k}": v for k, v in (summary[measure] or {}).items()})
        run.log_metrics(metrics)
        run.log_json(summary, "drift.json")
        columns = {"jaccard": drift.jaccard} | ({"cosine": drift.cosine} if drift.cosine is not None else {})
        run.log_frame(pd.DataFrame(columns).rename_axis("canary").reset_index(), "per_canary.csv")
        if figure is not None:
            run.log_file(Path(figure), "plots")
        return run.run_id


def log_sanity(tracker: Tracker, sanity) -> str:
    """A `golden_sets.drift.SanityReport` (deploy-time canary check)."""
    data = sanity.to_dict()
    with tracker.run(f"deploy sanity {sanity.model_id}", tags={"workbench.kind": "deploy-sanity",
                                                                "result": "pass" if sanity.passed else "ALERT"},
                     params={"kind": "deploy-sanity", "model": sanity.model_id,
                             "reference_model": sanity.reference_model_id, "n_canaries": sanity.n}) as run:
        run.log_metrics({k: v for k, v in data.items() if isinstance(v, float)} | {"passed": float(sanity.passed)})
        run.log_json(data, "sanity.json")
        return run.run_id
