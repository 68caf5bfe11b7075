"""The dense leg: paragraph and sentence vectors in FAISS inner-product indexes.

Vectors are L2-normalised, so inner product = cosine. Corpora up to EXACT_MAX_VECTORS get an exact
index (IndexFlatIP); above it an HNSW graph keeps search fast. The threshold and the HNSW parameters
come from the figures below; `reportqa bench --full` re-measures HNSW recall@10 against exact search.
"""

from __future__ import annotations

import os
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

    @property
    def vectors(self) -> np.ndarray:
        """The indexed vectors as a read-only array over the index's own storage (no copy)."""
        flat = self.index if self.is_exact else faiss.downcast_index(self.index.storage)
        n, d = int(flat.ntotal), int(flat.d)
        if n == 0:
            return np.zeros((0, d), dtype=np.float32)
        view = faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d)
        view.flags.writeable = False  # a memory-mapped index file is read-only underneath
        return view

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index file `open` reads (straight from FAISS's memory: no copy)."""
        faiss.write_index(self.index, os.fspath(path))

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, mapped: bool = True) -> DenseIndex:
        """An index file written by `save`; memory-mapped by default: opening costs no copy of the
        vectors, and a question touches only the pages it needs. mapped=False reads it into memory
        in one sequential read, for a caller that will touch every vector (a rebuild): page-faulting
        through a 94 MB mapping costs ~1 s more.

        Keep the DenseIndex alive as long as any `vectors` view of it is used (the view does not own
        the mapping). Raises ValueError for a file FAISS cannot read.
        """
        try:
            if mapped:
                return cls(faiss.read_index(os.fspath(path), faiss.IO_FLAG_MMAP_IFC))
            return cls(faiss.read_index(os.fspath(path)))
        except RuntimeError as exc:
            raise ValueError(f"{path}: not a readable FAISS index") from exc
