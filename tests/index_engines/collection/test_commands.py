"""`workbench ingest` and `workbench eval` on a tiny BEIR folder (static-64 model): a collection is built through
the write path and evaluated under the same metric keys as `evaluate-run`."""
from __future__ import annotations

import json

import pytest

from workbench.cli import main

DOCS = {
    "d1": ("Cats", "The cat sat on the warm mat and purred."),
    "d2": ("Markets", "Stock markets fell sharply after the announcement."),
    "d3": ("", "A recipe for bread: flour, water, salt and yeast."),
    "d4": ("Dogs", "The dog chased the ball across the park."),
}
QUERIES = {"q1": "where did the cat sit", "q2": "how to bake bread", "q3": "unjudged query"}
QRELS = [("q1", "d1", 1), ("q2", "d3", 2)]


@pytest.fixture
def beir(tmp_path):
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": i, "title": t, "text": x})
                                                   for i, (t, x) in DOCS.items()))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps({"_id": q, "text": t}) for q, t in QUERIES.items()))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                               "\n".join(f"{q}\t{d}\t{r}" for q, d, r in QRELS))
    return folder


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_ingest_then_eval(beir, capsys):
    summary = run_json(capsys, "ingest", "--collection", "tiny", "--beir", str(beir), "--model", "static-64",
                       "--engine-param", "M=8", "--shards", "2", "--json")
    assert summary["count"] == summary["documents"] == 4 and summary["shards"] == 2
    assert summary["model_version"].startswith("static-64@")
    out = run_json(capsys, "eval", "--collection", "tiny", "--beir", str(beir), "--json")
    assert {"ndcg@10", "recall@10", "recall@100", "mrr@10", "ann_recall@10"} <= out.keys()
    assert out["num_queries"] == 2 and out["recall@100"] == 1.0 and out["ann_recall@10"] == 1.0
    assert 0 < out["ndcg@10"] <= 1
    # ingesting again updates in place: same ids, same count
    assert run_json(capsys, "ingest", "--collection", "tiny", "--beir", str(beir), "--json")["count"] == 4


def test_errors_are_reported_without_a_traceback(beir, capsys):
    assert main(["eval", "--collection", "nope", "--beir", str(beir)]) == 2
    assert "no collection at" in capsys.readouterr().err
    assert main(["ingest", "--collection", "../x", "--beir", str(beir), "--model", "static-64"]) == 2
    assert "collection name '../x' is not valid" in capsys.readouterr().err
    run_json(capsys, "ingest", "--collection", "pinned", "--beir", str(beir), "--model", "static-64", "--json")
    assert main(["ingest", "--collection", "pinned", "--beir", str(beir), "--model", "minilm-l6-v2"]) == 2
    assert "pinned to 'static-64'" in capsys.readouterr().err
    assert main(["eval", "--collection", "pinned", "--beir", str(beir), "--split", "dev"]) == 2
    assert "available splits: ['test']" in capsys.readouterr().err
