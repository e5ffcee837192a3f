"""`BM25Secondary`: the BM25 index as a collection's secondary index (the hook in `collection/collection.py`).

The collection calls it under its write lock, in log order: `upsert` with the new rows of a batch, `delete` with the
rows it tombstones (an update is a delete of the old row, then an upsert of a new one), `compact` after a
compaction, `save(directory, lsn)` at checkpoints and on close, `load(directory)` and `clear()` on attach. Documents
are keyed by the collection's int64 row ids, so the allow-list of a query is exactly `collection.allowed_rows(filter,
tenant)` and results go back through `collection.describe_rows`, as dense results do: filters, tenant scope and
tombstones apply to lexical results exactly as to dense ones.

Replay may repeat a call: an upsert of a row already held and a delete of a row not held are no-ops. Items stored
without text (vector-only) are not lexically searchable and are skipped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .index import BM25Index, BM25Params, Hits
from .tokenizer import Tokenizer


class BM25Secondary:
    def __init__(self, params: BM25Params | None = None, tokenizer: Tokenizer | None = None, *, name: str = "bm25"):
        self.name = name
        self._params, self._tokenizer = params or BM25Params(), tokenizer or Tokenizer()
        self.index = BM25Index(self._params, self._tokenizer)

    def __len__(self) -> int:
        return len(self.index)

    # ------------------------------------------------------------------------------------------ the hook
    def upsert(self, rows, ids, texts, metadatas=None, tenants=None) -> None:
        keep = [(int(r), t) for r, t in zip(np.asarray(rows).tolist(), texts)
                if t is not None and int(r) not in self.index]
        if keep:
            self.index.upsert([r for r, _ in keep], [t for _, t in keep])

    def delete(self, rows, ids=None) -> None:
        rows = [int(r) for r in np.asarray(rows).tolist()]
        if rows:
            self.index.delete(rows)

    def compact(self) -> None:
        self.index.compact()

    def save(self, directory, lsn: int) -> None:
        self.index.save(directory, extra={"lsn": int(lsn)})

    def load(self, directory) -> int | None:
        directory = Path(directory)
        if not (directory / "meta.json").exists():
            return None
        lsn = BM25Index.read_meta(directory)["extra"].get("lsn")
        self.index = BM25Index.load(directory)
        return lsn

    def clear(self) -> None:
        self.index = BM25Index(self._params, self._tokenizer)

    # ------------------------------------------------------------------------------------------ reads
    def search(self, query: str, k: int, allow_rows: np.ndarray | None = None) -> Hits:
        """Top-k (row, score); `allow_rows`: sorted row ids from `collection.allowed_rows` (None: all live)."""
        return self.index.search(query, k, allow=allow_rows)
