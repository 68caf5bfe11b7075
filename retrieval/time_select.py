"""Choosing the year an answer comes from, and saying so. Pure functions over candidate lists.

A city's shelf holds the same kind of passage for every year (全年实现地区生产总值… in each report's
review). Rules, decided here and applied by `retrieval.retriever`:

- No year named → the latest year whose passages answer about as well as the best one
  (`latest_year`: strength — dense cosine + token coverage, comparable across reports — within
  STRONG_MARGIN of the best, in the best hit's series, preferring the part the question asks for,
  review or plan); the others are offered (`other_years`).
- A year named → the part of the series about that year (see `Retriever`); not covered when none is;
  the nearest covered years are suggested (`nearest_years`).
- 去年/今年 past the newest report → the newest year that has it, with a note (`coverage_note`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from retrieval.periods import PLAN, REVIEW

# A year "has an answer" when its best candidate's strength is within this margin of the strongest
# candidate's. Fused scores do not do: one rare word (a literal "GDP") makes one report an outlier.
# Tuned on the tune half of corpus/eval/library-dev.jsonl.
STRONG_MARGIN = 0.3
NEAREST = 3  # years suggested when a named year is not covered


@dataclass(frozen=True)
class Candidate:
    pid: int
    score: float  # fused score
    year: int | None  # period year
    kind: str | None  # period kind
    series: int  # series id (-1: not part of a dated series)
    strength: float = 0.0  # dense cosine + token coverage (`timeline_strength`)


def strong(cands: Sequence[Candidate], margin: float = STRONG_MARGIN) -> list[Candidate]:
    """Candidates whose strength is within `margin` of the strongest (the strongest included)."""
    if not cands:
        return []
    best = max(c.strength for c in cands)
    return [c for c in cands if c.strength >= best - margin]


def year_pool(cands: Sequence[Candidate], series: int, intent: str, margin: float = STRONG_MARGIN
              ) -> tuple[list[Candidate], str | None]:
    """Strong dated candidates of one series, of the intended kind if there are any (else of any kind).

    Returns the pool and the kind it was restricted to (None: any kind).
    """
    in_series = [c for c in cands if c.series == series and c.year is not None]
    pool = strong(in_series, margin)
    wanted = [c for c in pool if c.kind == intent]
    if wanted:
        return wanted, intent
    return pool, None


def latest_year(pool: Sequence[Candidate]) -> int | None:
    years = [c.year for c in pool if c.year is not None]
    return max(years) if years else None


def other_years(pool: Iterable[Candidate], exclude: Iterable[int]) -> tuple[int, ...]:
    """Years with an answer besides the one shown, newest first."""
    skip = set(exclude)
    return tuple(sorted({c.year for c in pool if c.year is not None and c.year not in skip}, reverse=True))


def nearest_years(covered: Iterable[int], year: int, n: int = NEAREST) -> tuple[int, ...]:
    """The covered years closest to `year` (ties: the later one first), in ascending order."""
    ranked = sorted(set(covered), key=lambda y: (abs(y - year), -y))[:n]
    return tuple(sorted(ranked))


def newest_at_most(covered: Iterable[int], year: int) -> int | None:
    """The newest covered year not after `year`; else the oldest covered year after it."""
    years = sorted(set(covered))
    before = [y for y in years if y <= year]
    if before:
        return before[-1]
    return years[0] if years else None


def _kind_word(kind: str | None) -> str:
    return "计划" if kind == PLAN else "回顾"


def coverage_note(report_label: str, year: int, kind: str | None, lang: str = "zh") -> str:
    """收录的最新报告为《…》，回顾2024年 — a relative year past what the reports reach."""
    if lang == "en":
        return f"The newest report held is {report_label}, which {'plans' if kind == PLAN else 'reviews'} {year}"
    return f"收录的最新报告为{report_label}，{_kind_word(kind)}{year}年"


def uncovered_note(year: int, suggestions: Sequence[int], lang: str = "zh") -> str:
    """收录的报告未涉及2012年（有内容的最近年份：2013年、2014年）."""
    if lang == "en":
        nearest = f" (nearest years covered: {', '.join(map(str, suggestions))})" if suggestions else ""
        return f"The reports held do not cover {year}{nearest}"
    if not suggestions:
        return f"收录的报告未涉及{year}年"
    years = "、".join(f"{y}年" for y in suggestions)
    return f"收录的报告未涉及{year}年（有内容的最近年份：{years}）"


def kind_mismatch_note(year: int, wanted: str, found: str | None, lang: str = "zh") -> str | None:
    """收录的报告尚未回顾2025年，以下为2025年的计划 — the part asked for is not there, another is."""
    if found is None or found == wanted:
        return None
    if lang == "en":
        if wanted == REVIEW:
            return f"The reports have not reviewed {year} yet; below is the plan for {year}"
        return f"The reports hold no plan for {year}; below is the review of {year}"
    if wanted == REVIEW:
        return f"收录的报告尚未回顾{year}年，以下为{year}年的计划"
    return f"收录的报告中没有{year}年的计划，以下为{year}年的回顾"


# A timeline year is kept when its best passage is nearly as strong as the strongest year's
# (dense cosine + token coverage, both comparable across years). Tuned on the tune half.
TIMELINE_MARGIN = 0.3


def timeline_strength(dense: float, coverage: float) -> float:
    """How well a year's best passage answers, on a scale comparable across years."""
    return dense + coverage


def keep_timeline_years(strengths: dict[int, float], *, explicit: bool) -> list[int]:
    """Years whose best passage answers: all asked-for years found, else those near the strongest."""
    if not strengths:
        return []
    if explicit:
        return sorted(strengths)
    best = max(strengths.values())
    return sorted(y for y, s in strengths.items() if s >= best - TIMELINE_MARGIN)
