"""What a question gets back: an Answer with ranked, cited Hits.

The JSON shape (`Answer.to_dict`) is the integration surface of `reportqa ask --json`; keep its
field names stable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Hit:
    rank: int  # 1-based
    score: float
    report_id: str
    report_title: str
    report_date: str | None
    section_id: str  # "7.1"
    section_label: str  # "七、(一)"
    section_title: str  # "推行多元化解机制"
    citation: str  # "《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制"
    text: str  # the paragraph
    highlight: str  # the sentence(s) carrying the answer, a substring of text
    highlight_start: int  # offsets of highlight within text
    highlight_end: int
    paragraph_index: int = 0  # position of the paragraph within its section
    source_start: int = 0  # offsets of the paragraph within the report's source text
    source_end: int = 0
    period: int | None = None  # the year the passage is about (retrieval.periods)
    period_kind: str | None = None  # "review" (what was done) | "plan" (what will be done) | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(float(self.score), 4),
            "report_id": self.report_id,
            "report_title": self.report_title,
            "report_date": self.report_date,
            "section_id": self.section_id,
            "section_label": self.section_label,
            "section_title": self.section_title,
            "citation": self.citation,
            "text": self.text,
            "highlight": self.highlight,
            "highlight_start": self.highlight_start,
            "highlight_end": self.highlight_end,
            "period": self.period,
            "period_kind": self.period_kind,
        }


@dataclass(frozen=True)
class Answer:
    question: str
    answered: bool  # False: the reports do not cover the question; hits are then suggestions
    hits: list[Hit] = field(default_factory=list)
    normalized_question: str = ""
    mode: str = "hybrid"
    years: tuple[int, ...] = ()  # the years the question was taken to be about, resolved
    other_years: tuple[int, ...] = ()  # other years that also have an answer, newest first
    note: str | None = None  # what the user should know about coverage (收录的最新报告为…)
    timeline: list[Hit] | None = None  # one entry per year, oldest first, for questions across years
    understood_as: str = ""  # the standalone question searched (a follow-up rewritten); "" = question
    followup: str = "fresh"  # how a conversation's message was understood (retrieval.followup kinds)
    ambiguous: tuple[str, ...] | None = None  # candidate regions when the question names none and several fit
    lang: str = "zh"  # the question's language: "en" gets English labels and notes (passages stay Chinese)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answered": self.answered,
            "results": [h.to_dict() for h in self.hits],
            "years": list(self.years),
            "other_years": list(self.other_years),
            "note": self.note,
            "timeline": [h.to_dict() for h in self.timeline] if self.timeline is not None else None,
            "understood_as": self.understood_as or self.question,
            "ambiguous": list(self.ambiguous) if self.ambiguous else None,
            "lang": self.lang,
        }


_HAS_YEAR = re.compile(r"(?:19|20)\d{2}|[〇零一二三四五六七八九]{4}年")


def citation(report_title: str, section_label: str, section_title: str, year: int | None = None) -> str:
    """《title》label title — the one place the citation format is defined.

    A title that names no year (国务院政府工作报告, one per year) gets the report's year after it,
    outside the brackets so the published title stays exact: 《国务院政府工作报告》（2023年）一、…
    """
    tail = " ".join(p for p in (section_label, section_title) if p)
    return f"{report_label(report_title, year)}{tail}"


def report_label(report_title: str, year: int | None = None) -> str:
    """《title》, with （2023年） after a title that names no year."""
    when = f"（{year}年）" if year and not _HAS_YEAR.search(report_title) else ""
    return f"《{report_title}》{when}"
