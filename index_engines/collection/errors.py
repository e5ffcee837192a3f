"""Errors a collection raises. Each says what went wrong and what to do next.

They subclass `ValueError` (bad input) or `FileNotFoundError` (no such collection), so the CLI prints them as
user errors without a traceback, and callers can catch the precise kind.
"""
from __future__ import annotations


class CollectionError(ValueError):
    """Base class of collection errors caused by the caller's input or the collection's state."""


class VersionParityError(CollectionError):
    """A vector (or the installed model) does not come from the model version the collection is pinned to."""


class FilterError(CollectionError):
    """A filter names an unknown field or operator, or compares a field with a value of the wrong type."""


class PayloadError(CollectionError):
    """An item's metadata is malformed: wrong value type for its field, reserved or bad name, or too large."""


class InvalidIdError(CollectionError):
    """An item id is neither a string nor an integer, or a batch repeats an id."""


class TenantError(CollectionError):
    """A write or read crosses a tenant boundary (e.g. an upsert would move an id to another tenant)."""


class CollectionClosedError(CollectionError):
    """The collection was closed; open it again with `Collection.open(path)`."""


class CollectionExistsError(CollectionError):
    """`Collection.create` was asked for a directory that already holds a collection."""


class CorruptLogError(CollectionError):
    """A write-ahead log file other than the last one is damaged: acknowledged writes may be lost."""


class CollectionNotFoundError(FileNotFoundError):
    """No collection at the given path or name."""
