"""`ivfpq`: faiss inverted file (k-means coarse quantiser) with product-quantised residuals, optionally behind
an OPQ rotation; candidates are rescored on raw vectors.

Memory per vector: `pq_m * nbits / 8` bytes of code plus an 8-byte id in the inverted list.
"""
from __future__ import annotations

import math

import faiss

from .approximate import COMMON_QUERY
from .params import Param
from .quantized import QUANTIZED_BUILD, FaissQuantizedEngine


def auto_nlist(n: int) -> int:
    """About 4 sqrt(n) lists, but at least 39 training vectors per list (faiss k-means' own minimum)."""
    return max(1, min(int(round(4 * math.sqrt(n))), n // 39))


class IvfPqEngine(FaissQuantizedEngine):
    name = "ivfpq"
    build_spec = QUANTIZED_BUILD + (
        Param("nlist", 0, "inverted lists (k-means centroids); 0 = about 4 sqrt(n) at training", minimum=0),
        Param("pq_m", 48, "sub-quantisers (bytes per code at nbits=8); must divide the indexed dimension",
              minimum=1),
        Param("nbits", 8, "bits per sub-quantiser code", choices=(4, 5, 6, 7, 8)),
        Param("opq", False, "learn an OPQ rotation before product quantisation"),
    )
    query_spec = COMMON_QUERY + (
        Param("nprobe", 128, "inverted lists visited per query: recall and latency grow with it", minimum=1),
        Param("oversample", 16, "candidates fetched = k x oversample, rescored on raw vectors", minimum=1),
    )

    def __init__(self, dim: int, **build_params):
        super().__init__(dim, **build_params)
        m = self.build_params["pq_m"]
        if self.index_dim % m:
            divisors = [d for d in range(1, self.index_dim + 1) if self.index_dim % d == 0 and d <= 192]
            raise ValueError(f"pq_m={m} does not divide the indexed dimension {self.index_dim}; valid pq_m: "
                             f"{', '.join(map(str, divisors))}")

    @property
    def min_train(self) -> int:
        """At least one training vector per PQ centroid (2**nbits) and per inverted list."""
        bp = self.build_params
        return max(bp["min_train"], 2 ** bp["nbits"], bp["nlist"])

    def _make_index(self, n_train: int):
        bp = self.build_params
        nlist = bp["nlist"] or auto_nlist(n_train)
        self._state = {"nlist": nlist}
        spec = f"IVF{nlist},PQ{bp['pq_m']}x{bp['nbits']}"
        if bp["opq"]:
            spec = f"OPQ{bp['pq_m']},{spec}"
        index = faiss.index_factory(self.index_dim, spec, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        # Polysemous training reorders codes for Hamming filtering, which we do not use: it took 30 s of a 31 s
        # training on 3,000 vectors here.
        ivf.do_polysemous_training = False
        # min_train, not faiss, decides when there is enough data; this also silences its per-codebook warning.
        ivf.cp.min_points_per_centroid = 1
        ivf.pq.cp.min_points_per_centroid = 1
        return index

    def _search_key(self, qp: dict) -> tuple:
        return (qp["nprobe"],)

    def _make_search_params(self, nprobe: int) -> faiss.SearchParameters:
        params = faiss.SearchParametersIVF()
        params.nprobe = nprobe
        return params

    @property
    def nlist(self) -> int | None:
        return self._state.get("nlist")
