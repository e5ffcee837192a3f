"""`sq8`: faiss 8-bit scalar quantisation (one byte per dimension, per-dimension ranges learnt at training),
scanned flat (`M=0`) or under an HNSW graph (`M>0`); candidates are rescored on raw vectors.
"""
from __future__ import annotations

import faiss

from .approximate import COMMON_QUERY
from .hnsw import hnsw_params
from .params import Param
from .quantized import QUANTIZED_BUILD, FaissQuantizedEngine


class Sq8Engine(FaissQuantizedEngine):
    name = "sq8"
    build_spec = QUANTIZED_BUILD + (
        Param("M", 0, "0 = scan every code; > 0 = HNSW graph with M links per node over the codes", minimum=0),
        Param("ef_construction", 200, "HNSW candidate list while inserting (M > 0)", minimum=1),
    )
    query_spec = COMMON_QUERY + (
        Param("ef", 64, "HNSW candidate list while searching (M > 0; at least k x oversample is used)",
              minimum=1),
        Param("oversample", 4, "candidates fetched = k x oversample, rescored on raw vectors", minimum=1),
    )

    def _make_index(self, n_train: int):
        bp = self.build_params
        qtype = faiss.ScalarQuantizer.QT_8bit
        if bp["M"] == 0:
            return faiss.IndexScalarQuantizer(self.index_dim, qtype, faiss.METRIC_INNER_PRODUCT)
        index = faiss.IndexHNSWSQ(self.index_dim, qtype, bp["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = bp["ef_construction"]
        return index

    def _search_key(self, qp: dict) -> tuple:
        return (qp["ef"],)

    def _make_search_params(self, ef: int) -> faiss.SearchParameters:
        if self.build_params["M"] == 0:
            return faiss.SearchParameters()
        return hnsw_params(ef)
