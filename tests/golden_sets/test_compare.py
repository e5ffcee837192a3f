"""Per-consumer A/B gate: a regression in one consumer fails the change even when the aggregate improves."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pytest

from golden_sets.compare import DEFAULT_MARGIN, ConsumerResults, build_report, compare_retrievers
from golden_sets.consumers import QualityTarget, load_consumer, load_consumers
from golden_sets.evaluate import ExactRetriever
from golden_sets.golden import GoldenSet, load_golden_set
from golden_sets.metrics import Run
from golden_sets.stats import paired_t_test

FAST = {"n_resamples": 999, "seed": 0}


def without_targets(consumers):
    """The consumers with every quality target at 0: their real targets are set for MiniLM, and these tests judge
    synthetic data and the static-64 model on non-inferiority alone (targets are tested on their own below)."""
    return [replace(c, quality=tuple(QualityTarget(q.metric, 0.0) for q in c.quality)) for c in consumers]


CONSUMERS = without_targets(load_consumers())


def _synthetic(consumer, shift: float, n: int = 300, seed: int = 0) -> ConsumerResults:
    """Per-query metric values: baseline ~ graded values, candidate = baseline moved by `shift` on a random share
    of queries (clipped to [0, 1]) so differences are realistic (mostly 0, some +-1)."""
    rng = np.random.default_rng(seed)
    base, cand = {}, {}
    for q in consumer.quality:
        b = rng.choice([0.0, 0.5, 1.0], n, p=[0.4, 0.2, 0.4])
        moved = rng.random(n) < abs(shift) * 4
        c = np.clip(b + np.where(moved, np.sign(shift) * 0.25, 0.0), 0, 1)
        base[q.metric] = {f"q{i}": float(v) for i, v in enumerate(b)}
        cand[q.metric] = {f"q{i}": float(v) for i, v in enumerate(c)}
    return ConsumerResults(consumer, "hash-" + consumer.name, base, cand)


def test_regression_in_one_consumer_is_caught_while_the_aggregate_improves():
    shifts = {"search": 0.06, "recsys": 0.06, "dedup": 0.06, "ads": -0.05}
    results = [_synthetic(c, shifts[c.name], seed=i) for i, c in enumerate(CONSUMERS)]
    report = build_report(results, {"spec": "v1"}, {"spec": "v2"}, **FAST)
    assert report.aggregate["pooled_mean_diff"] > 0 and report.aggregate["macro_mean_diff"] > 0
    assert not report.passed
    assert [c.consumer for c in report.consumers if not c.passed] == ["ads"]
    ads = report.consumer("ads")
    assert ads.primary.stats.mean_diff < -DEFAULT_MARGIN and ads.primary.stats.ci_low < -DEFAULT_MARGIN
    assert ads.primary.significance == "worse"
    assert "worse than the baseline by more than the margin" in " ".join(ads.reasons())
    assert report.consumer("search").primary.significance == "better"
    assert "VERDICT: do not ship (3/4 consumers pass)" in report.to_table()


def test_gate_rule_is_ci_lower_bound_against_the_margin():
    c = CONSUMERS[0]
    res = _synthetic(c, -0.01, seed=5)
    report = build_report([res], {}, {}, **FAST)
    m = report.consumers[0].primary
    assert m.non_inferior == (m.stats.ci_low >= -DEFAULT_MARGIN)
    wide = build_report([res], {}, {}, margin=1.0, **FAST).consumers[0]
    assert wide.passed  # within any reasonable margin, a small loss passes


def test_candidate_missing_its_target_fails_even_when_not_worse():
    consumer = replace(load_consumer("dedup"), quality=(QualityTarget("precision@1", 0.99),))
    res = _synthetic(consumer, 0.05)
    comp = build_report([res], {}, {}, **FAST).consumers[0]
    assert comp.primary.non_inferior and not comp.primary.target_met and not comp.passed
    assert "misses the target 0.9900" in comp.reasons()[0]


def test_holm_runs_over_every_consumer_metric_on_the_randomisation_p():
    results = [_synthetic(c, 0.02, seed=i) for i, c in enumerate(CONSUMERS)]
    report = build_report(results, {}, {}, **FAST)
    pairs = [(m.stats.randomisation.pvalue, m.p_holm) for c in report.consumers for m in c.metrics]
    assert len(pairs) == sum(len(c.quality) for c in CONSUMERS) == 5
    smallest = min(p for p, _ in pairs)
    assert min(h for _, h in pairs) == pytest.approx(min(1.0, smallest * len(pairs)))
    assert all(h >= p for p, h in pairs)


def test_report_renders_as_table_frame_and_json_keyed_by_consumer():
    results = [_synthetic(c, 0.03, seed=i) for i, c in enumerate(CONSUMERS)]
    report = build_report(results, {"spec": "minilm-l6-v2"}, {"spec": "mpnet-base-v2"}, **FAST)
    data = json.loads(report.to_json())
    assert set(data["consumers"]) == {"ads", "dedup", "recsys", "search"} and data["complete"] is True
    search = data["consumers"]["search"]["metrics"]["ndcg@10"]
    assert set(search["tests"]) == {"randomisation", "t_test", "wilcoxon"}
    assert all(0 <= t["p_value"] <= 1 for t in search["tests"].values())
    d = np.array(list(results[3].candidate["ndcg@10"].values())) - np.array(list(results[3].baseline["ndcg@10"].values()))
    assert search["tests"]["t_test"]["p_value"] == pytest.approx(paired_t_test(d).pvalue)
    frame = report.to_frame()
    assert len(frame) == 5 and {"p_randomisation", "p_t", "p_wilcoxon", "p_holm", "mde"} <= set(frame.columns)
    assert len(report.per_query_frame()) == sum(300 * len(c.quality) for c in CONSUMERS)
    table = report.to_table()
    assert all(name in table for name in ("search", "recsys", "ads", "dedup", "p Holm", "95% CI"))


def test_bad_input_is_a_clear_error_and_no_report():
    c = CONSUMERS[0]
    good = _synthetic(c, 0.0)
    other_ids = replace(good, candidate={m: {q + "x": v for q, v in vals.items()} for m, vals in good.candidate.items()})
    with pytest.raises(ValueError, match="different queries"):
        build_report([other_ids], {}, {}, **FAST)
    empty = replace(good, baseline={m: {} for m in good.baseline}, candidate={m: {} for m in good.candidate})
    with pytest.raises(ValueError, match="empty golden set"):
        build_report([empty], {}, {}, **FAST)
    no_target = replace(good, consumer=replace(c, quality=()))
    with pytest.raises(ValueError, match="has no quality target"):
        build_report([no_target], {}, {}, **FAST)
    with pytest.raises(ValueError, match="no consumers"):
        build_report([], {}, {})
    with pytest.raises(ValueError, match="margin"):
        build_report([good], {}, {}, margin=-0.1)


# ------------------------------------------------------------------------------ with real retrieval (static-64)
@dataclass
class InjectedRetriever:
    """The exact static-64 system with an injected change: on golden sets named in `improve`, a judged relevant
    document is put first for every other query; on `regress`, judged relevant documents are removed."""

    inner: ExactRetriever
    improve: tuple[str, ...]
    regress: tuple[str, ...]

    @property
    def name(self) -> str:
        return "static-64:injected"

    def retrieve(self, golden: GoldenSet, k: int) -> Run:
        run = self.inner.retrieve(golden, k)
        out = {}
        for i, (qid, docs) in enumerate(run.items()):
            rel = golden.qrels.get(qid, {})
            if golden.name in self.regress:
                docs = {d: s for d, s in docs.items() if rel.get(d, 0) <= 0}
            elif golden.name in self.improve and i % 2 == 0 and rel:
                docs = {next(iter(rel)): 10.0, **docs}
            out[qid] = docs
        return out

    def latency_ms(self, golden, k, n=50):
        return self.inner.latency_ms(golden, k, n)


def test_injected_regression_with_real_retrieval(static_model):
    consumers = without_targets(load_consumers(["dedup", "ads", "search"]))
    baseline = ExactRetriever(static_model)
    candidate = InjectedRetriever(baseline, improve=("mrpc-test-dedup", "scifact-test"), regress=("scifact-test-ads",))
    report = compare_retrievers(baseline, candidate, consumers, **FAST)
    assert report.aggregate["pooled_mean_diff"] > 0
    assert {c.consumer: c.passed for c in report.consumers} == {"dedup": True, "ads": False, "search": True}
    ads = report.consumer("ads")
    assert ads.primary.stats.candidate_mean == 0.0 and ads.n_queries == 124
    assert ads.golden_set_hash == load_golden_set("scifact-test-ads").content_hash
