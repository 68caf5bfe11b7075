"""The one retrieval API the CLI and the Telegram bot call.

    r = Retriever.open(Settings())          # loads corpus + model + index, building what is stale
    ans = r.ask("2019年调解了多少矛盾纠纷", top_k=3)
    ans.answered, ans.hits[0].citation, ans.hits[0].highlight

A question goes: validate → scope (reports it names) → normalise → dense leg (FAISS) + lexical leg
(BM25) → fuse (`retrieval.rank`) → covered or not (`retrieval.refusal`) → answer sentence per hit
(`retrieval.highlight`). Everything user-caused raises a ReportQAError subclass with a one-line message.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.answer import Answer, Hit
from retrieval.config import Settings
from retrieval.document import Report, ReportMeta, Section
from retrieval.errors import InputError
from retrieval.highlight import choose_sentence
from retrieval.index_store import IndexStore
from retrieval.indexing import LoadedIndex, ensure_index, plan, stale_reports
from retrieval.lexical import tokenize
from retrieval.normalize import fold_for_match, normalize_question
from retrieval.passages import Passage, flatten
from retrieval.rank import DENSE_WEIGHT, NON_CHINESE_DENSE_WEIGHT, PARAGRAPH_WEIGHT, YEAR_BONUS, fuse
from retrieval.refusal import RefusalFeatures, is_chinese, is_covered
from retrieval.scope import detect_scope, mentions_year, question_places, report_years

MODES = ("dense", "lexical", "hybrid")
MAX_QUESTION_CHARS = 1000  # longer input is rejected with InputError, not truncated silently
MAX_TOP_K = 50
CANDIDATES = 50  # per leg, before fusion


@dataclass(frozen=True)
class IndexStatus:
    model: str
    dim: int
    reports: int
    paragraphs: int
    corpus_hash: str
    stale: bool  # the corpus, model or parser changed since the index was built
    stale_reports: tuple[str, ...]  # report ids to (re)index
    size_bytes: int
    built_at: str | None


def validate_question(question: object) -> str:
    """The question stripped, or InputError saying plainly what is wrong with it."""
    if not isinstance(question, str):
        raise InputError("the question must be text")
    q = question.strip()
    if not q:
        raise InputError("the question is empty")
    if len(q) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is too long ({len(q)} characters; at most {MAX_QUESTION_CHARS})")
    printable = sum(1 for c in q if unicodedata.category(c)[0] in "LNPSZ" or c.isspace())
    if printable < max(1, 0.7 * len(q)) or "\ufffd" in q and q.count("\ufffd") > 0.2 * len(q):
        raise InputError("the question is not readable text")
    if not any(unicodedata.category(c)[0] in "LN" for c in q):
        raise InputError("the question has no words in it")
    return q


class Retriever:
    """Loaded corpus + index; thread-safe for concurrent `ask` calls."""

    def __init__(
        self,
        settings: Settings,
        reports: list[Report],
        passages: list[Passage],
        embedder,
        index: LoadedIndex,
        name: str,
    ):
        self.settings = settings
        self._reports = reports
        self._by_id = {r.meta.report_id: i for i, r in enumerate(reports)}
        self._passages = passages  # flatten(reports): row i of every index is passage i
        self._report_of = np.array([p.report_index for p in self._passages], dtype=np.int64)
        self._embedder = embedder
        self._index = index
        self._name = name
        self._query_lock = threading.Lock()
        self._idf = _idf_table(index.lexical)
        self._sentence_tokens: dict[int, list[list[str]]] = {}  # filled on first use per passage
        self._passage_tokens: dict[int, set[str]] = {}
        self._fingerprint: tuple | None = None  # corpus files as opened (set by `open`)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def open(
        cls, settings: Settings | None = None, *, progress: bool = False, rebuild: bool = False, embedder=None
    ) -> Retriever:
        """Load the corpus, model and index; (re)build the index for changed reports first.

        A report file that cannot be parsed is left out with a logged warning rather than taking
        every other report down with it; `reportqa reports add` refuses such files up front.
        """
        from retrieval.corpus import corpus_fingerprint, load_corpus

        settings = settings or Settings()
        fingerprint = corpus_fingerprint(settings.corpus_dirs)
        reports = load_corpus(settings.corpus_dirs, skip_invalid=True)
        retriever = cls.from_reports(reports, settings, progress=progress, rebuild=rebuild, embedder=embedder)
        retriever._fingerprint = fingerprint
        return retriever

    def corpus_changed(self) -> bool:
        """True when the corpus files on disk differ from what this retriever was opened on (stat only)."""
        from retrieval.corpus import corpus_fingerprint

        return self._fingerprint is not None and corpus_fingerprint(self.settings.corpus_dirs) != self._fingerprint

    def reopened(self, *, progress: bool = False) -> Retriever:
        """A new retriever over the corpus as it is now (re-embedding only changed reports).

        The current one keeps answering until the caller swaps in the new one; on any error the
        caller keeps the old one and reports the error.
        """
        return Retriever.open(self.settings, progress=progress, embedder=self._embedder)

    @classmethod
    def from_reports(
        cls,
        reports: list[Report],
        settings: Settings | None = None,
        *,
        name: str = "corpus",
        progress: bool = False,
        rebuild: bool = False,
        embedder=None,
    ) -> Retriever:
        """A retriever over reports already in memory (the eval harness uses this for CMRC)."""
        settings = settings or Settings()
        if embedder is None:
            from retrieval.embedding import load_embedder

            embedder = load_embedder(settings, progress=progress)
        store = IndexStore(settings.index_dir / name)
        passages = flatten(reports)
        index = ensure_index(store, reports, passages, embedder, progress=progress, rebuild=rebuild)
        if hasattr(embedder, "release_passage_encoder"):
            embedder.release_passage_encoder()  # serving needs the query path only (saves ~600 MB)
        return cls(settings, reports, passages, embedder, index, name)

    # -- corpus access ------------------------------------------------------------------------

    @property
    def reports(self) -> list[ReportMeta]:
        return [r.meta for r in self._reports]

    def report(self, report_id: str) -> Report:
        """The parsed report; InputError if the id is unknown."""
        i = self._by_id.get(report_id)
        if i is None:
            known = ", ".join(list(self._by_id)[:5])
            raise InputError(f"unknown report id {report_id!r} (known: {known})")
        return self._reports[i]

    def section(self, report_id: str, section_id: str) -> Section:
        """A section of a report; InputError if either id is unknown."""
        sec = self.report(report_id).section(section_id)
        if sec is None:
            raise InputError(f"report {report_id!r} has no section {section_id!r}")
        return sec

    def status(self) -> IndexStatus:
        m = self._index.manifest
        return IndexStatus(
            model=m.model_id,
            dim=m.dim,
            reports=len(self._reports),
            paragraphs=len(self._passages),
            corpus_hash=m.corpus_hash,
            stale=self.corpus_changed(),  # the corpus on disk moved on since this retriever was opened
            stale_reports=(),
            size_bytes=IndexStore(self.settings.index_dir / self._name).size_bytes(),
            built_at=m.built_at or None,
        )

    # -- asking -------------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        top_k: int = 3,
        reports: Sequence[str] | None = None,
        mode: str = "hybrid",
        offset: int = 0,
    ) -> Answer:
        """Answer a question: hits ranked offset..offset+top_k; InputError for empty/overlong input."""
        return self.ask_explained(question, top_k, reports, mode, offset)[0]

    def ask_explained(
        self,
        question: str,
        top_k: int = 3,
        reports: Sequence[str] | None = None,
        mode: str = "hybrid",
        offset: int = 0,
    ) -> tuple[Answer, RefusalFeatures | None]:
        """`ask`, plus the features the covered/not-covered decision was made on (for calibration)."""
        q = validate_question(question)
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r} (choose one of {', '.join(MODES)})")
        if not 1 <= top_k <= MAX_TOP_K:
            raise InputError(f"top_k must be between 1 and {MAX_TOP_K}")
        if offset < 0:
            raise InputError("offset must not be negative")
        allowed_reports = [self._by_id[self.report(r).meta.report_id] for r in reports] if reports else None

        folded = fold_for_match(q)
        metas = [self._reports[i].meta for i in (allowed_reports or range(len(self._reports)))]
        scope = detect_scope(folded, metas)
        in_scope = [self._by_id[rid] for rid in scope.report_ids] if scope.report_ids else allowed_reports
        scoped = in_scope if in_scope is not None else range(len(self._reports))
        years = {y for i in scoped for y in report_years(self._reports[i].meta)}
        report_year = next(iter(years)) if len(years) == 1 else None

        lexical_q = normalize_question(q, report_year=report_year)
        dense_q = normalize_question(q, report_year=report_year, expand_synonyms=False)
        mask = None
        if in_scope is not None:
            mask = np.isin(self._report_of, np.array(sorted(in_scope), dtype=np.int64))

        chinese = is_chinese(folded)
        ranked_ids, fused, dense_s, lex_s, qvec = self._rank(dense_q, lexical_q, mode, mask, scope.years, chinese)
        if len(ranked_ids) == 0:
            return Answer(question=q, answered=False, hits=[], normalized_question=lexical_q, mode=mode), None

        top = self._passages[int(ranked_ids[0])]
        q_tokens = tokenize(lexical_q)
        features = RefusalFeatures(
            dense=float(dense_s[0]),
            coverage=self._coverage(q_tokens, self._tokens_of_passage(int(ranked_ids[0]))),
            chinese=chinese,
            year_conflict=_year_conflict(scope.years, top),
            place_conflict=_place_conflict(folded, [self._reports[i] for i in scoped]),
        )
        answered = is_covered(features, mode)

        # Place names chose the report; inside a paragraph they would pull the highlight towards any
        # sentence that names the city rather than the one that answers.
        focus = lexical_q
        for place in sorted(set(scope.places) | set(question_places(folded)), key=len, reverse=True):
            focus = focus.replace(place, " ")
        focus_tokens = tokenize(focus)
        hits = [
            self._hit(int(ranked_ids[rank]), rank + 1, float(fused[rank]), q, focus_tokens, qvec)
            for rank in range(offset, min(offset + top_k, len(ranked_ids)))
        ]
        answer = Answer(question=q, answered=answered, hits=hits, normalized_question=lexical_q, mode=mode)
        return answer, features

    def _rank(
        self, dense_q: str, lexical_q: str, mode: str, mask: np.ndarray | None, years: tuple[int, ...], chinese: bool
    ):
        """Candidates from both legs, scored exactly by both, fused; also the query vector."""
        n = len(self._passages)
        idx = self._index
        qvec = None
        cand: set[int] = set()
        lex_all = idx.lexical.scores(lexical_q) if mode != "dense" else np.zeros(n, dtype=np.float32)
        if mask is not None:
            lex_all = np.where(mask, lex_all, 0.0)
        if mode != "lexical" and n:
            with self._query_lock:
                qvec = self._embedder.encode_queries([dense_q])[0]
            ids, _ = idx.dense.search(qvec, CANDIDATES, mask)
            cand.update(int(i) for i in ids)
            sent_mask = mask[idx.sentence_owner] if mask is not None else None
            sids, _ = idx.sentence_dense.search(qvec, CANDIDATES, sent_mask)
            cand.update(int(i) for i in idx.sentence_owner[sids])
        if mode != "dense":
            nz = np.flatnonzero(lex_all > 0)
            if len(nz) > CANDIDATES:
                nz = nz[np.argpartition(-lex_all[nz], CANDIDATES - 1)[:CANDIDATES]]
            cand.update(int(i) for i in nz)
        if not cand:
            empty = np.zeros(0)
            return np.zeros(0, dtype=np.int64), empty, empty, empty, qvec
        ids = np.array(sorted(cand), dtype=np.int64)
        dense = self._dense_scores(ids, qvec) if qvec is not None else np.zeros(len(ids))
        lexical = lex_all[ids]
        bonus = None
        if years and mode == "hybrid":
            bonus = np.array([YEAR_BONUS * _mentions_year(self._passages[i], years) for i in ids])
        weight = DENSE_WEIGHT if chinese else NON_CHINESE_DENSE_WEIGHT
        r = fuse(ids, dense, lexical, mode=mode, dense_weight=weight, bonus=bonus)
        return r.ids, r.fused, r.dense, r.lexical, qvec

    def _sentence_sims(self, pid: int, qvec: np.ndarray) -> np.ndarray:
        a, b = self._index.first_sentence[pid], self._index.first_sentence[pid + 1]
        return self._index.sentence_vectors[a:b] @ qvec

    def _dense_scores(self, ids: np.ndarray, qvec: np.ndarray) -> np.ndarray:
        """Paragraph cosine mixed with its best sentence's cosine (see retrieval.rank)."""
        idx = self._index
        para = idx.paragraph_vectors[ids] @ qvec
        best = np.array([self._sentence_sims(int(i), qvec).max() for i in ids])
        return PARAGRAPH_WEIGHT * para + (1 - PARAGRAPH_WEIGHT) * best

    def _coverage(self, q_tokens: list[str], doc_tokens: set[str]) -> float:
        q = set(q_tokens)
        total = sum(self._idf(t) for t in q)
        if total <= 0:
            return 0.0
        return sum(self._idf(t) for t in q & doc_tokens) / total

    def _tokens_of_passage(self, pid: int) -> set[str]:
        toks = self._passage_tokens.get(pid)
        if toks is None:
            toks = self._passage_tokens[pid] = set(tokenize(self._passages[pid].indexed_text))
        return toks

    def _tokens_of_sentences(self, pid: int) -> list[list[str]]:
        toks = self._sentence_tokens.get(pid)
        if toks is None:
            toks = self._sentence_tokens[pid] = [tokenize(s.text) for s in self._passages[pid].sentences]
        return toks

    def _hit(
        self, pid: int, rank: int, score: float, question: str, q_tokens: list[str], qvec: np.ndarray | None
    ) -> Hit:
        p = self._passages[pid]
        para = p.paragraph
        sentences = p.sentences
        choice = choose_sentence(
            [s.text for s in sentences],
            question=question,
            query_tokens=q_tokens,
            sentence_tokens=self._tokens_of_sentences(pid),
            idf=self._idf,
            dense_sims=self._sentence_sims(pid, qvec) if qvec is not None else None,
        )
        s = sentences[choice.index]
        start, end, text = s.start - para.start, s.end - para.start, s.text
        meta = p.report.meta
        return Hit(
            rank=rank,
            score=score,
            report_id=meta.report_id,
            report_title=meta.title,
            report_date=meta.date,
            section_id=p.section.section_id,
            section_label=p.section.label,
            section_title=p.section.title,
            citation=p.citation,
            text=para.text,
            highlight=text,
            highlight_start=start,
            highlight_end=end,
            paragraph_index=para.index,
            source_start=para.start,
            source_end=para.end,
        )


def _mentions_year(p: Passage, years: tuple[int, ...]) -> bool:
    if report_years(p.report.meta) & set(years):
        return True
    return any(mentions_year(p.indexed_text, y) for y in years)


def _place_conflict(folded_question: str, reports: Sequence[Report]) -> bool:
    """The question names a place (from the gazetteer) that none of the reports in scope mentions."""
    places = question_places(folded_question)
    return any(all(place not in r.text for r in reports) for place in places)


def _year_conflict(years: tuple[int, ...], top: Passage) -> bool:
    """The question names years and the best passage is about none of them."""
    return bool(years) and not _mentions_year(top, years)


def _idf_table(lexical):
    """IDF per token from the lexical index's document frequencies (0 for unknown tokens)."""
    df = lexical.document_frequencies()
    n = max(1, len(lexical))
    cache = {t: float(np.log(1 + (n - d + 0.5) / (d + 0.5))) for t, d in df.items()}
    unknown = float(np.log(1 + (n + 0.5) / 0.5))

    def idf(token: str) -> float:
        return cache.get(token, unknown)

    return idf


def index_status(settings: Settings) -> IndexStatus:
    """Status of the persisted index without loading the model (for `reportqa index status`)."""
    from retrieval.corpus import load_corpus
    from retrieval.embedding import model_id_for

    reports = load_corpus(settings.corpus_dirs, skip_invalid=True)
    passages = flatten(reports)
    store = IndexStore(settings.index_dir / "corpus")
    model_id = model_id_for(settings)
    keys, manifest = plan(store, model_id, reports, passages)
    stale = stale_reports(keys, reports, manifest)
    return IndexStatus(
        model=model_id,
        dim=manifest.dim if manifest else 0,
        reports=len(reports),
        paragraphs=len(passages),
        corpus_hash=manifest.corpus_hash if manifest else "",
        stale=bool(stale) or manifest is None,
        stale_reports=tuple(stale),
        size_bytes=store.size_bytes(),
        built_at=manifest.built_at if manifest else None,
    )
