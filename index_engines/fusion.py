"""Fusing ranked lists from several retrievers: Reciprocal Rank Fusion and weighted score fusion.

Inputs are per-source hit lists `[(id, score), ...]` (or, for whole runs, the workbench's result contract
`query id -> doc id -> score`). Each source's hits are first ranked deterministically (score descending, id
ascending; rank 1 is the best), so the same inputs in any order give the same output.

- RRF (Cormack et al. 2009): fused(d) = sum over sources s that returned d of w_s / (rrf_k + rank_s(d)).
  Scores of different scales never meet; `rrf_k` (default 60) damps the head: with k=60 rank 1 is worth 1/61 and
  rank 10 1/70.
- Weighted: fused(d) = sum over sources s that returned d of w_s * norm_s(score_s(d)), where norm_s is min-max over
  that source's list (its best hit -> 1, its worst -> 0; a list of equal scores -> 1) or a z-score. A document a
  source did not return gets nothing from it, i.e. it is treated as no better than that source's worst hit.

Weights default to 1 for every source. The fused list is sorted by fused score descending, ties by id ascending,
and every hit keeps each source's rank and raw score (`FusedHit.sources`), so a person can see why it ranked where
it did. Which method a consumer uses by default is its YAML's `fusion` field; `fusion_config(consumer.fusion)`
turns that into a `FusionConfig`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

FUSION_METHODS = ("rrf", "weighted")
NORMALIZATIONS = ("minmax", "zscore")
DEFAULT_RRF_K = 60.0

Run = dict[str, dict[str, float]]


@dataclass(frozen=True)
class SourceHit:
    rank: int  # 1-based rank within its source
    score: float  # the source's raw score


@dataclass(frozen=True)
class FusedHit:
    id: str
    score: float
    sources: dict[str, SourceHit] = field(default_factory=dict)  # only the sources that returned this id

    def to_dict(self) -> dict:
        return {"id": self.id, "score": self.score,
                "sources": {s: {"rank": h.rank, "score": h.score} for s, h in self.sources.items()}}


@dataclass(frozen=True)
class FusionConfig:
    method: str = "rrf"
    rrf_k: float = DEFAULT_RRF_K
    weights: Mapping[str, float] | None = None  # source name -> weight; None: 1 for every source
    normalization: str = "minmax"  # weighted fusion only

    def __post_init__(self):
        if self.method not in FUSION_METHODS:
            raise ValueError(f"unknown fusion method {self.method!r}; valid methods: {', '.join(FUSION_METHODS)}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown score normalization {self.normalization!r}; valid: "
                             f"{', '.join(NORMALIZATIONS)}")
        if isinstance(self.rrf_k, bool) or not isinstance(self.rrf_k, (int, float)) or not (
                math.isfinite(self.rrf_k) and self.rrf_k >= 0):
            raise ValueError(f"rrf_k must be a finite number >= 0, got {self.rrf_k!r}")
        for name, w in (self.weights or {}).items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and w >= 0):
                raise ValueError(f"weight of source {name!r} must be a finite number >= 0, got {w!r}")

    def weight(self, source: str) -> float:
        if self.weights is None:
            return 1.0
        if source not in self.weights:
            raise ValueError(f"no fusion weight for source {source!r}; weights are given for "
                             f"{', '.join(sorted(self.weights))}")
        return float(self.weights[source])


def fusion_config(spec: str | FusionConfig | None = None, **overrides) -> FusionConfig:
    """A `FusionConfig` from a method name (e.g. a consumer's `fusion` field), a config, or None (RRF)."""
    if spec is None:
        return FusionConfig(**overrides)
    if isinstance(spec, FusionConfig):
        return FusionConfig(**{**spec.__dict__, **overrides}) if overrides else spec
    if isinstance(spec, str):
        return FusionConfig(method=spec, **overrides)
    raise ValueError(f"fusion must be a method name ({', '.join(FUSION_METHODS)}) or a FusionConfig, got {spec!r}")


def ranked(hits: Sequence[tuple[str, float]] | Mapping[str, float]) -> list[tuple[str, float]]:
    """Hits in rank order: score descending, id ascending. Raises on duplicate ids or non-finite scores."""
    items = list(hits.items()) if isinstance(hits, Mapping) else [(d, s) for d, s in hits]
    seen: set[str] = set()
    for d, s in items:
        if d in seen:
            raise ValueError(f"document {d!r} appears twice in one source's hits")
        seen.add(d)
        if not math.isfinite(s):
            raise ValueError(f"document {d!r} has a non-finite score {s!r}")
    return sorted(((d, float(s)) for d, s in items), key=lambda h: (-h[1], h[0]))


def _normalized(scores: np.ndarray, how: str) -> np.ndarray:
    if how == "minmax":
        lo, hi = scores.min(), scores.max()
        return np.ones_like(scores) if hi == lo else (scores - lo) / (hi - lo)
    std = scores.std()
    return np.zeros_like(scores) if std == 0 else (scores - scores.mean()) / std


def fuse(sources: Mapping[str, Sequence[tuple[str, float]] | Mapping[str, float]],
         config: FusionConfig | str | None = None, *, limit: int | None = None) -> list[FusedHit]:
    """Fuse the hit lists of named sources (e.g. {"dense": [...], "bm25": [...]}); `limit` truncates."""
    config = fusion_config(config)
    if not sources:
        raise ValueError("fusion needs at least one source")
    fused: dict[str, float] = {}
    per_doc: dict[str, dict[str, SourceHit]] = {}
    for name in sorted(sources):  # a fixed summation order: the same floats whatever the caller's dict order
        hits = ranked(sources[name])
        if not hits:
            continue
        w = config.weight(name)
        if config.method == "rrf":
            contrib = [w / (config.rrf_k + r) for r in range(1, len(hits) + 1)]
        else:
            contrib = (w * _normalized(np.array([s for _, s in hits]), config.normalization)).tolist()
        for r, ((d, s), c) in enumerate(zip(hits, contrib), start=1):
            fused[d] = fused.get(d, 0.0) + c
            per_doc.setdefault(d, {})[name] = SourceHit(r, s)
    order = sorted(fused, key=lambda d: (-fused[d], d))
    if limit is not None:
        order = order[:limit]
    return [FusedHit(d, fused[d], per_doc[d]) for d in order]


def fuse_runs(runs: Mapping[str, Run], config: FusionConfig | str | None = None, *,
              limit: int | None = None) -> Run:
    """Fuse whole runs (source name -> query id -> doc id -> score) query by query into one run."""
    config = fusion_config(config)
    queries = sorted({q for run in runs.values() for q in run})
    return {q: {h.id: h.score for h in fuse({name: run.get(q, {}) for name, run in runs.items()}, config,
                                             limit=limit)}
            for q in queries}
