"""`workbench bench hybrid` end to end on the real SciFact corpus with the fast static model (few queries)."""
from __future__ import annotations

import argparse
import json

import pytest

from experiments.benchmarks import hybrid


def args(**overrides):
    base = dict(golden="scifact-test", model="static-64", consumer="search", fusion=None, candidates=100,
                reranker="no-such-reranker", rerank_depth=100, no_rerank=False, train_if_missing=False,
                max_queries=12, qps_repeats=1, latency_samples=0)
    return argparse.Namespace(**{**base, **overrides})


def test_hybrid_benchmark_reports_every_variant_and_the_speed_ratio():
    result = hybrid.run(args())
    assert set(result["ndcg_at_10"]) == set(result["recall_at_100"]) == set(hybrid.VARIANTS)
    assert result["ndcg_at_10"]["hybrid_rerank"] is None  # no reranker registered in the test home
    assert "workbench train-reranker" in result["reranker"]["missing"]
    for v in ("bm25", "dense", "hybrid"):
        assert 0 < result["ndcg_at_10"][v] <= 1 and 0 < result["recall_at_100"][v] <= 1
    assert result["ndcg_at_10"]["bm25"] > 0.5  # real BM25 on SciFact; a broken tokenizer or formula falls far below
    assert set(result["significance_vs_dense"]) == {"bm25", "hybrid"}
    assert 0 <= result["significance_vs_dense"]["hybrid"]["ndcg@10"]["p_randomisation"] <= 1
    assert result["bm25_max_abs_diff_vs_rank_bm25"] < 1e-6
    assert result["bm25_qps_vs_rank_bm25"] > 1
    assert {"dense_ms", "bm25_ms", "fuse_ms", "total_ms"} <= set(result["stage_ms_median"]["hybrid"])
    json.dumps(result)  # --json prints it
    assert "rank-bm25" in hybrid.render(result)


def test_bad_benchmark_arguments():
    with pytest.raises(ValueError, match="--candidates must be positive"):
        hybrid.run(args(candidates=0))
