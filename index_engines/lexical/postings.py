"""Term-major postings over a range of document positions, and the growable arrays the index is made of.

`Postings` is a CSC-like layout: the documents of term t are `docs[indptr[t]:indptr[t+1]]` with their term
frequencies in `tfs`. It stores raw term frequencies, not BM25 weights: idf and length normalisation are applied at
query time from the index's live statistics (what Lucene does), so writes and deletes never invalidate it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def expand_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of arange(start, start + length) for each pair, without a Python loop."""
    lengths = np.asarray(lengths, np.int64)
    return np.arange(int(lengths.sum())) + np.repeat(np.asarray(starts, np.int64) - (np.cumsum(lengths) - lengths),
                                                     lengths)


class Growable:
    """An append-only numpy buffer with amortised doubling (`view` is the filled part)."""

    def __init__(self, dtype, initial: int = 1024):
        self._buf = np.zeros(initial, dtype=dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def view(self) -> np.ndarray:
        return self._buf[:self._n]

    def extend(self, values) -> None:
        values = np.asarray(values, dtype=self._buf.dtype)
        need = self._n + len(values)
        if need > len(self._buf):
            grown = np.zeros(max(need, 2 * len(self._buf)), dtype=self._buf.dtype)
            grown[:self._n] = self._buf[:self._n]
            self._buf = grown
        self._buf[self._n:need] = values
        self._n = need

    def grow_to(self, n: int) -> None:
        """Make the array at least n long, padding with zeros."""
        if n > self._n:
            self.extend(np.zeros(n - self._n, dtype=self._buf.dtype))

    @classmethod
    def of(cls, values, dtype) -> "Growable":
        g = cls(dtype, max(1024, len(values)))
        g.extend(values)
        return g


@dataclass(frozen=True)
class Postings:
    """Postings of the documents at positions [start, stop), for term ids < n_terms."""

    start: int
    stop: int
    indptr: np.ndarray  # (n_terms + 1,) int64
    docs: np.ndarray  # positions, int32, ascending within a term
    tfs: np.ndarray  # term frequencies, float64 (so scoring needs no casts)

    @property
    def n_terms(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def build(cls, offsets: np.ndarray, terms: np.ndarray, tfs: np.ndarray, start: int, stop: int,
              n_terms: int) -> "Postings":
        """From the doc-major store (`terms[offsets[p]:offsets[p+1]]` are the distinct terms of position p)."""
        lo, hi = int(offsets[start]), int(offsets[stop])
        t = terms[lo:hi]
        doc = np.repeat(np.arange(start, stop, dtype=np.int32), np.diff(offsets[start:stop + 1]))
        order = np.argsort(t, kind="stable")  # stable: positions stay ascending within a term
        counts = np.bincount(t, minlength=n_terms) if len(t) else np.zeros(n_terms, np.int64)
        indptr = np.zeros(n_terms + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(start, stop, indptr, doc[order], tfs[lo:hi][order].astype(np.float64))

    def gather(self, term_ids: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions, term frequencies, weight of the posting's term) of the given terms' postings."""
        keep = term_ids < self.n_terms  # terms first seen after this range was built have no postings here
        term_ids, weights = term_ids[keep], weights[keep]
        starts, ends = self.indptr[term_ids], self.indptr[term_ids + 1]
        lengths = ends - starts
        idx = expand_ranges(starts, lengths)
        return self.docs[idx], self.tfs[idx], np.repeat(weights, lengths)
