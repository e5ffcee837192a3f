"""Collections: versioned, durable, filterable sets of items over the engines of `index_engines.engines`.

A collection pins its embedding model (id + fingerprint), metric, dimension, shard count and engine. Writes go
through a write-ahead log into growing segments that seal, get their ANN index built in the background and are
compacted; metadata lives in a payload store with an inverted index; the JSON filter language, tenant scoping and
selectivity-aware routing make filtered search correct and fast. See `collection.py` for the write and query
paths, and docs/ARCHITECTURE.md.
"""
from .collection import Collection, SearchResponse, WriteResult
from .errors import (CollectionClosedError, CollectionError, CollectionExistsError, CollectionNotFoundError,
                     CorruptLogError, FilterError, InvalidIdError, PayloadError, TenantError, VersionParityError)
from .items import Item
from .routing import ROUTES, RoutingPolicy

__all__ = ["Collection", "CollectionClosedError", "CollectionError", "CollectionExistsError",
           "CollectionNotFoundError", "CorruptLogError", "FilterError", "InvalidIdError", "Item", "PayloadError",
           "ROUTES", "RoutingPolicy", "SearchResponse", "TenantError", "VersionParityError", "WriteResult"]
