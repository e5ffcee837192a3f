"""A/B comparison of two retrieval systems on every consumer's golden set, with a ship/no-ship gate per consumer.

For each consumer and each of its quality metrics, the per-query values of the baseline and the candidate are
paired by query id and compared (`golden_sets.stats`): mean difference (candidate - baseline) with a paired
bootstrap confidence interval, a paired randomisation (sign-flip) test, a paired t-test and a Wilcoxon signed-rank
test. Holm's correction runs over the family of every (consumer, metric) compared, on the randomisation test's
p-value (the primary test: it assumes nothing about the shape of the per-query differences).

THE GATE (per consumer), exactly:
    a consumer passes when, for every quality metric in its spec,
      (1) the candidate's mean meets the consumer's target (mean >= target), and
      (2) the candidate is non-inferior: the lower bound of the 95% paired-bootstrap CI of
          mean(candidate - baseline) is >= -margin (default margin 0.01, i.e. 1 point).
    The change may ship only when every consumer passes: an aggregate win does not offset one consumer's failure.
Significance after Holm is reported beside the gate (a significant improvement is not required to pass).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .consumers import ConsumerSpec
from .evaluate import Retriever, evaluate_consumer
from .power import PowerEstimate, mde_from_diffs
from .stats import DEFAULT_RESAMPLES, DEFAULT_SEED, PairedComparison, PairedData, compare_paired, holm, \
    paired_values

DEFAULT_MARGIN = 0.01
ALPHA = 0.05
PRIMARY_TEST = "randomisation"
GATE_RULE = ("a consumer passes when every quality metric meets its target and the lower bound of the 95% paired "
             "bootstrap CI of (candidate - baseline) is >= -margin; the change ships only if every consumer passes")


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    target: float
    stats: PairedComparison
    power: PowerEstimate
    margin: float
    p_holm: float = float("nan")

    @property
    def target_met(self) -> bool:
        return self.stats.candidate_mean >= self.target

    @property
    def non_inferior(self) -> bool:
        return self.stats.ci_low >= -self.margin

    @property
    def passed(self) -> bool:
        return self.target_met and self.non_inferior

    @property
    def significance(self) -> str:
        if not self.p_holm < ALPHA:
            return "n.s."
        return "better" if self.stats.mean_diff > 0 else "worse"

    def reasons(self) -> list[str]:
        out = []
        if not self.target_met:
            out.append(f"{self.metric} {self.stats.candidate_mean:.4f} misses the target {self.target:.4f}")
        if not self.non_inferior:
            out.append(f"{self.metric} may be worse than the baseline by more than the margin: CI lower bound "
                       f"{self.stats.ci_low:+.4f} < -{self.margin:.4f}")
        return out

    def to_dict(self) -> dict:
        s = self.stats
        return {
            "baseline": s.baseline_mean, "candidate": s.candidate_mean, "diff": s.mean_diff,
            "ci": [s.ci_low, s.ci_high], "confidence": s.confidence, "sd_diff": s.sd_diff,
            "target": self.target, "target_met": self.target_met, "margin": self.margin,
            "non_inferior": self.non_inferior, "passed": self.passed,
            "tests": {name: {"statistic": t.statistic, "p_value": t.pvalue, "method": t.method}
                      for name, t in (("randomisation", s.randomisation), ("t_test", s.t_test),
                                      ("wilcoxon", s.wilcoxon))},
            "p_holm": self.p_holm, "significance": self.significance, "power": self.power.to_dict(),
        }


@dataclass(frozen=True)
class ConsumerComparison:
    consumer: str
    golden_set: str
    golden_set_hash: str
    metrics: tuple[MetricComparison, ...]
    per_query: dict[str, PairedData] = field(repr=False, compare=False)

    @property
    def n_queries(self) -> int:
        return self.metrics[0].stats.n

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.metrics)

    @property
    def primary(self) -> MetricComparison:
        return self.metrics[0]

    def reasons(self) -> list[str]:
        return [r for m in self.metrics for r in m.reasons()]

    def to_dict(self) -> dict:
        return {"golden_set": self.golden_set, "golden_set_hash": self.golden_set_hash, "n_queries": self.n_queries,
                "passed": self.passed, "reasons": self.reasons(),
                "metrics": {m.metric: m.to_dict() for m in self.metrics}}


@dataclass(frozen=True)
class ComparisonReport:
    """The verdict: one entry per consumer, rendered as a terminal table, a data frame or JSON."""

    baseline: dict
    candidate: dict
    consumers: tuple[ConsumerComparison, ...]
    margin: float
    confidence: float
    n_resamples: int
    seed: int | None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.consumers)

    def consumer(self, name: str) -> ConsumerComparison:
        for c in self.consumers:
            if c.consumer == name:
                return c
        raise ValueError(f"no consumer {name!r} in this report; it has {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [c.consumer for c in self.consumers]

    @property
    def aggregate(self) -> dict:
        """Primary-metric differences pooled over every query of every consumer (shown, never gating)."""
        diffs = np.concatenate([c.per_query[c.primary.metric].diffs for c in self.consumers])
        return {"pooled_mean_diff": float(diffs.mean()), "n_queries": int(len(diffs)),
                "macro_mean_diff": float(np.mean([c.primary.stats.mean_diff for c in self.consumers])),
                "note": "aggregate over consumers' primary metrics; informational, it does not gate"}

    @property
    def power_warnings(self) -> list[str]:
        return [m.power.warning for c in self.consumers for m in c.metrics if m.power.warning]

    def to_dict(self) -> dict:
        return {
            "baseline": self.baseline, "candidate": self.candidate,
            "settings": {"margin": self.margin, "confidence": self.confidence, "alpha": ALPHA,
                         "n_resamples": self.n_resamples, "seed": self.seed, "primary_test": PRIMARY_TEST,
                         "holm_family": "every (consumer, metric) compared"},
            "gate_rule": GATE_RULE,
            "consumers": {c.consumer: c.to_dict() for c in self.consumers},
            "aggregate": self.aggregate, "power_warnings": self.power_warnings,
            "passed": self.passed, "complete": True,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def rows(self) -> list[dict]:
        """One flat row per (consumer, metric): the data-frame and table view."""
        out = []
        for c in self.consumers:
            for m in c.metrics:
                s = m.stats
                out.append({
                    "consumer": c.consumer, "golden_set": c.golden_set, "metric": m.metric, "n": s.n,
                    "baseline": s.baseline_mean, "candidate": s.candidate_mean, "diff": s.mean_diff,
                    "ci_low": s.ci_low, "ci_high": s.ci_high, "p_randomisation": s.randomisation.pvalue,
                    "p_t": s.t_test.pvalue, "p_wilcoxon": s.wilcoxon.pvalue, "p_holm": m.p_holm,
                    "significance": m.significance, "mde": m.power.mde, "target": m.target,
                    "target_met": m.target_met, "non_inferior": m.non_inferior, "metric_passed": m.passed,
                    "consumer_passed": c.passed,
                })
        return out

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows())

    def per_query_frame(self):
        """Per-query values of both systems: consumer, metric, query id, baseline, candidate, diff."""
        import pandas as pd

        frames = [pd.DataFrame({"consumer": c.consumer, "metric": metric, "query_id": list(data.query_ids),
                                "baseline": data.baseline, "candidate": data.candidate, "diff": data.diffs})
                  for c in self.consumers for metric, data in c.per_query.items()]
        return pd.concat(frames, ignore_index=True)

    def to_table(self) -> str:
        import pandas as pd

        table = pd.DataFrame([{
            "consumer": r["consumer"], "metric": r["metric"], "n": r["n"], "baseline": f"{r['baseline']:.4f}",
            "candidate": f"{r['candidate']:.4f}", "diff": f"{r['diff']:+.4f}",
            f"{self.confidence:.0%} CI": f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]",
            "p rand": _p(r["p_randomisation"]), "p t": _p(r["p_t"]), "p wilcoxon": _p(r["p_wilcoxon"]),
            "p Holm": f"{_p(r['p_holm'])} {r['significance']}", "MDE": f"{r['mde']:.4f}",
            "target": f"{r['target']:.4f}", "gate": "pass" if r["metric_passed"] else "FAIL",
        } for r in self.rows()]).to_string(index=False)
        agg = self.aggregate
        lines = [f"Baseline  {self.baseline.get('spec')}  ({self.baseline.get('model_version', '')})",
                 f"Candidate {self.candidate.get('spec')}  ({self.candidate.get('model_version', '')})", "",
                 table, ""]
        for c in self.consumers:
            verdict = "PASS" if c.passed else "FAIL: " + "; ".join(c.reasons())
            lines.append(f"  {c.consumer:<8} {verdict}")
        lines += ["", f"Aggregate (informational): {agg['pooled_mean_diff']:+.4f} pooled over {agg['n_queries']} "
                      f"queries, {agg['macro_mean_diff']:+.4f} averaged over consumers",
                  f"Gate (margin {self.margin:g}): {GATE_RULE}",
                  f"Tests: paired bootstrap CI, sign-flip randomisation ({self.n_resamples} resamples, seed "
                  f"{self.seed}), paired t, Wilcoxon; Holm over every (consumer, metric) on the randomisation p"]
        lines += [f"Power warning: {w}" for w in self.power_warnings]
        lines.append(f"VERDICT: {'ship' if self.passed else 'do not ship'} "
                     f"({sum(c.passed for c in self.consumers)}/{len(self.consumers)} consumers pass)")
        return "\n".join(lines)


def _p(p: float) -> str:
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"


# --------------------------------------------------------------------------------------------- building it
@dataclass(frozen=True)
class ConsumerResults:
    """Per-query metric values of both systems on one consumer's golden set (metric -> query id -> value)."""

    consumer: ConsumerSpec
    golden_set_hash: str
    baseline: dict[str, dict[str, float]]
    candidate: dict[str, dict[str, float]]


def _check_consumer(consumer: ConsumerSpec) -> None:
    if not consumer.quality:
        raise ValueError(f"consumer {consumer.name!r} has no quality target; a consumer without a target cannot be "
                         f"gated (add `quality: [{{metric: ..., target: ...}}]` to its spec)")


def build_report(results: Sequence[ConsumerResults], baseline: dict, candidate: dict, *,
                 margin: float = DEFAULT_MARGIN, confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int | None = DEFAULT_SEED) -> ComparisonReport:
    """Compare every consumer's per-query results and apply the gate. Any bad input raises before a report exists,
    so a report is never partial."""
    if not results:
        raise ValueError("no consumers to compare")
    if not margin >= 0:
        raise ValueError(f"the non-inferiority margin must be >= 0, got {margin}")
    names = [r.consumer.name for r in results]
    if len(set(names)) != len(names):
        raise ValueError(f"a consumer appears twice in the comparison: {names}")
    staged = []  # (consumer results, metric, target, paired data, stats, power)
    for r in results:
        _check_consumer(r.consumer)
        for q in r.consumer.quality:
            for side, values in (("baseline", r.baseline), ("candidate", r.candidate)):
                if q.metric not in values:
                    raise ValueError(f"consumer {r.consumer.name!r}: the {side} has no per-query {q.metric} values")
            data = paired_values(r.baseline[q.metric], r.candidate[q.metric], f"{r.consumer.name} {q.metric}")
            stats = compare_paired(data, confidence=confidence, n_resamples=n_resamples, seed=seed)
            power = mde_from_diffs(data.diffs, golden_set=r.consumer.golden_set, metric=q.metric)
            staged.append((r, q, data, stats, power))
    adjusted = holm([s[3].randomisation.pvalue for s in staged])
    consumers = []
    for r in results:
        mine = [(s, p) for s, p in zip(staged, adjusted) if s[0] is r]
        metrics = tuple(MetricComparison(q.metric, q.target, stats, power, margin, p)
                        for (_, q, _, stats, power), p in mine)
        consumers.append(ConsumerComparison(r.consumer.name, r.consumer.golden_set, r.golden_set_hash, metrics,
                                            {q.metric: data for (_, q, data, _, _), _ in mine}))
    return ComparisonReport(baseline, candidate, tuple(consumers), margin, confidence, n_resamples, seed)


def evaluate_pair(consumer: ConsumerSpec, baseline: Retriever, candidate: Retriever) -> ConsumerResults:
    """Run both systems on the consumer's golden set (quality metrics only; latency is not compared here)."""
    _check_consumer(consumer)
    b = evaluate_consumer(consumer, baseline, measure_latency=False)
    c = evaluate_consumer(consumer, candidate, measure_latency=False)
    if b.golden_set_hash != c.golden_set_hash:
        raise ValueError(f"consumer {consumer.name!r}: the systems were evaluated on different versions of "
                         f"{consumer.golden_set} ({b.golden_set_hash[:12]} vs {c.golden_set_hash[:12]})")
    return ConsumerResults(consumer, b.golden_set_hash, {n: m.per_query for n, m in b.metrics.items()},
                           {n: m.per_query for n, m in c.metrics.items()})


def compare_retrievers(baseline: Retriever, candidate: Retriever, consumers: Sequence[ConsumerSpec], *,
                       baseline_info: dict | None = None, candidate_info: dict | None = None,
                       progress=None, **options) -> ComparisonReport:
    """Evaluate both retrievers on every consumer, then `build_report`. `progress(message)` is told each step."""
    results = []
    for consumer in consumers:
        if progress:
            progress(f"evaluating {consumer.name} ({consumer.golden_set}) with {baseline.name} and {candidate.name}")
        results.append(evaluate_pair(consumer, baseline, candidate))
    return build_report(results, baseline_info or {"spec": baseline.name}, candidate_info or {"spec": candidate.name},
                        **options)


def compare_specs(baseline_spec: str, candidate_spec: str, consumers: Sequence[ConsumerSpec], **options
                  ) -> ComparisonReport:
    """`compare_retrievers` for two SPEC strings (see `golden_sets.systems`)."""
    from .systems import parse_system

    systems = [parse_system(baseline_spec), parse_system(candidate_spec)]  # both parsed before any work
    retrievers = [s.retriever() for s in systems]
    infos = [s.describe(r.model) for s, r in zip(systems, retrievers)]
    return compare_retrievers(retrievers[0], retrievers[1], consumers, baseline_info=infos[0],
                              candidate_info=infos[1], **options)
