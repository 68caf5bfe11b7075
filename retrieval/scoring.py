"""Scoring passages for one question: both legs, any subset of the corpus, exact fusion.

The retriever asks several questions of the same query per `ask` — all passages in the question's
place scope, then one year, then each year of a timeline — so the expensive parts are done once per
question (`QueryScores`: the query vector and the BM25 score of every passage) and each subset is
ranked from them (`PassageScorer.rank`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from retrieval.highlight import states_value
from retrieval.indexing import LoadedIndex
from retrieval.lexical import tokenize
from retrieval.passages import Passage
from retrieval.rank import DENSE_WEIGHT, NON_CHINESE_DENSE_WEIGHT, PARAGRAPH_WEIGHT, YEAR_BONUS, Ranked, fuse
from retrieval.scope import mentions_year

CANDIDATES = 50  # per leg, before fusion
# A figure question ranked inside one year: a passage that states the measure's value ("实现地区生产
# 总值1100.7亿元") over one that only names it ("占地区生产总值的35%"). Tuned on library-dev's tune half.
VALUE_BONUS = 0.15
NUMPY_SUBSET_MAX = 20_000  # passages: below this a subset is scored with numpy instead of FAISS


@dataclass
class QueryScores:
    """What every ranking of one question shares."""

    mode: str
    chinese: bool
    qvec: np.ndarray | None  # None in lexical mode
    lexical: np.ndarray  # BM25 per passage (zeros in dense mode)


class PassageScorer:
    """Dense + lexical scores of passages for queries; thread-safe (one embedding at a time)."""

    def __init__(self, passages: list[Passage], index: LoadedIndex, embedder):
        self.passages = passages
        self.index = index
        self.embedder = embedder
        self._query_lock = threading.Lock()
        self.idf = _idf_table(index.lexical)
        self._sentence_tokens: dict[int, list[list[str]]] = {}  # filled on first use per passage
        self._passage_tokens: dict[int, set[str]] = {}

    def query(self, dense_q: str, lexical_q: str, mode: str, chinese: bool) -> QueryScores:
        n = len(self.passages)
        lex = self.index.lexical.scores(lexical_q) if mode != "dense" else np.zeros(n, dtype=np.float32)
        qvec = None
        if mode != "lexical" and n:
            with self._query_lock:
                qvec = self.embedder.encode_queries([dense_q])[0]
        return QueryScores(mode=mode, chinese=chinese, qvec=qvec, lexical=lex)

    def with_lexical(self, qs: QueryScores, lexical_q: str) -> QueryScores:
        """The same query with another lexical text (the dense vector is reused: no second embedding)."""
        if qs.mode == "dense":
            return qs
        return QueryScores(mode=qs.mode, chinese=qs.chinese, qvec=qs.qvec, lexical=self.index.lexical.scores(lexical_q))

    def rank(
        self,
        qs: QueryScores,
        mask: np.ndarray | None,
        years: tuple[int, ...] = (),
        value: tuple[tuple[str, ...], bool] | None = None,
    ) -> Ranked:
        """Candidates of `mask` (None: every passage) from both legs, scored exactly by both, fused.

        value: (measure terms, shares allowed) of a figure question: passages with a sentence that
        states the measure's value get VALUE_BONUS (see `retrieval.highlight.states_value`).
        """
        idx = self.index
        lex_all = qs.lexical if mask is None else np.where(mask, qs.lexical, 0.0)
        cand: set[int] = set()
        if qs.qvec is not None and len(self.passages):
            subset = np.flatnonzero(mask) if mask is not None else None
            if subset is not None and len(subset) <= NUMPY_SUBSET_MAX:
                cand.update(self._dense_candidates_numpy(subset, qs.qvec))
            else:
                ids, _ = idx.dense.search(qs.qvec, CANDIDATES, mask)
                cand.update(int(i) for i in ids)
                sent_mask = mask[idx.sentence_owner] if mask is not None else None
                sids, _ = idx.sentence_dense.search(qs.qvec, CANDIDATES, sent_mask)
                cand.update(int(i) for i in idx.sentence_owner[sids])
        if qs.mode != "dense":
            nz = np.flatnonzero(lex_all > 0)
            if len(nz) > CANDIDATES:
                nz = nz[np.argpartition(-lex_all[nz], CANDIDATES - 1)[:CANDIDATES]]
            cand.update(int(i) for i in nz)
        if not cand:
            empty = np.zeros(0)
            return Ranked(np.zeros(0, dtype=np.int64), empty, empty, empty)
        ids = np.array(sorted(cand), dtype=np.int64)
        dense = self.dense_scores(ids, qs.qvec) if qs.qvec is not None else np.zeros(len(ids))
        lexical = lex_all[ids]
        bonus = None
        if years and qs.mode == "hybrid":
            bonus = np.array([YEAR_BONUS * passage_about_years(self.passages[i], years) for i in ids])
        if value is not None and value[0] and qs.mode == "hybrid":
            terms, shares = value
            stated = np.array(
                [VALUE_BONUS * any(states_value(x.text, terms, shares) for x in self.passages[i].sentences)
                 for i in ids]
            )
            bonus = stated if bonus is None else bonus + stated
        weight = DENSE_WEIGHT if qs.chinese else NON_CHINESE_DENSE_WEIGHT
        return fuse(ids, dense, lexical, mode=qs.mode, dense_weight=weight, bonus=bonus)

    def _dense_candidates_numpy(self, subset: np.ndarray, qvec: np.ndarray) -> list[int]:
        """Top paragraphs and top sentences' paragraphs within a subset, exactly (what FAISS would give)."""
        if len(subset) == 0:
            return []
        idx = self.index
        para = idx.paragraph_vectors[subset] @ qvec
        k = min(CANDIDATES, len(subset))
        out = set(int(i) for i in subset[np.argpartition(-para, k - 1)[:k]])
        starts, ends = idx.first_sentence[subset], idx.first_sentence[subset + 1]
        rows = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
        if len(rows):
            sims = idx.sentence_vectors[rows] @ qvec
            k = min(CANDIDATES, len(rows))
            out.update(int(i) for i in idx.sentence_owner[rows[np.argpartition(-sims, k - 1)[:k]]])
        return sorted(out)

    def sentence_sims(self, pid: int, qvec: np.ndarray) -> np.ndarray:
        a, b = self.index.first_sentence[pid], self.index.first_sentence[pid + 1]
        return self.index.sentence_vectors[a:b] @ qvec

    def dense_scores(self, ids: np.ndarray, qvec: np.ndarray) -> np.ndarray:
        """Paragraph cosine mixed with its best sentence's cosine (see retrieval.rank)."""
        para = self.index.paragraph_vectors[ids] @ qvec
        best = np.array([self.sentence_sims(int(i), qvec).max() for i in ids])
        return PARAGRAPH_WEIGHT * para + (1 - PARAGRAPH_WEIGHT) * best

    def coverage(self, q_tokens: list[str], pid: int) -> float:
        """IDF-weighted share of the question's tokens that the passage contains (0..1)."""
        q = set(q_tokens)
        total = sum(self.idf(t) for t in q)
        if total <= 0:
            return 0.0
        return sum(self.idf(t) for t in q & self.tokens_of_passage(pid)) / total

    def tokens_of_passage(self, pid: int) -> set[str]:
        toks = self._passage_tokens.get(pid)
        if toks is None:
            toks = self._passage_tokens[pid] = set(tokenize(self.passages[pid].indexed_text))
        return toks

    def tokens_of_sentences(self, pid: int) -> list[list[str]]:
        toks = self._sentence_tokens.get(pid)
        if toks is None:
            toks = self._sentence_tokens[pid] = [tokenize(s.text) for s in self.passages[pid].sentences]
        return toks


def passage_about_years(p: Passage, years: tuple[int, ...]) -> bool:
    """The passage's period is one of the years, or its text speaks of one ("2020年")."""
    if p.period.year is not None and p.period.year in years:
        return True
    if p.period.year is None and p.report.meta.year in years:
        return True
    return any(mentions_year(p.indexed_text, y) for y in years)


def _idf_table(lexical):
    """IDF per token from the lexical index's document frequencies (0 for unknown tokens)."""
    df = lexical.document_frequencies()
    n = max(1, len(lexical))
    cache = {t: float(np.log(1 + (n - d + 0.5) / (d + 0.5))) for t, d in df.items()}
    unknown = float(np.log(1 + (n + 0.5) / 0.5))

    def idf(token: str) -> float:
        return cache.get(token, unknown)

    return idf
