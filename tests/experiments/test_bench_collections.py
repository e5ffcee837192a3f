"""`workbench bench filters` and `workbench bench ingest` on a few real MiniLM vectors: the JSON carries the
figures the docs quote, and the routed strategy keeps its promises even at this size."""
from __future__ import annotations

import json

from experiments.benchmarks import filters, ingest
from workbench.cli import main


def test_filters_benchmark_reports_every_selectivity_and_strategy(capsys):
    assert main(["bench", "filters", "--n", "1500", "--queries", "20", "--no-faiss", "--M", "8",
                 "--ef-construction", "64", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = result["selectivity"]
    assert {r["selectivity"] for r in rows} == set(filters.SELECTIVITIES)
    assert {r["strategy"] for r in rows} == {"routed", "post_filter", "in_graph"}
    routed = [r for r in rows if r["strategy"] == "routed"]
    assert all(r["recall_at_10"] >= 0.95 for r in routed)
    assert all(r["min_results"] == min(10, r["allowed"]) for r in routed)  # never fewer than k when k exist
    assert result["worst_p95_vs_unfiltered"] > 0 and "p95 / unfiltered" in filters.render(result)


def test_ingest_benchmark_reports_throughput_ratio_and_deletes(capsys):
    assert main(["bench", "ingest", "--n", "1500", "--queries", "20", "--batch", "250", "--seal-items", "500",
                 "--M", "8", "--ef-construction", "64", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["items_per_second"] > 0 and result["vs_offline_build_ratio"] > 0
    assert result["segments"] == 3 and result["wal_fsyncs"] == 6
    deletes = result["deletes"]
    assert [d["tombstone_rate"] for d in deletes] == list(ingest.RATES)
    assert deletes[-1]["live"] < deletes[0]["live"]
    assert all(d["after_compaction"]["recall_at_10"] >= 0.9 for d in deletes)
    assert "ratio vs offline" in ingest.render(result)
