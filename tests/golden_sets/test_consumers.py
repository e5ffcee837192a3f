from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from golden_sets.consumers import consumer_names, load_consumer, load_consumer_file, load_consumers


def test_the_four_shipped_consumers_load():
    assert consumer_names() == ["ads", "dedup", "recsys", "search"]
    specs = {c.name: c for c in load_consumers()}
    assert specs["search"].metrics == ["recall@10", "ndcg@10"]
    assert specs["recsys"].primary.metric == "recall@50" and specs["recsys"].candidate_pool >= 50
    assert specs["ads"].primary.metric == "recall@5"
    assert specs["ads"].latency_p95_ms == min(c.latency_p95_ms for c in specs.values())
    assert specs["dedup"].primary.metric == "precision@1"
    assert all(0 < q.target < 1 for c in specs.values() for q in c.quality)


def test_unknown_consumer_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid consumers: ads, dedup, recsys, search"):
        load_consumer("billing")


def _write(tmp_path: Path, **overrides) -> Path:
    data = {"name": "c", "golden_set": "scifact-test", "k": 10, "candidate_pool": 100,
            "quality": [{"metric": "ndcg@10", "target": 0.5}], "ann_recall_target": 0.95, "latency_p95_ms": 50}
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("overrides, message", [
    ({"quality": []}, "a consumer with no target cannot be gated"),
    ({"quality": None}, "missing 'quality'"),
    ({"golden_set": "nope"}, "unknown golden set 'nope'"),
    ({"k": 0}, "k must be a positive integer"),
    ({"quality": [{"metric": "ndcg@10", "target": 1.5}]}, "between 0 and 1"),
    ({"quality": [{"metric": "bleu@10", "target": 0.5}]}, "unknown metric"),
    ({"candidate_pool": 5}, "candidate_pool"),
    ({"fusion": "max"}, "fusion must be"),
    ({"name": "other"}, "must match the file name"),
])
def test_bad_specs_are_refused_with_a_reason(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        load_consumer_file(_write(tmp_path, **overrides))
