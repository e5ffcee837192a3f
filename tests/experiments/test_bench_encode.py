from __future__ import annotations

import argparse

from experiments.benchmarks import encode


def test_encode_benchmark_runs_and_reports_a_ratio():
    args = argparse.Namespace(model="static-64", n=300, batch_size=64, repeats=1)
    result = encode.run(args)
    assert result["n_texts"] == 300 and result["throughput_ratio"] > 0
    assert result["max_abs_diff_vs_direct"] < 1e-5  # the wrapper returns what the library returns
    assert "ratio vs direct" in encode.render(result)
