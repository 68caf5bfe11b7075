"""Which year each part of a report is about, and whether it reviews it or plans it. Pure functions.

A 政府工作报告 delivered in year N reviews N−1 (一、2022年工作回顾) and plans N (二、2023年工作安排);
a 法治政府建设情况报告 for year Y reviews Y (and may plan Y+1 under 下一步工作计划). The rules, in order:

1. Chapter headings (top-level sections) say it most of the time: a year in the heading (2022年工作回顾,
   关于2020年工作, 奋力实现2023年政府工作总体目标要求) is reviewed when it is before the report's plan year
   and planned from it on; without a year, review words (回顾, 成就, 过去五年, 以来的工作, 存在问题) or plan
   words (安排, 任务, 思路, 目标, 今后五年, 对今年政府工作的建议) decide. Glossaries (名词解释) have none.
2. A chapter whose heading says nothing follows the order reports are written in — review first, then
   plan: after a plan chapter it plans too (三、把改革开放扎实推向纵深 in a 2015 report); before one, what
   its paragraphs say decides (今年…预期目标, 我们将 vs 一年来, 全年实现), else it continues the review.
3. Sections and paragraphs inherit their chapter's period, except a paragraph that states its own
   strongly (今年经济社会发展主要预期目标是… inside a review chapter plans the report's year).
4. Multi-year reviews and plans (过去五年, “十三五”时期, 今后五年) keep the nearest year as their period
   (a five-year review ends with the year before the report) and record the span.
5. Reports of other kinds (条例, 规定 …) and reports without a year have no periods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from retrieval.document import Paragraph, Report, Section
from retrieval.titles import DATED_KINDS, RULE_OF_LAW_REPORT, WORK_REPORT, cn_year

REVIEW = "review"
PLAN = "plan"


@dataclass(frozen=True)
class Period:
    year: int | None  # the year this part is about
    kind: str | None  # "review" | "plan" | None
    span: tuple[int, int] | None = None  # first and last year of a multi-year review or plan

    @property
    def known(self) -> bool:
        return self.year is not None and self.kind is not None


NO_PERIOD = Period(None, None)

_YEAR_IN_HEADING = re.compile(r"((?:19|20)\d{2}|[〇零一二三四五六七八九]{4})年")
_GLOSSARY = re.compile(r"名词解释|名词、术语|术语注释|注释$|^附件|附表")
_REVIEW_WORDS = re.compile(
    r"回顾|成就|成绩|工作情况|以来的工作|过去|取得|迈出|进步|存在问题|问题和不足|不足|关于\S*年工作$"
)
_PLAN_WORDS = re.compile(
    r"安排|任务|重点|主要工作|思路|目标|部署|建议|今后|未来|计划|打算|要求|政策取向|举措|民生实事|展望|测算|"
    r"下一步|新一届|今年"
)
_RULE_OF_LAW_PLAN_WORDS = re.compile(r"下一步|计划|打算|思路|明年|今后")
_MULTI_YEAR_REVIEW = re.compile(r"过去五年|五年来|本届|十[一二三四]五|成立以来|人大一次会议以来|以来的工作")
_MULTI_YEAR_PLAN = re.compile(r"今后五年|未来五年|十[四五]五|新一届|二〇三五|2035")
# Paragraph phrases (what a part's text says about its time).
_PLAN_PHRASE = re.compile(r"今年|明年|我们将|将着力|将继续|将坚持|力争|预期目标|重点抓好|重点做好|着力抓好|奋力")
_REVIEW_PHRASE = re.compile(r"一年来|过去一年|全年实现|全年完成|全年|完成了|取得了|实现了|同比|比上年|累计|荣获|获评")
_STRONG_PLAN = re.compile(r"(?:今年|明年)[^。；]{0,30}(?:主要预期目标|预期目标|主要目标)")
_STRONG_REVIEW = re.compile(r"^(?:一年来|过去一年|回顾过去一年)")


def report_year_bounds(report_kind: str | None, year: int | None) -> tuple[int, int] | None:
    """(the year a report reviews, the year it plans), or None for reports not about years."""
    if year is None or report_kind not in DATED_KINDS:
        return None
    if report_kind == RULE_OF_LAW_REPORT:
        return year, year + 1
    return year - 1, year  # a work report delivered in N: reviews N−1, plans N


def heading_period(title: str, review_year: int, plan_year: int, *, rule_of_law: bool = False) -> Period | None:
    """The period a chapter heading states, or None when it states none (see rule 1).

    A rule-of-law report's chapters are all about its year (一、加强统筹部署…) unless a heading says
    下一步/计划/打算 or names a later year: words like 部署 or 目标 do not make them plans.
    """
    if _GLOSSARY.search(title):
        return NO_PERIOD
    years = sorted(
        y for y in (cn_year(m.group(1)) for m in _YEAR_IN_HEADING.finditer(title))
        if y is not None and review_year - 6 <= y <= plan_year + 1
    )
    review = bool(_REVIEW_WORDS.search(title))
    plan = bool((_RULE_OF_LAW_PLAN_WORDS if rule_of_law else _PLAN_WORDS).search(title))
    if years:
        past = [y for y in years if y <= review_year]
        future = [y for y in years if y >= plan_year]
        if review and not plan and past:
            return _review(past[-1], title, review_year)
        if plan and not review and future:
            return _plan(future[0], title, plan_year)
        if past and not future:
            return _review(past[-1], title, review_year)
        if future and not past:
            return _plan(future[0], title, plan_year)
        if review:
            return _review(past[-1], title, review_year)
        return _plan(future[0], title, plan_year)
    if review and not plan:
        return _review(review_year, title, review_year)
    if plan and not review:
        return _plan(plan_year, title, plan_year)
    if review and plan:  # 存在问题和下一步打算: the problems come first
        return _review(review_year, title, review_year)
    return None


def _review(year: int, title: str, review_year: int) -> Period:
    span = (review_year - 4, review_year) if _MULTI_YEAR_REVIEW.search(title) else None
    return Period(year, REVIEW, span)


def _plan(year: int, title: str, plan_year: int) -> Period:
    span = (plan_year, plan_year + 4) if _MULTI_YEAR_PLAN.search(title) else None
    return Period(year, PLAN, span)


def _content_vote(section: Section) -> str | None:
    """REVIEW or PLAN by what a section's paragraphs say, None when they do not lean either way."""
    plan = review = 0
    for para in section.all_paragraphs():
        plan += len(_PLAN_PHRASE.findall(para.text))
        review += len(_REVIEW_PHRASE.findall(para.text))
    if plan > 2 * review:
        return PLAN
    if review > 2 * plan:
        return REVIEW
    return None


def chapter_periods(report: Report, kind: str | None, year: int | None) -> dict[str, Period]:
    """Period of every top-level section of a report (section id → Period), by rules 1, 2 and 5."""
    bounds = report_year_bounds(kind, year)
    if bounds is None:
        return {sec.section_id: NO_PERIOD for sec in report.sections}
    review_year, plan_year = bounds
    out: dict[str, Period] = {}
    last: Period | None = None
    seen_plan = False
    for sec in report.sections:
        if sec.level == 0:  # preamble: a rule-of-law report's opening already reports on its year
            out[sec.section_id] = Period(review_year, REVIEW) if kind == RULE_OF_LAW_REPORT else NO_PERIOD
            continue
        period = heading_period(sec.title, review_year, plan_year, rule_of_law=kind == RULE_OF_LAW_REPORT)
        if period is None and kind == RULE_OF_LAW_REPORT:
            period = last if seen_plan and last is not None else Period(review_year, REVIEW)
        if period is None:
            vote = _content_vote(sec)
            if seen_plan and last is not None:
                period = last
            elif vote == PLAN:
                period = Period(plan_year, PLAN)
            elif vote == REVIEW:
                period = last if last is not None and last.kind == REVIEW else Period(review_year, REVIEW)
            elif last is not None:
                period = last
            elif kind == RULE_OF_LAW_REPORT:
                period = Period(review_year, REVIEW)
            else:
                period = NO_PERIOD
        out[sec.section_id] = period
        if period.kind == PLAN:
            seen_plan = True
        if period.kind is not None:
            last = period
    return out


def paragraph_period(para: Paragraph, chapter: Period, review_year: int | None, plan_year: int | None) -> Period:
    """A paragraph's own period where it states one strongly (rule 3), else its chapter's."""
    if plan_year is not None and chapter.kind == REVIEW and _STRONG_PLAN.search(para.text):
        return Period(plan_year, PLAN)
    if review_year is not None and chapter.kind == PLAN and _STRONG_REVIEW.search(para.text):
        return Period(review_year, REVIEW)
    return chapter


def report_periods(report: Report) -> dict[int, Period]:
    """Period of every paragraph of a report, keyed by the paragraph's start offset."""
    meta = report.meta
    chapters = chapter_periods(report, meta.kind, meta.year)
    bounds = report_year_bounds(meta.kind, meta.year)
    review_year, plan_year = bounds if bounds else (None, None)
    out: dict[int, Period] = {}
    for sec in report.sections:
        chapter = chapters.get(sec.section_id, NO_PERIOD)
        for para in sec.all_paragraphs():
            out[para.start] = paragraph_period(para, chapter, review_year, plan_year)
    return out


@dataclass(frozen=True)
class Coverage:
    """What a report covers: the years it reviews and plans (for `reports list` and scoping)."""

    reviews: tuple[int, ...]
    plans: tuple[int, ...]
    review_span: tuple[int, int] | None = None
    plan_span: tuple[int, int] | None = None

    def covers(self, year: int) -> bool:
        return year in self.reviews or year in self.plans

    def describe(self) -> str:
        """回顾2022年 · 计划2023年 (spans: 回顾2016–2020年)."""
        parts = []
        if self.reviews:
            parts.append("回顾" + _years_text(self.reviews, self.review_span))
        if self.plans:
            parts.append("计划" + _years_text(self.plans, self.plan_span))
        return " · ".join(parts)


def _years_text(years: tuple[int, ...], span: tuple[int, int] | None) -> str:
    if span and span[0] != span[1]:
        return f"{span[0]}–{span[1]}年"
    if len(years) == 1:
        return f"{years[0]}年"
    return "、".join(str(y) for y in years) + "年"


def coverage(periods: dict[int, Period]) -> Coverage:
    reviews = sorted({p.year for p in periods.values() if p.kind == REVIEW and p.year is not None})
    plans = sorted({p.year for p in periods.values() if p.kind == PLAN and p.year is not None})
    review_spans = [p.span for p in periods.values() if p.kind == REVIEW and p.span]
    plan_spans = [p.span for p in periods.values() if p.kind == PLAN and p.span]
    return Coverage(
        reviews=tuple(reviews),
        plans=tuple(plans),
        review_span=(min(s[0] for s in review_spans), max(s[1] for s in review_spans)) if review_spans else None,
        plan_span=(min(s[0] for s in plan_spans), max(s[1] for s in plan_spans)) if plan_spans else None,
    )


__all__ = ["NO_PERIOD", "PLAN", "REVIEW", "WORK_REPORT", "Coverage", "Period", "coverage", "report_periods"]
