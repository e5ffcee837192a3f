"""Full-precision vectors kept beside a quantised (or truncated) index, for rescoring its candidates.

Rows are in insertion order (row i = the engine's internal position i). In memory while the engine is being
built; saved as a plain `.npy` file and memory-mapped when loaded, so a rescore touches only the pages of the
`k x oversample` rows it reads and the store costs disk, not RAM.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

DTYPES = ("float32", "float16")
FILE = "raw_vectors.npy"
NORM_FILE = "raw_vectors.json"


class RawVectorStore:
    def __init__(self, dim: int, dtype: str = "float32"):
        if dtype not in DTYPES:
            raise ValueError(f"raw vector dtype {dtype!r} is not supported; valid choices: {', '.join(DTYPES)}")
        self.dim = dim
        self.dtype = np.dtype(dtype)
        self._array: np.ndarray = np.empty((0, dim), self.dtype)
        self._pending: list[np.ndarray] = []
        self.max_norm = 0.0  # the largest row norm: scales the float32 error margin of a rescore

    def __len__(self) -> int:
        return len(self._array) + sum(len(p) for p in self._pending)

    def append(self, vectors: np.ndarray) -> None:
        if len(vectors):
            self.max_norm = max(self.max_norm, float(np.sqrt(np.einsum("ij,ij->i", vectors, vectors).max())))
        self._pending.append(np.asarray(vectors, dtype=self.dtype))

    @property
    def array(self) -> np.ndarray:
        """All rows as one (n, dim) array (a read-only memory map after `load`)."""
        if self._pending:  # appends are batched: one concatenation per burst of appends
            self._array = np.concatenate([np.asarray(self._array), *self._pending])
            self._pending = []
        return self._array

    def rows(self, positions: np.ndarray) -> np.ndarray:
        return self.array[positions]

    @property
    def nbytes(self) -> int:
        return len(self) * self.dim * self.dtype.itemsize

    @property
    def memory_mapped(self) -> bool:
        return isinstance(self.array, np.memmap)

    def save(self, directory: Path) -> None:
        path = Path(directory) / FILE
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, self.array)
        os.replace(tmp, path)
        (Path(directory) / NORM_FILE).write_text(json.dumps({"max_norm": self.max_norm}))

    @classmethod
    def load(cls, directory: Path, dim: int, dtype: str, mmap: bool = True) -> "RawVectorStore":
        store = cls(dim, dtype)
        array = np.load(Path(directory) / FILE, mmap_mode="r" if mmap else None)
        if array.shape[1:] != (dim,) or array.dtype != store.dtype:
            raise ValueError(f"{directory / FILE} holds {array.dtype} rows of shape {array.shape[1:]}, "
                             f"expected {dtype} rows of dimension {dim}; the engine directory is inconsistent")
        store._array = array
        store.max_norm = float(json.loads((Path(directory) / NORM_FILE).read_text())["max_norm"])
        return store
