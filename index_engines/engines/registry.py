"""Engines by name: `make_engine("hnsw", 384, M=16)`, `load_engine(directory)`."""
from __future__ import annotations

from pathlib import Path

from .base import Engine, read_meta
from .flat import FlatEngine
from .hnsw import HnswEngine
from .ivfpq import IvfPqEngine
from .sq8 import Sq8Engine

ENGINES: dict[str, type[Engine]] = {cls.name: cls for cls in (FlatEngine, HnswEngine, IvfPqEngine, Sq8Engine)}


def engine_class(name: str) -> type[Engine]:
    try:
        return ENGINES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown engine {name!r}; valid engines: {', '.join(ENGINES)}") from None


def make_engine(name: str, dim: int, **build_params) -> Engine:
    """A new, empty engine. Unknown names or parameters raise ValueError listing the valid ones."""
    return engine_class(name)(dim, **build_params)


def load_engine(directory) -> Engine:
    """The engine saved in `directory`, whatever its kind."""
    return engine_class(read_meta(Path(directory))["engine"]).load(directory)


def describe_engines() -> dict[str, dict]:
    """Every engine's build and query parameters with defaults and meanings."""
    return {name: cls.parameters() for name, cls in ENGINES.items()}
