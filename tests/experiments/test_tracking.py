"""MLflow runs are written to a temporary SQLite store and read back: params, metrics, artifacts, child runs."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from experiments.plots import consumer_bars, difference_histograms, drift_histogram, save_figure
from experiments.tracking import Tracker, TrackingError, log_comparison, log_drift, log_evaluation, log_sanity, \
    mlflow_key, redact
from golden_sets.compare import build_report
from golden_sets.consumers import load_consumers
from golden_sets.drift import DriftReport, SanityReport
from golden_sets.evaluate import Check, ConsumerEvaluation
from golden_sets.metrics import MetricResult
from tests.golden_sets.test_compare import _synthetic


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return uri, Tracker(tracking_uri=uri, experiment="tests", artifact_root=root / "artifacts"), root


@pytest.fixture(scope="module")
def report():
    results = [_synthetic(c, 0.03 if c.name != "ads" else -0.05, seed=i) for i, c in enumerate(load_consumers())]
    return build_report(results, {"spec": "minilm-l6-v2", "fingerprint": "a" * 64},
                        {"spec": "mpnet-base-v2:hnsw:ef=64", "fingerprint": "b" * 64,
                         "build_params": {"M": 16}, "query_params": {"ef": 64}}, n_resamples=999, seed=0)


def _artifacts(client, run_id, path=None):
    out = []
    for f in client.list_artifacts(run_id, path):
        out += _artifacts(client, run_id, f.path) if f.is_dir else [f.path]
    return sorted(out)


def test_comparison_is_written_and_read_back(store, report, tmp_path):
    from mlflow import MlflowClient

    uri, tracker, root = store
    figures = {"d": save_figure(difference_histograms(report), tmp_path / "differences.png"),
               "c": save_figure(consumer_bars(report), tmp_path / "consumers.png")}
    run_id = log_comparison(tracker, report, figures)

    client = MlflowClient(uri)  # a fresh client: what anyone reading the store would see
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith((root / "artifacts").as_uri())
    p = run.data.params
    assert p["baseline.spec"] == "minilm-l6-v2" and p["candidate.fingerprint"] == "b" * 64
    assert p["candidate.query_params.ef"] == "64" and p["margin"] == "0.01"
    assert p["golden_set_hashes.search"] == "hash-search"
    m = run.data.metrics
    search = report.consumer("search").metrics[1]
    assert m["search.ndcg_at_10.diff"] == pytest.approx(search.stats.mean_diff)
    assert m["search.ndcg_at_10.p_holm"] == pytest.approx(search.p_holm)
    assert m["ads.passed"] == 0.0 and m["passed"] == 0.0 and run.data.tags["verdict"] == "do not ship"
    assert _artifacts(client, run_id) == ["per_query.csv", "plots/consumers.png", "plots/differences.png",
                                          "report.json", "summary.csv"]
    saved = json.loads(open(client.download_artifacts(run_id, "report.json", str(tmp_path))).read())
    assert saved["consumers"]["ads"]["passed"] is False

    children = client.search_runs([tracker.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    assert sorted(c.info.run_name for c in children) == ["ads", "dedup", "recsys", "search"]
    ads = next(c for c in children if c.info.run_name == "ads")
    assert ads.data.params["golden_set"] == "scifact-test-ads"
    assert ads.data.metrics["recall_at_5.diff"] == pytest.approx(report.consumer("ads").primary.stats.mean_diff)
    rows = open(client.download_artifacts(ads.info.run_id, "per_query.csv", str(tmp_path / "ads"))).read()
    assert rows.count("\n") == 1 + 300


def test_evaluation_drift_and_sanity_runs(store, tmp_path):
    from mlflow import MlflowClient

    uri, tracker, _ = store
    consumer = load_consumers(["dedup"])[0]
    ev = ConsumerEvaluation(consumer, "static-64:flat", "h" * 64,
                            {"precision@1": MetricResult("precision@1", {"q1": 1.0, "q2": 0.0})},
                            [Check("precision@1", 0.5, 0.0)], {})
    client = MlflowClient(uri)
    run = client.get_run(log_evaluation(tracker, ev, {"spec": "static-64", "fingerprint": "f" * 64}))
    assert run.data.metrics["precision_at_1"] == 0.5 and run.data.params["golden_set_hash"] == "h" * 64
    assert run.data.params["system.fingerprint"] == "f" * 64

    rng = np.random.default_rng(0)
    drift = DriftReport({"model": "a", "fingerprint": "1" * 64, "dim": 384}, {"model": "b", "fingerprint": "2" * 64,
                        "dim": 768}, 1200, 10, None, rng.uniform(0.2, 0.7, 1200), "c" * 64)
    fig = save_figure(drift_histogram(drift), tmp_path / "drift.png")
    run = client.get_run(log_drift(tracker, drift, fig))
    assert run.data.tags["classification"] == "full backfill" and run.data.params["to.dim"] == "768"
    assert run.data.metrics["score"] == pytest.approx(drift.score)
    assert run.data.metrics["jaccard_at_10.median"] == pytest.approx(np.median(drift.jaccard))
    assert _artifacts(client, run.info.run_id) == ["drift.json", "per_canary.csv", "plots/drift.png"]

    sanity = SanityReport("m", "m", 1200, 1.0, 1.0, 1.0, 1.3, 0.6, ("vector norms drifted",))
    run = client.get_run(log_sanity(tracker, sanity))
    assert run.data.tags["result"] == "ALERT" and run.data.metrics["max_norm_drift"] == 0.6


def test_a_failing_block_marks_the_run_failed(store):
    from mlflow import MlflowClient

    uri, tracker, _ = store
    with pytest.raises(RuntimeError):
        with tracker.run("boom", params={"a": 1}) as run:
            raise RuntimeError("evaluation crashed")
    assert MlflowClient(uri).get_run(run.run_id).info.status == "FAILED"


def test_unreachable_postgres_is_a_quick_clear_error():
    uri = "postgresql+psycopg://wb:secret@127.0.0.1:1/mlflow"
    started = time.perf_counter()
    with pytest.raises(TrackingError, match=r"MLflow tracking store postgresql\+psycopg://wb:\*\*\*@127.0.0.1:1/mlflow "
                                            r"cannot be used: .*WORKBENCH_MLFLOW_TRACKING_URI"):
        Tracker(tracking_uri=uri)
    assert time.perf_counter() - started < 15  # MLflow's own retries would take ~100 s


def test_missing_sqlite_folder_is_a_clear_error(tmp_path):
    with pytest.raises(TrackingError, match="folder .*nowhere does not exist"):
        Tracker(tracking_uri=f"sqlite:///{tmp_path / 'nowhere' / 'mlflow.db'}")


def test_names_mlflow_accepts():
    assert mlflow_key("search.ndcg@10.p_holm") == "search.ndcg_at_10.p_holm"
    assert mlflow_key("p95 latency ms (encode+search)") == "p95 latency ms _encode_search_"
    assert redact("postgresql://user:pw@host/db") == "postgresql://user:***@host/db"
    assert redact("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


@pytest.mark.slow
def test_a_postgresql_store_works_too(report):
    """Any MLflow URI: a throw-away PostgreSQL database on the local server (skipped when none runs)."""
    import uuid

    psycopg = pytest.importorskip("psycopg")
    from mlflow import MlflowClient

    name = f"wb_mlflow_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            uri = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
            run_id = log_comparison(Tracker(tracking_uri=uri, experiment="pg"), report)
            assert MlflowClient(uri).get_run(run_id).data.params["baseline.spec"] == "minilm-l6-v2"
        finally:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")  # FORCE: MLflow's pool still holds connections
