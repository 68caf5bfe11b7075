"""Reports flattened into retrieval units: one Passage per paragraph, with its citation context.

The lexical leg indexes each paragraph with its chapter and section titles prefixed (`indexed_text`):
a run-in heading such as (一)推行多元化解机制。 is not part of the paragraph body, yet it is often
the best match for a question. The dense leg embeds each sentence on its own (`sentences`): on the
tune questions, scoring a paragraph by its best sentence beat embedding the whole paragraph
(section top-1 0.87 vs 0.66-0.74), and the sentence vectors also pick the answer sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from retrieval.answer import citation
from retrieval.document import Paragraph, Report, Section, Sentence
from retrieval.periods import NO_PERIOD, Period, report_periods

PASSAGE_FORMAT = "2"  # bump when indexed_text or embedded_sentences change: the index key includes it


@dataclass(frozen=True)
class Passage:
    report_index: int  # position of the report in the corpus list
    report: Report
    section: Section  # the innermost section holding the paragraph
    paragraph: Paragraph
    heading_path: tuple[str, ...]  # titles from the chapter down to the section
    period: Period = NO_PERIOD  # the year this paragraph is about, reviewed or planned (retrieval.periods)

    @property
    def citation(self) -> str:
        return citation(self.report.meta.title, self.section.label, self.section.title, self.report.meta.year)

    @cached_property  # asked for every passage when the corpus hash is computed (a changed corpus)
    def indexed_text(self) -> str:
        """What the dense and lexical legs see: heading titles, then the paragraph."""
        heads = " ".join(t for t in self.heading_path if t)
        return f"{heads}：{self.paragraph.text}" if heads else self.paragraph.text


    @property
    def sentences(self) -> list[Sentence]:
        """The paragraph's sentences; a paragraph the parser could not split is one sentence."""
        para = self.paragraph
        return para.sentences or [Sentence(para.text, para.start, para.end)]


def _walk_with_path(section: Section, path: tuple[str, ...]):
    here = path + ((section.title,) if section.level > 0 else ())
    yield section, here
    for child in section.children:
        yield from _walk_with_path(child, here)


def flatten(reports: Sequence[Report]) -> list[Passage]:
    """Every paragraph of every report, in corpus then document order, with its period."""
    out: list[Passage] = []
    for ri, report in enumerate(reports):
        periods = report_periods(report)
        for top in report.sections:
            for section, path in _walk_with_path(top, ()):
                for para in section.paragraphs:
                    out.append(Passage(ri, report, section, para, path, periods.get(para.start, NO_PERIOD)))
    return out
