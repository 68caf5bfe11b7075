"""Scoring passages for one question: both legs, any subset of the corpus, exact fusion.

The retriever asks several questions of the same query per `ask` — all passages in the question's
place scope, then one year, then each year of a timeline — so the expensive parts are done once per
question (`QueryScores`: the query vector and the BM25 score of every passage) and each subset is
ranked from them (`PassageScorer.rank`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from retrieval.highlight import states_value
from retrieval.indexing import LoadedIndex
from retrieval.lexical import tokenize
from retrieval.passages import Passage
from retrieval.rank import PARAGRAPH_WEIGHT, YEAR_BONUS, Ranked, dense_weight_for, fuse
from retrieval.scope import mentions_year

CANDIDATES = 50  # per leg, before fusion
# A figure question ranked inside one year: a passage that states the measure's value ("实现地区生产
# 总值1100.7亿元") over one that only names it ("占地区生产总值的35%"). Tuned on library-dev's tune half.
VALUE_BONUS = 0.15
# A subset of up to this many passages (one place, one year, one series) is ranked with numpy on its
# own vectors; a larger one (or the whole corpus) with the FAISS indexes and a selector. Scoring all
# 61k sentence vectors with numpy costs 10 ms per question here, FAISS's search 5.6 ms.
SUBSET_MAX = 4_000


@dataclass
class QueryScores:
    """What every ranking of one question shares: computed once per question, then any subset of the
    passages (one place, one year, one series) is ranked from it."""

    mode: str
    chinese: bool
    qvec: np.ndarray | None  # None in lexical mode
    lexical: np.ndarray  # BM25 per passage (zeros in dense mode)
    sentences: np.ndarray | None = None  # sentence cosines computed so far (NaN: not yet)
    stated: dict = field(default_factory=dict)  # (pid, terms, shares) → a sentence states the value
    dense_weight: float = 0.5  # fusion weight of the dense leg (`rank.dense_weight_for`)


class PassageScorer:
    """Dense + lexical scores of passages for queries; thread-safe. Queries from several threads are
    embedded side by side: the embedder serialises only what its model cannot run concurrently."""

    def __init__(self, passages: list[Passage], index: LoadedIndex, embedder):
        self.passages = passages
        self.index = index
        self.embedder = embedder
        self.idf = _idf_table(index.lexical)
        self._sentence_tokens: dict[int, list[list[str]]] = {}  # filled on first use per passage
        self._passage_tokens: dict[int, set[str]] = {}
        self._period_year = np.array([p.period.year if p.period.year is not None else -1 for p in passages],
                                     dtype=np.int64)
        self._report_year = np.array([p.report.meta.year or -1 for p in passages], dtype=np.int64)
        self._mentions: dict[int, np.ndarray] = {}

    def query(self, dense_q: str, lexical_q: str, mode: str, chinese: bool, glossed: bool = False) -> QueryScores:
        """glossed: lexical_q is an English question's Chinese gloss (`retrieval.translate`)."""
        n = len(self.passages)
        lex = self.index.lexical.scores(lexical_q) if mode != "dense" else np.zeros(n, dtype=np.float32)
        qs = QueryScores(mode=mode, chinese=chinese, qvec=None, lexical=lex,
                         dense_weight=dense_weight_for(chinese, glossed))
        if mode != "lexical" and n:
            qs.qvec = self.embedder.encode_queries([dense_q])[0]
            qs.sentences = np.full(len(self.index.sentence_vectors), np.nan, dtype=np.float32)
        return qs

    def known_term(self, term: str) -> bool:
        """The corpus has every BM25 token of the term (a gloss keeps only words the reports use)."""
        tokens = tokenize(term)
        return bool(tokens) and all(self.index.lexical.has_token(t) for t in tokens)

    def with_lexical(self, qs: QueryScores, lexical_q: str) -> QueryScores:
        """The same query with another lexical text (the dense scores are reused: no second embedding)."""
        if qs.mode == "dense":
            return qs
        return replace(qs, lexical=self.index.lexical.scores(lexical_q))

    def mentions(self, year: int) -> np.ndarray:
        """Passages whose text speaks of that year ("2020年"), cached per year."""
        mask = self._mentions.get(year)
        if mask is None:
            # A substring test first, on the paragraph and its headings (the digits cannot straddle the
            # separators of indexed_text, so this is the same test without building 13k strings); the
            # regex then runs on the few passages that have the digits.
            digits = str(year)
            mask = np.array([(digits in p.paragraph.text or any(digits in h for h in p.heading_path))
                             and mentions_year(p.indexed_text, year) for p in self.passages], dtype=bool)
            self._mentions[year] = mask
        return mask

    def about_years(self, years: tuple[int, ...]) -> np.ndarray:
        """Passages whose period is one of the years (undated ones: their report's year) or whose text
        speaks of one."""
        about = np.isin(self._period_year, years) | ((self._period_year < 0) & np.isin(self._report_year, years))
        for y in years:
            about |= self.mentions(y)
        return about

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
            if subset is not None and len(subset) <= SUBSET_MAX:
                cand.update(self._dense_candidates(qs, subset))
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
        dense = self.dense_scores(ids, qs) if qs.qvec is not None else np.zeros(len(ids))
        lexical = lex_all[ids]
        bonus = None
        if years and qs.mode == "hybrid":
            bonus = YEAR_BONUS * self.about_years(years)[ids]
        if value is not None and value[0] and qs.mode == "hybrid":
            terms, shares = value
            stated = np.array([VALUE_BONUS * self._states(qs, int(i), terms, shares) for i in ids])
            bonus = stated if bonus is None else bonus + stated
        return fuse(ids, dense, lexical, mode=qs.mode, dense_weight=qs.dense_weight, bonus=bonus)

    def _states(self, qs: QueryScores, pid: int, terms: tuple[str, ...], shares: bool) -> bool:
        key = (pid, terms, shares)
        found = qs.stated.get(key)
        if found is None:
            found = qs.stated[key] = any(states_value(x.text, terms, shares) for x in self.passages[pid].sentences)
        return found

    def _dense_candidates(self, qs: QueryScores, subset: np.ndarray) -> list[int]:
        """Top paragraphs and top sentences' paragraphs of a subset, exactly (what an exact FAISS
        search with that selector gives), computed with numpy on the subset's vectors only."""
        if len(subset) == 0:
            return []
        idx = self.index
        para = idx.paragraph_vectors[subset] @ qs.qvec
        k = min(CANDIDATES, len(subset))
        out = {int(i) for i in subset[np.argpartition(-para, k - 1)[:k]]}
        rows, _ = self._rows(subset)
        sims = self._sentence_cosines(qs, rows)
        ks = min(CANDIDATES, len(rows))
        out.update(int(i) for i in idx.sentence_owner[rows[np.argpartition(-sims, ks - 1)[:ks]]])
        return sorted(out)

    def _rows(self, pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sentence rows of the passages (in order) and where each passage's rows start."""
        first = self.index.first_sentence
        starts, counts = first[pids], first[pids + 1] - first[pids]
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        rows = np.repeat(starts - offsets, counts) + np.arange(int(counts.sum()), dtype=np.int64)
        return rows, offsets

    def _sentence_cosines(self, qs: QueryScores, rows: np.ndarray) -> np.ndarray:
        """Cosines of those sentence rows with the question, each computed once per question."""
        cached = qs.sentences[rows]
        missing = np.isnan(cached)
        if missing.any():
            todo = rows[missing]
            cached[missing] = self.index.sentence_vectors[todo] @ qs.qvec
            qs.sentences[todo] = cached[missing]
        return cached

    def sentence_sims(self, pid: int, qs: QueryScores) -> np.ndarray:
        a, b = self.index.first_sentence[pid], self.index.first_sentence[pid + 1]
        return self._sentence_cosines(qs, np.arange(a, b, dtype=np.int64))

    def dense_scores(self, ids: np.ndarray, qs: QueryScores) -> np.ndarray:
        """Paragraph cosine mixed with its best sentence's cosine (see retrieval.rank)."""
        para = self.index.paragraph_vectors[ids] @ qs.qvec
        rows, offsets = self._rows(ids)
        best = np.maximum.reduceat(self._sentence_cosines(qs, rows), offsets)  # every passage has ≥ 1
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


def _idf_table(lexical):
    """IDF per token from the lexical index's document frequencies (unknown tokens: the rarest's)."""
    n = max(1, len(lexical))

    @lru_cache(maxsize=65536)
    def idf(token: str) -> float:
        d = lexical.document_frequency(token)
        return math.log(1 + (n - d + 0.5) / (d + 0.5))

    return idf
