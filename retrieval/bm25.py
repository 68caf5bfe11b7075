"""BM25 postings: the score of every (token, document) pair, computed from token ids, and the same
postings restricted to fewer documents without re-tokenizing anything.

`retrieval.lexical` tokenizes and searches; this module holds the arithmetic. The default Lucene
BM25 is computed here with numpy, to bm25s's numbers (a test compares them); the other variants (for
`scripts/bench_lexical.py`) go to bm25s. Lucene postings also keep their raw term counts and the
document lengths: removing a report from a library then recomputes every score from those in
~0.1 s instead of re-reading 150 reports' tokens (~2 s), to exactly the numbers a rebuild gives.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from itertools import compress

import numpy as np


@dataclass(frozen=True)
class Postings:
    """BM25 score of every (token, document) pair, one row per token (compressed sparse rows).

    Token ids are positions in `tokens`, which is sorted, so a token is found by bisection and a
    loaded index needs no 166k-entry dict (that costs 45–150 ms at start-up; the arrays are mmapped).
    """

    tokens: list[str]  # sorted, unique
    indptr: np.ndarray  # int64, len(tokens) + 1
    indices: np.ndarray  # int32 document ids
    data: np.ndarray  # float32 scores
    tf: np.ndarray | None = None  # uint16/int32 count of each pair (Lucene postings), for `restricted`
    lengths: np.ndarray | None = None  # int64 tokens per document (Lucene postings)

    def token_id(self, token: str) -> int | None:
        i = bisect.bisect_left(self.tokens, token)
        return i if i < len(self.tokens) and self.tokens[i] == token else None


def _lucene_scores(term: np.ndarray, doc: np.ndarray, tf: np.ndarray, df: np.ndarray, lengths: np.ndarray,
                   k1: float, b: float) -> np.ndarray:
    """Lucene BM25 (idf = ln(1 + (N − df + 0.5)/(df + 0.5)), tf part tf/(tf + k1·(1 − b + b·dl/avgdl)))
    of each pair, in bm25s's precision: idf in float32, the product in float64."""
    n_docs = len(lengths)
    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    tf = tf.astype(np.float32)
    avg = lengths.mean()
    tfc = tf / (k1 * ((1 - b) + b * lengths[doc] / avg) + tf)
    return (idf[term].astype(np.float64) * tfc).astype(np.float32)


def _count_dtype(tf: np.ndarray):
    return np.uint16 if len(tf) == 0 or int(tf.max()) <= np.iinfo(np.uint16).max else np.int32


def lucene_postings(tokens: list[str], ids: np.ndarray, offsets: np.ndarray, k1: float, b: float) -> Postings:
    """Postings of documents given as ids into the sorted `tokens`: document i holds
    ids[offsets[i]:offsets[i + 1]]."""
    n_docs = len(offsets) - 1
    lengths = np.diff(offsets).astype(np.int64)
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    pairs, tf = np.unique(ids * n_docs + doc_of, return_counts=True)  # sorted: by token, then document
    term, doc = np.divmod(pairs, n_docs)
    df = np.bincount(term, minlength=len(tokens))
    indptr = np.zeros(len(tokens) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    return Postings(tokens, indptr, doc.astype(np.int32), _lucene_scores(term, doc, tf, df, lengths, k1, b),
                    tf.astype(_count_dtype(tf)), lengths)


def restricted(postings: Postings, keep: np.ndarray, k1: float, b: float) -> Postings | None:
    """Lucene postings of the documents where `keep` is True (renumbered in order), as if built from
    them alone: tokens they do not have leave the vocabulary, N, df and the mean length are theirs.
    None when the postings hold no term counts (bm25s variants, an index saved before they were kept)."""
    if postings.tf is None or postings.lengths is None or len(keep) != len(postings.lengths):
        return None
    keep = np.asarray(keep, dtype=bool)
    n_tokens = len(postings.tokens)
    term = np.repeat(np.arange(n_tokens, dtype=np.int64), np.diff(postings.indptr))
    indices = np.asarray(postings.indices)
    kept = keep[indices]
    renumber = np.cumsum(keep, dtype=np.int64) - 1
    doc, term, tf = renumber[indices[kept]], term[kept], np.asarray(postings.tf)[kept]
    df = np.bincount(term, minlength=n_tokens)
    alive = df > 0
    term = (np.cumsum(alive, dtype=np.int64) - 1)[term]
    df = df[alive]
    lengths = np.asarray(postings.lengths)[keep]
    indptr = np.zeros(len(df) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    tokens = list(compress(postings.tokens, alive.tolist()))
    return Postings(tokens, indptr, doc.astype(np.int32), _lucene_scores(term, doc, tf, df, lengths, k1, b),
                    tf.astype(_count_dtype(tf)), lengths)


def bm25s_postings(tokens: list[str], ids: np.ndarray, offsets: np.ndarray, k1: float, b: float,
                   method: str) -> Postings:
    """Postings computed by bm25s (any of its methods; no term counts kept)."""
    import bm25s
    from bm25s.tokenization import Tokenized

    docs = [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]
    bm25 = bm25s.BM25(k1=k1, b=b, method=method)
    bm25.index(Tokenized(ids=docs, vocab={t: i for i, t in enumerate(tokens)}), show_progress=False)
    matrix = bm25.scores  # bm25s adds "" to the vocabulary dict, without a row
    if len(matrix["indptr"]) != len(tokens) + 1:
        raise ValueError("bm25s returned postings for another vocabulary")
    return Postings(tokens, np.asarray(matrix["indptr"], dtype=np.int64),
                    np.asarray(matrix["indices"], dtype=np.int32), np.asarray(matrix["data"], dtype=np.float32))
