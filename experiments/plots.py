"""Figures for comparisons and drift reports (matplotlib, Agg backend: no display needed).

Each function returns a `Figure`; `save_figure` writes it as PNG and closes it. The tracking module logs the same
files to MLflow, so what people look at in the reports folder and in MLflow is identical.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def difference_histograms(report):
    """One panel per (consumer, primary metric): histogram of per-query differences (candidate - baseline)."""
    panels = [(c, c.primary) for c in report.consumers]
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.4 * rows), squeeze=False)
    for ax, (c, m) in zip(axes.flat, panels):
        d = c.per_query[m.metric].diffs
        # Metric differences lie in [-1, 1]; fixed 0.05-wide bins keep panels comparable.
        ax.hist(d, bins=np.linspace(min(-1.0, d.min()), max(1.0, d.max()), 41), color="#4c72b0", edgecolor="white")
        ax.axvline(0, color="black", lw=0.8)
        ax.axvline(m.stats.mean_diff, color="#c44e52", lw=1.5, label=f"mean {m.stats.mean_diff:+.4f}")
        ax.set_title(f"{c.consumer}: {m.metric} (n={m.stats.n}, {int((d == 0).sum())} unchanged)", fontsize=10)
        ax.set_xlabel("candidate - baseline (per query)")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{report.candidate.get('spec')} vs {report.baseline.get('spec')}", fontsize=11)
    fig.tight_layout()
    return fig


def consumer_bars(report):
    """Mean difference per (consumer, metric) with its confidence interval and the non-inferiority margin."""
    rows = report.rows()
    labels = [f"{r['consumer']}\n{r['metric']}" for r in rows]
    diffs = np.array([r["diff"] for r in rows])
    err = np.array([[r["diff"] - r["ci_low"] for r in rows], [r["ci_high"] - r["diff"] for r in rows]])
    colours = ["#55a868" if r["metric_passed"] else "#c44e52" for r in rows]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(rows) + 1.5), 3.8))
    x = np.arange(len(rows))
    ax.bar(x, diffs, color=colours, yerr=err, capsize=5, ecolor="black")
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(-report.margin, color="grey", ls="--", lw=1, label=f"-margin ({report.margin:g})")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel(f"mean difference, {report.confidence:.0%} CI")
    ax.set_title(f"{report.candidate.get('spec')} - {report.baseline.get('spec')} (green: gate passed)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def drift_histogram(drift):
    """Distribution of the per-canary drift measure, with the classification thresholds."""
    from golden_sets.drift import BACKFILL_BELOW, INCREMENTAL_ABOVE

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.hist(drift.values, bins=40, range=(min(0.0, float(drift.values.min())), 1.0), color="#4c72b0",
            edgecolor="white")
    ax.axvline(BACKFILL_BELOW, color="#c44e52", ls="--", lw=1, label=f"full backfill below {BACKFILL_BELOW}")
    ax.axvline(INCREMENTAL_ABOVE, color="#55a868", ls="--", lw=1, label=f"incremental above {INCREMENTAL_ABOVE}")
    ax.axvline(drift.score, color="black", lw=1.5, label=f"mean {drift.score:.3f}: {drift.classification}")
    ax.set_xlabel(f"{drift.measure} per canary (n={drift.n})")
    ax.set_title(f"{drift.from_model['model']} -> {drift.to_model['model']}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
