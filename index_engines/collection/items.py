"""Items as callers give them, and the checks a batch passes before anything is written.

An item is a dict (or an `Item`) with:
- `id`: a string or an integer (see `ids.py`);
- `text` and/or `vector`: text is encoded with the collection's pinned model; a vector must come with
  `model_version` equal to the collection's (version parity: vectors of two models are not comparable);
- `metadata`: a JSON object of keyword / number / bool fields (see `payload.py`);
- `tenant`: the owning tenant (the collection's default tenant if omitted).
The write API is model-agnostic: a stream of items with text can feed two collections pinned to different models.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ..engines.base import check_vectors
from .errors import CollectionError, PayloadError, VersionParityError

MAX_TEXT_CHARS = 1_000_000
ITEM_FIELDS = ("id", "text", "vector", "model_version", "metadata", "tenant")


@dataclass(frozen=True)
class Item:
    id: str | int
    text: str | None = None
    vector: object = None
    model_version: str | None = None
    metadata: dict | None = None
    tenant: str | None = None


def as_items(items: Iterable) -> list[Item]:
    if isinstance(items, (Item, Mapping)):
        raise CollectionError("upsert takes a list of items; wrap a single item: [item]")
    out = []
    for i, it in enumerate(items):
        if isinstance(it, Item):
            out.append(it)
            continue
        if not isinstance(it, Mapping):
            raise CollectionError(f"item #{i} is a {type(it).__name__}; items are dicts with keys "
                                  f"{', '.join(ITEM_FIELDS)} (or Item objects)")
        unknown = sorted(set(it) - set(ITEM_FIELDS))
        if unknown:
            raise CollectionError(f"item #{i} has unknown key {unknown[0]!r}; valid keys: {', '.join(ITEM_FIELDS)}")
        if "id" not in it:
            raise CollectionError(f"item #{i} has no 'id'")
        out.append(Item(it["id"], it.get("text"), it.get("vector"), it.get("model_version"), it.get("metadata"),
                        it.get("tenant")))
    return out


def check_text(i: int, text) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip():
        raise PayloadError(f"item #{i}: text must be a non-empty string, got {text!r:.60}")
    if len(text) > MAX_TEXT_CHARS:
        raise PayloadError(f"item #{i}: text of {len(text)} characters exceeds {MAX_TEXT_CHARS}; split it")
    return text


def check_model_version(given, pinned: str, what: str) -> None:
    if given != pinned:
        raise VersionParityError(
            f"{what} comes from model version {given!r}, but this collection is pinned to {pinned!r}; vectors "
            f"from different models are not comparable. Re-encode with {pinned.split('@')[0]!r}, pass text and "
            f"let the collection encode it, or migrate to a collection pinned to the new model")


def item_vectors(items: list[Item], texts: list[str | None], dim: int, pinned: str, encode, normalize: bool
                 ) -> np.ndarray:
    """(n, dim) float32 vectors: given vectors (version-checked) and encoded texts, unit rows if `normalize`."""
    out = np.empty((len(items), dim), np.float32)
    to_encode, given = [], []
    for i, it in enumerate(items):
        if it.vector is not None:
            if it.model_version != pinned:
                if it.model_version is None:
                    raise VersionParityError(f"item #{i} ({it.id!r}) has a vector but no model_version; vectors "
                                             f"must say which model made them (this collection: {pinned!r})")
                check_model_version(it.model_version, pinned, f"item #{i} ({it.id!r})")
            given.append(i)
        elif texts[i] is not None:
            to_encode.append(i)
        else:
            raise CollectionError(f"item #{i} ({it.id!r}) has neither text nor vector; give one of them")
    if given:
        try:
            stacked = np.asarray([items[i].vector for i in given])
        except ValueError:  # ragged: find the culprit with the per-vector check
            stacked = None
        if stacked is None or stacked.ndim != 2:
            for i in given:
                check_vectors(items[i].vector, dim, f"vector of item #{i} ({items[i].id!r})")
        try:
            out[given] = check_vectors(stacked, dim, "item vectors")
        except ValueError as exc:
            raise CollectionError(f"{exc} (rows are in the order of the items that carry a vector)") from None
    if to_encode:
        out[to_encode] = encode([texts[i] for i in to_encode])
    return unit_rows(out, "item vectors") if normalize else out


def unit_rows(x: np.ndarray, what: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise CollectionError(f"{what}: row {int(np.flatnonzero(norms[:, 0] == 0)[0])} is the zero vector, which "
                              f"has no direction under the cosine metric")
    return (x / norms).astype(np.float32)
