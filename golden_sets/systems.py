"""A system under comparison, named by a SPEC: an embedding model, optionally with an index engine and its settings.

    SPEC   := MODEL [":" ENGINE [":" PARAMS]]
    PARAMS := NAME "=" VALUE ("," NAME "=" VALUE)*

- `minilm-l6-v2` (or `minilm-l6-v2:flat`) is exact search with that model: `ExactRetriever`, the oracle;
- `minilm-l6-v2:hnsw:ef=64`, `mpnet-base-v2:hnsw:M=32,ef_construction=100,ef=128`, `minilm-l6-v2:ivfpq:nprobe=8`:
  the golden set's corpus is indexed with that engine (`index_engines.engines.make_engine`) and searched through
  it. Each PARAM goes to the engine's build or query parameters by name (`index_engines.engines.describe_engines()` lists them); values
  are read as int, float, true/false or text.

Anything unknown (model, engine, parameter, a malformed part) is a ValueError naming the valid choices.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np

from index_engines.embedding import EmbeddingModel, load_model
from index_engines.models import get_spec

from .evaluate import LATENCY_SAMPLE, ExactRetriever, Retriever
from .golden import GoldenSet
from .metrics import Run

EXACT_ENGINES = ("flat",)  # searched by ExactRetriever


def _engines_registry():
    try:
        from index_engines import engines
    except ImportError as exc:  # the engine package is optional for exact specs
        raise ValueError(f"engine specs need index_engines.engines, which failed to import ({exc}); use a plain "
                         f"model id for exact search") from None
    return engines


def _parse_value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class System:
    spec: str
    model_id: str
    engine: str = "flat"
    build_params: dict = field(default_factory=dict)
    query_params: dict = field(default_factory=dict)

    @property
    def is_exact(self) -> bool:
        return self.engine in EXACT_ENGINES

    def describe(self, model: EmbeddingModel | None = None) -> dict:
        """What MLflow logs about a system: the spec, model (with fingerprint once loaded) and engine settings."""
        out = {"spec": self.spec, "model": self.model_id, "engine": self.engine,
               "build_params": dict(self.build_params), "query_params": dict(self.query_params)}
        if model is not None:
            out.update(model_version=model.version, fingerprint=model.fingerprint, dim=model.dim)
        return out

    def retriever(self) -> Retriever:
        model = load_model(self.model_id)
        if self.is_exact:
            return ExactRetriever(model)
        return EngineRetriever(model, self.engine, dict(self.build_params), dict(self.query_params))


def parse_system(spec: str) -> System:
    """A SPEC string as a `System` (no model is loaded)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a system SPEC is MODEL[:ENGINE[:NAME=VALUE,...]], e.g. minilm-l6-v2 or "
                         f"minilm-l6-v2:hnsw:ef=64; got {spec!r}")
    spec = spec.strip()
    parts = spec.split(":", 2)
    model_id = parts[0]
    get_spec(model_id)  # raises, naming the valid model ids
    engine = parts[1] if len(parts) > 1 else "flat"
    raw_params = parts[2] if len(parts) > 2 else ""
    if engine in EXACT_ENGINES:
        if raw_params:
            raise ValueError(f"SPEC {spec!r}: exact search ({engine}) takes no parameters")
        return System(spec, model_id, engine)
    cls = _engines_registry().engine_class(engine)  # raises, naming the valid engines
    build_names, query_names = set(cls.build_spec.names), set(cls.query_spec.names)
    build, query = {}, {}
    for item in filter(None, (p.strip() for p in raw_params.split(","))):
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or not name or not value.strip():
            raise ValueError(f"SPEC {spec!r}: parameter {item!r} must be NAME=VALUE, e.g. ef=64")
        if name in query_names:  # a name in both (e.g. oversample) is a query-time setting
            query[name] = _parse_value(value.strip())
        elif name in build_names:
            build[name] = _parse_value(value.strip())
        else:
            raise ValueError(f"SPEC {spec!r}: unknown parameter {name!r} for engine {engine!r}; valid build "
                             f"parameters: {', '.join(cls.build_spec.names)}; valid query parameters: "
                             f"{', '.join(cls.query_spec.names)}")
    # Let the engine check types and ranges now, not after the corpus has been embedded.
    cls.build_spec.resolve(build, engine)
    cls.query_spec.resolve(query, engine)
    return System(spec, model_id, engine, build, query)


def _corpus_key(golden: GoldenSet) -> str:
    h = hashlib.sha256()
    for doc_id, text in golden.corpus.items():
        h.update(doc_id.encode())
        h.update(b"\0")
        h.update(text.encode())
        h.update(b"\1")
    return h.hexdigest()


@dataclass
class EngineRetriever:
    """The golden set's corpus indexed with an ANN engine (built once per corpus and kept), searched with its
    query parameters. Results follow the engine's order (score desc, id asc), like the exact oracle."""

    model: EmbeddingModel
    engine: str
    build_params: dict
    query_params: dict
    _built: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in {**self.build_params, **self.query_params}.items())
        return f"{self.model.id}:{self.engine}" + (f":{params}" if params else "")

    def _index(self, golden: GoldenSet):
        key = _corpus_key(golden)
        if key not in self._built:
            doc_ids = list(golden.corpus)
            vectors = self.model.encode([golden.corpus[d] for d in doc_ids])
            index = _engines_registry().make_engine(self.engine, self.model.dim, **self.build_params)
            index.add(vectors, np.arange(len(doc_ids), dtype=np.int64))
            self._built[key] = (index, doc_ids)
        return self._built[key]

    def retrieve(self, golden: GoldenSet, k: int) -> Run:
        index, doc_ids = self._index(golden)
        qids = list(golden.queries)
        queries = self.model.encode([golden.queries[q] for q in qids])
        extra = 1 if golden.exclude_self else 0
        result = index.search(queries, k + extra, params=self.query_params)
        run: Run = {}
        for qi, qid in enumerate(qids):
            hits = [(doc_ids[j], float(s)) for j, s in zip(result.ids[qi], result.scores[qi])
                    if j >= 0 and not (golden.exclude_self and doc_ids[j] == qid)]
            run[qid] = dict(hits[:k])
        return run

    def latency_ms(self, golden: GoldenSet, k: int, n: int = LATENCY_SAMPLE) -> np.ndarray:
        """Encode (cache bypassed) + engine search, one query at a time, on the first n queries."""
        index, _ = self._index(golden)
        out = []
        for qid in list(golden.queries)[:n]:
            t0 = time.perf_counter()
            q = self.model.encode([golden.queries[qid]], use_cache=False, show_progress=False)
            index.search(q, k, params=self.query_params)
            out.append((time.perf_counter() - t0) * 1000)
        return np.asarray(out)
