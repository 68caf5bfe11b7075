"""How answers, outlines and sections look on a terminal and in plain text (rendering real records)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from bot.cli_render import (
    NOT_COVERED,
    is_plain,
    make_console,
    render_answer,
    render_outline,
    render_section,
    render_status,
)
from retrieval.answer import Answer, Hit, citation
from retrieval.document import Paragraph, Report, ReportMeta, Section

TITLE = "衡阳市2019年度法治政府建设情况报告"
PASSAGE = "全年共排查矛盾纠纷5万余件。全市各级调解组织共调解矛盾纠纷40000余件，调解成功率98%。继续推进。"
ANSWER_SENTENCE = "全市各级调解组织共调解矛盾纠纷40000余件，调解成功率98%。"


def make_hit(rank: int = 1, score: float = 0.8123) -> Hit:
    start = PASSAGE.index(ANSWER_SENTENCE)
    return Hit(
        rank=rank,
        score=score,
        report_id="hengyang-2019-fazhi",
        report_title=TITLE,
        report_date="2020-03-17",
        section_id="7.1",
        section_label="七、(一)",
        section_title="推行多元化解机制",
        citation=citation(TITLE, "七、(一)", "推行多元化解机制"),
        text=PASSAGE,
        highlight=ANSWER_SENTENCE,
        highlight_start=start,
        highlight_end=start + len(ANSWER_SENTENCE),
    )


def printed(renderable, console: Console) -> str:
    console.print(renderable, end="")
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


@pytest.fixture
def plain_console(monkeypatch: pytest.MonkeyPatch) -> Console:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return make_console(io.StringIO())


@pytest.fixture
def colour_console(monkeypatch: pytest.MonkeyPatch) -> Console:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    return make_console(io.StringIO())


def test_non_terminal_output_is_plain_and_marks_the_answer_sentence(plain_console: Console):
    assert is_plain(plain_console)
    out = printed(render_answer(Answer("调解了多少纠纷", True, [make_hit()]), True), plain_console)
    assert "\x1b[" not in out
    assert "《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制" in out
    assert f"【{ANSWER_SENTENCE}】" in out
    assert "全年共排查矛盾纠纷5万余件。【" in out  # the mark sits exactly around the highlight
    assert "0.812" in out and "2020-03-17" in out


def test_long_passages_stay_on_one_line_in_plain_output(plain_console: Console):
    long_hit = make_hit()
    long_hit = Hit(**{**long_hit.__dict__, "text": PASSAGE * 10})
    out = printed(render_answer(Answer("q", True, [long_hit]), True), plain_console)
    assert any(line.startswith(PASSAGE[:10]) and len(line) > 300 for line in out.splitlines())


def test_terminal_output_highlights_in_colour_without_marks(colour_console: Console):
    assert not is_plain(colour_console)
    out = printed(render_answer(Answer("调解了多少纠纷", True, [make_hit()]), False), colour_console)
    assert "\x1b[" in out
    assert "【" not in out
    assert re.search(r"\x1b\[[0-9;]*m" + re.escape(ANSWER_SENTENCE), out)  # styled from its first char
    assert not re.search(r"\x1b\[[0-9;]*m" + re.escape(PASSAGE[:5]), out)  # the rest of the passage is not


def test_no_color_gives_plain_text_even_on_a_terminal(colour_console, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NO_COLOR", "1")
    console = make_console(io.StringIO())
    assert is_plain(console)
    out = printed(render_answer(Answer("q", True, [make_hit()]), is_plain(console)), console)
    assert "\x1b[" not in out and f"【{ANSWER_SENTENCE}】" in out


def test_not_covered_says_so_and_lists_the_nearest_sections(plain_console: Console):
    hits = [make_hit(1, 0.31), make_hit(2, 0.2)]
    out = printed(render_answer(Answer("明天天气怎么样", False, hits), True), plain_console)
    assert out.splitlines()[0] == NOT_COVERED
    assert out.count("《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制") == 2
    assert ANSWER_SENTENCE not in out  # suggestions, not answers: no passage shown


def test_hit_with_offsets_outside_its_text_still_renders(plain_console: Console):
    hit = Hit(**{**make_hit().__dict__, "highlight_start": 5, "highlight_end": 5000})
    out = printed(render_answer(Answer("q", True, [hit]), True), plain_console)
    assert PASSAGE in out and "【" not in out


def make_report() -> Report:
    def para(text: str, sid: str, index: int) -> Paragraph:
        return Paragraph(text=text, start=0, end=len(text), sentences=[], section_id=sid, index=index)

    s71 = Section("7.1", "七、(一)", "推行多元化解机制", 2, 0, 0, [para("调解40000余件。", "7.1", 0)])
    s72_paragraphs = [para("复议案件。", "7.2", 0), para("诉讼。", "7.2", 1)]
    s72 = Section("7.2", "七、(二)", "加强行政复议", 2, 0, 0, s72_paragraphs)
    chapter = Section("7", "七、", "依法有效化解社会矛盾纠纷", 1, 0, 0, [], [s71, s72])
    preamble = Section("0", "", "", 0, 0, 0, [para("2019年，我市坚持……", "0", 0)])
    meta = ReportMeta("hengyang-2019-fazhi", TITLE, "x.txt", signed="2020-03-17")
    return Report(meta=meta, text="", sections=[preamble, chapter])


def test_outline_shows_ids_labels_titles_and_paragraph_counts(plain_console: Console):
    lines = printed(render_outline(make_report()), plain_console).splitlines()
    assert TITLE in lines[0] and "hengyang-2019-fazhi" in lines[0] and "2020-03-17" in lines[0]
    assert lines[1].split()[:2] == ["0", "前言"]
    assert lines[2].split() == ["7", "七、", "依法有效化解社会矛盾纠纷", "(3", "段)"]
    assert lines[3].startswith("  7.1") and "七、(一) 推行多元化解机制" in lines[3] and "(1 段)" in lines[3]
    assert "(2 段)" in lines[4]


def test_section_prints_its_citation_and_every_paragraph_of_its_subsections(plain_console: Console):
    report = make_report()
    out = printed(render_section(report, report.section("7")), plain_console)
    assert out.startswith(f"《{TITLE}》七、 依法有效化解社会矛盾纠纷")
    for text in ("调解40000余件。", "复议案件。", "诉讼。", "七、(二) 加强行政复议"):
        assert text in out
    assert out.index("调解40000余件") < out.index("复议案件")


def test_status_rows_align(plain_console: Console):
    rows = [("model", "multilingual-e5-small"), ("index size", "2.0 MB")]
    out = printed(render_status(rows), plain_console)
    first, second = out.splitlines()
    assert first.index("multilingual") == second.index("2.0 MB")


def last_style_before(out: str, needle: str) -> str:
    """The parameters of the last ANSI SGR code before `needle` on its line ("" if none)."""
    line_start = out.rfind("\n", 0, out.index(needle)) + 1
    codes = re.findall(r"\x1b\[([0-9;]*)m", out[line_start : out.index(needle)])
    return codes[-1] if codes else ""


def test_only_headings_are_styled_in_outlines_and_sections(colour_console: Console):
    report = make_report()
    section = printed(render_section(report, report.section("7")), colour_console)
    assert last_style_before(section, "调解40000余件。") in ("", "0")
    outline = printed(render_outline(report), make_console(io.StringIO()))
    assert last_style_before(outline, "七、(一) 推行多元化解机制") in ("", "0")
    assert "36" in last_style_before(outline, TITLE)  # the report title is in the citation colour


def test_a_follow_up_with_nothing_to_follow_gets_the_note_not_the_not_covered_line():
    from retrieval.followup import INCOMPLETE, context_note

    answer = Answer("那2017年呢？", False, note=context_note(), understood_as="那2017年呢？", followup=INCOMPLETE)
    text = render_answer(answer, plain=True).plain
    assert "请把问题说完整" in text and NOT_COVERED not in text
