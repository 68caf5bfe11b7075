"""The dense leg: paragraph and sentence vectors in FAISS inner-product indexes.

Vectors are L2-normalised, so inner product = cosine. Corpora up to EXACT_MAX_VECTORS get an exact
index (IndexFlatIP); above it an HNSW graph keeps search fast. The threshold and the HNSW parameters
come from the figures below; `reportqa bench --full` re-measures HNSW recall@10 against exact search.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

# One query at a time: FAISS's OpenMP threads only add wake-up cost (61k sentence vectors: 6.1 ms with
# one thread vs 8.6 ms with two on this machine), and the bot already runs questions in parallel.
faiss.omp_set_num_threads(1)

# Measured on all shared corpora + the seed (13,192 paragraphs, 61,354 sentences; 161 dev questions):
# exact search 0.75 ms (paragraphs) and 5.6 ms (sentences) per query; HNSW M=32 recall@10 vs exact
# 0.960 / 0.980 / 0.991 at efSearch 128 / 256 / 512 on paragraphs (0.96 at 512 on sentences). Exact is
# both fast enough and exact at that scale, so the graph only takes over well above it.
EXACT_MAX_VECTORS = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 512


def build_faiss_index(vectors: np.ndarray, *, exact_max: int = EXACT_MAX_VECTORS) -> faiss.Index:
    """An exact index for up to `exact_max` vectors, an HNSW graph above."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if len(vectors) <= exact_max:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    if len(vectors):
        index.add(vectors)
    return index


@dataclass
class DenseIndex:
    index: faiss.Index

    @classmethod
    def build(cls, vectors: np.ndarray, *, exact_max: int = EXACT_MAX_VECTORS) -> DenseIndex:
        return cls(build_faiss_index(vectors, exact_max=exact_max))

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def is_exact(self) -> bool:
        return isinstance(self.index, faiss.IndexFlat)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, cosine scores); `allowed` is an optional boolean mask over paragraphs."""
        k = min(k, self.size)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        params = None
        if allowed is not None:
            ids = np.flatnonzero(allowed).astype(np.int64)
            if len(ids) == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            k = min(k, len(ids))
            selector = faiss.IDSelectorBatch(ids)
            if self.is_exact:
                params = faiss.SearchParameters(sel=selector)
            else:
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=HNSW_EF_SEARCH)
        scores, ids = self.index.search(q, k, params=params)
        keep = ids[0] >= 0
        return ids[0][keep].astype(np.int64), scores[0][keep]

    def serialize(self) -> bytes:
        return faiss.serialize_index(self.index).tobytes()

    @classmethod
    def deserialize(cls, data: bytes) -> DenseIndex:
        return cls(faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8)))
