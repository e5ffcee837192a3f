"""Build and query parameters: declared once per engine, validated explicitly, described for users.

As in ann-benchmarks, build parameters (fixed when the index is built) and query parameters (chosen per search)
are separate axes: a sweep builds once per build setting and loops over query settings.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Param:
    """One parameter: its default fixes its type (bool, int, float or str)."""

    name: str
    default: object
    help: str
    choices: tuple = ()
    minimum: float | None = None

    def check(self, value: object, kind: str, engine: str) -> object:
        """The value converted to this parameter's type, or a ValueError that says what is allowed."""
        want = type(self.default)
        if want is bool:
            ok = isinstance(value, (bool, np.bool_))
        elif want is int:
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        elif want is float:
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        else:
            ok = isinstance(value, want)
        if not ok:
            raise ValueError(f"{kind} parameter {self.name!r} of engine {engine!r} must be {want.__name__}, "
                             f"got {value!r}")
        value = want(value)
        if self.choices and value not in self.choices:
            raise ValueError(f"{kind} parameter {self.name!r} of engine {engine!r} is {value!r}; "
                             f"valid choices: {', '.join(map(repr, self.choices))}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{kind} parameter {self.name!r} of engine {engine!r} is {value!r}; "
                             f"it must be at least {self.minimum}")
        return value

    def describe(self) -> dict:
        out = {"default": self.default, "help": self.help}
        if self.choices:
            out["choices"] = list(self.choices)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        return out


@dataclass(frozen=True)
class ParamSpec:
    """The parameters of one kind ("build" or "query") of one engine."""

    kind: str
    params: tuple[Param, ...]
    _by_name: dict = field(init=False, repr=False, compare=False)
    _cache: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})
        object.__setattr__(self, "_cache", {})

    def __add__(self, more: Iterable[Param]) -> "ParamSpec":
        """This spec with more parameters (a later one with the same name replaces the earlier)."""
        merged = {p.name: p for p in self.params}
        merged.update({p.name: p for p in more})
        return ParamSpec(self.kind, tuple(merged.values()))

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def resolve(self, given: Mapping | None, engine: str) -> dict:
        """Defaults overridden by `given`; unknown names and bad values raise ValueError naming the valid ones."""
        return dict(self.resolve_shared(given, engine))

    def cached(self, key: tuple) -> dict | None:
        """The resolved settings for `tuple(given.items())` (`()` for none) if `given` was resolved before, else
        None. A per-query hot path builds the key itself: one function call fewer (see `HnswEngine.search`)."""
        return self._cache.get(key)

    def resolve_shared(self, given: Mapping | None, engine: str) -> dict:
        """`resolve` for the per-query path: the same settings come back as the same cached dict, which the
        caller must not modify (validating and copying a dict on every single-vector query is measurable)."""
        try:
            key = _cache_key(given)
            hit = self._cache.get(key)
        except (TypeError, AttributeError):  # an unhashable value or not a mapping: validate (and fail) below
            key, hit = None, None
        if hit is not None:
            return hit
        given = dict(given or {})
        unknown = sorted(set(given) - set(self._by_name))
        if unknown:
            raise ValueError(f"unknown {self.kind} parameter {unknown[0]!r} for engine {engine!r}; valid "
                             f"{self.kind} parameters: {', '.join(self.names)}")
        out = self.defaults()
        for name, value in given.items():
            out[name] = self._by_name[name].check(value, self.kind, engine)
        if key is not None and len(self._cache) < 256:
            self._cache[key] = out
        return out

    def describe(self) -> dict:
        return {p.name: p.describe() for p in self.params}


def _cache_key(given: Mapping | None) -> tuple:
    """The settings as given (insertion order: the same call site repeats the same order). Keep in step with
    `HnswEngine.search`, which builds the same key inline."""
    return tuple(given.items()) if given else ()
