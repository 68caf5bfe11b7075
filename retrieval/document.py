"""The document model: a report as the tree of units its authors wrote.

report → sections (level 1: 一、/第X章 …; level 2: (一)/第X条 …; deeper: 1./（1）…) → paragraphs →
sentences. The text before the first heading is the preamble, section "0". Every unit keeps
character offsets into `Report.text` (the decoded source text), so any citation can be shown in
context. Parsing is pure (see `retrieval.parse`); these records hold no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

# Bump when the parser turns the same text into a different tree (every index rebuilds). It lives
# here, with the tree it versions, so that opening an index does not import the parser.
PARSER_VERSION = "1"


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int  # offset into Report.text
    end: int


@dataclass
class Paragraph:
    text: str  # body text only: a run-in heading "(一)标题。" is not part of it
    start: int
    end: int
    sentences: list[Sentence]
    section_id: str  # the innermost section holding it, e.g. "7.1"
    index: int  # 0-based position within that section


@dataclass
class Section:
    """A headed unit (or the preamble, id "0")."""

    section_id: str  # dotted arabic numbers along the heading hierarchy: 七、→"7", its (一)→"7.1"
    label: str  # human label with ancestors: "七、(一)"
    title: str  # heading text without its marker; run-in headings: up to the first 。
    level: int  # 0 preamble, 1 chapter, 2 section, 3+ deeper
    start: int  # offset of the heading (or first paragraph for the preamble)
    end: int  # end of the unit, children included
    paragraphs: list[Paragraph] = field(default_factory=list)  # its own, before its children
    children: list[Section] = field(default_factory=list)

    def walk(self) -> Iterator[Section]:
        """This section and all its descendants, in document order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def all_paragraphs(self) -> Iterator[Paragraph]:
        """Every paragraph in this section and its descendants, in document order."""
        for sec in self.walk():
            yield from sec.paragraphs


@dataclass(frozen=True)
class ReportMeta:
    """Metadata from the corpus manifest (or derived from a file name when there is none)."""

    report_id: str
    title: str
    file: str  # path as given in the manifest, relative to the corpus directory
    issuer: str | None = None
    publisher: str | None = None
    signed: str | None = None  # ISO date the report was signed
    published: str | None = None  # ISO date it was published
    year: int | None = None  # the year the report covers
    region: str | None = None  # the place it is about, e.g. 衡阳市
    source_url: str | None = None
    kind: str | None = None  # 政府工作报告, 法治政府建设情况报告, 条例 … (retrieval.titles)
    sha256: str | None = None  # of the file as published (PDF/DOCX/DOC/WPS), recorded when it was added

    @property
    def date(self) -> str | None:
        """The date to show with a citation: signed, else published, else the year."""
        return self.signed or self.published or (str(self.year) if self.year else None)


@dataclass
class Report:
    meta: ReportMeta
    text: str  # the decoded source text; every offset in the tree points into it
    sections: list[Section]  # top level in order: the preamble "0" (if any) then chapters
    signed_date: str | None = None  # ISO date found in the signature block, if any
    parsed_title: str | None = None  # title line found in the text, if any
    # What this report was parsed from (file bytes, manifest entry, parser code: `parse_cache.parsed_key`),
    # set when loaded from a corpus directory; lets an unchanged index open without re-hashing every
    # sentence. None for reports built in memory.
    source_key: str | None = field(default=None, compare=False)

    def walk(self) -> Iterator[Section]:
        for sec in self.sections:
            yield from sec.walk()

    def paragraphs(self) -> Iterator[Paragraph]:
        for sec in self.sections:
            yield from sec.all_paragraphs()

    def section(self, section_id: str) -> Section | None:
        for sec in self.walk():
            if sec.section_id == section_id:
                return sec
        return None
