"""The one query pipeline: filter -> dense ANN (+ rescore) and BM25 -> fuse -> optional rerank -> top k.

```
query ─► allowed rows = collection.allowed_rows(filter, tenant)            (only when a filter or tenant is given)
      ├► dense: collection.search(query, k=candidates, filter, tenant, params)   (ANN, rescore per query params)
      ├► bm25:  BM25Secondary.search(query, candidates, allow_rows=allowed)      (same rows allowed, same tombstones)
      ├► fuse (RRF or weighted; `fusion` is a method name such as a consumer's `fusion` field, or a FusionConfig)
      ├► rerank the top `rerank_depth` fused candidates with a registered cross-encoder (optional)
      ▼
PipelineResult: hits [{id, row, score, tenant, sources {dense|bm25: rank, score}, fused_score, rerank_score}],
                timings {filter_ms, dense_ms, bm25_ms, fuse_ms, rerank_ms, fetch_ms, total_ms}, route, degraded, ...
```
Both sources work on the collection's row ids, so a filtered, tenant-scoped or deleted item can come from neither.
`mode="dense"` or `"bm25"` runs one source (no fusion: the source's scores are the result scores); rerank applies
in every mode. Bad input fails before any search: an empty or stopword-only query (for modes using BM25), an
unknown mode or fusion method, `candidates` or `rerank_depth` smaller than k, or a reranker that is not registered
(the error lists the registered ones and the command that trains one).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .fusion import FusedHit, FusionConfig, SourceHit, fuse, fusion_config, ranked
from .lexical import BM25Secondary

MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class PipelineHit:
    id: str | int
    row: int
    score: float  # the final score: rerank score if reranked, else fused score (or the single source's score)
    tenant: str | None
    sources: dict[str, SourceHit]  # each source's rank and raw score (only sources that returned the item)
    fused_score: float | None = None
    rerank_score: float | None = None
    metadata: dict | None = None
    text: str | None = None

    def to_dict(self) -> dict:
        out = {"id": self.id, "score": self.score, "tenant": self.tenant, "fused_score": self.fused_score,
               "rerank_score": self.rerank_score,
               "sources": {s: {"rank": h.rank, "score": h.score} for s, h in self.sources.items()}}
        if self.metadata is not None or self.text is not None:
            out.update(metadata=self.metadata, text=self.text)
        return out


@dataclass
class PipelineResult:
    hits: list[PipelineHit]
    mode: str
    fusion: FusionConfig | None
    reranker: str | None
    timings: dict[str, float]
    model_version: str
    route: str | None = None
    degraded: bool = False
    coverage: float = 1.0
    candidates: dict[str, int] = field(default_factory=dict)  # hits each source returned

    def run_entry(self) -> dict:
        """This query's part of a run (`doc id -> score`, the workbench's result contract). When the list mixes
        score scales (a reranked head above a fused tail, when k > rerank_depth), the run carries rank-based scores
        (n - rank) instead, so that sorting the run by score gives back exactly this order."""
        scores = [h.score for h in self.hits]
        if all(a >= b for a, b in zip(scores, scores[1:])):
            return {h.id: h.score for h in self.hits}
        return {h.id: float(len(self.hits) - i) for i, h in enumerate(self.hits)}

    def to_dict(self) -> dict:
        return {"hits": [h.to_dict() for h in self.hits], "mode": self.mode, "reranker": self.reranker,
                "fusion": None if self.fusion is None else self.fusion.method, "timings": self.timings,
                "model_version": self.model_version, "route": self.route, "degraded": self.degraded,
                "coverage": self.coverage, "candidates": self.candidates}


class QueryPipeline:
    """Hybrid search over one collection and its BM25 secondary index (attached with `attach_secondary`)."""

    def __init__(self, collection, lexical: BM25Secondary | None = None):
        self.collection = collection
        self.lexical = lexical

    def search(self, query: str, *, k: int = 10, mode: str = "hybrid", candidates: int = 100, filter=None,
               tenant: str | None = None, fusion: str | FusionConfig | None = "rrf", rerank=None,
               rerank_depth: int = 100, params: dict | None = None, exact: bool = False,
               with_payload: bool = False) -> PipelineResult:
        t_start = time.perf_counter()
        config, reranker = self._check(query, k, mode, candidates, fusion, rerank, rerank_depth)
        timings: dict[str, float] = {}
        col = self.collection

        t = time.perf_counter()
        allowed = None
        if mode != "dense" and (filter is not None or tenant is not None):
            allowed = col.allowed_rows(filter, tenant)
        timings["filter_ms"] = _ms(t)

        sources: dict[str, list[tuple[int, float]]] = {}
        route, degraded, coverage = None, False, 1.0
        t = time.perf_counter()
        if mode != "bm25":
            resp = col.search(query, k=candidates, filter=filter, tenant=tenant, params=params, exact=exact)
            sources["dense"] = [(int(r), float(s)) for r, s in zip(resp.rows[0], resp.scores[0]) if r >= 0]
            route, degraded, coverage = resp.route, resp.degraded, resp.coverage
        timings["dense_ms"] = _ms(t)
        t = time.perf_counter()
        if mode != "dense":
            sources["bm25"] = self.lexical.search(query, candidates, allow_rows=allowed)
        timings["bm25_ms"] = _ms(t)

        t = time.perf_counter()
        if mode == "hybrid":
            fused = fuse(sources, config)
        else:
            fused = [FusedHit(r, s, {mode: SourceHit(i, s)}) for i, (r, s) in enumerate(ranked(sources[mode]), 1)]
        timings["fuse_ms"] = _ms(t)

        t = time.perf_counter()
        rerank_scores: dict[int, float] = {}
        if reranker is not None and fused:
            fused = self._rerank(query, fused, reranker, rerank_depth, rerank_scores)
        timings["rerank_ms"] = _ms(t)

        t = time.perf_counter()
        described = _describe(col, [h.id for h in fused[:k]], with_payload)
        hits = [_hit(h, described[h.id], mode, rerank_scores if reranker is not None else None)
                for h in fused[:k] if h.id in described]
        timings["fetch_ms"] = _ms(t)
        timings["total_ms"] = _ms(t_start)
        return PipelineResult(hits, mode, config if mode == "hybrid" else None,
                              None if reranker is None else reranker.name, timings, col.model_version, route,
                              degraded, coverage, {s: len(h) for s, h in sources.items()})

    # ------------------------------------------------------------------------------------------ stages
    def _check(self, query, k, mode, candidates, fusion, rerank, rerank_depth):
        """Validate everything before searching; returns (fusion config, reranker or None)."""
        from .rerank import Reranker, load_reranker

        if not isinstance(query, str) or not query.strip():
            raise ValueError("the query is empty; give at least one word")
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; valid modes: {', '.join(MODES)}")
        for name, value in (("k", k), ("candidates", candidates), ("rerank_depth", rerank_depth)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if candidates < k:
            raise ValueError(f"candidates ({candidates}) must be at least k ({k}): each source returns that many")
        config = fusion_config(fusion)
        if mode != "dense":
            if self.lexical is None:
                raise ValueError(f"mode {mode!r} needs a BM25 index: attach BM25Secondary() to the collection and "
                                 f"pass it to QueryPipeline(collection, lexical=...)")
            self.lexical.index.query_terms(query)  # EmptyQueryError for stopword-only queries, before any search
        reranker = None
        if rerank is not None:
            if rerank_depth < k:
                raise ValueError(f"rerank_depth ({rerank_depth}) is smaller than k ({k}): the reranker only reorders "
                                 f"the top rerank_depth candidates, so it cannot fill k results")
            reranker = rerank if isinstance(rerank, Reranker) else load_reranker(rerank)
        return config, reranker

    def _rerank(self, query, fused, reranker, depth, out_scores) -> list[FusedHit]:
        """The top `depth` fused hits reordered by the cross-encoder (items stored without text keep their fused
        order after the reranked ones); the rest follow in fused order."""
        head, tail = fused[:depth], fused[depth:]
        described = _describe(self.collection, [h.id for h in head], True)
        head = [h for h in head if h.id in described]
        texts = [described[h.id]["text"] for h in head]
        with_text = [(h.id, t) for h, t in zip(head, texts) if t is not None]
        scored = reranker.rerank(query, with_text)
        out_scores.update(scored)
        by_row = {h.id: h for h in head}
        reordered = [by_row[r] for r, _ in scored] + [h for h, t in zip(head, texts) if t is None]
        return reordered + tail


def _hit(fused: FusedHit, described: dict, mode: str, rerank_scores: dict | None) -> PipelineHit:
    rerank_score = None if rerank_scores is None else rerank_scores.get(fused.id)
    return PipelineHit(id=described["id"], row=int(fused.id),
                       score=fused.score if rerank_score is None else rerank_score,
                       tenant=described.get("tenant"), sources=fused.sources,
                       fused_score=fused.score if mode == "hybrid" else None, rerank_score=rerank_score,
                       metadata=described.get("metadata"), text=described.get("text"))


def _describe(collection, rows: list[int], with_payload: bool) -> dict[int, dict]:
    """row -> result dict. The sources answered under the collection's read lock, this runs after it: a row
    deleted and compacted away in between is gone from the store, and is left out (it is deleted anyway)."""
    if not rows:
        return {}
    try:
        described = collection.describe_rows(np.array([rows], np.int64), np.zeros((1, len(rows)), np.float32),
                                             with_payload)[0]
        return dict(zip(rows, described))
    except KeyError:
        out = {}
        for r in rows:
            try:
                out[r] = collection.describe_rows(np.array([[r]], np.int64), np.zeros((1, 1), np.float32),
                                                  with_payload)[0][0]
            except KeyError:
                continue
        return out


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3
