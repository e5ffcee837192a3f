"""The faiss plumbing shared by the quantised engines (`ivfpq`, `sq8`): train, add, search with a selector,
save and load. Quantised engines always keep raw vectors: their codes only find candidates, which are rescored.

Until `min_train` vectors have arrived an engine is untrained and answers by scanning its raw vectors exactly (a
small index is cheaper to scan than to quantise); the vectors held when it crosses the threshold train it.
"""
from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import faiss
import numpy as np

from .approximate import COMMON_BUILD, ApproximateEngine
from .faiss_util import ParamsCache, build_threads, index_bytes, omp_threads
from .params import Param

INDEX_FILE = "index.faiss"
TRAIN_SEED = 1234
MAX_TRAIN = 200_000  # rows used for training at most (k-means subsamples further)

QUANTIZED_BUILD = COMMON_BUILD + (
    Param("min_train", 1000, "vectors needed before the quantiser is trained; fewer are scanned exactly",
          minimum=1),
)


class FaissQuantizedEngine(ApproximateEngine):
    needs_training = True
    build_spec = QUANTIZED_BUILD

    def __init__(self, dim: int, **build_params):
        super().__init__(dim, **build_params)
        self._index = None
        self._state: dict = {}
        self._params = ParamsCache(self._make_search_params)

    @abstractmethod
    def _make_index(self, n_train: int):
        """A fresh, untrained faiss index for `n_train` training vectors; may record choices in self._state."""

    @abstractmethod
    def _search_key(self, qp: dict) -> tuple:
        """The query parameters that reach faiss, as arguments of `_make_search_params`."""

    @abstractmethod
    def _make_search_params(self, *key) -> faiss.SearchParameters:
        ...

    def _train(self, sample: np.ndarray) -> None:
        if len(sample) > MAX_TRAIN:
            rows = np.random.default_rng(TRAIN_SEED).choice(len(sample), MAX_TRAIN, replace=False)
            sample = sample[np.sort(rows)]
        index = self._make_index(len(sample))
        with omp_threads(build_threads(self.build_params["build_threads"])):
            index.train(sample)
        self._index = index

    def _index_add(self, vectors: np.ndarray, start: int) -> None:
        with omp_threads(build_threads(self.build_params["build_threads"])):
            self._index.add(vectors)

    def _index_search(self, queries, k, qp, allowed):
        params = self._params.get(self._search_key(qp), allowed, len(self._ids))
        with omp_threads(qp["threads"]):
            return self._index.search(queries, k, params=params)

    def _save_index(self, directory: Path) -> dict:
        faiss.write_index(self._index, str(directory / INDEX_FILE))
        return dict(self._state)

    def _load_index(self, directory: Path, state: dict) -> None:
        self._index = faiss.read_index(str(directory / INDEX_FILE))
        self._state = {k: v for k, v in state.items() if k != "trained"}

    def _memory_bytes(self) -> int:
        return 0 if self._index is None else index_bytes(self._index)

    @property
    def library_index(self):
        return self._index
