"""What a question gets back: an Answer with ranked, cited Hits.

The JSON shape (`Answer.to_dict`) is the integration surface of `reportqa ask --json`; keep its
field names stable.
"""

from __future__ import annotations

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
        }


@dataclass(frozen=True)
class Answer:
    question: str
    answered: bool  # False: the reports do not cover the question; hits are then suggestions
    hits: list[Hit] = field(default_factory=list)
    normalized_question: str = ""
    mode: str = "hybrid"

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answered": self.answered,
            "results": [h.to_dict() for h in self.hits],
        }


def citation(report_title: str, section_label: str, section_title: str) -> str:
    """《title》label title — the one place the citation format is defined."""
    tail = " ".join(p for p in (section_label, section_title) if p)
    return f"《{report_title}》{tail}"
