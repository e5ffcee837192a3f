"""The `workbench` command line: output contracts and clear errors (exit 2 with a message, never a traceback)."""
from __future__ import annotations

import json

import pytest

from golden_sets.loaders import load_qrels, write_trec_run
from golden_sets.metrics import evaluate, means
from index_engines.settings import get_settings
from workbench.cli import main

QRELS = get_settings().datasets / "scifact" / "qrels" / "test.tsv"


def test_evaluate_run_prints_means_under_trec_style_keys(tmp_path, capsys):
    qrels = load_qrels(QRELS)
    run = {q: {d: 1.0 for d in list(rels)[:1]} | {"31715818": 0.5} for q, rels in qrels.items()}
    write_trec_run(run, tmp_path / "run.txt")
    assert main(["evaluate-run", "--qrels", str(QRELS), "--run", str(tmp_path / "run.txt"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = means(evaluate(qrels, run, ["ndcg@10", "recall@100", "precision@10", "mrr@10", "map@10"]))
    for key, value in expected.items():
        assert out[key] == pytest.approx(value)
    assert out["num_queries"] == 300


def test_evaluate_run_per_query(tmp_path, capsys):
    (tmp_path / "q.txt").write_text("1 0 a 1\n2 0 b 1\n")
    (tmp_path / "r.txt").write_text("1 Q0 a 1 2.0 t\n1 Q0 c 2 1.0 t\n2 Q0 c 1 1.0 t\n")
    main(["evaluate-run", "--qrels", str(tmp_path / "q.txt"), "--run", str(tmp_path / "r.txt"),
          "--metrics", "mrr@10", "--per-query"])
    out = json.loads(capsys.readouterr().out)
    assert out["per_query"]["mrr@10"] == {"1": 1.0, "2": 0.0} and out["mrr@10"] == 0.5


def test_bad_run_file_is_a_message_not_a_traceback(tmp_path, capsys):
    (tmp_path / "r.txt").write_text("1 Q0 a 1 oops t\n")
    code = main(["evaluate-run", "--qrels", str(QRELS), "--run", str(tmp_path / "r.txt")])
    err = capsys.readouterr().err
    assert code == 2 and f"{tmp_path / 'r.txt'}:1: score 'oops' is not a number" in err
    assert "Traceback" not in err


def test_unknown_metric_is_a_message(tmp_path, capsys):
    (tmp_path / "r.txt").write_text("1 Q0 a 1 1.0 t\n")
    assert main(["evaluate-run", "--qrels", str(QRELS), "--run", str(tmp_path / "r.txt"), "--metrics", "f1@3"]) == 2
    assert "unknown metric 'f1@3'" in capsys.readouterr().err


def test_models_list_json(capsys):
    assert main(["models", "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"minilm-l6-v2", "mpnet-base-v2", "static-64"}
    assert rows["minilm-l6-v2"]["default"] and rows["minilm-l6-v2"]["dim"] == 384
    assert all(r["installed"] and len(r["fingerprint"]) == 64 for r in rows.values())


def test_demo_unknown_consumer(capsys):
    assert main(["demo", "--consumers", "billing"]) == 2
    assert "unknown consumer 'billing'; valid consumers: ads, dedup, recsys, search" in capsys.readouterr().err


def test_demo_with_the_static_model_writes_a_report(capsys):
    assert main(["demo", "--model", "static-64", "--consumers", "dedup,ads"]) == 0
    out = capsys.readouterr().out
    assert "dedup" in out and "precision@1" in out and "recall@5" in out
    report = json.loads((get_settings().reports_dir / "demo-static-64.json").read_text())
    assert [c["consumer"] for c in report["consumers"]] == ["dedup", "ads"]
    assert 0.5 < report["consumers"][0]["metrics"]["precision@1"] <= 1.0
