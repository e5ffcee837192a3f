"""Index engines: one interface (`Engine`) over exact search (`flat`, the oracle), HNSW graphs (hnswlib or faiss)
and faiss quantisers (`ivfpq`, `sq8`) with full-precision rescore. See `index_engines/PARAMETERS.md`."""
from .base import Engine, SearchResult
from .flat import FlatEngine
from .registry import ENGINES, describe_engines, engine_class, load_engine, make_engine

__all__ = ["ENGINES", "Engine", "FlatEngine", "SearchResult", "describe_engines", "engine_class", "load_engine",
           "make_engine"]
