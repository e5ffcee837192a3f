"""`workbench bench engines` end to end on a small real matrix: the JSON contract and sane figures."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from experiments.benchmarks import engines as bench

KEYS = {"hnsw_vs_hnswlib_qps_ratio", "engines", "quantized_recall_at_10", "quantized_memory_ratio",
        "shard4_single_thread_ratio", "shard4_two_thread_speedup", "flat_bandwidth_ratio", "n_vectors", "n_queries",
        "dim"}


@pytest.fixture(scope="module")
def result(minilm, tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "vectors.npy"
    np.save(path, np.concatenate(minilm))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--vectors", str(path), "--n", "2900", "--queries", "100", "--build-threads", "1"])
    return bench.run(args)


def test_json_keys_and_sizes(result):
    assert KEYS <= set(result)
    assert (result["n_vectors"], result["n_queries"], result["dim"]) == (2900, 100, 384)
    json.dumps(result)  # one JSON object


def test_every_engine_reports_recall_qps_memory_and_build_time(result):
    assert set(result["engines"]) == {"flat", "hnsw", "hnsw-faiss", "ivfpq", "sq8", "sq8-hnsw"}
    for label, row in result["engines"].items():
        assert 0.95 <= row["recall_at_10"] <= 1.0, label
        assert row["qps"] > 0 and row["bytes_per_vector"] > 0 and row["build_seconds"] >= 0, label
    assert result["engines"]["flat"]["bytes_per_vector"] >= 384 * 4
    assert result["engines"]["ivfpq"]["bytes_per_vector"] < result["engines"]["hnsw"]["bytes_per_vector"] / 4


def test_ratios_are_positive_and_recalls_in_range(result):
    for key in ("hnsw_vs_hnswlib_qps_ratio", "quantized_memory_ratio", "shard4_single_thread_ratio",
                "shard4_two_thread_speedup", "flat_bandwidth_ratio"):
        assert result[key] > 0, key
    assert 0.95 <= result["quantized_recall_at_10"] <= 1
    for row in result["truncation"]["exact"].values():
        assert 0 <= row["exact_truncated"] <= row["rescored_x10"] <= 1


def test_render_and_report_files(result):
    text = bench.render(result)
    assert "hnsw vs raw hnswlib" in text and "Matryoshka" in text
    for path in result["report_files"].values():
        assert open(path, "rb").read(4)


def test_pareto_front_keeps_only_unbeaten_settings():
    points = [{"recall": 0.90, "qps": 100}, {"recall": 0.95, "qps": 80}, {"recall": 0.93, "qps": 50},
              {"recall": 0.99, "qps": 90}]
    assert bench.pareto_front(points) == [points[0], points[3]]  # 0.95@80 and 0.93@50 lose to 0.99@90


def test_lowest_reaching_finds_the_smallest_knob_between_grid_points():
    calls = []

    def recall_at(v):  # monotone: reaches 0.95 at 37
        calls.append(v)
        return min(1.0, 0.9 + (v - 32) * 0.01)

    assert bench.lowest_reaching(recall_at, [16, 32, 48, 64], 0.95) == (37, recall_at(37))
    assert max(calls) == 48 and 64 not in calls
    assert bench.lowest_reaching(recall_at, [48], 0.95, start=32) == (37, recall_at(37))
    assert bench.lowest_reaching(lambda v: 0.5, [16, 32], 0.95) == (None, None)
    assert bench.lowest_reaching(lambda v: 1.0, [16, 32], 0.95)[0] == 1
