"""Positioned glyphs of a PDF → the paragraphs a reader sees (pure: no I/O).

    pages = [[Glyph(...), ...], ...]            # one list per page, from any PDF reader
    paragraphs = layout_paragraphs(pages, heights, outline_titles)

Why it is needed: a PDF holds glyphs at positions, not paragraphs. What 公文 exports look like, and
what each step undoes:
1. Lines: glyphs grouped by vertical overlap, ordered left to right. WPS/Word "fake bold" draws each
   glyph twice a hair apart — the second copy is dropped. A space the text has (a space glyph, or a
   gap of most of an em: 第一条　为了…) is kept as one space; the small spread of a justified line
   is not a space, except between two ASCII words.
2. Page furniture: lines in the top/bottom band of a page that repeat (digits folded) on at least
   half the pages — running headers and footers — and page numbers (— 3 —, 第3页) are removed. A
   band line larger than the body text (the title on page 1) is kept.
3. Paragraphs, also across page breaks: a line starts a new paragraph when it is indented (≥ 1.5
   em), when the line before it ended short of the right margin (≥ 1 em), after a large vertical
   gap, when it starts with a heading marker in a font other than the body's (公文: 一、 黑体, （一）
   楷体) or after a whole line in such a heading font, and where the PDF's outline says a heading
   begins or ends. Centred lines of one size (a title over two lines) stay together. Wrapped lines
   are rejoined without a space (Chinese has none).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.readers.cleanup import HEADING_START, is_page_number, join_wrapped, normalise_digits

BAND = 0.12  # top/bottom share of a page where headers, footers and page numbers sit
_SUBSET = re.compile(r"^[A-Z]{6}\+")
_ASCII_WORD = re.compile(r"[A-Za-z0-9]")


@dataclass(frozen=True)
class Glyph:
    """One drawn character: its text, box (PDF points, top-down) and font."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    font: str = ""


@dataclass
class Line:
    """Glyphs on one baseline of one page, left to right."""

    page: int
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float  # the most common glyph size
    first_font: str
    fonts: Counter

    @property
    def main_font(self) -> str:
        return self.fonts.most_common(1)[0][0] if self.fonts else ""


def font_family(name: str) -> str:
    """A font name without its subset prefix (ABCDEF+FangSong → FangSong)."""
    return _SUBSET.sub("", name or "")


def build_lines(glyphs: Sequence[Glyph], page: int = 0) -> list[Line]:
    """Group one page's glyphs into lines, top to bottom; fake-bold doubles dropped."""
    rows: list[list[Glyph]] = []
    for g in sorted((g for g in glyphs if g.text), key=lambda g: (g.top, g.x0)):
        if rows:
            row = rows[-1]
            top = min(x.top for x in row[-8:])
            bottom = max(x.bottom for x in row[-8:])
            overlap = min(bottom, g.bottom) - max(top, g.top)
            if overlap > 0.5 * min(bottom - top, g.bottom - g.top, g.size or 1):
                row.append(g)
                continue
        rows.append([g])
    lines = []
    for row in rows:
        line = _line_of(row, page)
        if line is not None:
            lines.append(line)
    return lines


def _line_of(row: list[Glyph], page: int) -> Line | None:
    row.sort(key=lambda g: g.x0)
    kept: list[Glyph] = []
    for g in row:
        if kept and g.text == kept[-1].text and abs(g.x0 - kept[-1].x0) < 0.3 * max(g.size, 1):
            continue  # fake bold: the same glyph drawn again a hair to the right
        kept.append(g)
    text = ""
    pending_space = False
    prev: Glyph | None = None
    fonts: Counter = Counter()
    for g in kept:
        if g.text.isspace():
            pending_space = True
            continue
        if prev is not None and text:
            gap = g.x0 - prev.x1
            ascii_pair = bool(_ASCII_WORD.match(text[-1]) and _ASCII_WORD.match(g.text[0]))
            if pending_space or gap > 0.8 * max(g.size, 1) or (ascii_pair and gap > 0.25 * max(g.size, 1)):
                text += " "  # a space the author typed (第一条 为了…), not the spread of a justified line
        text += g.text
        fonts[font_family(g.font)] += len(g.text)
        pending_space = False
        prev = g
    visible = [g for g in kept if not g.text.isspace()]
    if not visible:
        return None
    sizes = Counter(round(g.size, 1) for g in visible)
    return Line(
        page=page,
        text=text,
        x0=visible[0].x0,
        x1=visible[-1].x1,
        top=min(g.top for g in visible),
        bottom=max(g.bottom for g in visible),
        size=sizes.most_common(1)[0][0],
        first_font=font_family(visible[0].font),
        fonts=fonts,
    )


def strip_furniture(pages: list[list[Line]], heights: Sequence[float]) -> list[list[Line]]:
    """Remove running headers/footers and page numbers from the top and bottom bands."""
    body_size = _mode([round(line.size) for page in pages for line in page]) or 0
    seen: Counter = Counter()
    for page, height in zip(pages, heights, strict=True):
        keys = {normalise_digits(line.text) for line in page if _in_band(line, height)}
        seen.update(keys)
    need = max(2, (len(pages) + 1) // 2)
    out = []
    for page, height in zip(pages, heights, strict=True):
        kept = []
        for line in page:
            furniture = is_page_number(line.text) or seen[normalise_digits(line.text)] >= need
            if furniture and _in_band(line, height) and line.size <= body_size * 1.05 + 0.5:
                continue
            kept.append(line)
        out.append(kept)
    return out


def _in_band(line: Line, height: float) -> bool:
    return line.bottom <= height * BAND or line.top >= height * (1 - BAND)


def layout_paragraphs(
    pages: Sequence[Sequence[Glyph]], heights: Sequence[float], outline_titles: Sequence[str] = ()
) -> list[str]:
    """The paragraphs of a document from its pages' glyphs (see the module docstring)."""
    lines_by_page = [build_lines(glyphs, i) for i, glyphs in enumerate(pages)]
    lines_by_page = strip_furniture(lines_by_page, heights)
    lines = [line for page in lines_by_page for line in page]
    if not lines:
        return []
    left = _mode([round(line.x0) for line in lines])
    right = _mode([round(line.x1) for line in lines])
    body_font = Counter()
    for line in lines:
        body_font.update(line.fonts)
    body = body_font.most_common(1)[0][0] if body_font else ""
    single_font = len([f for f, n in body_font.items() if n >= 4]) <= 1
    gaps = _line_gaps(lines_by_page)
    outline = {_compact(t) for t in outline_titles if len(_compact(t)) >= 4}

    paragraphs: list[str] = []
    current = ""
    prev: Line | None = None
    for line in lines:
        if prev is None or _starts_paragraph(line, prev, left, right, body, single_font, gaps, outline):
            if current:
                paragraphs.append(current)
            current = line.text
        else:
            current = join_wrapped(current, line.text)
        prev = line
    if current:
        paragraphs.append(current)
    return paragraphs


def _starts_paragraph(
    line: Line, prev: Line, left: float, right: float, body: str, single_font: bool,
    gaps: dict[int, float], outline: set[str],
) -> bool:
    em = max(line.size, 1.0)
    prev_em = max(prev.size, 1.0)
    if _centred(line, left, right) and _centred(prev, left, right) and abs(line.size - prev.size) < 0.5:
        return line.page != prev.page or (line.top - prev.bottom) > 1.5 * em  # a title over two lines
    if line.x0 - left >= 1.5 * em:
        return True
    if prev.x1 < right - 1.0 * prev_em:
        return True
    if abs(line.size - prev.size) >= 1.0:
        return True
    if line.page == prev.page:
        gap = line.top - prev.bottom
        usual = gaps.get(line.page, 0.0)
        if usual > 0 and gap > 1.8 * usual + 2:
            return True
    heading_font = line.first_font != body
    if HEADING_START.match(line.text) and (heading_font or single_font):
        return True
    if prev.main_font != body and prev.fonts.get(body, 0) == 0 and line.first_font == body:
        return True  # the line before was all heading font; the body starts here
    if outline:
        if _compact(prev.text) in outline:
            return True
        compact = _compact(line.text)
        if any(compact.startswith(t) for t in outline):
            return True
    return False


def _centred(line: Line, left: float, right: float) -> bool:
    indent = line.x0 - left
    tail = right - line.x1
    return indent > 2 * line.size and tail > 2 * line.size and abs(indent - tail) < 2 * line.size


def _line_gaps(pages: list[list[Line]]) -> dict[int, float]:
    """The usual space between two lines of a paragraph, per page."""
    out = {}
    for page in pages:
        gaps = [round(b.top - a.bottom, 1) for a, b in zip(page, page[1:], strict=False) if b.top > a.bottom]
        if gaps:
            out[page[0].page] = sorted(gaps)[len(gaps) // 3]
    return out


def _compact(text: str) -> str:
    return "".join(text.split())


def _mode(values: list) -> float:
    return Counter(values).most_common(1)[0][0] if values else 0.0
