"""The one retrieval API the CLI and the Telegram bot call.

    r = Retriever.open(Settings())          # loads corpus + model + index, building what is stale
    ans = r.ask("2019年调解了多少矛盾纠纷", top_k=3)
    ans.answered, ans.hits[0].citation, ans.hits[0].highlight

A question goes: validate → scope (reports it names) → normalise → dense leg (FAISS) + lexical leg
(BM25) → fuse (`retrieval.rank`) → covered or not (`retrieval.refusal`) → answer sentence per hit
(`retrieval.highlight`). Everything user-caused raises a ReportQAError subclass with a one-line message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np

from retrieval.answer import Answer, Hit, report_label
from retrieval.config import Settings
from retrieval.document import Report, ReportMeta, Section
from retrieval.errors import InputError
from retrieval.followup import MORE, Turn, understand
from retrieval.highlight import asks_for_number, asks_for_share, choose_sentence, measure_terms
from retrieval.index_store import IndexStore
from retrieval.indexing import LoadedIndex, ensure_index, plan, stale_reports
from retrieval.lexical import tokenize
from retrieval.normalize import fold_for_match, normalize_question
from retrieval.passages import Passage, flatten
from retrieval.periods import PLAN, REVIEW
from retrieval.rank import Ranked
from retrieval.refusal import RefusalFeatures, is_chinese, is_covered
from retrieval.scope import detect_scope, question_places, report_places
from retrieval.scoring import PassageScorer, QueryScores
from retrieval.time_select import (
    Candidate,
    coverage_note,
    keep_timeline_years,
    kind_mismatch_note,
    latest_year,
    nearest_years,
    newest_at_most,
    other_years,
    timeline_strength,
    uncovered_note,
    year_pool,
)
from retrieval.titles import DATED_KINDS, region_key
from retrieval.years import QuestionTime, question_time, replace_relative, strip_years

MODES = ("dense", "lexical", "hybrid")
MAX_QUESTION_CHARS = 1000  # longer input is rejected with InputError, not truncated silently
MAX_TOP_K = 50
# No year named: how far the newest years may fall short of the best passage of any year (strength:
# dense cosine + token coverage) and how many newer years are tried. Tuned on library-dev's tune half.
LATEST_MARGIN = 0.45
LATEST_STEPS = 4
# Asking back: with several regions in the corpus and none named, regions whose best passage is within
# this margin (strength) of the best one are offered. Set on the Hengyang tune questions that do not
# name the city, all corpora indexed: 0.1 asks back on 56 % of them and offers 衡阳市 in 89 % of those.
ASKBACK_MARGIN = 0.1
ASKBACK_MAX = 4


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
        self._scorer = PassageScorer(passages, index, embedder)
        self._fingerprint: tuple | None = None  # corpus files as opened (set by `open`)
        self._init_time(reports)

    def _init_time(self, reports: list[Report]) -> None:
        """Per-passage period arrays and per-series coverage, for the year rules of `ask`.

        A series is one region's reports of one kind (南山区 政府工作报告 2014–2025); 光明新区 and
        光明区 are one series. Reports of undated kinds (条例) belong to none (-1).
        """
        keys: dict[tuple[str | None, str], int] = {}
        series_of_report = []
        for r in reports:
            meta = r.meta
            if meta.kind in DATED_KINDS and meta.year is not None:
                key = (region_key(meta.region), meta.kind)
                series_of_report.append(keys.setdefault(key, len(keys)))
            else:
                series_of_report.append(-1)
        self._series_names = {v: k for k, v in keys.items()}
        self._pyear = np.array([p.period.year if p.period.year is not None else -1 for p in self._passages],
                               dtype=np.int64)
        self._ryear = np.array([p.report.meta.year or -1 for p in self._passages], dtype=np.int64)
        self._pkind = np.array([_KIND_CODE.get(p.period.kind or "", 0) for p in self._passages], dtype=np.int8)
        self._pseries = np.array([series_of_report[p.report_index] for p in self._passages], dtype=np.int64)
        self._report_cover: list[tuple[set[int], set[int]]] = [(set(), set()) for _ in reports]
        self._series_cover: dict[int, dict[int, set[str]]] = {v: {} for v in keys.values()}
        for p in self._passages:
            if p.period.year is None or p.period.kind is None:
                continue
            reviewed, planned = self._report_cover[p.report_index]
            (reviewed if p.period.kind == REVIEW else planned).add(p.period.year)
            s = series_of_report[p.report_index]
            if s >= 0:
                self._series_cover[s].setdefault(p.period.year, set()).add(p.period.kind)
        self._regions_count = len({r.meta.region for r in reports if r.meta.region})
        self._known_places: tuple[str, ...] | None = None

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
        *,
        year: int | None = None,
        today: date | None = None,
        region: str | None = None,
    ) -> Answer:
        """Answer a question: hits ranked offset..offset+top_k; InputError for empty/overlong input.

        year: ask about that year only (the CLI's --year, Telegram's year buttons);
        today: the date relative years (今年, 去年) count from (default: settings.today or the clock);
        region: only that region's reports (盐田区, 深圳市 …; a chat's scope, an answered ask-back).
        """
        return self.ask_explained(question, top_k, reports, mode, offset, year=year, today=today, region=region)[0]

    def ask_explained(
        self,
        question: str,
        top_k: int = 3,
        reports: Sequence[str] | None = None,
        mode: str = "hybrid",
        offset: int = 0,
        *,
        year: int | None = None,
        today: date | None = None,
        region: str | None = None,
    ) -> tuple[Answer, RefusalFeatures | None]:
        """`ask`, plus the features the covered/not-covered decision was made on (for calibration)."""
        q = validate_question(question)
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r} (choose one of {', '.join(MODES)})")
        if not 1 <= top_k <= MAX_TOP_K:
            raise InputError(f"top_k must be between 1 and {MAX_TOP_K}")
        if offset < 0:
            raise InputError("offset must not be negative")
        if year is not None and not 1900 <= year <= 2100:
            raise InputError(f"year must be between 1900 and 2100, got {year}")
        allowed_reports = [self._by_id[self.report(r).meta.report_id] for r in reports] if reports else None
        if region is not None:
            in_region = self._region_reports(region)
            allowed_reports = [i for i in (allowed_reports or in_region) if i in set(in_region)]

        folded = fold_for_match(q)
        metas = [self._reports[i].meta for i in (allowed_reports or range(len(self._reports)))]
        scope = detect_scope(folded, metas)
        in_scope = [self._by_id[rid] for rid in scope.report_ids] if scope.report_ids else allowed_reports
        when = question_time(folded, today or self._today(), year=year)
        chinese = is_chinese(folded)

        def prepare(in_scope):
            """Everything that depends on which reports are in scope: coverage, relative years, queries."""
            scoped = in_scope if in_scope is not None else range(len(self._reports))
            place_mask = None
            if in_scope is not None:
                place_mask = np.isin(self._report_of, np.array(sorted(in_scope), dtype=np.int64))
            reviewed, planned = self._covered_years(scoped)
            relative_map, relative_fallback = _resolve_relative(when, reviewed, planned)
            asked_years = tuple(sorted(set(when.explicit) | set(relative_map.values())))
            text = replace_relative(q, relative_map)
            lexical_q = normalize_question(text)
            if scope.report_ids is not None:
                # The place chose the reports; inside them its name only favours sentences that repeat
                # it (刚刚过去的2019年，是罗湖区…) over the one with the figure.
                lexical_q = _without(lexical_q, scope.places)
            return scoped, place_mask, reviewed, planned, relative_fallback, asked_years, text, lexical_q

        scoped, place_mask, reviewed, planned, relative_fallback, asked_years, text, lexical_q = prepare(in_scope)
        dense_q = normalize_question(text, expand_synonyms=False)
        qs = self._scorer.query(dense_q, lexical_q, mode, chinese)
        base = self._scorer.rank(qs, place_mask, asked_years)
        if len(base.ids) == 0:
            return Answer(question=q, answered=False, hits=[], normalized_question=lexical_q, mode=mode,
                          years=when.years), None

        ambiguous = None
        if scope.report_ids is None and region is None and not reports and self._regions_count > 1:
            ambiguous = self._ambiguous_regions(base, tokenize(lexical_q))
            if ambiguous:  # answer from the best region; the others are offered (asking back)
                in_scope = self._region_reports(ambiguous[0])
                scoped, place_mask, reviewed, planned, relative_fallback, asked_years, text, lexical_q = prepare(
                    in_scope
                )
                qs = self._scorer.with_lexical(qs, lexical_q)
                base = self._scorer.rank(qs, place_mask, asked_years)
                if len(base.ids) == 0:
                    return Answer(question=q, answered=False, hits=[], normalized_question=lexical_q, mode=mode,
                                  years=when.years, ambiguous=ambiguous), None

        q_tokens = tokenize(lexical_q)
        # Place names chose the report; inside a paragraph they would pull the highlight towards any
        # sentence that names the city rather than the one that answers.
        focus = lexical_q
        for place in sorted(set(scope.places) | set(question_places(folded)), key=len, reverse=True):
            focus = focus.replace(place, " ")
        yearless_q = _without(normalize_question(strip_years(text)), scope.places if scope.report_ids else ())
        yearless_focus = _without(yearless_q, question_places(folded))
        value = (measure_terms(yearless_focus), asks_for_share(folded)) if asks_for_number(folded) else None
        context = _AskContext(q, qs, q_tokens, tokenize(focus), mode, when, place_mask, scoped, folded,
                              yearless_q, tokenize(yearless_focus), value)

        if when.timeline:
            answer, _ = self._answer_timeline(context, base, asked_years, top_k, offset)
            return replace(answer, ambiguous=ambiguous), None

        ranked, note, others, conflict = base, None, (), False
        if len(asked_years) == 1:
            y = asked_years[0]
            tier, tier_kind = self._year_tier(y, when.intent, place_mask)
            if tier is None:  # no part of any report in scope is about that year
                conflict = True
                others = nearest_years(reviewed | planned, y)
                note = uncovered_note(y, others)
            else:
                narrower = place_mask is None or tier.sum() < place_mask.sum()
                if narrower and tier.sum() < len(self._passages):
                    ranked = self._scorer.rank(context.yearless(self._scorer), tier, (), context.value)
                    context = replace(context, focus_tokens=context.yearless_focus)
                else:
                    ranked = self._scorer.rank(qs, tier, asked_years)
                top = self._passages[int(ranked.ids[0])] if len(ranked.ids) else None
                if relative_fallback and top is not None:
                    note = coverage_note(report_label(top.report.meta.title, top.report.meta.year),
                                         top.period.year or y, top.period.kind)
                elif top is not None and tier_kind is None:
                    note = kind_mismatch_note(y, when.intent, top.period.kind)
                others = self._other_years(base, ranked, when.intent, (y,), q_tokens)
        elif not asked_years:
            ranked, others = self._latest(base, context, when.intent, place_mask, q_tokens)

        if len(ranked.ids) == 0:
            ranked = base
        top_id = int(ranked.ids[0])
        features = RefusalFeatures(
            dense=float(ranked.dense[0]),
            coverage=self._scorer.coverage(q_tokens, top_id),
            chinese=chinese,
            year_conflict=conflict,
            place_conflict=_place_conflict(folded, [self._reports[i] for i in scoped]),
        )
        answered = is_covered(features, mode)
        hits = [
            self._hit(int(ranked.ids[rank]), rank + 1, float(ranked.fused[rank]), context)
            for rank in range(offset, min(offset + top_k, len(ranked.ids)))
        ]
        answer = Answer(
            question=q, answered=answered, hits=hits, normalized_question=lexical_q, mode=mode,
            years=when.years, other_years=others, note=note, ambiguous=ambiguous,
        )
        return answer, features

    # -- conversations ------------------------------------------------------------------------

    def converse(
        self,
        message: str,
        history: Sequence[Turn] = (),
        *,
        top_k: int = 3,
        reports: Sequence[str] | None = None,
        mode: str = "hybrid",
        today: date | None = None,
        region: str | None = None,
        year: int | None = None,
    ) -> tuple[Answer, Turn]:
        """Answer a message of a conversation: a follow-up is first understood as a standalone
        question from the previous turn (`retrieval.followup`); returns the answer (its
        `understood_as` is what was searched) and the turn to remember.

        region/year/reports: the conversation's own scope (/region, /year, /report). A region picked
        by asking back becomes part of the standalone question (盐田区 + the question), so follow-ups
        carry it like any place the user named.
        """
        q = validate_question(message)
        previous = history[-1] if history else None
        understood = understand(q, previous, self.known_places)
        if understood.kind == MORE and previous is not None:
            offset = previous.offset + top_k
            answer = self.ask(previous.understood_as, top_k, reports, mode, offset, year=previous.year or year,
                              today=today, region=region)
            turn = replace(previous, question=q, offset=offset, hits=_refs(answer))
        else:
            answer = self.ask(understood.standalone, top_k, reports, mode, 0, year=year, today=today, region=region)
            turn = Turn(q, understood.standalone, answer.years, self._places_of(understood.standalone),
                        _refs(answer), 0, region, year)
        return replace(answer, question=q, understood_as=understood.standalone, followup=understood.kind), turn

    def _places_of(self, text: str) -> tuple[str, ...]:
        folded = fold_for_match(text)
        return tuple(p for p in self.known_places if p in folded)

    # -- regions ------------------------------------------------------------------------------

    @property
    def regions(self) -> list[str]:
        """The regions the reports are about, in corpus order (衡阳市, 深圳市, 南山区 …)."""
        return list(dict.fromkeys(r.meta.region for r in self._reports if r.meta.region))

    @property
    def known_places(self) -> tuple[str, ...]:
        """Every place name a question may use for a report's region (衡阳市 and 衡阳 …), longest first."""
        if self._known_places is None:
            names = {p for r in self._reports for p in report_places(r.meta)}
            names |= {r.meta.region for r in self._reports if r.meta.region}
            self._known_places = tuple(sorted(names, key=len, reverse=True))
        return self._known_places

    def resolve_region(self, name: str) -> str:
        """The region a name means (光明 → 光明区); InputError naming the known regions."""
        return self._reports[self._region_reports(name)[-1]].meta.region or name

    def _region_reports(self, region: str) -> list[int]:
        """Indexes of the reports of a region (光明区 also finds 光明新区); InputError naming the known ones."""
        key = region_key(fold_for_match(region).strip())
        found = [i for i, r in enumerate(self._reports) if r.meta.region and region_key(r.meta.region) == key]
        if not found:
            known = "、".join(self.regions[:12]) or "none"
            raise InputError(f"no report is about {region!r} (regions: {known})")
        return found

    def _ambiguous_regions(self, base: Ranked, q_tokens: list[str]) -> tuple[str, ...] | None:
        """Regions whose best candidate answers nearly as well as the best one's, best first; None
        when one region stands out (see ASKBACK_MARGIN)."""
        best: dict[str, float] = {}
        for c in self._candidates(base, q_tokens):
            region = self._reports[int(self._report_of[c.pid])].meta.region
            if region and c.strength > best.get(region, -1.0):
                best[region] = c.strength
        if len(best) < 2:
            return None
        ranked = sorted(best, key=lambda r: -best[r])
        top = best[ranked[0]]
        close = [r for r in ranked if best[r] >= top - ASKBACK_MARGIN][:ASKBACK_MAX]
        return tuple(close) if len(close) >= 2 else None

    # -- time ---------------------------------------------------------------------------------

    def _today(self) -> date:
        if self.settings.today:
            try:
                return date.fromisoformat(self.settings.today)
            except ValueError:
                raise InputError(f"REPORTQA_TODAY / --today must be a date (YYYY-MM-DD), "
                                 f"got {self.settings.today!r}") from None
        return date.today()

    def _covered_years(self, scoped) -> tuple[set[int], set[int]]:
        """Years the reports in scope review, and years they plan."""
        reviewed: set[int] = set()
        planned: set[int] = set()
        for i in scoped:
            r, p = self._report_cover[i]
            reviewed |= r
            planned |= p
        return reviewed, planned

    def _year_tier(self, year: int, intent: str, within: np.ndarray | None) -> tuple[np.ndarray | None, str | None]:
        """The passages to answer a question about `year` from: the part about that year of the kind
        asked (review/plan); else any part about it; None when there is none.
        Returns the mask and the kind it was restricted to (None: any)."""
        base = within if within is not None else np.ones(len(self._passages), dtype=bool)
        exact = base & (self._pyear == year) & (self._pkind == _KIND_CODE[intent])
        if exact.any():
            return exact, intent
        # A report with periods covers a year only through a part about it: 2012年 mentioned in passing
        # by a 2015 report does not make that report cover 2012. Reports without periods (no kind or
        # year known) cover what they speak of.
        undated = self._pyear < 0
        loose = base & ((self._pyear == year) | (undated & (self._scorer.mentions(year) | (self._ryear == year))))
        return (loose, None) if loose.any() else (None, None)

    def _candidates(self, ranked: Ranked, q_tokens: list[str], limit: int = 60) -> list[Candidate]:
        """The best `limit` of a ranking with their period, series and strength (time_select's input)."""
        out = []
        n = min(limit, len(ranked.ids))
        for i, fused, dense in zip(ranked.ids[:n], ranked.fused[:n], ranked.dense[:n], strict=True):
            pid = int(i)
            period = self._passages[pid].period
            strength = timeline_strength(float(dense), self._scorer.coverage(q_tokens, pid))
            out.append(Candidate(pid, float(fused), period.year, period.kind, int(self._pseries[pid]), strength))
        return out

    def _latest(self, base: Ranked, ctx: _AskContext, intent: str, within: np.ndarray | None, q_tokens: list[str]):
        """No year named: the newest year of the best hit's series that answers (see time_select).

        A question whose strong candidates span several years asks for a figure every report gives:
        it is answered from the newest year of the series whose best passage is nearly as strong as
        the best passage of any year, stepping back a year at a time. A question only one year
        answers well is answered from that year.
        """
        top = self._passages[int(base.ids[0])]
        series = int(self._pseries[int(base.ids[0])])
        if top.period.year is None or series < 0:
            return base, ()
        cands = self._candidates(base, q_tokens)
        pool, kind = year_pool(cands, series, intent)
        latest = latest_year(pool)
        if latest is None:
            return base, ()
        mask_of = self._series_mask(series, kind, within)
        pool_years = {c.year for c in pool}
        if len(pool_years) >= 2:
            best = max(c.strength for c in cands if c.series == series)
            newer = [y for y in self._series_years(series, kind or intent) if y > latest]
            for y in sorted(newer, reverse=True)[:LATEST_STEPS]:
                ranked = self._scorer.rank(ctx.qs, mask_of(y), (), ctx.value)
                if len(ranked.ids) and self._strength(ranked, q_tokens) >= best - LATEST_MARGIN:
                    return ranked, other_years(pool, [y])
        ranked = self._scorer.rank(ctx.qs, mask_of(latest), (), ctx.value)
        return (ranked if len(ranked.ids) else base), other_years(pool, [latest])

    def _series_mask(self, series: int, kind: str | None, within: np.ndarray | None):
        """year → mask of the series' passages about that year (of that kind, if given)."""
        base = self._pseries == series
        if kind is not None:
            base = base & (self._pkind == _KIND_CODE[kind])
        if within is not None:
            base = base & within

        def of(year: int) -> np.ndarray:
            return base & (self._pyear == year)

        return of

    def _strength(self, ranked: Ranked, q_tokens: list[str]) -> float:
        return timeline_strength(float(ranked.dense[0]), self._scorer.coverage(q_tokens, int(ranked.ids[0])))

    def _other_years(self, base: Ranked, ranked: Ranked, intent: str, exclude, q_tokens: list[str]) -> tuple[int, ...]:
        if not len(ranked.ids):
            return ()
        series = int(self._pseries[int(ranked.ids[0])])
        if series < 0:
            return ()
        pool, _ = year_pool(self._candidates(base, q_tokens), series, intent)
        return other_years(pool, exclude)

    def _answer_timeline(self, ctx: _AskContext, base: Ranked, asked: tuple[int, ...], top_k: int, offset: int):
        """One entry per year of the best hit's series, oldest first (see retrieval.time_select)."""
        ctx = replace(ctx, focus_tokens=ctx.yearless_focus)
        top_series = int(self._pseries[int(base.ids[0])])
        if top_series < 0:  # the best passage is in no dated series: look for the best one that is
            dated = [int(i) for i in base.ids if self._pseries[int(i)] >= 0]
            top_series = int(self._pseries[dated[0]]) if dated else -1
        entries: list[Hit] = []
        rankings: dict[int, Ranked] = {}
        missing: list[int] = []
        if top_series >= 0:
            series_mask = self._pseries == top_series
            if ctx.place_mask is not None:
                series_mask &= ctx.place_mask
            years = list(asked) or self._series_years(top_series, ctx.when.intent)
            if ctx.when.last_n and not asked:
                years = years[-ctx.when.last_n:]
            strengths: dict[int, float] = {}
            for y in years:
                tier, _ = self._year_tier(y, ctx.when.intent, series_mask)
                if tier is None:
                    missing.append(y)
                    continue
                ranked = self._scorer.rank(ctx.yearless(self._scorer), tier, (), ctx.value)
                if not len(ranked.ids):
                    missing.append(y)
                    continue
                pid = int(ranked.ids[0])
                features = RefusalFeatures(float(ranked.dense[0]), self._scorer.coverage(ctx.q_tokens, pid),
                                           ctx.qs.chinese, False)
                if not is_covered(features, ctx.mode):
                    missing.append(y)
                    continue
                rankings[y] = ranked
                strengths[y] = timeline_strength(features.dense, features.coverage)
            kept = keep_timeline_years(strengths, explicit=bool(asked))
            missing.extend(y for y in rankings if y not in kept)
            for n, y in enumerate(sorted(kept), 1):
                entries.append(self._hit(int(rankings[y].ids[0]), n, strengths[y], ctx))
        answered = bool(entries)
        if entries:
            newest = rankings[max(kept)]
            hits = [self._hit(int(newest.ids[r]), r + 1, float(newest.fused[r]), ctx)
                    for r in range(offset, min(offset + top_k, len(newest.ids)))]
        else:
            hits = [self._hit(int(base.ids[r]), r + 1, float(base.fused[r]), ctx)
                    for r in range(offset, min(offset + top_k, len(base.ids)))]
        note = None
        if asked and missing:
            note = "收录的报告中没有" + "、".join(f"{y}年" for y in sorted(set(missing))) + "的相关内容"
        years = tuple(asked) if asked else tuple(sorted(e.period for e in entries if e.period is not None))
        answer = Answer(
            question=ctx.question, answered=answered, hits=hits, normalized_question=ctx.qs_text, mode=ctx.mode,
            years=years, other_years=(), note=note, timeline=entries,
        )
        return answer, None

    def _series_years(self, series: int, intent: str) -> list[int]:
        years = self._series_cover[series]
        wanted = sorted(y for y, kinds in years.items() if intent in kinds)
        return wanted or sorted(years)

    def _hit(self, pid: int, rank: int, score: float, ctx: _AskContext) -> Hit:
        p = self._passages[pid]
        para = p.paragraph
        sentences = p.sentences
        qvec = ctx.qs.qvec
        choice = choose_sentence(
            [s.text for s in sentences],
            question=ctx.question,
            query_tokens=ctx.focus_tokens,
            sentence_tokens=self._scorer.tokens_of_sentences(pid),
            idf=self._scorer.idf,
            dense_sims=self._scorer.sentence_sims(pid, ctx.qs) if qvec is not None else None,
            value_terms=ctx.value[0] if ctx.value else (),
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
            period=p.period.year,
            period_kind=p.period.kind,
        )


@dataclass(frozen=True)
class _AskContext:
    """What every ranking and hit of one question needs."""

    question: str
    qs: QueryScores
    q_tokens: list[str]
    focus_tokens: list[str]
    mode: str
    when: QuestionTime
    place_mask: np.ndarray | None
    scoped: Sequence[int]
    folded: str
    yearless_q: str  # the lexical query without its year words (for rankings inside one year)
    yearless_focus: list[str]  # highlight tokens without them
    value: tuple[tuple[str, ...], bool] | None  # a figure question: (measure terms, shares allowed)

    def yearless(self, scorer: PassageScorer) -> QueryScores:
        """The query's scores with the year words taken out of the lexical leg (computed once)."""
        cached = self._yearless.get("qs")
        if cached is None:
            cached = self._yearless["qs"] = scorer.with_lexical(self.qs, self.yearless_q)
        return cached

    _yearless: dict = field(default_factory=dict)

    @property
    def qs_text(self) -> str:
        return self.question


_KIND_CODE = {REVIEW: 1, PLAN: 2}


def _refs(answer: Answer) -> tuple[str, ...]:
    return tuple(f"{h.report_id}#{h.section_id}" for h in answer.hits)


def _resolve_relative(when: QuestionTime, reviewed: set[int], planned: set[int]) -> tuple[dict[str, int], bool]:
    """今年/去年 → the year searched: the year itself when a report in scope covers it, else the newest
    covered year before it (the caller adds the note). Returns the mapping and whether it fell back."""
    covered_for_intent = reviewed if when.intent == REVIEW else planned
    mapping: dict[str, int] = {}
    fallback = False
    for word, y in when.relative:
        target = y
        if not when.timeline and y not in covered_for_intent and y not in (reviewed | planned):
            target = newest_at_most(covered_for_intent or (reviewed | planned), y) or y
            fallback = fallback or target != y
        mapping[word] = target
    return mapping, fallback


def _without(text: str, words: Sequence[str]) -> str:
    """The text with the given words (longest first) blanked out; unchanged if that leaves nothing."""
    out = text
    for word in sorted(words, key=len, reverse=True):
        out = out.replace(word, " ")
    return out if out.strip() else text


def _place_conflict(folded_question: str, reports: Sequence[Report]) -> bool:
    """The question names a place (from the gazetteer) that none of the reports in scope mentions."""
    places = question_places(folded_question)
    return any(all(place not in r.text for r in reports) for place in places)

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
