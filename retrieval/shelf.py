"""The shelf: a library of reports as series over the years — the time and place structure `ask` uses.

A series is one region's reports of one kind (南山区 政府工作报告 2014–2025; 光明新区 and 光明区 are one
series); every passage knows its period (retrieval.periods), its report's year and its series. Here:
which passages a question about a year is answered from (`year_tier`), the newest year that
answers a question naming none (`latest`), the other years offered (`other_years_for`), timelines
(`timeline`), and the regions a question naming no place could be about (`ambiguous_regions`).
The rules' thresholds are in retrieval.time_select and below; `retrieval.retriever` orchestrates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from retrieval.answer import Answer, Hit
from retrieval.document import Report
from retrieval.errors import InputError
from retrieval.normalize import fold_for_match
from retrieval.passages import Passage
from retrieval.periods import PLAN, REVIEW
from retrieval.rank import Ranked
from retrieval.refusal import RefusalFeatures, is_covered
from retrieval.scope import report_places
from retrieval.scoring import PassageScorer, QueryScores
from retrieval.time_select import (
    Candidate,
    keep_timeline_years,
    latest_year,
    other_years,
    timeline_strength,
    year_pool,
)
from retrieval.titles import DATED_KINDS, region_key
from retrieval.years import QuestionTime

# No year named: how far the newest years may fall short of the best passage of any year (strength:
# dense cosine + token coverage) and how many newer years are tried. Tuned on library-dev's tune half.
LATEST_MARGIN = 0.45
LATEST_STEPS = 4
# Asking back: with several regions in the corpus and none named, regions whose best passage is within
# this margin (strength) of the best one are offered. Set on the Hengyang tune questions that do not
# name the city, all corpora indexed: 0.1 asks back on 56 % of them and offers 衡阳市 in 89 % of those.
ASKBACK_MARGIN = 0.1
ASKBACK_MAX = 4

_KIND_CODE = {REVIEW: 1, PLAN: 2}


@dataclass(frozen=True)
class AskContext:
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
    # An English question: how much each gloss token weighs in the answer sentence's word score
    # (`retrieval.highlight.gloss_token_weights`); None for a Chinese question (every token alike).
    token_weights: dict[str, float] | None = None

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



class Shelf:
    """Per-passage period, year and series arrays of a loaded corpus, and the rules that use them."""

    def __init__(self, reports: list[Report], passages: list[Passage], scorer: PassageScorer):
        self.reports = reports
        self.passages = passages
        self.scorer = scorer
        self.report_of = np.array([p.report_index for p in passages], dtype=np.int64)
        self._build(reports)

    def _build(self, reports: list[Report]) -> None:
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
        self.pyear = np.array([p.period.year if p.period.year is not None else -1 for p in self.passages],
                               dtype=np.int64)
        self.ryear = np.array([p.report.meta.year or -1 for p in self.passages], dtype=np.int64)
        self.pkind = np.array([_KIND_CODE.get(p.period.kind or "", 0) for p in self.passages], dtype=np.int8)
        self.pseries = np.array([series_of_report[p.report_index] for p in self.passages], dtype=np.int64)
        self._report_cover: list[tuple[set[int], set[int]]] = [(set(), set()) for _ in reports]
        self._series_cover: dict[int, dict[int, set[str]]] = {v: {} for v in keys.values()}
        for p in self.passages:
            if p.period.year is None or p.period.kind is None:
                continue
            reviewed, planned = self._report_cover[p.report_index]
            (reviewed if p.period.kind == REVIEW else planned).add(p.period.year)
            s = series_of_report[p.report_index]
            if s >= 0:
                self._series_cover[s].setdefault(p.period.year, set()).add(p.period.kind)
        self.regions_count = len({r.meta.region for r in reports if r.meta.region})
        self._known_places: tuple[str, ...] | None = None

    # -- regions ------------------------------------------------------------------------------

    @property
    def regions(self) -> list[str]:
        """The regions the reports are about, in corpus order (衡阳市, 深圳市, 南山区 …)."""
        return list(dict.fromkeys(r.meta.region for r in self.reports if r.meta.region))

    @property
    def known_places(self) -> tuple[str, ...]:
        """Every place name a question may use for a report's region (衡阳市 and 衡阳 …), longest first."""
        if self._known_places is None:
            names = {p for r in self.reports for p in report_places(r.meta)}
            names |= {r.meta.region for r in self.reports if r.meta.region}
            self._known_places = tuple(sorted(names, key=len, reverse=True))
        return self._known_places

    def resolve_region(self, name: str) -> str:
        """The region a name means (光明 → 光明区); InputError naming the known regions."""
        return self.reports[self.region_reports(name)[-1]].meta.region or name

    def region_reports(self, region: str) -> list[int]:
        """Indexes of the reports of a region (光明区 also finds 光明新区); InputError naming the known ones."""
        key = region_key(fold_for_match(region).strip())
        found = [i for i, r in enumerate(self.reports) if r.meta.region and region_key(r.meta.region) == key]
        if not found:
            known = "、".join(self.regions[:12]) or "none"
            raise InputError(f"no report is about {region!r} (regions: {known})")
        return found

    def ambiguous_regions(self, base: Ranked, q_tokens: list[str]) -> tuple[str, ...] | None:
        """Regions whose best candidate answers nearly as well as the best one's, best first; None
        when one region stands out (see ASKBACK_MARGIN)."""
        best: dict[str, float] = {}
        for c in self.candidates(base, q_tokens):
            region = self.reports[int(self.report_of[c.pid])].meta.region
            if region and c.strength > best.get(region, -1.0):
                best[region] = c.strength
        if len(best) < 2:
            return None
        ranked = sorted(best, key=lambda r: -best[r])
        top = best[ranked[0]]
        close = [r for r in ranked if best[r] >= top - ASKBACK_MARGIN][:ASKBACK_MAX]
        return tuple(close) if len(close) >= 2 else None

    # -- time ---------------------------------------------------------------------------------

    def covered_years(self, scoped) -> tuple[set[int], set[int]]:
        """Years the reports in scope review, and years they plan."""
        reviewed: set[int] = set()
        planned: set[int] = set()
        for i in scoped:
            r, p = self._report_cover[i]
            reviewed |= r
            planned |= p
        return reviewed, planned

    def year_tier(self, year: int, intent: str, within: np.ndarray | None) -> tuple[np.ndarray | None, str | None]:
        """The passages to answer a question about `year` from: the part about that year of the kind
        asked (review/plan); else any part about it; None when there is none.
        Returns the mask and the kind it was restricted to (None: any)."""
        base = within if within is not None else np.ones(len(self.passages), dtype=bool)
        exact = base & (self.pyear == year) & (self.pkind == _KIND_CODE[intent])
        if exact.any():
            return exact, intent
        # A report with periods covers a year only through a part about it: 2012年 mentioned in passing
        # by a 2015 report does not make that report cover 2012. Reports without periods (no kind or
        # year known) cover what they speak of.
        undated = self.pyear < 0
        loose = base & ((self.pyear == year) | (undated & (self.scorer.mentions(year) | (self.ryear == year))))
        return (loose, None) if loose.any() else (None, None)

    def candidates(self, ranked: Ranked, q_tokens: list[str], limit: int = 60) -> list[Candidate]:
        """The best `limit` of a ranking with their period, series and strength (time_select's input)."""
        out = []
        n = min(limit, len(ranked.ids))
        for i, fused, dense in zip(ranked.ids[:n], ranked.fused[:n], ranked.dense[:n], strict=True):
            pid = int(i)
            period = self.passages[pid].period
            strength = timeline_strength(float(dense), self.scorer.coverage(q_tokens, pid))
            out.append(Candidate(pid, float(fused), period.year, period.kind, int(self.pseries[pid]), strength))
        return out

    def latest(self, base: Ranked, ctx: AskContext, intent: str, within: np.ndarray | None, q_tokens: list[str]):
        """No year named: the newest year of the best hit's series that answers (see time_select).

        A question whose strong candidates span several years asks for a figure every report gives:
        it is answered from the newest year of the series whose best passage is nearly as strong as
        the best passage of any year, stepping back a year at a time. A question only one year
        answers well is answered from that year.
        """
        top = self.passages[int(base.ids[0])]
        series = int(self.pseries[int(base.ids[0])])
        if top.period.year is None or series < 0:
            return base, ()
        cands = self.candidates(base, q_tokens)
        pool, kind = year_pool(cands, series, intent)
        latest = latest_year(pool)
        if latest is None:
            return base, ()
        mask_of = self.series_mask(series, kind, within)
        pool_years = {c.year for c in pool}
        if len(pool_years) >= 2:
            best = max(c.strength for c in cands if c.series == series)
            newer = [y for y in self.series_years(series, kind or intent) if y > latest]
            for y in sorted(newer, reverse=True)[:LATEST_STEPS]:
                ranked = self.scorer.rank(ctx.qs, mask_of(y), (), ctx.value)
                if len(ranked.ids) and self.strength(ranked, q_tokens) >= best - LATEST_MARGIN:
                    return ranked, other_years(pool, [y])
        ranked = self.scorer.rank(ctx.qs, mask_of(latest), (), ctx.value)
        return (ranked if len(ranked.ids) else base), other_years(pool, [latest])

    def series_mask(self, series: int, kind: str | None, within: np.ndarray | None):
        """year → mask of the series' passages about that year (of that kind, if given)."""
        base = self.pseries == series
        if kind is not None:
            base = base & (self.pkind == _KIND_CODE[kind])
        if within is not None:
            base = base & within

        def of(year: int) -> np.ndarray:
            return base & (self.pyear == year)

        return of

    def strength(self, ranked: Ranked, q_tokens: list[str]) -> float:
        return timeline_strength(float(ranked.dense[0]), self.scorer.coverage(q_tokens, int(ranked.ids[0])))

    def other_years_for(
        self, base: Ranked, ranked: Ranked, intent: str, exclude, q_tokens: list[str]
    ) -> tuple[int, ...]:
        if not len(ranked.ids):
            return ()
        series = int(self.pseries[int(ranked.ids[0])])
        if series < 0:
            return ()
        pool, _ = year_pool(self.candidates(base, q_tokens), series, intent)
        return other_years(pool, exclude)

    def timeline(self, ctx: AskContext, base: Ranked, asked: tuple[int, ...], top_k: int, offset: int, make_hit):
        """One entry per year of the best hit's series, oldest first (see retrieval.time_select)."""
        ctx = replace(ctx, focus_tokens=ctx.yearless_focus)
        top_series = int(self.pseries[int(base.ids[0])])
        if top_series < 0:  # the best passage is in no dated series: look for the best one that is
            dated = [int(i) for i in base.ids if self.pseries[int(i)] >= 0]
            top_series = int(self.pseries[dated[0]]) if dated else -1
        entries: list[Hit] = []
        rankings: dict[int, Ranked] = {}
        missing: list[int] = []
        if top_series >= 0:
            series_mask = self.pseries == top_series
            if ctx.place_mask is not None:
                series_mask &= ctx.place_mask
            years = list(asked) or self.series_years(top_series, ctx.when.intent)
            if ctx.when.last_n and not asked:
                years = years[-ctx.when.last_n:]
            strengths: dict[int, float] = {}
            for y in years:
                tier, _ = self.year_tier(y, ctx.when.intent, series_mask)
                if tier is None:
                    missing.append(y)
                    continue
                ranked = self.scorer.rank(ctx.yearless(self.scorer), tier, (), ctx.value)
                if not len(ranked.ids):
                    missing.append(y)
                    continue
                pid = int(ranked.ids[0])
                features = RefusalFeatures(float(ranked.dense[0]), self.scorer.coverage(ctx.q_tokens, pid),
                                           ctx.qs.chinese, False)
                if not is_covered(features, ctx.mode):
                    missing.append(y)
                    continue
                rankings[y] = ranked
                strengths[y] = timeline_strength(features.dense, features.coverage)
            kept = keep_timeline_years(strengths, explicit=bool(asked))
            missing.extend(y for y in rankings if y not in kept)
            for n, y in enumerate(sorted(kept), 1):
                entries.append(make_hit(int(rankings[y].ids[0]), n, strengths[y], ctx))
        answered = bool(entries)
        if entries:
            newest = rankings[max(kept)]
            hits = [make_hit(int(newest.ids[r]), r + 1, float(newest.fused[r]), ctx)
                    for r in range(offset, min(offset + top_k, len(newest.ids)))]
        else:
            hits = [make_hit(int(base.ids[r]), r + 1, float(base.fused[r]), ctx)
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

    def series_years(self, series: int, intent: str) -> list[int]:
        years = self._series_cover[series]
        wanted = sorted(y for y, kinds in years.items() if intent in kinds)
        return wanted or sorted(years)

