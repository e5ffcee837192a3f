"""`workbench compare` and `workbench drift`: output contracts, exit codes, MLflow logging and clear errors."""
from __future__ import annotations

import json

import pytest

from index_engines.settings import get_settings
from workbench.cli import main


def test_compare_json_is_keyed_by_consumer_with_every_p_value_and_is_tracked(capsys):
    from mlflow import MlflowClient

    code = main(["compare", "--baseline", "static-64", "--candidate", "static-64:hnsw:M=4,ef_construction=16,ef=10",
                 "--consumers", "dedup", "--resamples", "999", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == (0 if data["passed"] else 1)
    dedup = data["consumers"]["dedup"]
    assert list(data["consumers"]) == ["dedup"] and dedup["n_queries"] == 1147
    tests = dedup["metrics"]["precision@1"]["tests"]
    assert {name: 0 <= t["p_value"] <= 1 for name, t in tests.items()} == {
        "randomisation": True, "t_test": True, "wilcoxon": True}
    assert data["candidate"]["build_params"] == {"M": 4, "ef_construction": 16}
    assert data["candidate"]["query_params"] == {"ef": 10}
    assert data["baseline"]["fingerprint"] == data["candidate"]["fingerprint"]
    # An HNSW graph this thin loses true neighbours: the gate must see it.
    assert dedup["metrics"]["precision@1"]["diff"] < 0
    run = MlflowClient(get_settings().mlflow_tracking_uri).get_run(data["mlflow_run_id"])
    assert run.data.params["candidate.spec"] == "static-64:hnsw:M=4,ef_construction=16,ef=10"
    saved = json.loads(open(data["report_path"]).read())
    assert saved["consumers"]["dedup"]["metrics"]["precision@1"]["diff"] == dedup["metrics"]["precision@1"]["diff"]
    assert all(open(p, "rb").read(4) == b"\x89PNG" for p in data["plots"].values())


def test_compare_table_of_identical_systems_passes(capsys):
    code = main(["compare", "--baseline", "static-64", "--candidate", "static-64:flat", "--consumers", "ads",
                 "--resamples", "999", "--no-track"])
    out = capsys.readouterr().out
    # Non-inferior by construction; static-64 misses the target set for MiniLM (0.71), so the gate still fails.
    assert code == 1 and "[+0.0000, +0.0000]" in out and "p rand" in out
    assert "misses the target" in out and "worse than the baseline" not in out
    assert "VERDICT: do not ship (0/1 consumers pass)" in out


@pytest.mark.parametrize("argv, message", [
    (["--baseline", "static-64", "--candidate", "static-64:hnswx"], "unknown engine 'hnswx'; valid engines: flat"),
    (["--baseline", "gpt", "--candidate", "static-64"], "unknown embedding model 'gpt'; valid model ids"),
    (["--baseline", "static-64", "--candidate", "static-64", "--consumers", "billing"],
     "unknown consumer 'billing'; valid consumers: ads, dedup, recsys, search"),
])
def test_compare_bad_input_is_a_message(argv, message, capsys):
    assert main(["compare", *argv, "--no-track"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err and captured.out == ""


def test_unreachable_mlflow_store_fails_before_any_work(monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_MLFLOW_TRACKING_URI", "postgresql+psycopg://wb@127.0.0.1:1/mlflow")
    get_settings.cache_clear()
    try:
        code = main(["compare", "--baseline", "static-64", "--candidate", "static-64", "--consumers", "ads"])
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "MLflow tracking store postgresql+psycopg://wb@127.0.0.1:1/mlflow cannot be used" in captured.err


def test_drift_across_dimensions_reports_neighbourhood_overlap(capsys):
    assert main(["drift", "--from", "static-64", "--to", "minilm-l6-v2", "--json", "--no-track"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["measure"] == "neighbour jaccard@10" and data["cosine"] is None
    assert 0 < data["score"] < 0.8 and data["classification"] == "full backfill"
    assert data["from"]["dim"] == 64 and data["to"]["dim"] == 384 and data["n_canaries"] == 1200


def test_drift_table_for_the_same_model(capsys):
    assert main(["drift", "--from", "static-64", "--to", "static-64", "--no-track"]) == 0
    out = capsys.readouterr().out
    assert "cosine" in out and "INCREMENTAL" in out


def test_sanity_check_creates_references_then_passes(capsys):
    assert main(["drift", "--sanity-check", "static-64", "--json", "--no-track"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] and data["mean_cosine"] > 0.9999 and data["alerts"] == []
    assert main(["drift", "--sanity-check", "static-64", "--json", "--no-track"]) == 0
    assert json.loads(capsys.readouterr().out)["reference_created"] is False


def test_drift_needs_one_mode(capsys):
    assert main(["drift", "--from", "static-64", "--sanity-check", "static-64"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["drift", "--from", "static-64"]) == 2
    assert "give --from MODEL and --to MODEL" in capsys.readouterr().err


def test_demo_appends_the_comparison(capsys):
    assert main(["demo", "--model", "static-64", "--consumers", "ads", "--candidate", "static-64:hnsw:ef=16",
                 "--no-track"]) == 0
    out = capsys.readouterr().out
    assert "static-64 (v1) vs static-64:hnsw:ef=16 (v2): per-consumer A/B gate" in out and "VERDICT:" in out
    report = json.loads((get_settings().reports_dir / "demo-static-64.json").read_text())
    assert report["consumers"][0]["consumer"] == "ads"  # the demo's own report is unchanged
    assert set(report["comparison"]["consumers"]) == {"ads"}


def test_a_report_survives_a_failed_mlflow_log(tmp_path):
    from types import SimpleNamespace

    from experiments.tracking import TrackingError
    from workbench.commands.compare import save_then_track

    def log(tracker):
        raise RuntimeError("database is locked")

    tracker = SimpleNamespace(tracking_uri="postgresql+psycopg://wb:pw@db/mlflow")
    with pytest.raises(TrackingError, match=r"report was saved to .*r.json, but logging it to MLflow "
                                            r"\(postgresql\+psycopg://wb:\*\*\*@db/mlflow\) failed: database is locked"):
        save_then_track(tmp_path / "r.json", {"passed": True}, tracker, log)
    assert json.loads((tmp_path / "r.json").read_text()) == {"passed": True}
