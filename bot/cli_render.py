"""How the CLI shows answers, outlines, sections and index status: rich on a terminal, plain text otherwise.

Rendering is pure (records in, `rich.text.Text` out); only `make_console` looks at the environment.
Plain mode (NO_COLOR, a pipe, a file) carries no ANSI codes, so the answer sentence is marked with
【…】 instead of bold colour — a reader of a log or a `grep` still sees which sentence answers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from retrieval.answer import Answer, Hit, citation
from retrieval.document import Report, ReportMeta, Section
from retrieval.followup import INCOMPLETE

if TYPE_CHECKING:  # the retriever module may pull in heavy imports; rendering needs only the record
    from retrieval.corpus import AddResult
    from retrieval.retriever import IndexStatus

NOT_COVERED = "报告中没有涉及这个问题 (not covered by the reports)"
NEAREST = "最接近的章节 (nearest sections):"
NO_MORE = "没有更多结果 (no more results)"
# An English question gets English labels only; passages and citations stay as published.
EN = {
    NOT_COVERED: "The reports do not cover this.",
    NEAREST: "Nearest sections:",
    NO_MORE: "No more results.",
    "understood": "Understood as",
    "note": "Note",
    "other years": "Other years",
    "by year": "By year",
    "also": "Answered for {best}; could also be: {others} — --region NAME / /region NAME",
}


def label(text: str, lang: str) -> str:
    """The label in the asker's language (the bilingual Chinese one unless lang is "en")."""
    return EN.get(text, text) if lang == "en" else text
PLAIN_MARK = ("【", "】")

HIGHLIGHT_STYLE = "bold yellow"
CITATION_STYLE = "bold cyan"
DIM_STYLE = "dim"


def make_console(file: TextIO | None = None) -> Console:
    """A console that writes plain text unless it is a colour-capable terminal and NO_COLOR is unset.

    soft_wrap keeps long passages on one line in pipes (the terminal wraps them itself), so
    downstream tools see one paragraph per line.
    """
    no_color = bool(os.environ.get("NO_COLOR"))
    return Console(
        file=file if file is not None else sys.stdout,
        color_system=None if no_color else "auto",
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
    )


def print_block(console: Console, text: str | Text, style: str | None = None) -> None:
    """Print text followed by exactly one newline (renderers end their blocks with one already)."""
    console.print(text, style=style, end="" if str(text).endswith("\n") else "\n")


def is_plain(console: Console) -> bool:
    """True when styles would be dropped, so emphasis must be shown with characters instead."""
    return console.color_system is None


def passage_text(hit: Hit, plain: bool) -> Text:
    """The passage with the answer sentence in bold colour (or between 【】 in plain mode)."""
    start, end = hit.highlight_start, hit.highlight_end
    text = hit.text
    if not (0 <= start < end <= len(text)):
        return Text(text)
    out = Text(text[:start])
    if plain:
        out.append(PLAIN_MARK[0] + text[start:end] + PLAIN_MARK[1])
    else:
        out.append(text[start:end], style=HIGHLIGHT_STYLE)
    out.append(text[end:])
    return out


def _hit_header(hit: Hit) -> Text:
    head = Text(f"{hit.rank}. ")
    head.append(hit.citation, style=CITATION_STYLE)
    details = [d for d in (hit.report_date, f"§{hit.section_id}", f"score {hit.score:.3f}") if d]
    head.append("  " + " · ".join(details), style=DIM_STYLE)
    return head


def _year_line(answer: Answer) -> Text | None:
    if not answer.other_years:
        return None
    years = ", ".join(str(y) for y in answer.other_years)
    head = EN["other years"] if answer.lang == "en" else "其他年份 (other years)"
    return Text(f"{head}: {years}  — ask --year YEAR\n", style=DIM_STYLE)


def render_timeline(answer: Answer, plain: bool) -> Text:
    """One row per year: year · answer sentence · citation (plain: `2019 | sentence | citation`)."""
    out = Text()
    entries = answer.timeline or []
    if not entries:
        return out
    if answer.lang == "en":
        out.append(f"{EN['by year']}: {len(entries)} years\n", style="bold")
    else:
        out.append(f"历年 (by year): {len(entries)} 年\n", style="bold")
    for hit in entries:
        year = f"{hit.period}年" if hit.period else "—"
        out.append(f"{year:<6}", style="bold")
        out.append(" | " if plain else "  ")
        if plain:
            out.append(PLAIN_MARK[0] + hit.highlight + PLAIN_MARK[1])
        else:
            out.append(hit.highlight, style=HIGHLIGHT_STYLE)
        out.append(" | " if plain else "  ")
        out.append(hit.citation + "\n", style=CITATION_STYLE)
    return out


def render_answer(answer: Answer, plain: bool) -> Text:
    """Every hit as citation + passage + score, or the not-covered line with the nearest sections.

    Before the hits: the coverage note (收录的最新报告为…) and, for questions across years, the
    timeline; after them, the other years that also have an answer.
    """
    out = Text()
    en = answer.lang == "en"
    if answer.understood_as and answer.understood_as != answer.question:
        head = EN["understood"] if en else "理解为 (understood as)"
        out.append(f"{head}: {answer.understood_as}\n", style=DIM_STYLE)
    if answer.ambiguous:
        if en:
            line = EN["also"].format(best=answer.ambiguous[0], others=", ".join(answer.ambiguous[1:]))
        else:
            others = "、".join(answer.ambiguous[1:])
            line = f"按{answer.ambiguous[0]}回答；也可能是 (also): {others} — --region NAME / /region NAME"
        out.append(line + "\n", style="bold")
    note = f"{EN['note'] if en else '注 (note)'}: {answer.note}\n" if answer.note else ""
    if answer.followup == INCOMPLETE:  # a follow-up with nothing to follow: the note says what to do
        out.append(note, style="bold")
        return out
    if not answer.answered:
        out.append(label(NOT_COVERED, answer.lang) + "\n", style="bold")
        out.append(note, style="bold")
        if answer.hits:
            out.append(label(NEAREST, answer.lang) + "\n")
            for hit in answer.hits:
                out.append(f"  {hit.rank}. ")
                out.append(hit.citation, style=CITATION_STYLE)
                out.append(f"  score {hit.score:.3f}\n", style=DIM_STYLE)
        return out
    out.append(note, style="bold")
    if answer.timeline:
        out.append_text(render_timeline(answer, plain))
        out.append("\n")
    if not answer.hits:
        out.append(label(NO_MORE, answer.lang) + "\n")
        return out
    for i, hit in enumerate(answer.hits):
        if i:
            out.append("\n")
        out.append_text(_hit_header(hit))
        out.append("\n")
        out.append_text(passage_text(hit, plain))
        out.append("\n")
    year_line = _year_line(answer)
    if year_line is not None:
        out.append_text(year_line)
    return out


def _count_paragraphs(section: Section) -> int:
    return sum(1 for _ in section.all_paragraphs())


def section_heading(section: Section) -> str:
    """Label and title as a reader would say them: 七、(一) 推行多元化解机制; the preamble is 前言."""
    if section.section_id == "0" and not (section.label or section.title):
        return "前言 (preamble)"
    return " ".join(p for p in (section.label, section.title) if p) or section.section_id


def report_header(meta: ReportMeta) -> Text:
    out = Text()  # a style given to Text() itself would colour everything appended to it
    out.append(f"《{meta.title}》", style=CITATION_STYLE)
    details = ", ".join(d for d in (meta.report_id, meta.date) if d)
    out.append(f"  ({details})", style=DIM_STYLE)
    return out


def render_outline(report: Report) -> Text:
    """One line per unit: id, label and title, paragraphs (descendants included), indented by level."""
    out = report_header(report.meta)
    out.append("\n")
    for sec in report.walk():
        indent = "  " * max(sec.level - 1, 0)
        out.append(f"{indent}{sec.section_id:<8}", style=DIM_STYLE)
        out.append(section_heading(sec))
        out.append(f"  ({_count_paragraphs(sec)} 段)\n", style=DIM_STYLE)
    return out


def render_section(report: Report, section: Section) -> Text:
    """A whole section, subsections included, headed by its citation."""
    out = Text()
    out.append(citation(report.meta.title, section.label, section.title, report.meta.year), style=CITATION_STYLE)
    out.append(f"  §{section.section_id}\n", style=DIM_STYLE)
    for sec in section.walk():
        if sec is not section:
            out.append("\n" + section_heading(sec) + "\n", style="bold")
        for para in sec.paragraphs:
            out.append(para.text + "\n")
    return out


def _pad(text: str, width: int) -> str:
    """Pad to a display width (CJK characters take two cells)."""
    return text + " " * max(0, width - cell_len(text))


def render_reports(metas: Sequence[ReportMeta], periods: dict[str, str] | None = None) -> Text:
    """One line per report: id, region, kind, year, the years it covers, date, title.

    periods: report id → what it covers (回顾2022年 · 计划2023年), from the parsed reports.
    """
    out = Text()
    if not metas:
        out.append("(no reports in the corpus)\n")
        return out
    periods = periods or {}
    rows = [
        (m.report_id, m.region or "-", m.kind or "-", str(m.year or "-"), periods.get(m.report_id) or "-",
         m.signed or m.published or "-")
        for m in metas
    ]
    widths = [max(cell_len(r[i]) for r in rows) for i in range(6)]
    for m, row in zip(metas, rows, strict=True):
        out.append(_pad(row[0], widths[0]) + "  ", style="bold")
        out.append("  ".join(_pad(v, w) for v, w in zip(row[1:5], widths[1:5], strict=True)) + "  ")
        out.append(_pad(row[5], widths[5]) + "  ", style=DIM_STYLE)
        out.append(f"《{m.title}》\n")
    return out


def render_added(result: AddResult, manifest: Path) -> Text:
    """What `reports add` did: each report added with what was detected, each file skipped and why."""
    out = Text()
    for m in result.added:
        out.append("added ", style="bold")
        out.append(f"{m.report_id}  ")
        out.append(" · ".join(str(v) for v in (m.region, m.kind, m.year, m.date) if v) or "-", style=DIM_STYLE)
        out.append(f"  《{m.title}》\n")
    for path, reason in result.skipped:
        out.append("skipped ", style="bold red")
        out.append((reason if str(path) in reason else f"{path}: {reason}") + "\n")
    total = len(result.added) + len(result.skipped)
    out.append(f"{len(result.added)} of {total} report(s) added to {manifest}", style="bold")
    if result.skipped:
        out.append(f"; {len(result.skipped)} skipped (see above)", style="bold red")
    if result.added:
        out.append("; the next question (or `reportqa index build`) indexes them")
    out.append("\n")
    return out


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # unreachable; keeps type checkers content


def render_status(fields: Iterable[tuple[str, object]]) -> Text:
    """Aligned `key: value` lines."""
    rows = [(k, "-" if v is None or v == "" else str(v)) for k, v in fields]
    width = max((len(k) for k, _ in rows), default=0)
    out = Text()
    for key, value in rows:
        out.append(f"{key + ':':<{width + 1}} ", style="bold")
        out.append(value + "\n")
    return out


def index_status_fields(status: IndexStatus) -> list[tuple[str, object]]:
    """The rows of `reportqa index status`."""
    stale = "yes" if status.stale else "no"
    if status.stale and status.stale_reports:
        shown = ", ".join(status.stale_reports[:5]) + (", …" if len(status.stale_reports) > 5 else "")
        stale = f"yes ({len(status.stale_reports)} to index: {shown})"
    return [
        ("model", status.model),
        ("dimension", status.dim or None),  # 0 until an index is built
        ("reports", status.reports),
        ("paragraphs", status.paragraphs),
        ("corpus hash", status.corpus_hash),
        ("stale", stale),
        ("index size", human_size(status.size_bytes)),
        ("built at", status.built_at),
    ]
